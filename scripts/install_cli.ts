/**
 * `deno task install-cli`: installs the `dotbridge` command (a `deno install --global` shim) that
 * runs this checkout's bridge with the flags `deno task serve` ships: the V8 flags and the same
 * permissions (network, environment, reading configuration and certificates, writing the state
 * directory and the query log), no more (no subprocesses, no FFI, no system information).
 *
 * ```sh
 * deno task install-cli                     # into $DENO_INSTALL_ROOT/bin, else ~/.deno/bin
 * deno task install-cli --root /usr/local   # into /usr/local/bin (as root)
 * dotbridge --version
 * ```
 *
 * The shim points at this checkout (`src/deno/main.ts`), so keep the checkout where it is; run
 * the task again after moving it. The npm packages serving needs are cached first, so the
 * command starts offline.
 *
 * @module
 */

/** The `deno run` flags of `deno task serve` (the V8 flags and permissions), from `deno.json`. */
export function servedFlags(denoJson: string): string[] {
  const serve: unknown = JSON.parse(denoJson)?.tasks?.serve;
  if (typeof serve !== "string") throw new Error('deno.json: no "serve" task');
  const words = serve.split(/\s+/).filter((w) => w.length > 0);
  const run = words.indexOf("run");
  const entry = words.indexOf("src/deno/main.ts");
  if (words[0] !== "deno" || run !== 1 || entry < run) {
    throw new Error(`deno.json: the "serve" task is not "deno run <flags> src/deno/main.ts"`);
  }
  return words.slice(run + 1, entry);
}

/** The `deno install` arguments for the shim (`root`: `--root`, else Deno's default). */
export function installArgs(repo: string, flags: readonly string[], root?: string): string[] {
  return [
    "install",
    "--global",
    "--force",
    "--name",
    "dotbridge",
    "--config",
    `${repo}/deno.json`,
    ...(root ? ["--root", root] : []),
    ...flags,
    `${repo}/src/deno/main.ts`,
  ];
}

if (import.meta.main) {
  const repo = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const i = Deno.args.indexOf("--root");
  const root = i >= 0 ? Deno.args[i + 1] : undefined;
  if (i >= 0 && !root) {
    console.error("install-cli: --root needs a directory");
    Deno.exit(2);
  }
  const flags = servedFlags(await Deno.readTextFile(`${repo}/deno.json`));
  const deno = Deno.execPath();
  const cache = await new Deno.Command(deno, {
    args: ["cache", "--config", `${repo}/deno.json`, `${repo}/src/deno/main.ts`],
    cwd: repo,
  }).output();
  if (!cache.success) {
    console.error(
      `install-cli: caching the bridge's modules failed:\n${
        new TextDecoder().decode(cache.stderr)
      }`,
    );
    Deno.exit(1);
  }
  const out = await new Deno.Command(deno, { args: installArgs(repo, flags, root), cwd: repo })
    .output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) {
    console.error(`install-cli: deno install failed:\n${text}`);
    Deno.exit(1);
  }
  const bin = root ?? Deno.env.get("DENO_INSTALL_ROOT") ?? `${Deno.env.get("HOME")}/.deno`;
  console.log(`installed ${bin}/bin/dotbridge (runs ${repo}/src/deno/main.ts)`);
  const path = (Deno.env.get("PATH") ?? "").split(":");
  if (!path.includes(`${bin}/bin`)) console.log(`add it to PATH: export PATH="${bin}/bin:$PATH"`);
  console.log("try: dotbridge --version");
}
