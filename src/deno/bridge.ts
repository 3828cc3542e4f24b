/**
 * Wires the runtime-free engine to Deno: certificates, the upstream HTTP client, the DoT
 * listener and the DoH listener. `main.ts` calls this; so do the end-to-end tests.
 *
 * @module
 */
import { type Config, ConfigError } from "../config/parse.ts";
import { createLogger, type Logger } from "../log/mod.ts";
import { createProcessor } from "../resolver/processor.ts";
import type { FetchLike } from "../upstream/doh.ts";
import { ensureDevCertificate } from "./devcert.ts";
import { type DotListener, listenDot } from "./dot_listener.ts";
import { listenDotNative } from "./dot_listener_native.ts";
import { type DohListener, type DohListenerOptions, listenDoh } from "./doh_listener.ts";
import { listenDohNative, type NativeDohListenerOptions } from "./doh_listener_native.ts";
import { createDohApp } from "../http/app.ts";
import { checkCertificatePair } from "./cert_check.ts";
import { createTransports } from "./upstreams.ts";
import { watchCertificate } from "./cert_reload.ts";
import type { QueryObserver } from "../resolver/processor.ts";
import { buildResolver, type Resolver } from "../resolver/build.ts";
import { localRecordsMiddleware } from "../resolver/local_records.ts";
import { type LocalRecordsWatch, watchLocalRecords } from "./local_records_loader.ts";
import { parseTenants, tenantFromServerName, type TenantsConfig } from "../config/tenants.ts";
import { type BridgeMetrics, createBridgeMetrics, rcodeName } from "../metrics/bridge.ts";
import { listenMetrics, type MetricsListener } from "./metrics_listener.ts";

/** The certificate the DoT face serves, and how a client can trust it. */
export interface ServedCertificate {
  cert: string;
  key: string;
  /** Path of the PEM a client should trust: the dev CA, or the configured chain. */
  trustPath: string;
  /** SPKI pin of the leaf (RFC 7858 §4.2). */
  spkiPin: string;
  /** True for the generated development certificate. */
  development: boolean;
  /** True when the development certificate was generated on this start. */
  created: boolean;
}

/** The native DoH listener takes the DoT certificate (config refuses it without TLS). */
function listenNative(
  options: DohListenerOptions & Partial<NativeDohListenerOptions>,
): DohListener {
  if (options.cert === undefined || options.key === undefined) {
    throw new Error("--doh-server native needs TLS (--http-tls)");
  }
  return listenDohNative({ ...options, cert: options.cert, key: options.key });
}

/** A running bridge. */
export interface Bridge {
  readonly dot: DotListener;
  /**
   * Re-reads `--cert`/`--key` and serves them to new connections if they are a valid pair;
   * resolves false (and keeps the old pair) otherwise. File changes and SIGHUP do this too.
   */
  reloadCertificate(reason?: string): Promise<boolean>;
  /** The DoH face; absent when `http-listen` is `off`. */
  readonly doh?: DohListener;
  readonly certificate: ServedCertificate;
  /** Every metric; `metrics.registry.render()` is the /metrics body. */
  readonly metrics: BridgeMetrics;
  /** Where `--metrics-listen` bound, if set. */
  readonly metricsAddr?: { hostname: string; port: number };
  /** Drains and stops everything (bounded by the config's shutdown grace). */
  shutdown(): Promise<void>;
}

/** Extra wiring for {@linkcode startBridge}; tests use it to point at local upstreams. */
export interface BridgeDeps {
  logger?: Logger;
  /** Overrides the HTTP client used for DoH upstreams. */
  fetch?: FetchLike;
  /** Reload the certificate on SIGHUP. Default true; tests running several bridges turn it off. */
  sighup?: boolean;
  /** Bind with SO_REUSEPORT (several threads serving one port). Default false. */
  reusePort?: boolean;
  /** Start `--metrics-listen` here. Default true; threads leave it to the main thread. */
  metricsListener?: boolean;
}

function readFile(key: string, from: string, path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (e) {
    throw new ConfigError(from ?? key, `cannot read "${path}": ${(e as Error).message}`);
  }
}

