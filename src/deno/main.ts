/**
 * `deno task serve`: the command-line entry on Deno.
 *
 * Exit codes: 0 after a clean shutdown (SIGINT/SIGTERM), 2 for a configuration problem (one line
 * on stderr naming the key), 1 for anything unexpected.
 *
 * @module
 */
import { ConfigError, helpText, parseConfig } from "../config/parse.ts";
import { startBridge } from "./bridge.ts";

function fail(message: string, code: number): never {
  console.error(`dotbridge: ${message}`);
  Deno.exit(code);
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseConfig({
      args: Deno.args,
      env: Deno.env.toObject(),
      readTextFile: (path) => Deno.readTextFileSync(path),
    });
  } catch (e) {
    if (e instanceof ConfigError) fail(e.message, 2);
    throw e;
  }
  if (parsed.help) {
    console.log(helpText("deno task serve"));
    return;
  }
  const config = parsed.config;
  let bridge;
  try {
    bridge = await startBridge(config);
  } catch (e) {
    if (e instanceof ConfigError) fail(e.message, 2);
    throw e;
  }

  const { hostname, port } = bridge.dot.addr;
  const cert = bridge.certificate;
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  const lines = [
    `dotbridge: DNS-over-TLS on ${host}:${port} -> ${config.upstreams.length} upstream(s) (${config.upstreamStrategy})`,
  ];
  if (cert.development) {
    lines.push(
      `  development certificate${cert.created ? " (new)" : ""}; trust this CA: ${cert.trustPath}`,
    );
  } else {
    lines.push(`  certificate: ${cert.trustPath}`);
  }
  lines.push(`  SPKI pin (sha256): ${cert.spkiPin}`);
  const tlsHost = cert.development ? "localhost" : "<your-hostname>";
  const dial = hostname === "0.0.0.0" || hostname === "::" ? "127.0.0.1" : hostname;
  lines.push(
    `  try: kdig -d @${dial} -p ${port} +tls-ca=${cert.trustPath} +tls-hostname=${tlsHost} example.com`,
    `   or: kdig @${dial} -p ${port} +tls-pin=${cert.spkiPin} example.com`,
  );
  if (bridge.doh) {
    const doh = bridge.doh.addr;
    const dohDial = doh.hostname === "0.0.0.0" || doh.hostname === "::"
      ? "127.0.0.1"
      : doh.hostname;
    const bracket = (h: string) => (h.includes(":") ? `[${h}]` : h);
    const boundHost = bracket(doh.hostname);
    if (bridge.doh.tls) {
      lines.push(
        `dotbridge: DNS-over-HTTPS on https://${boundHost}:${doh.port}/dns-query`,
        `  try: kdig @${dohDial} -p ${doh.port} +https +tls-ca=${cert.trustPath} +tls-hostname=${tlsHost} example.com`,
      );
      if (config.jsonApi) {
        lines.push(
          `   or: curl --cacert ${cert.trustPath} -H 'accept: application/dns-json' 'https://${tlsHost}:${doh.port}/dns-query?name=example.com'`,
        );
      }
    } else {
      lines.push(
        `dotbridge: DNS-over-HTTPS on http://${boundHost}:${doh.port}/dns-query (plain HTTP: put a TLS proxy in front)`,
      );
      if (config.jsonApi) {
        lines.push(
          `  try: curl -H 'accept: application/dns-json' 'http://${
            bracket(dohDial)
          }:${doh.port}/dns-query?name=example.com'`,
        );
      }
    }
  }
  console.log(lines.join("\n"));

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.error(`dotbridge: ${signal}: draining (up to ${config.shutdownGraceMs} ms)`);
    await bridge.shutdown();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", () => void stop("SIGINT"));
  Deno.addSignalListener("SIGTERM", () => void stop("SIGTERM"));
}

if (import.meta.main) {
  main().catch((e) => fail(`unexpected error: ${(e as Error)?.stack ?? e}`, 1));
}
