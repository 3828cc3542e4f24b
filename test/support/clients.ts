/**
 * Running real DNS clients (kdig, dig, curl) from tests: whether one is installed, and one run
 * bounded by a hard timeout.
 *
 * @module
 */

const decoder = new TextDecoder();

/** True if `bin` can be started (it printed its version). */
export async function installed(bin: string, versionFlag: string): Promise<boolean> {
  try {
    await new Deno.Command(bin, { args: [versionFlag], stdout: "null", stderr: "null" }).output();
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** Runs a client, killed after `timeoutMs` whatever its own timeout options say. */
export async function runClient(
  bin: string,
  args: string[],
  timeoutMs = 15_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(bin, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
  }).output();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/** The A addresses a dig or kdig output lists for `name`, from answer-section lines. */
export function addressesIn(output: string, name: string): string[] {
  const re = new RegExp(
    `^${name.replaceAll(".", "\\.")}\\.\\s+\\d+\\s+IN\\s+A\\s+(\\S+)\\s*$`,
    "gm",
  );
  return [...output.matchAll(re)].map((m) => m[1]);
}
