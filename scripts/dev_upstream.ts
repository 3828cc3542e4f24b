/**
 * Starts the test zone's DoH upstream on loopback, for trying the bridge without internet:
 *
 * ```sh
 * deno task dev:upstream --ca-out /tmp/upstream-ca.pem   # prints the URL
 * deno task serve --upstream <URL> --upstream-ca /tmp/upstream-ca.pem
 * kdig @127.0.0.1 -p 8853 +tls-ca=.dotbridge/dev-ca.pem +tls-hostname=localhost www.example.test
 * ```
 *
 * Its CA and certificate are kept in `--state-dir` (default `.dotbridge/dev-upstream`) and used
 * again on the next run, so a bridge that trusts the CA written to `--ca-out` keeps trusting it;
 * `--port` (default: any free one) keeps the URL too.
 *
 * @module
 */
import { startDohUpstream } from "../test/support/doh_upstream.ts";
import { testPki } from "../test/support/pki.ts";
import type { CertificateAuthority, IssuedCertificate } from "../src/pki/mod.ts";

/** What is kept between runs: the PEM texts the upstream serves with. */
interface Kept {
  caPem: string;
  chainPem: string;
  keyPem: string;
}

function flag(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && Deno.args[i + 1] ? Deno.args[i + 1] : fallback;
}

async function readKept(dir: string): Promise<Kept | undefined> {
  try {
    const [caPem, chainPem, keyPem] = await Promise.all(
      ["ca.pem", "chain.pem", "key.pem"].map((f) => Deno.readTextFile(`${dir}/${f}`)),
    );
    return { caPem, chainPem, keyPem };
  } catch {
    return undefined;
  }
}

const stateDir = flag("state-dir", ".dotbridge/dev-upstream");
const caOut = flag("ca-out", "upstream-ca.pem");
const port = Number(flag("port", "0"));
let kept = await readKept(stateDir);
if (!kept) {
  const pki = await testPki();
  kept = { caPem: pki.ca.certPem, chainPem: pki.server.chainPem, keyPem: pki.server.keyPem };
  await Deno.mkdir(stateDir, { recursive: true });
  await Deno.writeTextFile(`${stateDir}/ca.pem`, kept.caPem);
  await Deno.writeTextFile(`${stateDir}/chain.pem`, kept.chainPem);
  await Deno.writeTextFile(`${stateDir}/key.pem`, kept.keyPem, { mode: 0o600 });
}
await Deno.writeTextFile(caOut, kept.caPem);
const upstream = await startDohUpstream(
  {
    ca: { certPem: kept.caPem } as CertificateAuthority,
    server: { chainPem: kept.chainPem, keyPem: kept.keyPem } as IssuedCertificate,
  },
  "/dns-query",
  { port },
);
console.log(upstream.url);
console.error(`dev upstream: CA in ${caOut} (kept in ${stateDir}); Ctrl-C to stop`);
Deno.addSignalListener("SIGINT", () => upstream.close().then(() => Deno.exit(0)));
