import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/parse.ts";
import { exampleConfig, renderUnit } from "../../scripts/install_service.ts";

const template = Deno.readTextFileSync(
  new URL("../../scripts/deploy/dotbridge.service", import.meta.url),
);
const paths = {
  appDir: "/opt/dotbridge",
  configDir: "/etc/dotbridge",
  certDir: "/etc/dotbridge/tls",
  deno: "/usr/local/bin/deno",
};

describe("install-service", () => {
  it("fills every placeholder and keeps least privilege", () => {
    const unit = renderUnit(template, paths);
    expect(unit).not.toMatch(/@[A-Z_]+@/);
    expect(unit).toContain("AmbientCapabilities=CAP_NET_BIND_SERVICE");
    expect(unit).toContain("CapabilityBoundingSet=CAP_NET_BIND_SERVICE");
    expect(unit).toContain("ExecReload=/bin/kill -HUP $MAINPID");
    expect(unit).toContain(
      "--allow-read=/opt/dotbridge,/etc/dotbridge,/etc/dotbridge/tls",
    );
    expect(unit).not.toContain("--allow-write");
    expect(unit).not.toContain("--allow-all");
    expect(unit).toContain(
      "/usr/local/bin/deno run --cached-only --v8-flags=--no-concurrent-array-buffer-sweeping,--heap-growing-percent=20",
    );
    expect(unit).toContain("--allow-net --allow-env");
  });

  it("refuses paths that would break the unit's command line", () => {
    expect(() => renderUnit(template, { ...paths, appDir: "/opt/dot bridge" })).toThrow(
      /--appDir: "\/opt\/dot bridge"/,
    );
  });

  it("writes a starting config that the real parser accepts", () => {
    const text = exampleConfig("/etc/dotbridge/tls");
    const r = parseConfig({ args: ["--config", "c.json"], readTextFile: () => text });
    if (r.help) throw new Error("help");
    expect(r.config.dot.listen).toEqual({ hostname: "0.0.0.0", port: 853 });
    expect(r.config.certificate.certFile).toBe("/etc/dotbridge/tls/fullchain.pem");
    expect(r.config.upstream.upstreams).toHaveLength(2);
  });
});
