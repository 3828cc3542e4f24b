import { describe, expect, it } from "vitest";
import { installArgs, servedFlags } from "../../scripts/install_cli.ts";

const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

describe("install-cli", () => {
  it("takes the V8 flags and permissions from the serve task, and only those", () => {
    const flags = servedFlags(Deno.readTextFileSync(`${ROOT}/deno.json`));
    expect(flags.some((f) => f.startsWith("--v8-flags="))).toBe(true);
    expect(flags).toContain("--allow-net");
    expect(flags).not.toContain("-A");
    expect(flags).not.toContain("--allow-all");
    expect(flags).not.toContain("--allow-run");
    expect(() => servedFlags('{"tasks":{"serve":"deno run -A other.ts"}}')).toThrow(/serve/);
  });

  it("names the command dotbridge, with this checkout's config and entry", () => {
    const args = installArgs("/srv/dotbridge", ["--allow-net"], "/usr/local");
    expect(args.slice(0, 5)).toEqual(["install", "--global", "--force", "--name", "dotbridge"]);
    expect(args).toContain("/srv/dotbridge/deno.json");
    expect(args.slice(-2)).toEqual(["--allow-net", "/srv/dotbridge/src/deno/main.ts"]);
    expect(args.join(" ")).toContain("--root /usr/local");
    expect(installArgs("/r", []).join(" ")).not.toContain("--root");
  });

  it("installs a dotbridge command that runs the bridge", async () => {
    const root = await Deno.makeTempDir({ prefix: "dotbridge-cli-" });
    try {
      const install = await new Deno.Command(Deno.execPath(), {
        args: ["task", "install-cli"],
        cwd: ROOT,
        env: { DENO_INSTALL_ROOT: root },
      }).output();
      const said = new TextDecoder().decode(install.stdout);
      expect(install.success, new TextDecoder().decode(install.stderr)).toBe(true);
      expect(said).toContain(`${root}/bin/dotbridge`);
      const shim = await Deno.readTextFile(`${root}/bin/dotbridge`);
      expect(shim).toContain("--v8-flags=");
      expect(shim).not.toMatch(/--allow-all|\s-A\s|--allow-run/);
      const run = await new Deno.Command(`${root}/bin/dotbridge`, { args: ["--help"] }).output();
      expect(run.success).toBe(true);
      expect(new TextDecoder().decode(run.stdout)).toContain("--listen");
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  }, 120_000);
});
