/**
 * Discovery of Designated Resolvers (RFC 9462): the bridge answers `_dns.resolver.arpa` SVCB
 * with one ServiceMode record per encrypted face that is on, for each designated name (the names
 * on the certificate clients will verify), and `_dns.<name>` SVCB the same way (RFC 9461 §2,
 * RFC 9462 §5). Other types at `_dns.resolver.arpa`, and every type at any other name under
 * `resolver.arpa`, get NODATA (RFC 9462 §8.1: such queries are never forwarded). The answers are
 * made here, before the cache and the upstream, on every face.
 *
 * Records, in priority order 1..n, for each designated name in turn:
 * - `alpn="dot" port=<DoT port>`
 * - `alpn="h2" port=<DoH port> dohpath="/dns-query{?dns}"` when the DoH face serves TLS itself
 * - `alpn="doq" port=<DoQ port>` when the DoQ face is on
 *
 * each with the configured `ipv4hint` / `ipv6hint`.
 *
 * @module
 */
import { Rcode, RrClass, RrType } from "../dns/constants.ts";
import { encodeName } from "../dns/name.ts";
import { svcbRdata } from "../dns/svcb.ts";
import { WireWriter } from "../dns/writer.ts";
import { type Prepared, preparedOf } from "../records/build.ts";
import { canonicalName, ipv4Bytes, ipv6Bytes } from "../records/record.ts";
import { assembleAnswer } from "../dns/assemble.ts";
import type { Middleware } from "../pipeline/types.ts";

/** The special-use domain of RFC 9462 §8. */
export const RESOLVER_ARPA = "resolver.arpa";
/** The name clients ask when they know only the resolver's address. */
export const DDR_QUERY_NAME = "_dns.resolver.arpa";
/** The DoH path advertised (RFC 9461 §5: a URI template's path with the `dns` variable). */
export const DDR_DOHPATH = "/dns-query{?dns}";
/** TTL of the SVCB records. */
export const DDR_TTL = 300;

/** The ports of the faces that are on; an unset port is a face that is off (not advertised). */
export interface DdrPorts {
  readonly dot?: number;
  /** The DoH face, only when it serves TLS itself (behind a proxy the port is not its own). */
  readonly doh?: number;
  readonly doq?: number;
}

/** What DDR advertises. */
export interface DdrOptions {
  /** Designated names (at least one): TargetName of the records and the `_dns.<name>` owners. */
  readonly names: readonly string[];
  readonly ipv4Hints?: readonly string[];
  readonly ipv6Hints?: readonly string[];
  /**
   * The faces' ports, read when an answer is first made for them (faces bound to port 0 learn
   * theirs after the resolver is built); the answers are remade when they change.
   */
  readonly ports: () => DdrPorts;
  /** Default {@linkcode DDR_TTL}. */
  readonly ttl?: number;
}

/**
 * One designated resolver endpoint, as the records describe it (for tests and
 * docs/clients.md#discovery-ddr).
 */
export interface DdrEndpoint {
  readonly priority: number;
  readonly target: string;
  readonly alpn: string;
  readonly port: number;
  readonly dohpath?: string;
}

/** The endpoints advertised for `ports`, in priority order. */
export function ddrEndpoints(names: readonly string[], ports: DdrPorts): DdrEndpoint[] {
  const out: DdrEndpoint[] = [];
  for (const target of names) {
    if (ports.dot !== undefined) {
      out.push({ priority: out.length + 1, target, alpn: "dot", port: ports.dot });
    }
    if (ports.doh !== undefined) {
      out.push({
        priority: out.length + 1,
        target,
        alpn: "h2",
        port: ports.doh,
        dohpath: DDR_DOHPATH,
      });
    }
    if (ports.doq !== undefined) {
      out.push({ priority: out.length + 1, target, alpn: "doq", port: ports.doq });
    }
  }
  return out;
}

/**
 * The ports as configured: DoT's, DoH's when it serves TLS itself (plain HTTP sits behind a
 * proxy whose port the bridge does not know: not advertised), DoQ's when on. A face bound to
 * port 0 should report its real port instead (see `ResolverDeps.ddrPorts`).
 */
