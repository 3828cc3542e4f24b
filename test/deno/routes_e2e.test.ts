/**
 * Routes by name end to end: a bridge whose default upstream is dead answers a routed zone
 * (`lan.`) over `udp://` and a routed reverse zone (`168.192.in-addr.arpa.`) over `tcp://`, both
 * from a real knotd, and fails every other name with SERVFAIL; the same through a tenant's own
 * routes. Queries come over the plain DNS face (dig) and over DoT.
 *
 * @module
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installed, runClient } from "../support/clients.ts";
import { aRecords, rcodeOf, startTestBridge, type TestBridge } from "../support/dot_client.ts";
import { HAVE_KNOT, startKnot, type TestKnot } from "../support/knot.ts";
import { type TestPki, testPki } from "../support/pki.ts";
import { buildQuery } from "../support/dot_client.ts";

const CI = Deno.env.get("CI") === "true";
const HAVE_DIG = await installed("dig", "-v");

const LAN_ZONE = `$ORIGIN lan.
$TTL 300
@ SOA ns hostmaster 1 3600 600 86400 300
@ NS ns
ns A 192.168.1.1
router A 192.168.1.1
nas A 192.168.1.20
printer A 192.168.1.30
`;

const REVERSE_ZONE = `$ORIGIN 168.192.in-addr.arpa.
$TTL 300
@ SOA ns.lan. hostmaster.lan. 1 3600 600 86400 300
@ NS ns.lan.
1.1 PTR router.lan.
20.1 PTR nas.lan.
`;

describe.skipIf((!HAVE_KNOT || !HAVE_DIG) && !CI)(
  "routes by name to knotd, default upstream dead",
  () => {
    let pki: TestPki;
    let knot: TestKnot;
    let tmp: string;

    beforeAll(async () => {
      if (!HAVE_KNOT || !HAVE_DIG) {
        throw new Error("knotd and dig are needed; CI=true requires them");
      }
      pki = await testPki();
      knot = await startKnot({ "lan.": LAN_ZONE, "168.192.in-addr.arpa.": REVERSE_ZONE });
      tmp = await Deno.makeTempDir({ prefix: "dotbridge-routes-" });
    });

    afterAll(async () => {
      await knot?.close();
      if (tmp) await Deno.remove(tmp, { recursive: true });
    });

    async function withBridge(
      args: string[],
      body: (b: TestBridge, dnsPort: number) => Promise<void>,
    ) {
      // Nothing listens on port 1: the default upstream fails at once.
      const b = await startTestBridge(pki, "https://127.0.0.1:1/dns-query", [
        "--dns-listen",
        "127.0.0.1:0",
        "--attempt-timeout",
        "1s",
        "--query-timeout",
        "2s",
        ...args,
      ]);
      try {
        await body(b, b.bridge.dns!.addr.port);
      } finally {
        await b.close();
      }
    }

    async function dig(port: number, ...args: string[]) {
      const out = await runClient("dig", [
        "@127.0.0.1",
        "-p",
        String(port),
        "+time=3",
        "+tries=1",
        ...args,
      ]);
      expect(out.code, out.stderr).toBe(0);
      return out.stdout;
    }

    const routes = () => [
      "--route",
      `lan=udp://127.0.0.1:${knot.port}`,
      "--route",
      `168.192.in-addr.arpa=tcp://127.0.0.1:${knot.port}`,
    ];

    it("answers lan. over udp:// and the reverse zone over tcp://, and fails other names", async () => {
      await withBridge(routes(), async (b, port) => {
        const nas = await dig(port, "nas.lan", "A");
        expect(nas).toContain("status: NOERROR");
        expect(nas).toMatch(/nas\.lan\.\s+300\s+IN\s+A\s+192\.168\.1\.20/);
        const ptr = await dig(port, "-x", "192.168.1.20");
        expect(ptr).toContain("status: NOERROR");
        expect(ptr).toMatch(/20\.1\.168\.192\.in-addr\.arpa\.\s+300\s+IN\s+PTR\s+nas\.lan\./);
        const missing = await dig(port, "nothere.lan", "A");
        expect(missing).toContain("status: NXDOMAIN"); // knotd's own answer, not a failure
        const other = await dig(port, "example.com", "A");
        expect(other).toContain("status: SERVFAIL");
        // And over DoT, the same routes.
        const client = await b.connect();
        try {
          await client.send(buildQuery("printer.lan", { id: 9 }));
          const answer = await client.next();
          expect(aRecords(answer)).toEqual(["192.168.1.30"]);
          await client.send(buildQuery("example.org", { id: 10 }));
          expect(rcodeOf(await client.next())).toBe(2);
        } finally {
          client.close();
        }
        // Every route's upstream is in the metrics, by its public name.
        const metrics = b.bridge.metrics.registry.render();
        expect(metrics).toContain(
          `dotbridge_upstream_queries_total{upstream="udp://127.0.0.1:${knot.port}",outcome="ok"}`,
        );
        expect(metrics).toContain(
          `dotbridge_upstream_queries_total{upstream="tcp://127.0.0.1:${knot.port}",outcome="ok"}`,
        );
      });
    });

    it("routes a tenant's names by the tenant's own routes", async () => {
      const tenants = `${tmp}/tenants.json`;
      await Deno.writeTextFile(
        tenants,
        JSON.stringify({
          default: "home",
          tenants: {
            home: {
              upstream: "https://127.0.0.1:1/dns-query",
              routes: { lan: [`tcp://127.0.0.1:${knot.port}`] },
              allow: ["127.0.0.0/8"],
            },
          },
        }),
      );
      await withBridge(["--tenants", tenants], async (_b, port) => {
        const nas = await dig(port, "nas.lan", "A");
        expect(nas).toMatch(/nas\.lan\.\s+300\s+IN\s+A\s+192\.168\.1\.20/);
        expect(await dig(port, "example.com")).toContain("status: SERVFAIL");
      });
    });
  },
);
