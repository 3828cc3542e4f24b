/**
 * Writes a query in wire format from a name and a type: what a client-side feature needs when it
 * starts from text (the JSON API's `?name=&type=`, probes), without a general DNS encoder.
 *
 * @module
 */
import { DEFAULT_EDNS_UDP_SIZE, EDNS_DO, Flag, HEADER_LENGTH, RrType } from "./constants.ts";
import { encodeName } from "./name.ts";

/** What {@linkcode buildQuery} writes. */
export interface QuerySpec {
  /**
   * The name in presentation form without escapes, with or without the final dot (`""` or `.` is
   * the root). Each label is written as its UTF-16 code units' low bytes, so pass ASCII
   * (IDNs in punycode).
   */
  readonly name: string;
  readonly type: number;
  /** Default 1 (IN). */
  readonly class?: number;
  /** Default 0, as DoH wants (RFC 8484 §4.1). */
  readonly id?: number;
  /** Header flag bits to set (`Flag.RD`, `Flag.CD`, ...). Default `Flag.RD`. */
  readonly flags?: number;
  /** Adds an OPT record (RFC 6891) with this UDP size (default 1232) and DO bit. */
  readonly edns?: { readonly udpSize?: number; readonly dnssecOk?: boolean };
}

const OPT_LENGTH = 11;

/**
 * Encodes a query: header, one question and, with `edns`, an OPT record without options.
 *
 * @throws {RangeError} as `encodeName`: an empty label, a label over 63 bytes, a name over 255
 *   bytes, or a character outside Latin-1
 *
 * @example
 * ```ts
 * const wire = buildQuery({ name: "example.com", type: RrType.AAAA, edns: { dnssecOk: true } });
 * ```
 */
export function buildQuery(spec: QuerySpec): Uint8Array<ArrayBuffer> {
  const bare = spec.name.endsWith(".") ? spec.name.slice(0, -1) : spec.name;
  const name = encodeName(bare);
  const edns = spec.edns;
  const out = new Uint8Array(HEADER_LENGTH + name.length + 4 + (edns ? OPT_LENGTH : 0));
  const view = new DataView(out.buffer);
  view.setUint16(0, spec.id ?? 0);
  view.setUint16(2, spec.flags ?? Flag.RD);
  view.setUint16(4, 1); // QDCOUNT
  view.setUint16(10, edns ? 1 : 0); // ARCOUNT
  out.set(name, HEADER_LENGTH);
  let pos = HEADER_LENGTH + name.length;
  view.setUint16(pos, spec.type);
  view.setUint16(pos + 2, spec.class ?? 1);
  pos += 4;
  if (edns) {
    out[pos] = 0; // root owner name
    view.setUint16(pos + 1, RrType.OPT);
    view.setUint16(pos + 3, edns.udpSize ?? DEFAULT_EDNS_UDP_SIZE);
    view.setUint32(pos + 5, edns.dnssecOk ? EDNS_DO : 0); // extended rcode, version, flags
    view.setUint16(pos + 9, 0); // no options
  }
  return out;
}