export function ddrPortsFromConfig(config: {
  readonly dot: {
    readonly listen: { readonly port: number };
    readonly doqListen?: { readonly port: number };
  };
  readonly doh: { readonly httpListen?: { readonly port: number }; readonly httpTls: boolean };
}): DdrPorts {
  const { httpListen, httpTls } = config.doh;
  return {
    dot: config.dot.listen.port,
    doh: httpListen && httpTls ? httpListen.port : undefined,
    doq: config.dot.doqListen?.port,
  };
}

const NODATA: Prepared = preparedOf(Rcode.NOERROR, 0, 0, new Uint8Array());

/**
 * The DDR middleware. Queries for other names (and classes other than IN) pass on untouched.
 *
 * @throws {RangeError} at build time for no names, a bad name or a bad address hint
 * @example
 * ```ts
 * const ddr = ddrMiddleware({ names: ["dns.example"], ports: () => ({ dot: 853 }) });
 * const handler = compose([ddr], fromUpstream(upstream));
 * ```
 */
export function ddrMiddleware(options: DdrOptions): Middleware {
  if (options.names.length === 0) throw new RangeError("ddr: no designated name");
  const names = options.names.map((n) => {
    const name = canonicalName(n);
    if (!name || !canonicalName(`_dns.${name}`)) throw new RangeError(`ddr: bad name "${n}"`);
    return name;
  });
  const ipv4hint = (options.ipv4Hints ?? []).map((a) => {
    const b = ipv4Bytes(a);
    if (!b) throw new RangeError(`ddr: "${a}" is not an IPv4 address`);
    return b;
  });
  const ipv6hint = (options.ipv6Hints ?? []).map((a) => {
    const b = ipv6Bytes(a);
    if (!b) throw new RangeError(`ddr: "${a}" is not an IPv6 address`);
    return b;
  });
  const ttl = options.ttl ?? DDR_TTL;
  const owners = new Set([DDR_QUERY_NAME, ...names.map((n) => `_dns.${n}`)]);

  let madeFor = "";
  let made = new Map<string, Prepared>();
  /** The SVCB answer bodies, by owner, for the current ports. */
  const bodies = (): Map<string, Prepared> => {
    const ports = options.ports();
    const key = `${ports.dot}/${ports.doh}/${ports.doq}`;
    if (key === madeFor) return made;
    const endpoints = ddrEndpoints(names, ports);
    const next = new Map<string, Prepared>();
    for (const owner of owners) {
      // Uncompressed owners: the bodies go after any question, so no pointer is known to hold.
      const w = new WireWriter();
      const ownerWire = encodeName(owner);
      for (const e of endpoints) {
        const rdata = svcbRdata({
          priority: e.priority,
          target: e.target,
          alpn: [e.alpn],
          port: e.port,
          ipv4hint,
          ipv6hint,
          dohpath: e.dohpath,
        });
        w.bytes(ownerWire);
        w.u16(RrType.SVCB);
        w.u16(RrClass.IN);
        w.u32(ttl);
        w.u16(rdata.length);
        w.bytes(rdata);
      }
      const body = Uint8Array.from(w.out);
      next.set(owner, preparedOf(Rcode.NOERROR, endpoints.length, 0, body));
    }
    madeFor = key;
    made = next;
    return made;
  };

  return (next) => (query, ctx) => {
    const q = query.question;
    if (q.class !== RrClass.IN) return next(query, ctx);
    const name = q.name.toLowerCase();
    if (owners.has(name)) {
      const p = q.type === RrType.SVCB ? bodies().get(name)! : NODATA;
      if (ctx.trace) ctx.trace.source = "ddr";
      return assembleAnswer(query, p);
    }
    if (name === RESOLVER_ARPA || name.endsWith(`.${RESOLVER_ARPA}`)) {
      if (ctx.trace) ctx.trace.source = "ddr";
      return assembleAnswer(query, NODATA);
    }
    return next(query, ctx);
  };
}
