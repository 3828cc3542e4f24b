/**
 * openssl as the reference the certificate code is checked against: run a command, and the SPKI
 * pin by the recipe of RFC 7858 §4.2 (and docs/platform-notes.md#tls-clients).
 *
 * @module
 */

const decoder = new TextDecoder();

/** Runs a command, optionally feeding stdin; returns exit code and decoded output. */
export async function run(
  cmd: string,
  args: string[],
  stdin?: string | Uint8Array,
): Promise<{ code: number; stdout: string; stderr: string; raw: Uint8Array }> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(typeof stdin === "string" ? new TextEncoder().encode(stdin) : stdin);
    await writer.close();
  }
  const out = await child.output();
  return {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
    raw: out.stdout,
  };
}

/** Runs openssl; its stdout, or an Error with its stderr. */
export async function openssl(args: string[], stdin?: string | Uint8Array): Promise<Uint8Array> {
  const r = await run("openssl", args, stdin);
  if (r.code !== 0) throw new Error(`openssl ${args.join(" ")} failed: ${r.stderr}`);
  return r.raw;
}

/** The pin as the RFC 7858 / openssl recipe computes it. */
export async function opensslPin(certPem: string): Promise<string> {
  const pubPem = await openssl(["x509", "-pubkey", "-noout"], certPem);
  const der = await openssl(["pkey", "-pubin", "-outform", "der"], pubPem);
  const digest = await openssl(["dgst", "-sha256", "-binary"], der);
  return decoder.decode(await openssl(["base64"], digest)).trim();
}
