/**
 * Starts the test zone's DoH upstream on loopback, for trying the bridge without internet:
 *
 * ```sh
 * deno run -A scripts/dev_upstream.ts --ca-out /tmp/upstream-ca.pem   # prints the URL
 * deno task serve --upstream <URL> --upstream-ca /tmp/upstream-ca.pem
 * kdig @127.0.0.1 -p 8853 +tls-ca=.dotbridge/dev-ca.pem +tls-hostname=localhost www.example.test
 * ```
 *
 * @module
 */
import { startDohUpstream } from "../test/support/doh_upstream.ts";
import { testPki } from "../test/support/pki.ts";

const i = Deno.args.indexOf("--ca-out");
const caOut = i >= 0 ? Deno.args[i + 1] : "upstream-ca.pem";
const pki = await testPki();
await Deno.writeTextFile(caOut, pki.ca.certPem);
const upstream = await startDohUpstream(pki);
console.log(upstream.url);
console.error(`dev upstream: CA in ${caOut}; Ctrl-C to stop`);
Deno.addSignalListener("SIGINT", () => upstream.close().then(() => Deno.exit(0)));
