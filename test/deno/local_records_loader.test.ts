import { afterEach, beforeEach, describe, expect, it } from "vitest";
import dnsPacket from "dns-packet";
import { Buffer } from "node:buffer";
import { Rcode } from "../../src/dns/constants.ts";
import { classifyQuery, type Query } from "../../src/dns/query.ts";
import type { LogFields, Logger } from "../../src/log/mod.ts";
import type { LocalRecords } from "../../src/records/mod.ts";
import { type LocalRecordsWatch, watchLocalRecords } from "../../src/deno/local_records_loader.ts";

function query(name: string): Query {
  const c = classifyQuery(
    new Uint8Array(dnsPacket.encode({ type: "query", id: 1, questions: [{ type: "A", name }] })),
  );
  if (c.kind !== "query") throw new Error("fixture is not a query");
  return c.query;
}

/** The A addresses `records` answers for `name`, or undefined when it does not answer. */
function addressesOf(records: LocalRecords, name: string): string[] | undefined {
  const wire = records.answer(query(name))?.wire;
  if (!wire) return undefined;
  return (dnsPacket.decode(Buffer.from(wire)).answers ?? []).map((r) =>
    String((r as { data: unknown }).data)
  );
}

function recordingLogger() {
  const lines: { level: string; msg: string; fields?: LogFields }[] = [];
  const at = (level: string) => (msg: string, fields?: LogFields) => {
    lines.push({ level, msg, fields });
  };
  const logger: Logger = {
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
  };
  return { lines, logger };
}

