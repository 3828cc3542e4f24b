import { afterAll, beforeAll, describe, expect, it } from "vitest";
import dnsPacket from "dns-packet";
import { Buffer } from "node:buffer";
import { parseConfig } from "../../src/config/parse.ts";
import { type Bridge, startBridge } from "../../src/deno/bridge.ts";
import { createLogger } from "../../src/log/mod.ts";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import { buildQuery, connectDot, edeCode, idOf, rcodeOf } from "../support/dot_client.ts";
import { connectDoq } from "../support/doq_client.ts";
import { type ListServer, startListServer } from "../support/list_server.ts";
import { testPki } from "../support/pki.ts";

const ADS = `! Title: ads (Adblock syntax)
||ads.example.test^
||tracker.example.test^
@@||fine.tracker.example.test^
||noisy.example.test^$third-party
`;
const HOSTS = `# hosts syntax
127.0.0.1 localhost
0.0.0.0 telemetry.example.test
0.0.0.0 pixel.example.test
`;
const ALLOW = "ok.ads.example.test\n";
const KIDS = "games.example.test\n*.video.example.test\n";

/**
 * A household: two public-format lists by URL (Adblock and hosts) and an allowlist file for
 * everyone; `kids` adds its own file list and gets 0.0.0.0 instead of NXDOMAIN; `work` filters
 * nothing. The tenant is chosen by the EDNS option on DoT, by the path on DoH.
 */
