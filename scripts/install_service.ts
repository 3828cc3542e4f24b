/**
 * `deno task install-service`: installs dotbridge as a systemd service on this machine.
 *
 * ```sh
 * sudo deno task install-service              # install, then follow the printed steps
 * deno task install-service --print           # only print the unit it would install
 * ```
 *
 * Options: --app-dir (default: this checkout), --config-dir (/etc/dotbridge), --cert-dir
 * (/etc/dotbridge/tls), --deno (this deno binary), --unit (/etc/systemd/system/dotbridge.service).
 *
 * @module
 */

/** Paths the unit is rendered with. */
export interface UnitPaths {
  appDir: string;
  configDir: string;
  certDir: string;
  deno: string;
}

const TEMPLATE = new URL("./deploy/dotbridge.service", import.meta.url);

/** The unit text with the paths filled in. */
export function renderUnit(template: string, paths: UnitPaths): string {
  for (const [key, value] of Object.entries(paths)) {
    if (/[\s"'\\$]/.test(value)) {
      throw new RangeError(`--${key}: "${value}" must not contain spaces or quotes`);
    }
  }
  return template
    .replaceAll("@APP_DIR@", paths.appDir)
    .replaceAll("@CONFIG_DIR@", paths.configDir)
    .replaceAll("@CERT_DIR@", paths.certDir)
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
    },
    null,
    2,
  ) + "\n";
}

function flag(args: string[], name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1] : fallback;
}

async function run(cmd: string, args: string[], cwd?: string): Promise<boolean> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "inherit", stderr: "inherit" })
    .output();
  return out.success;
}

if (import.meta.main) {
  const args = Deno.args;
  const paths: UnitPaths = {
    appDir: flag(args, "app-dir", new URL("..", import.meta.url).pathname.replace(/\/$/, "")),
    configDir: flag(args, "config-dir", "/etc/dotbridge"),
    certDir: flag(args, "cert-dir", "/etc/dotbridge/tls"),
    deno: flag(args, "deno", Deno.execPath()),
  };
  const unit = renderUnit(await Deno.readTextFile(TEMPLATE), paths);
  if (args.includes("--print")) {
    console.log(unit);
    Deno.exit(0);
  }
  const unitPath = flag(args, "unit", "/etc/systemd/system/dotbridge.service");
  const hasUser = await new Deno.Command("id", {
    args: ["dotbridge"],
    stdout: "null",
    stderr: "null",
  })
    .output();
  if (!hasUser.success) {
    const ok = await run("useradd", [
      "--system",
      "--no-create-home",
      "--shell",
      "/usr/sbin/nologin",
      "dotbridge",
    ]);
    if (!ok) Deno.exit(1);
  }
  await Deno.mkdir(paths.certDir, { recursive: true });
  const configFile = `${paths.configDir}/dotbridge.json`;
  try {
    await Deno.stat(configFile);
  } catch {
    await Deno.writeTextFile(configFile, exampleConfig(paths.certDir));
    console.log(`wrote ${configFile} (edit it: certificate paths, upstreams)`);
  }
  if (!(await run(paths.deno, ["install", "--frozen"], paths.appDir))) Deno.exit(1);
  await Deno.writeTextFile(unitPath, unit);
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
    ].join("\n"),
  );
}