/** Loads the configured certificate, or makes/loads the development one. */
export async function loadCertificate(config: Config): Promise<ServedCertificate> {
  if (config.certFile && config.keyFile) {
    const cert = readFile("--cert", config.origin.cert, config.certFile);
    const key = readFile("--key", config.origin.key, config.keyFile);
    if (!cert.includes("-----BEGIN CERTIFICATE-----")) {
      throw new ConfigError(config.origin.cert, `"${config.certFile}" holds no PEM certificate`);
    }
    if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key)) {
      throw new ConfigError(config.origin.key, `"${config.keyFile}" holds no PEM private key`);
    }
    let spkiPin: string;
    try {
      spkiPin = checkCertificatePair(cert, key).spkiPin;
    } catch (e) {
      throw new ConfigError(config.origin.cert, `"${config.certFile}": ${(e as Error).message}`);
    }
    return {
      cert,
      key,
      trustPath: config.certFile,
      spkiPin,
      development: false,
      created: false,
    };
  }
  let dev;
  try {
    dev = await ensureDevCertificate(config.stateDir);
  } catch (e) {
    throw new ConfigError(
      config.origin["state-dir"],
      `cannot keep the development certificate in "${config.stateDir}": ${(e as Error).message}`,
    );
  }
  return {
    cert: Deno.readTextFileSync(dev.certPath),
    key: Deno.readTextFileSync(dev.keyPath),
    trustPath: dev.caPath,
    spkiPin: dev.spkiPin,
    development: true,
    created: dev.created,
  };
}

/**
 * Starts the bridge described by `config`.
 *
 * @throws {ConfigError} for unreadable files, a bad certificate, or an address it cannot bind
 */