describe("blocklists through the running bridge", () => {
  let upstream: LocalDohUpstream;
  let lists: ListServer;
  let bridge: Bridge;
  let dir: string;
  let caPem: string;
  let http: Deno.HttpClient;
  const logs: string[] = [];

  const reached = (name: string) => upstream.requests.filter((r) => r.name === name).length;

  beforeAll(async () => {
    const pki = await testPki();
    caPem = pki.ca.certPem;
    upstream = await startDohUpstream(pki);
    lists = await startListServer();
    lists.lists.set("/ads.txt", { text: ADS });
    lists.lists.set("/hosts", { text: HOSTS });
    dir = await Deno.makeTempDir({ prefix: "dotbridge-filter-" });
    await Deno.writeTextFile(`${dir}/cert.pem`, pki.server.chainPem);
    await Deno.writeTextFile(`${dir}/key.pem`, pki.server.keyPem);
    await Deno.writeTextFile(`${dir}/ca.pem`, caPem);
    await Deno.writeTextFile(`${dir}/allow.txt`, ALLOW);
    await Deno.writeTextFile(`${dir}/kids.txt`, KIDS);
    await Deno.writeTextFile(
      `${dir}/tenants.json`,
      JSON.stringify({
        tenants: {
          kids: {
            upstream: [upstream.url],
            blocklist: [`${lists.origin}/ads.txt`, `${dir}/kids.txt`],
            "block-response": "null",
            "block-ttl": "5m",
          },
          work: { upstream: [upstream.url], blocklist: [] },
        },
      }),
    );
    const parsed = parseConfig({
      args: [
        "--listen=127.0.0.1:0",
        "--http-listen=127.0.0.1:0",
        "--doq-listen=127.0.0.1:0",
        `--cert=${dir}/cert.pem`,
        `--key=${dir}/key.pem`,
        `--upstream-ca=${dir}/ca.pem`,
        `--upstream=${upstream.url}`,
        `--tenants=${dir}/tenants.json`,
        `--state-dir=${dir}/state`,
        `--blocklist=${lists.origin}/ads.txt`,
        `--blocklist=${lists.origin}/hosts`,
        `--allowlist=${dir}/allow.txt`,
      ],
    });
    if (parsed.help) throw new Error("help");
    bridge = await startBridge(parsed.config, {
      logger: createLogger({ level: "debug", sink: (l) => logs.push(l) }),
      sighup: false,
    });
    http = Deno.createHttpClient({ caCerts: [caPem] });
  });

  afterAll(async () => {
    http?.close();
    await bridge?.shutdown();
    await upstream?.close();
    await lists?.close();
    if (dir) await Deno.remove(dir, { recursive: true });
  });

  async function dot(name: string, tenant?: string, type: "A" | "AAAA" = "A") {
    const client = await connectDot({ port: bridge.dot.addr.port, caCerts: [caPem] });
    try {
      const options = tenant ? [{ code: 65011, data: new TextEncoder().encode(tenant) }] : [];
      const q = buildQuery(name, { id: 9, type, edns: true, options });
      await client.send(q);
      return await client.waitFor(idOf(q));
    } finally {
      client.close();
    }
  }

  interface Rec {
    type: string;
    ttl?: number;
    data?: unknown;
  }
  const decoded = (wire: Uint8Array) => {
    const p = dnsPacket.decode(Buffer.from(wire));
    return { answers: p.answers as Rec[] | undefined, authorities: p.authorities as Rec[] };
  };

  it("loads each list once, though the global policy and kids both name the Adblock one", () => {
    expect(lists.requests.filter((r) => r.path === "/ads.txt")).toHaveLength(1);
    const loaded = logs.filter((l) => l.includes("filter list downloaded"));
    expect(loaded).toHaveLength(2);
    expect(logs.find((l) => l.includes("/ads.txt") && l.includes("downloaded"))).toMatch(
      /entries=3 skipped=1 modifiers=1/,
    );
  });

  it("answers a listed name and its subdomains NXDOMAIN with EDE 15, without the upstream", async () => {
    for (const name of ["ads.example.test", "x.y.ads.example.test", "pixel.example.test"]) {
      const answer = await dot(name);
      expect(rcodeOf(answer), name).toBe(3);
      expect(edeCode(answer)).toBe(15);
      const soa = decoded(answer).authorities?.[0];
      expect(soa?.type).toBe("SOA");
      expect(soa?.ttl).toBe(60);
      expect(reached(name)).toBe(0);
    }
  });

  it("lets the allowlist and the list's own exception win", async () => {
    for (const name of ["ok.ads.example.test", "fine.tracker.example.test"]) {
      const answer = await dot(name);
      expect(rcodeOf(answer), name).toBe(0);
      expect(edeCode(answer)).toBe(undefined);
      expect(reached(name)).toBe(1);
    }
    expect(rcodeOf(await dot("noisy.example.test"))).toBe(0); // $third-party: skipped
    expect(rcodeOf(await dot("localhost.example.test"))).toBe(0);
  });

  it("blocks an upstream answer whose CNAME chain passes through a blocked name", async () => {
    // via-via-tracker.example.test → via-tracker.example.test → tracker.example.test → A
    const answer = await dot("via-via-tracker.example.test");
    expect(rcodeOf(answer)).toBe(3);
    expect(edeCode(answer)).toBe(15);
    expect(reached("via-via-tracker.example.test")).toBe(1);
    const plain = await dot("via-plain.example.test");
    expect(decoded(plain).answers?.map((a) => a.type)).toEqual(["CNAME", "A"]);
  });

  it("blocks over DoH and DoQ as well", async () => {
    const url = `https://localhost:${bridge.doh!.addr.port}/dns-query`;
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/dns-message" },
      body: buildQuery("telemetry.example.test", { id: 0, edns: true }).slice(),
      client: http,
    });
    const body = new Uint8Array(await res.arrayBuffer());
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("max-age=60");
    expect(rcodeOf(body)).toBe(3);
    expect(edeCode(body)).toBe(15);
    const doq = await connectDoq({ port: bridge.doq!.addr.port, caCerts: [caPem] });
    try {
      const answer = await doq.query(buildQuery("ads.example.test", { edns: true }));
      expect(rcodeOf(answer)).toBe(3);
      expect(edeCode(answer)).toBe(15);
    } finally {
      doq.close();
    }
  });

  it("gives each tenant its own lists and block response", async () => {
    const a = await dot("games.example.test", "kids");
    expect(rcodeOf(a)).toBe(0);
    expect(decoded(a).answers).toMatchObject([{ type: "A", data: "0.0.0.0", ttl: 300 }]);
    expect(edeCode(a)).toBe(15);
    const aaaa = await dot("x.video.example.test", "kids", "AAAA");
    expect(decoded(aaaa).answers).toMatchObject([{ type: "AAAA", data: "::" }]);
    // kids names the shared Adblock list but not the hosts list, and keeps the global
    // allowlist (it names none of its own).
    expect(decoded(await dot("ads.example.test", "kids")).answers?.[0]?.data).toBe("0.0.0.0");
    expect(rcodeOf(await dot("pixel.example.test", "kids"))).toBe(0);
    expect(reached("pixel.example.test")).toBe(1);
    const allowed = decoded(await dot("ok.ads.example.test", "kids"));
    expect(allowed.answers?.[0]?.data).toMatch(/^192\.0\.2\./);
    // The global policy does not block kids' names; work blocks nothing.
    expect(rcodeOf(await dot("games.example.test"))).toBe(0);
    const work = await dot("ads.example.test", "work");
    expect(rcodeOf(work)).toBe(0);
    expect(decoded(work).answers?.[0]?.data).toMatch(/^192\.0\.2\./);
    // work's cached answer is not the global policy's.
    expect(rcodeOf(await dot("ads.example.test"))).toBe(3);
  });

  it("counts blocked queries by tenant and list, and shows the lists' sizes", () => {
    const text = bridge.metrics.registry.render();
    const ads = `127.0.0.1:${new URL(lists.origin).port}/ads.txt`;
    expect(text).toMatch(
      new RegExp(`dotbridge_blocked_total\\{tenant="",list="${ads}"\\} [1-9]`),
    );
    expect(text).toMatch(/dotbridge_blocked_total\{tenant="kids",list="[^"]*kids\.txt"\} 2/);
    expect(text).toContain(`dotbridge_filter_list_entries{list="${ads}"} 3`);
    expect(text).toContain(`dotbridge_filter_list_skipped_lines{list="${ads}"} 1`);
    expect(text).toMatch(
      /dotbridge_filter_list_last_refresh_timestamp_seconds\{list="[^"]+"\} 1\d{9}/,
    );
    // No query names in the log (query logging is off).
    expect(logs.join("\n")).not.toContain("games.example.test");
  });

  it("swaps a refreshed list in", async () => {
    lists.lists.set("/hosts", { text: HOSTS + "0.0.0.0 fresh.example.test\n" });
    expect(await bridge.filterLists.refresh(`${lists.origin}/hosts`)).toBe(true);
    expect(rcodeOf(await dot("fresh.example.test"))).toBe(3);
  });
});
