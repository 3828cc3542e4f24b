import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/parse.ts";
import {
  configuredPaths,
  exampleConfig,
  pickDeno,
  preflight,
  renderUnit,
  STATE_DIR,
  unreachable,
} from "../../scripts/install_service.ts";

const template = Deno.readTextFileSync(
  new URL("../../scripts/deploy/dotbridge.service", import.meta.url),
);
const paths = {
  appDir: "/opt/dotbridge",
  configDir: "/etc/dotbridge",
  certDir: "/etc/dotbridge/tls",
  deno: "/usr/local/bin/deno",
};

function configOf(json: Record<string, unknown>) {
  const r = parseConfig({ args: ["--config", "c.json"], readTextFile: () => JSON.stringify(json) });
  if (r.help) throw new Error("help");
  return r.config;
}

describe("install-service", () => {
  it("fills every placeholder and keeps least privilege", () => {
    const unit = renderUnit(template, paths);
    expect(unit).not.toMatch(/@[A-Z_]+@/);
    expect(unit).toContain("AmbientCapabilities=CAP_NET_BIND_SERVICE");
    expect(unit).toContain("CapabilityBoundingSet=CAP_NET_BIND_SERVICE");
    expect(unit).toContain("ExecReload=/bin/kill -HUP $MAINPID");
    expect(unit).toContain(
      `--allow-read=/opt/dotbridge,/etc/dotbridge,/etc/dotbridge/tls,${STATE_DIR} `,
    );
    // Writing: the state directory only (StateDirectory=, so no ReadWritePaths line is needed).
    expect(unit).toContain(`--allow-write=${STATE_DIR} `);
    expect(unit).toContain("StateDirectory=dotbridge");
    expect(unit).not.toMatch(/^ReadWritePaths=/m);
    expect(unit).not.toContain("--allow-all");
    expect(unit).not.toContain("--allow-run");
    expect(unit).toContain(
      "/usr/local/bin/deno run --cached-only --v8-flags=--no-concurrent-array-buffer-sweeping,--heap-growing-percent=20",
    );
    expect(unit).toContain("--allow-net --allow-env");
    expect(unit).toContain("ProtectHome=true");
  });

  it("refuses paths that would break the unit's command line", () => {
    expect(() => renderUnit(template, { ...paths, appDir: "/opt/dot bridge" })).toThrow(
      /--appDir: "\/opt\/dot bridge"/,
    );
    expect(() => renderUnit(template, { ...paths, readPaths: ["/a,b"] })).toThrow(/readPaths/);
  });

  it("refuses a checkout or a Deno the sandbox hides, with the fix in one line", () => {
    const app = unreachable({ appDir: "/home/ann/dotbridge", deno: "/usr/local/bin/deno" })!;
    expect(app).toMatch(/^--app-dir \/home\/ann\/dotbridge is under \/home/);
    expect(app).toContain("sudo cp -a /home/ann/dotbridge /opt/dotbridge");
    expect(app).not.toContain("\n");
    const deno = unreachable({ appDir: "/opt/dotbridge", deno: "/root/.deno/bin/deno" })!;
    expect(deno).toMatch(/^--deno \/root\/.deno\/bin\/deno is under \/root/);
    expect(deno).toContain("sudo install -m 0755 /root/.deno/bin/deno /usr/local/bin/deno");
    expect(unreachable(paths)).toBeUndefined();
    expect(unreachable({ appDir: "/homestead/x", deno: "/usr/bin/deno" })).toBeUndefined();
  });

  it("takes a system Deno when the running one is in a home directory", () => {
    const has = (p: string) => p === "/usr/bin/deno";
    expect(pickDeno("/home/ann/.deno/bin/deno", has)).toBe("/usr/bin/deno");
    expect(pickDeno("/usr/local/bin/deno", has)).toBe("/usr/local/bin/deno");
    expect(pickDeno("/root/.deno/bin/deno", () => false)).toBe("/root/.deno/bin/deno");
  });

  it("lets the bridge read what the configuration names and write its state and query log", () => {
    const config = configOf({
      cert: "/etc/ssl/dns/fullchain.pem",
      key: "/etc/ssl/dns/privkey.pem",
      tenants: "/srv/dns/tenants.json",
      "local-records": "zones/lan.hosts",
      "query-log": "/var/log/dotbridge/queries.log",
      dnstap: "unix:/run/dnstap/dnstap.sock",
      "state-dir": STATE_DIR,
      upstream: ["https://dns.example/dns-query"],
    });
    const tenants = JSON.stringify({
      tenants: { kids: { upstream: ["https://a/q"], "local-records": "/srv/kids/kids.hosts" } },
    });
    const found = configuredPaths(config, "/opt/dotbridge", tenants);
    expect(found.read).toEqual([
      "/etc/ssl/dns",
      "/opt/dotbridge/zones",
      "/srv/dns",
      "/srv/kids",
    ]);
    expect(found.write).toEqual(["/run/dnstap", STATE_DIR, "/var/log/dotbridge"]);
    const unit = renderUnit(template, { ...paths, readPaths: found.read, writePaths: found.write });
    expect(unit).toContain("/srv/kids");
    expect(unit).toMatch(/^ReadWritePaths=-\/run\/dnstap -\/var\/log\/dotbridge$/m);
    expect(unit).toContain(`--allow-write=${STATE_DIR},/run/dnstap,/var/log/dotbridge `);
  });

  it("writes a starting config that the real parser accepts", () => {
    const text = exampleConfig("/etc/dotbridge/tls");
    const r = parseConfig({ args: ["--config", "c.json"], readTextFile: () => text });
    if (r.help) throw new Error("help");
    expect(r.config.dot.listen).toEqual({ hostname: "0.0.0.0", port: 853 });
    expect(r.config.certificate.certFile).toBe("/etc/dotbridge/tls/fullchain.pem");
    expect(r.config.certificate.stateDir).toBe(STATE_DIR);
    expect(r.config.upstream.upstreams).toHaveLength(2);
  });

  it("says to run as root, in one line, before anything else", () => {
    expect(preflight(1000, paths)).toBe(
      'run as root: sudo "$(command -v deno)" task install-service',
    );
    expect(preflight(1000, { appDir: "/home/a/x", deno: "/usr/bin/deno" })).toMatch(/^run as root/);
    expect(preflight(0, { appDir: "/home/a/x", deno: "/usr/bin/deno" })).toMatch(/^--app-dir/);
    expect(preflight(0, paths)).toBeUndefined();
  });
});
