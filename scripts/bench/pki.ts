/**
 * The benchmark's throwaway PKI: a test CA and a leaf for localhost / 127.0.0.1 / ::1, shared by
 * the upstream, the bridge and the peer. `--cert KIND` picks the leaf's key and the chain the
 * servers send ({@linkcode CERT_KINDS}); `ecdsa`, the default, comes from `src/pki` (what
 * `--dev-cert` makes), the others from `openssl` (RSA keys and intermediates, which `src/pki`
 * does not make; the bench needs openssl nowhere else, and the command line is what an operator
 * would run).
 *
 * @module
 */
import { createCertificateAuthority, issueCertificate, spkiPinFromPem } from "../../src/pki/mod.ts";

/** Paths of the PEM files written by {@linkcode writeBenchPki}. */
export interface BenchPki {
  /** The root CA certificate: what clients trust. */
  caPath: string;
  /** What the servers present: the leaf and, by kind, an intermediate and/or the root. */
  certPath: string;
  /** The leaf's private key (PKCS#8). */
  keyPath: string;
  /** The CA certificate text (for Deno clients' `caCerts`). */
  caPem: string;
  /** RFC 7858 SPKI pin of the leaf. */
  spkiPin: string;
}

/** The key of one certificate, as `openssl genpkey` options. */
type KeyKind = "p256" | "rsa2048" | "rsa4096";

/** What a `--cert` kind serves: the leaf's key, and what else is in the chain sent. */
export interface CertShape {
  /** The key of the leaf and of the CAs above it. */
  key: KeyKind;
  /** The leaf is signed by an intermediate CA (sent), itself signed by the root. */
  intermediate: boolean;
  /** The root CA certificate is sent too (needless: clients must already trust it). */
  sendsRoot: boolean;
}

/**
 * `--cert` kinds. `ecdsa` (the default) is what the bridge's `--dev-cert` serves: a P-256 leaf
 * and its root. The `-chain` kinds are the shape a public CA gives (leaf + intermediate, root
 * not sent: Let's Encrypt's `fullchain.pem`).
 */
export const CERT_KINDS = {
  "ecdsa": { key: "p256", intermediate: false, sendsRoot: true },
  "ecdsa-leaf-only": { key: "p256", intermediate: false, sendsRoot: false },
  "ecdsa-chain": { key: "p256", intermediate: true, sendsRoot: false },
  "rsa2048": { key: "rsa2048", intermediate: false, sendsRoot: true },
  "rsa2048-chain": { key: "rsa2048", intermediate: true, sendsRoot: false },
  "rsa4096": { key: "rsa4096", intermediate: false, sendsRoot: true },
} as const satisfies Record<string, CertShape>;
/** One `--cert` kind. */
export type CertKind = keyof typeof CERT_KINDS;

const GENPKEY: Record<KeyKind, string[]> = {
  p256: ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
  rsa2048: ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
  rsa4096: ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:4096"],
};

/** Runs openssl in `dir`. @throws {Error} with its stderr when it fails */
async function openssl(dir: string, args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd: dir, stdout: "null", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(
      `openssl ${args.slice(0, 2).join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
}

/** Writes `name.key` and a certificate `name.pem` signed by `issuer` (or self-signed: a root). */
async function certificate(
  dir: string,
  name: string,
  key: KeyKind,
  extensions: string[],
  issuer?: string,
): Promise<void> {
  await openssl(dir, ["genpkey", ...GENPKEY[key], "-out", `${name}.key`]);
  const subj = ["-subj", `/CN=dotbridge bench ${name}`];
  if (!issuer) {
    const ext = extensions.flatMap((e) => ["-addext", e]);
    await openssl(dir, [
      "req",
      "-x509",
      "-new",
      "-key",
      `${name}.key`,
      ...subj,
      ...ext,
      "-days",
      "2",
      "-out",
      `${name}.pem`,
    ]);
    return;
  }
  await openssl(dir, ["req", "-new", "-key", `${name}.key`, ...subj, "-out", `${name}.csr`]);
  Deno.writeTextFileSync(`${dir}/${name}.ext`, extensions.join("\n") + "\n");
  await openssl(dir, [
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    `${issuer}.pem`,
    "-CAkey",
    `${issuer}.key`,
    "-set_serial",
    String(Date.now()),
    "-days",
    "1",
    "-extfile",
    `${name}.ext`,
    "-out",
    `${name}.pem`,
  ]);
}

const CA_EXT = ["basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign"];
const LEAF_EXT = [
  "basicConstraints=critical,CA:FALSE",
  "keyUsage=critical,digitalSignature,keyEncipherment",
  "extendedKeyUsage=serverAuth",
  "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1",
];

/** The PEM texts of a `shape` made with openssl in `dir`: the root, the chain sent, the key. */
async function opensslPki(
  dir: string,
  shape: CertShape,
): Promise<{ caPem: string; chainPem: string; keyPem: string }> {
  await certificate(dir, "root", shape.key, CA_EXT);
  if (shape.intermediate) {
    await certificate(dir, "intermediate", shape.key, [
      "basicConstraints=critical,CA:TRUE,pathlen:0",
      CA_EXT[1],
    ], "root");
  }
  await certificate(dir, "leaf", shape.key, LEAF_EXT, shape.intermediate ? "intermediate" : "root");
  const read = (name: string) => Deno.readTextFileSync(`${dir}/${name}`);
  const caPem = read("root.pem");
  return {
    caPem,
    chainPem: read("leaf.pem") + (shape.intermediate ? read("intermediate.pem") : "") +
      (shape.sendsRoot ? caPem : ""),
    keyPem: read("leaf.key"),
  };
}

/**
 * Creates a CA and a leaf of `kind` (valid for a day or two) and writes them to `dir`
 * (`ca.pem`, `chain.pem`, `key.pem`; the openssl kinds' work files under `dir/pki-KIND/`).
 */
export async function writeBenchPki(dir: string, kind: CertKind = "ecdsa"): Promise<BenchPki> {
  let made: { caPem: string; chainPem: string; keyPem: string };
  if (kind === "ecdsa") {
    const ca = await createCertificateAuthority({ commonName: "dotbridge bench CA", days: 2 });
    const leaf = await issueCertificate(ca, {
      dnsNames: ["localhost"],
      ipAddresses: ["127.0.0.1", "::1"],
      days: 1,
    });
    made = { caPem: ca.certPem, chainPem: leaf.chainPem, keyPem: leaf.keyPem };
  } else {
    const work = `${dir}/pki-${kind}`;
    Deno.mkdirSync(work, { recursive: true });
    made = await opensslPki(work, CERT_KINDS[kind]);
  }
  const pki: BenchPki = {
    caPath: `${dir}/ca.pem`,
    certPath: `${dir}/chain.pem`,
    keyPath: `${dir}/key.pem`,
    caPem: made.caPem,
    spkiPin: await spkiPinFromPem(made.chainPem),
  };
  Deno.writeTextFileSync(pki.caPath, made.caPem);
  Deno.writeTextFileSync(pki.certPath, made.chainPem);
  Deno.writeTextFileSync(pki.keyPath, made.keyPem, { mode: 0o600 });
  return pki;
}

if (import.meta.main) {
  const [dir, kind = "ecdsa"] = Deno.args;
  if (!dir || !Object.hasOwn(CERT_KINDS, kind)) {
    console.error(`usage: pki.ts DIR [${Object.keys(CERT_KINDS).join("|")}]`);
    Deno.exit(2);
  }
  const pki = await writeBenchPki(dir, kind as CertKind);
  console.log(`${pki.caPath} ${pki.certPath} ${pki.keyPath}`);
}