export async function startBridge(config: Config, deps: BridgeDeps = {}): Promise<Bridge> {
  const logger = deps.logger ??
    createLogger({ level: config.logLevel, format: config.logFormat });
  const certificate = await loadCertificate(config);
  const caPem = config.upstreamCaFile
    ? readFile("--upstream-ca", config.origin["upstream-ca"], config.upstreamCaFile)
    : undefined;
  const http = createTransports({
    caPem,
    fetchFn: deps.fetch,
    logger,
    bootstrap: config.bootstrap,
    transport: config.upstreamTransport,
  });
  let tenants: TenantsConfig | undefined;
  if (config.tenantsFile) {
    tenants = parseTenants(
      readFile("--tenants", config.origin.tenants, config.tenantsFile),
      config.tenantsFile,
    );
  }
  let dot: DotListener | undefined;
  let doh: DohListener | undefined;
  let health: Resolver["health"] = () => [];
  const metrics = createBridgeMetrics({
    connections: () => [[{ face: "dot" }, dot?.connections ?? 0]],
    upstreamUp: () =>
      health().map((h): [{ upstream: string }, number] => [
        { upstream: h.name },
        h.healthy ? 1 : 0,
      ]),
  });
  const recordWatches: LocalRecordsWatch[] = [];
  const localRecords = (path: string) => {
    let watch: LocalRecordsWatch;
    try {
      watch = watchLocalRecords({ path, logger });
    } catch (e) {
      const origin = path === config.localRecords
        ? config.origin["local-records"]
        : `${config.tenantsFile}: "local-records"`;
      throw new ConfigError(origin, (e as Error).message);
    }
    recordWatches.push(watch);
    return localRecordsMiddleware(() => watch.current());
  };
  let resolver: Resolver;
  try {
    resolver = buildResolver(config, {
      upstreamFor: http.upstreamFor,
      logger,
      metrics,
      tenants,
      localRecords,
    });
  } catch (e) {
    for (const w of recordWatches) w.close();
    http.close();
    throw e;
  }
  /** Releases what was started so far, when a later step fails. */
  const release = async () => {
    for (const w of recordWatches) w.close();
    await resolver.close();
    http.close();
  };
  health = () => resolver.health();
  const { handler, acl } = resolver;
  const tenantLabel = (tenant: string | undefined) =>
    tenant === undefined ? "" : resolver.tenantNames.has(tenant) ? tenant : "unknown";
  const accept = acl.open ? undefined : (address: string) => acl.allows(address);
  const observer: QueryObserver = {
    start: (ctx) => metrics.inFlight.add({ face: ctx.face }, 1),
    end: (ctx, rcode, ms) => {
      metrics.inFlight.add({ face: ctx.face }, -1);
      metrics.queries.inc({
        face: ctx.face,
        tenant: tenantLabel(ctx.tenant),
        rcode: rcode < 0 ? "error" : rcodeName(rcode),
      });
      metrics.queryLatency.observe({ face: ctx.face }, ms / 1000);
    },
  };
  const process = createProcessor({
    handler,
    logger,
    logQueries: config.logQueries,
    keepaliveMs: config.idleTimeoutMs,
    observer,
  });

  try {
    // The config refuses --tenant-domain with the native listener (it has no SNI).
    const listen = config.dotServer === "native" ? listenDotNative : listenDot;
    dot = await listen({
      hostname: config.listen.hostname,
      port: config.listen.port,
      cert: certificate.cert,
      key: certificate.key,
      process,
      logger,
      maxConnections: config.maxConnections,
      handshakeTimeoutMs: config.handshakeTimeoutMs,
      idleTimeoutMs: config.idleTimeoutMs,
      frameTimeoutMs: config.frameTimeoutMs,
      maxInFlight: config.maxInFlight,
      maxFrameSize: config.maxFrameSize,
      maxConnectionsPerIp: config.maxConnectionsPerIp,
      accept,
      reusePort: deps.reusePort,
      onEvent: (event) => metrics.connectionEvents.inc({ face: "dot", event }),
      tenantOf: config.tenantDomain
        ? (servername) => tenantFromServerName(servername, config.tenantDomain!)
        : undefined,
    });
  } catch (e) {
    await release();
    const message = (e as Error).message;
    if (/certificate|key|PEM|asn1|decoder/i.test(message)) {
      throw new ConfigError(config.origin.cert, `certificate and key do not load: ${message}`);
    }
    const { hostname, port } = config.listen;
    throw new ConfigError(config.origin.listen, `cannot listen on ${hostname}:${port}: ${message}`);
  }

  if (config.httpListen) {
    const dohProcess = createProcessor({
      handler,
      logger,
      logQueries: config.logQueries,
      observer,
    });
    const app = createDohApp({
      process: dohProcess,
      jsonApi: config.jsonApi,
      logger,
      landing: () => ({ dotPort: dot.addr.port, spkiPin: certificate.spkiPin }),
      health: () => ({ dotConnections: dot!.connections }),
      metrics: config.dohMetrics ? () => metrics.registry.render() : undefined,
    });
    try {
      const listen = config.dohServer === "native" ? listenNative : listenDoh;
      doh = listen({
        hostname: config.httpListen.hostname,
        port: config.httpListen.port,
        cert: config.httpTls ? certificate.cert : undefined,
        key: config.httpTls ? certificate.key : undefined,
        app,
        trustedProxyHeader: config.trustedProxyHeader,
        // Behind a proxy every peer is the proxy: the resolver's ACL (REFUSED) judges the
        // forwarded address instead.
        accept: config.trustedProxyHeader ? undefined : accept,
        // Shared ports: for threads, and so a certificate reload can start the new server
        // before the old one drains.
        reusePort: deps.reusePort || config.httpTls,
        onEvent: (event) => metrics.connectionEvents.inc({ face: "doh", event }),
        fast: { process: dohProcess, path: "/dns-query" },
        logger,
        maxConnections: config.maxConnections,
        maxConnectionsPerIp: config.maxConnectionsPerIp,
        handshakeTimeoutMs: config.handshakeTimeoutMs,
      });
    } catch (e) {
      await dot.shutdown(0);
      await release();
      const { hostname, port } = config.httpListen;
      throw new ConfigError(
        config.origin["http-listen"],
        `cannot listen on ${hostname}:${port}: ${(e as Error).message}`,
      );
    }
  }

  let metricsListener: MetricsListener | undefined;
  if (config.metricsListen && deps.metricsListener !== false) {
    const { hostname, port } = config.metricsListen;
    try {
      metricsListener = await listenMetrics(hostname, port, () => metrics.registry.render());
    } catch (e) {
      await Promise.all([dot.shutdown(0), doh?.shutdown(0)]);
      await release();
      throw new ConfigError(
        config.origin["metrics-listen"],
        `cannot listen on ${hostname}:${port}: ${(e as Error).message}`,
      );
    }
  }

  const dotListener = dot;
  const watch = config.certFile && config.keyFile
    ? watchCertificate({
      certPath: config.certFile,
      keyPath: config.keyFile,
      logger,
      sighup: deps.sighup ?? true,
      apply: async (cert, key, spkiPin) => {
        dotListener.setCertificate(cert, key);
        if (doh?.tls) await doh.setCertificate(cert, key);
        certificate.cert = cert;
        certificate.key = key;
        certificate.spkiPin = spkiPin;
      },
    })
    : undefined;

  return {
    dot: dotListener,
    doh,
    metrics,
    metricsAddr: metricsListener?.addr,
    certificate,
    reloadCertificate: (reason?: string) => watch?.reload(reason) ?? Promise.resolve(false),
    async shutdown() {
      watch?.close();
      await Promise.all([
        dotListener.shutdown(config.shutdownGraceMs),
        doh?.shutdown(config.shutdownGraceMs),
      ]);
      await metricsListener?.close();
      await release();
    },
  };
}
