/**
 * The Docker image's recipe, read as text (no Docker engine runs here): what it exposes, keeps,
 * checks and allows, and that its command line is one the bridge accepts.
 */
import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/parse.ts";
import { servedFlags } from "../../scripts/install_cli.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const dockerfile = Deno.readTextFileSync(`${ROOT}scripts/deploy/Dockerfile`);
/** The ENTRYPOINT's JSON array, its line continuations joined. */
const entrypoint: string[] = JSON.parse(
  /^ENTRYPOINT (\[[\s\S]*?\])\s*$/m.exec(dockerfile.replaceAll("\\\n", ""))![1],
);

describe("the Dockerfile", () => {
  it("exposes DoT and DoQ on 853 (TCP and UDP) and DoH, and keeps its state in a volume", () => {
    expect(dockerfile).toMatch(/^EXPOSE 853\/tcp 853\/udp 8443\/tcp$/m);
    expect(dockerfile).toMatch(/^VOLUME \/var\/lib\/dotbridge$/m);
    expect(dockerfile).toMatch(/^USER deno$/m);
  });

  it("checks readiness on /ready of a loopback metrics listener", () => {
    expect(dockerfile).toMatch(/^HEALTHCHECK [\s\S]*127\.0\.0\.1:9153\/ready/m);
    const i = entrypoint.indexOf("--metrics-listen");
    expect(entrypoint[i + 1]).toBe("127.0.0.1:9153");
  });

  it("runs with the serve task's flags and scoped reads and writes", () => {
    const flags = servedFlags(Deno.readTextFileSync(`${ROOT}deno.json`));
    for (const f of flags.filter((f) => f.startsWith("--v8-flags"))) {
      expect(entrypoint).toContain(f);
    }
    expect(entrypoint).toContain("--allow-read=/app,/etc/dotbridge,/var/lib/dotbridge");
    expect(entrypoint).toContain("--allow-write=/var/lib/dotbridge");
    expect(entrypoint).not.toContain("--allow-all");
    expect(entrypoint).not.toContain("-A");
  });

  it("passes the bridge options it accepts, the state directory among them", () => {
    const args = entrypoint.slice(entrypoint.indexOf("src/deno/main.ts") + 1);
    const r = parseConfig({ args });
    if (r.help) throw new Error("help");
    expect(r.config.certificate.stateDir).toBe("/var/lib/dotbridge");
    expect(r.config.certificate.certFile).toBe("/etc/dotbridge/tls/fullchain.pem");
    expect(r.config.dot.listen.port).toBe(853);
  });

  it("copies only what serving needs", () => {
    expect(dockerfile).toMatch(/^COPY deno\.json deno\.lock \.\/$/m);
    expect(dockerfile).not.toMatch(/^COPY (test|scripts)/m);
  });
});