/** Polls `check` every 20 ms until it is true, for up to 5 s. */
async function eventually(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Replaces the file in one step, as editors and config managers do. */
async function replaceFile(path: string, text: string): Promise<void> {
  await Deno.writeTextFile(`${path}.tmp`, text);
  await Deno.rename(`${path}.tmp`, path);
}

describe("watchLocalRecords", () => {
  let dir: string;
  const open: LocalRecordsWatch[] = [];

  beforeEach(async () => {
    dir = await Deno.makeTempDir({ prefix: "dotbridge-local-" });
  });

  afterEach(async () => {
    for (const w of open.splice(0)) w.close();
    await Deno.remove(dir, { recursive: true });
  });

  function watch(options: Omit<Parameters<typeof watchLocalRecords>[0], "debounceMs">) {
    const w = watchLocalRecords({ debounceMs: 50, ...options });
    open.push(w);
    return w;
  }

  it("loads a hosts file and a zone file, choosing the format by extension", async () => {
    await Deno.writeTextFile(`${dir}/lan.hosts`, "192.168.1.10 nas.lan\n");
    await Deno.writeTextFile(`${dir}/home.zone`, "$ORIGIN home.arpa.\nnas A 192.168.1.11\n");
    const { logger, lines } = recordingLogger();
    const hosts = watch({ path: `${dir}/lan.hosts`, logger, watch: false });
    const zone = watch({ path: `${dir}/home.zone`, logger, watch: false });
    expect(addressesOf(hosts.current(), "nas.lan")).toEqual(["192.168.1.10"]);
    expect(addressesOf(zone.current(), "nas.home.arpa")).toEqual(["192.168.1.11"]);
    expect(lines.filter((l) => l.msg === "local records loaded")).toHaveLength(2);
  });

  it("passes the set options on: authoritative zones and default TTL", async () => {
    await Deno.writeTextFile(`${dir}/home.zone`, "$ORIGIN home.arpa.\nnas A 192.168.1.11\n");
    const w = watch({
      path: `${dir}/home.zone`,
      authoritativeZones: ["home.arpa"],
      defaultTtl: 77,
      watch: false,
    });
    const wire = w.current().answer(query("gone.home.arpa"))!.wire;
    expect(wire[3] & 0x0f).toBe(Rcode.NXDOMAIN);
    const nx = dnsPacket.decode(Buffer.from(wire));
    expect((nx.authorities![0] as { ttl: number }).ttl).toBe(77);
  });

  it("fails the first load with an error naming the file and the line", async () => {
    const path = `${dir}/bad.zone`;
    await Deno.writeTextFile(path, "$ORIGIN x.\n\nh AAAA 2001:db8::zz\n");
    expect(() => watch({ path })).toThrow(`local records ${path}: line 3: bad AAAA address`);
    expect(() => watch({ path: `${dir}/missing.hosts` })).toThrow(
      `local records ${dir}/missing.hosts:`,
    );
  });

  it("reloads when the file changes", async () => {
    const path = `${dir}/lan.hosts`;
    await Deno.writeTextFile(path, "192.168.1.10 nas.lan\n");
    const changes: LocalRecords[] = [];
    const w = watch({ path, onChange: (r) => changes.push(r) });
    await Deno.writeTextFile(path, "192.168.1.20 nas.lan\n192.168.1.21 new.lan\n");
    await eventually(
      () => addressesOf(w.current(), "new.lan")?.[0] === "192.168.1.21",
      "the edit to be loaded",
    );
    expect(addressesOf(w.current(), "nas.lan")).toEqual(["192.168.1.20"]);
    expect(changes.at(-1)).toBe(w.current());
  });

  it("keeps the old set on a broken edit, and takes the fixed file after", async () => {
    const path = `${dir}/home.zone`;
    await Deno.writeTextFile(path, "nas.home.arpa. A 192.168.1.10\n");
    const { logger, lines } = recordingLogger();
    const changes: LocalRecords[] = [];
    const w = watch({ path, logger, onChange: (r) => changes.push(r) });
    const before = w.current();
    await replaceFile(path, "nas.home.arpa. A 192.168.1.10\nbroken.home.arpa. AAAA nope\n");
    await eventually(() => lines.some((l) => l.level === "error"), "the refusal to be logged");
    const refusal = lines.find((l) => l.level === "error")!;
    expect(refusal.msg).toBe("local records reload refused, keeping the old set");
    expect(refusal.fields?.error).toBe('line 2: bad AAAA address "nope"');
    expect(w.current()).toBe(before);
    expect(addressesOf(w.current(), "nas.home.arpa")).toEqual(["192.168.1.10"]);
    expect(changes).toEqual([]);

    await replaceFile(path, "nas.home.arpa. A 192.168.1.99\n");
    await eventually(() => changes.length === 1, "the fixed file to be loaded");
    expect(addressesOf(w.current(), "nas.home.arpa")).toEqual(["192.168.1.99"]);
  });

  it("reload() reports whether a new set was installed", async () => {
    const path = `${dir}/lan.hosts`;
    await Deno.writeTextFile(path, "10.0.0.1 a.lan\n");
    const w = watch({ path, watch: false });
    expect(await w.reload()).toBe(false); // unchanged
    await Deno.writeTextFile(path, "10.0.0.2 a.lan\n");
    expect(await w.reload()).toBe(true);
    expect(addressesOf(w.current(), "a.lan")).toEqual(["10.0.0.2"]);
    await Deno.writeTextFile(path, "10.0.0.300 a.lan\n");
    expect(await w.reload()).toBe(false);
    await Deno.remove(path);
    expect(await w.reload()).toBe(false);
    expect(addressesOf(w.current(), "a.lan")).toEqual(["10.0.0.2"]);
  });

  it("stops reloading once closed", async () => {
    const path = `${dir}/lan.hosts`;
    await Deno.writeTextFile(path, "10.0.0.1 a.lan\n");
    const changes: LocalRecords[] = [];
    const w = watch({ path, onChange: (r) => changes.push(r) });
    w.close();
    await Deno.writeTextFile(path, "10.0.0.2 a.lan\n");
    await new Promise((r) => setTimeout(r, 300));
    expect(changes).toEqual([]);
    expect(addressesOf(w.current(), "a.lan")).toEqual(["10.0.0.1"]);
  });
});
