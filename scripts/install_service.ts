/**
 * `deno task install-service`: installs dotbridge as a systemd service on this machine.
 *
 * ```sh
 * sudo "$(command -v deno)" task install-service   # install, then follow the printed steps
 * deno task install-service --print                # only print the unit it would install
 * ```
 *
 * (`sudo deno ...` finds no Deno that was installed in your home: give sudo its path.)
 *
 * Options: --app-dir (default: this checkout), --config-dir (/etc/dotbridge), --cert-dir
 * (/etc/dotbridge/tls), --deno (this deno binary, or a system one when this one is in a home),
 * --unit (/etc/systemd/system/dotbridge.service).
 *
 * The unit runs sandboxed (`ProtectHome=true`, `ProtectSystem=strict`): it refuses a checkout or
 * a Deno under /home, /root or /run/user, which the service could not see, and says how to copy
 * them out; it lets the bridge read the files the configuration names (tenants, local records,
 * CA files, lists, ...) and write its state directory and query log, and nothing else.
 *
 * @module
 */
import { parseConfig } from "../src/config/parse.ts";
import type { Config } from "../src/config/config.ts";
import { OPTIONS } from "../src/config/options.ts";
import { messageOf } from "../src/errors/message_of.ts";

/** Paths the unit is rendered with. */
export interface UnitPaths {
  appDir: string;
  configDir: string;
  certDir: string;
  deno: string;
  /** Directories the bridge may read beyond the three above (`--allow-read`). */
  readPaths?: readonly string[];
  /** Directories the bridge may write (`--allow-write`, `ReadWritePaths=`). */
  writePaths?: readonly string[];
}

/** Where the service keeps its state: `StateDirectory=dotbridge`. */
export const STATE_DIR = "/var/lib/dotbridge";

const TEMPLATE = new URL("./deploy/dotbridge.service", import.meta.url);

/** Directories `ProtectHome=true` hides from the service. */
const HIDDEN = ["/home", "/root", "/run/user"];

/** The hidden directory `path` lies in, if any. */
export function hiddenBy(path: string): string | undefined {
  return HIDDEN.find((dir) => path === dir || path.startsWith(`${dir}/`));
}

/**
 * Why the unit could not run from these paths, as one line with the fix, or undefined when it
 * can.
 */
export function unreachable(paths: Pick<UnitPaths, "appDir" | "deno">): string | undefined {
  const app = hiddenBy(paths.appDir);
  if (app) {
    return `--app-dir ${paths.appDir} is under ${app}, which the service cannot see ` +
      `(ProtectHome=true): copy it out and install from there: sudo cp -a ${paths.appDir} ` +
      `/opt/dotbridge && cd /opt/dotbridge && sudo "$(command -v deno)" task install-service`;
  }
  const deno = hiddenBy(paths.deno);
  if (deno) {
    return `--deno ${paths.deno} is under ${deno}, which the service cannot see ` +
      `(ProtectHome=true): copy it out and install again: sudo install -m 0755 ${paths.deno} ` +
      `/usr/local/bin/deno && sudo /usr/local/bin/deno task install-service`;
  }
  return undefined;
}

/**
 * What stops an install, as one line with the fix: not root (`uid`), or paths the unit could
 * not reach ({@linkcode unreachable}); undefined when nothing does.
 */
export function preflight(
  uid: number,
  paths: Pick<UnitPaths, "appDir" | "deno">,
): string | undefined {
  if (uid !== 0) return 'run as root: sudo "$(command -v deno)" task install-service';
  return unreachable(paths);
}

/**
 * The Deno the unit runs: `running` (this process's), unless it lies in a home directory and a
 * system one exists (`exists` tells which of the usual places hold one).
 */
export function pickDeno(running: string, exists: (path: string) => boolean): string {
  if (!hiddenBy(running)) return running;
  return ["/usr/local/bin/deno", "/usr/bin/deno"].find(exists) ?? running;
}

function dirOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i > 0 ? path.slice(0, i) : "/";
}

