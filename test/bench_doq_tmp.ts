// Throwaway: cached saturation on one connection per face, DoQ vs DoT, same bridge, same run.
import { testPki } from "./support/pki.ts";
import { startDohUpstream } from "./support/doh_upstream.ts";
import { buildQuery, startTestBridge } from "./support/dot_client.ts";
import { connectDoq } from "./support/doq_client.ts";
const pki = await testPki();
const up = await startDohUpstream(pki);
const b = await startTestBridge(pki, up, ["--doq-listen", "127.0.0.1:0"]);
const names = Array.from({ length: 50 }, (_, i) => `b${i}.bench.example.test`);
const wires = names.map((n) => buildQuery(n));
const doq = await connectDoq({ port: b.bridge.doq!.addr.port, caCerts: [pki.ca.certPem] });
const dot = await b.connect();
await Promise.all(wires.map((w) => doq.query(w))); // warm the cache
async function run(
  label: string,
  send: (w: Uint8Array) => Promise<unknown>,
  conc: number,
  ms: number,
) {
  let n = 0;
  const end = performance.now() + ms;
  await Promise.all(Array.from({ length: conc }, async (_, k) => {
    let i = k;
    while (performance.now() < end) {
      await send(wires[i++ % wires.length]);
      n++;
    }
  }));
  console.log(`${label}: ${Math.round(n / (ms / 1000))} q/s (concurrency ${conc}, ${ms} ms)`);
}
let nextId = 1;
const dotSend = async (w: Uint8Array) => {
  const id = nextId = (nextId % 65535) + 1;
  const q = w.slice();
  q[0] = id >> 8;
  q[1] = id & 0xff;
  await dot.send(q);
  return dot.waitFor(id);
};
for (const conc of [1, 50]) {
  await run("doq", (w) => doq.query(w), conc, 3000);
  await run("dot", dotSend, conc, 3000);
}
doq.close();
dot.close();
await b.close();
await up.close();
