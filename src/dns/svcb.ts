/**
 * SVCB RDATA in wire format (RFC 9460 §2.2), for the designated-resolver records of DDR
 * (RFC 9461, RFC 9462): SvcPriority, an uncompressed TargetName, then the SvcParams in ascending
 * key order, each as key, length, value.
 *
 * @module
 */
import { pushName } from "./name.ts";

/** SvcParamKeys used here (RFC 9460 §14.3.2, RFC 9461 §5). */
export const SvcParamKey = {
  ALPN: 1,
  PORT: 3,
  IPV4HINT: 4,
  IPV6HINT: 6,
  DOHPATH: 7,
} as const;

/** One ServiceMode SVCB record's data. Addresses are already in wire form (4 or 16 bytes). */
export interface SvcbData {
  /** 1..65535 (0 would be AliasMode, which this writer does not make). */
  readonly priority: number;
  /** Presentation form without the final dot; `""` is the root, "the owner name". */
  readonly target: string;
  /** ALPN protocol IDs, e.g. `["dot"]`, `["h2"]`. */
  readonly alpn?: readonly string[];
  readonly port?: number;
  readonly ipv4hint?: readonly Uint8Array[];
  readonly ipv6hint?: readonly Uint8Array[];
  /** The DoH URI template's path, e.g. `/dns-query{?dns}` (RFC 9461 §5). */
  readonly dohpath?: string;
}

const encoder = new TextEncoder();

/**
 * The RDATA of a ServiceMode SVCB record.
 *
 * @throws {RangeError} for a priority outside 1..65535, a port outside 0..65535, an ALPN ID of 0
 *   or over 255 bytes, an address of the wrong length, a bad target, or a parameter over 65535
 *   bytes
 * @example
 * ```ts
 * const rdata = svcbRdata({ priority: 1, target: "dns.example", alpn: ["dot"], port: 853 });
 * ```
 */
export function svcbRdata(d: SvcbData): Uint8Array {
  if (!Number.isInteger(d.priority) || d.priority < 1 || d.priority > 0xffff) {
    throw new RangeError(`svcb: priority ${d.priority} (ServiceMode is 1..65535)`);
  }
  const out: number[] = [d.priority >> 8, d.priority & 0xff];
  pushName(out, d.target);
  const param = (key: number, value: ArrayLike<number>) => {
    if (value.length > 0xffff) {
      throw new RangeError(`svcb: SvcParam ${key} of ${value.length} bytes`);
    }
    out.push(key >> 8, key & 0xff, value.length >> 8, value.length & 0xff);
    for (let i = 0; i < value.length; i++) out.push(value[i]);
  };
  // Ascending key order (RFC 9460 §2.2).
  if (d.alpn && d.alpn.length > 0) {
    const v: number[] = [];
    for (const id of d.alpn) {
      const b = encoder.encode(id);
      if (b.length === 0 || b.length > 255) throw new RangeError(`svcb: ALPN ID "${id}"`);
      v.push(b.length, ...b);
    }
    param(SvcParamKey.ALPN, v);
  }
  if (d.port !== undefined) {
    if (!Number.isInteger(d.port) || d.port < 0 || d.port > 0xffff) {
      throw new RangeError(`svcb: port ${d.port}`);
    }
    param(SvcParamKey.PORT, [d.port >> 8, d.port & 0xff]);
  }
  const hints = (key: number, list: readonly Uint8Array[] | undefined, size: number) => {
    if (!list || list.length === 0) return;
    const v: number[] = [];
    for (const a of list) {
      if (a.length !== size) throw new RangeError(`svcb: address of ${a.length} bytes`);
      v.push(...a);
    }
    param(key, v);
  };
  hints(SvcParamKey.IPV4HINT, d.ipv4hint, 4);
  hints(SvcParamKey.IPV6HINT, d.ipv6hint, 16);
  if (d.dohpath !== undefined) param(SvcParamKey.DOHPATH, encoder.encode(d.dohpath));
  return Uint8Array.from(out);
}