function absolute(path: string, base: string): string {
  return path.startsWith("/") ? path : `${base}/${path}`.replace(/\/\.\//g, "/");
}

/**
 * What the configuration names on disk: directories to read (those of every FILE key, and of
 * the tenants file's own files) and to write (the state directory, the query log's directory,
 * a dnstap unix socket's directory). Relative paths are taken from `workDir`, the unit's
 * `WorkingDirectory`. URLs are not paths.
 */
export function configuredPaths(
  config: Config,
  workDir: string,
  tenantsText?: string,
): { read: string[]; write: string[] } {
  const read = new Set<string>();
  const write = new Set<string>();
  const values = config as unknown as Record<string, Record<string, unknown>>;
  const file = (value: unknown) => {
    if (typeof value === "string" && value && !/^[a-z]+:\/\//i.test(value)) {
      read.add(dirOf(absolute(value, workDir)));
    }
  };
  for (const o of OPTIONS) {
    if (!o.group || !o.field) continue;
    const value = values[o.group]?.[o.field];
    if (o.name === "state-dir") {
      if (typeof value === "string") write.add(absolute(value, workDir));
    } else if (o.name === "query-log") {
      if (typeof value === "string" && value !== "-") write.add(dirOf(absolute(value, workDir)));
    } else if (o.name === "dnstap") {
      if (typeof value === "string" && value.startsWith("unix:")) {
        write.add(dirOf(absolute(value.slice(5), workDir)));
      }
    } else if (o.meta?.split("|").includes("FILE") || o.meta === "SOURCE") {
      for (const v of Array.isArray(value) ? value : [value]) file(v);
    }
  }
  if (tenantsText) {
    try {
      const tenants = JSON.parse(tenantsText)?.tenants ?? {};
      for (const spec of Object.values(tenants) as Record<string, unknown>[]) {
        for (const v of Object.values(spec ?? {})) {
          for (const item of Array.isArray(v) ? v : [v]) {
            if (typeof item === "string" && item.startsWith("/")) file(item);
          }
        }
      }
    } catch {
      // The bridge itself reports a broken tenants file, naming it.
    }
  }
  return { read: [...read].sort(), write: [...write].sort() };
}

/** The unit text with the paths filled in. */
export function renderUnit(template: string, paths: UnitPaths): string {
  for (const [key, value] of Object.entries(paths)) {
    for (const v of Array.isArray(value) ? value : [value]) {
      if (/[\s"'\\$,]/.test(v)) {
        throw new RangeError(`--${key}: "${v}" must not contain spaces, quotes or commas`);
      }
    }
  }
  const read = [paths.appDir, paths.configDir, paths.certDir, ...(paths.readPaths ?? [])];
  const write = [STATE_DIR, ...(paths.writePaths ?? [])];
  const unique = (list: string[]) => [...new Set(list)];
  return template
    .replaceAll("@APP_DIR@", paths.appDir)
    .replaceAll("@CONFIG_DIR@", paths.configDir)
    .replaceAll("@READ_PATHS@", unique([...read, ...write]).join(","))
    .replaceAll("@WRITE_PATHS@", unique(write).join(","))
    .replaceAll(
      "@READ_WRITE_PATHS@",
      unique(write).filter((p) => p !== STATE_DIR).map((p) => `-${p}`).join(" "),
    )
    .replace(/^ReadWritePaths=\s*\n/m, "")
    .replaceAll("@DENO@", paths.deno);
}

/** The starting configuration written when none exists. */
export function exampleConfig(certDir: string): string {
  return JSON.stringify(
    {
      listen: "0.0.0.0:853",
      "http-listen": "0.0.0.0:443",
      cert: `${certDir}/fullchain.pem`,
      key: `${certDir}/privkey.pem`,
      upstream: ["https://cloudflare-dns.com/dns-query", "https://dns.google/dns-query"],
      "state-dir": STATE_DIR,
    },
    null,
    2,
  ) + "\n";
}

function flag(args: string[], name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1] : fallback;
}

function fail(message: string): never {
  console.error(`install-service: ${message}`);
  Deno.exit(1);
}

async function run(
  cmd: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<boolean> {
  const out = await new Deno.Command(cmd, {
    args,
    ...options,
    stdout: "inherit",
    stderr: "inherit",
  })
    .output();
  return out.success;
}

function existsSync(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The configuration the unit will run with (its paths), or a one-line reason it is broken. */
function readConfig(configFile: string, workDir: string): { read: string[]; write: string[] } {
  const parsed = parseConfig({
    args: ["--config", configFile],
    readTextFile: (p) => Deno.readTextFileSync(absolute(p, workDir)),
  });
  if (parsed.help) return { read: [], write: [] };
  const tenantsFile = parsed.config.resolver.tenantsFile;
  const tenantsText = tenantsFile
    ? Deno.readTextFileSync(absolute(tenantsFile, workDir))
    : undefined;
  return configuredPaths(parsed.config, workDir, tenantsText);
}

if (import.meta.main) {
  const args = Deno.args;
  const appDir = flag(args, "app-dir", new URL("..", import.meta.url).pathname.replace(/\/$/, ""));
  const paths: UnitPaths = {
    appDir,
    configDir: flag(args, "config-dir", "/etc/dotbridge"),
    certDir: flag(args, "cert-dir", "/etc/dotbridge/tls"),
    deno: flag(args, "deno", pickDeno(Deno.execPath(), existsSync)),
  };
  const configFile = `${paths.configDir}/dotbridge.json`;
  if (existsSync(configFile)) {
    try {
      const found = readConfig(configFile, appDir);
      paths.readPaths = found.read;
      paths.writePaths = found.write;
    } catch (e) {
      fail(`${configFile}: ${messageOf(e)}`);
    }
  }
  const template = await Deno.readTextFile(TEMPLATE);
  if (args.includes("--print")) {
    console.log(renderUnit(template, paths));
    Deno.exit(0);
  }
  const why = preflight(Deno.uid() ?? -1, paths);
  if (why) fail(why);
  const unitPath = flag(args, "unit", "/etc/systemd/system/dotbridge.service");
  const hasUser = await new Deno.Command("id", {
    args: ["dotbridge"],
    stdout: "null",
    stderr: "null",
  }).output();
  if (!hasUser.success) {
    const ok = await run("useradd", [
      "--system",
      "--no-create-home",
      "--shell",
      "/usr/sbin/nologin",
      "dotbridge",
    ]);
    if (!ok) fail("useradd dotbridge failed (see above)");
  }
  await Deno.mkdir(paths.certDir, { recursive: true });
  if (!existsSync(configFile)) {
    await Deno.writeTextFile(configFile, exampleConfig(paths.certDir));
    console.log(`wrote ${configFile} (edit it: certificate paths, upstreams)`);
  }
  // The service runs with --cached-only from this cache: fill it with what serving needs.
  const env = { DENO_DIR: "/var/cache/dotbridge/deno" };
  const cached = await run(paths.deno, ["install", "--frozen"], { cwd: paths.appDir, env }) &&
    await run(paths.deno, ["cache", "src/deno/main.ts"], { cwd: paths.appDir, env });
  if (!cached) fail("caching the bridge's modules failed (see above)");
  await Deno.writeTextFile(unitPath, renderUnit(template, paths));
  console.log(`wrote ${unitPath}`);
  await run("systemctl", ["daemon-reload"]);
  console.log(
    [
      "next:",
      `  1. put the certificate and key in ${paths.certDir} (readable by group dotbridge), e.g.`,
      "     cp scripts/deploy/certbot-deploy-hook.sh /etc/letsencrypt/renewal-hooks/deploy/dotbridge",
      "     and run it once with RENEWED_LINEAGE=/etc/letsencrypt/live/<name>",
      "  2. systemctl enable --now dotbridge",
      "  3. journalctl -u dotbridge -f   (the start-up line prints the SPKI pin)",
      `  (after editing ${configFile} to name files elsewhere, run this again: the unit lets the`,
      "   bridge read only the directories the configuration names)",
    ].join("\n"),
  );
}
