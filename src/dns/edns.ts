/**
 * EDNS(0) editing on wire-format messages: replace the OPT record's options, add or remove the
 * OPT record, pad to a block length (RFC 7830, RFC 8467), and the edns-tcp-keepalive option
 * (RFC 7828). Everything works by splicing bytes; nothing is decoded and re-encoded.
 *
 * @module
 */
import { DEFAULT_EDNS_UDP_SIZE, EdnsOptionCode, RrType } from "./constants.ts";
import type { EdnsOption, MessageInfo } from "./message.ts";

/**
 * EDNS options that concern one hop only (RFC 7828 keepalive, RFC 7830 padding): never forwarded
 * as they came, in either direction.
 */
export const HOP_BY_HOP_OPTIONS: ReadonlySet<number> = new Set<number>([
  EdnsOptionCode.TCP_KEEPALIVE,
  EdnsOptionCode.PADDING,
]);

/** The OPT fields to write when {@linkcode setOpt} has to create a record. */
export interface OptFields {
  udpSize: number;
  ttl: number;
}

const OPT_FIXED = 11; // root name (1) + type, class (4) + ttl (4) + rdlength (2)

/** Size in bytes of an OPT record with these options. */
export function optRecordSize(options: readonly EdnsOption[]): number {
  let size = OPT_FIXED;
  for (const o of options) size += 4 + o.data.length;
  return size;
}

/**
 * Writes an OPT record with these fields and options into `out` at `at` (which must have room
 * for {@linkcode optRecordSize} bytes) and returns the offset just past it. The caller counts it
 * in ARCOUNT.
 *
 * @example
 * ```ts
 * const out = new Uint8Array(body.length + optRecordSize([]));
 * out.set(body);
 * writeOpt(out, body.length, { udpSize: DEFAULT_EDNS_UDP_SIZE, ttl: EDNS_DO }, []);
 * ```
 */
export function writeOpt(
  out: Uint8Array,
  at: number,
  fields: OptFields,
  options: readonly EdnsOption[],
): number {
  const rdlength = optRecordSize(options) - OPT_FIXED;
  out[at] = 0;
  out[at + 1] = 0;
  out[at + 2] = RrType.OPT;
  out[at + 3] = fields.udpSize >> 8;
  out[at + 4] = fields.udpSize & 0xff;
  out[at + 5] = fields.ttl >>> 24;
  out[at + 6] = (fields.ttl >>> 16) & 0xff;
  out[at + 7] = (fields.ttl >>> 8) & 0xff;
  out[at + 8] = fields.ttl & 0xff;
  out[at + 9] = rdlength >> 8;
  out[at + 10] = rdlength & 0xff;
  let pos = at + OPT_FIXED;
  for (const o of options) {
    out[pos] = o.code >> 8;
    out[pos + 1] = o.code & 0xff;
    out[pos + 2] = o.data.length >> 8;
    out[pos + 3] = o.data.length & 0xff;
    out.set(o.data, pos + 4);
    pos += 4 + o.data.length;
  }
  return pos;
}

/** The fields of an OPT record {@linkcode setOpt} creates unless told otherwise. */
export const NEW_OPT_FIELDS: OptFields = { udpSize: DEFAULT_EDNS_UDP_SIZE, ttl: 0 };

/**
 * `options` as {@linkcode writeOpt} wrote them into `wire` at `optAt`: the same codes, the data as
 * views of `wire` (so an answer kept in a cache holds no other buffer).
 */
export function writtenOptions(
  wire: Uint8Array,
  optAt: number,
  options: readonly EdnsOption[],
): EdnsOption[] {
  const written: EdnsOption[] = [];
  let pos = optAt + OPT_FIXED;
  for (const o of options) {
    written.push({ code: o.code, data: wire.subarray(pos + 4, pos + 4 + o.data.length) });
    pos += 4 + o.data.length;
  }
  return written;
}

/**
 * The info of a message after its OPT record was written at `start` (where the old one was, or
 * at the end) with `fields` and `options`, computed from the info before: no walk. `listed` is
 * what `info.opt.options` holds (`options` itself, or {@linkcode writtenOptions}).
 */
export function infoWithOpt(
  info: MessageInfo,
  start: number,
  options: readonly EdnsOption[],
  fields: OptFields,
  listed: readonly EdnsOption[],
): MessageInfo {
  return {
    ...info,
    arcount: info.opt ? info.arcount : info.arcount + 1,
    opt: {
      start,
      end: start + optRecordSize(options),
      udpSize: fields.udpSize,
      ttl: fields.ttl,
      options: listed,
    },
  };
}

/**
 * Returns a new message whose OPT record carries exactly `options`; `null` removes the OPT
 * record. If the message has no OPT record, one is appended (with `create` fields, defaulting
 * to a 1232-byte UDP size and no flags) and ARCOUNT is incremented.
 *
 * @example
 * ```ts
 * const info = parseMessage(wire);
 * const noEcs = setOpt(wire, info, info.opt!.options.filter((o) => o.code !== 8));
 * ```
 */
export function setOpt(
  wire: Uint8Array,
  info: MessageInfo,
  options: readonly EdnsOption[] | null,
  create: OptFields = NEW_OPT_FIELDS,
): Uint8Array {
  const opt = info.opt;
  if (!opt && !options) return new Uint8Array(wire);
  const start = opt ? opt.start : wire.length;
  const end = opt ? opt.end : wire.length;
  const newSize = options ? optRecordSize(options) : 0;
  const out = new Uint8Array(wire.length - (end - start) + newSize);
  // The OPT record is nearly always last (or missing): no view for an empty or whole range.
  copyPrefix(out, wire, start);
  let pos = start;
  if (options) pos = writeOpt(out, start, opt ?? create, options);
  if (end < wire.length) out.set(wire.subarray(end), pos);
  const arcount = info.arcount + (opt ? 0 : 1) - (options ? 0 : 1);
  out[10] = arcount >> 8;
  out[11] = arcount & 0xff;
  return out;
}

/**
 * Copies `wire`'s first `n` bytes to the start of `out`. A message's part before its OPT record
 * is a few dozen bytes: copied by hand, it needs no view (a typed array object per call).
 */
function copyPrefix(out: Uint8Array, wire: Uint8Array, n: number): void {
  if (n === wire.length) out.set(wire);
  else if (n > 512) out.set(wire.subarray(0, n));
  else for (let i = 0; i < n; i++) out[i] = wire[i];
}

/**
 * The padding option that brings a message of `length` bytes (already including an OPT record
 * without padding) to a multiple of `block`. RFC 7830 padding is zero bytes.
 */
export function paddingOption(length: number, block: number): EdnsOption {
  const pad = (block - ((length + 4) % block)) % block;
  if (pad > ZEROS.length) {
    ZEROS = new Uint8Array(pad);
    ZERO_VIEWS.length = 0;
  }
  // A view per length, made once: every upstream query is padded, and a view each was ~0.1 KB.
  return { code: EdnsOptionCode.PADDING, data: ZERO_VIEWS[pad] ??= ZEROS.subarray(0, pad) };
}

/** Shared zero bytes for padding options (read-only by convention: option data is copied out). */
let ZEROS = new Uint8Array(512);
/** Views of ZEROS' first n bytes. */
const ZERO_VIEWS: (Uint8Array | undefined)[] = [];

/**
 * The edns-tcp-keepalive option (RFC 7828 §3.1) announcing an idle timeout, in units of 100 ms.
 */
export function keepaliveOption(timeoutMs: number): EdnsOption {
  const units = Math.min(0xffff, Math.max(0, Math.round(timeoutMs / 100)));
  return { code: EdnsOptionCode.TCP_KEEPALIVE, data: new Uint8Array([units >> 8, units & 0xff]) };
}

/** True if the OPT record carries an option with this code. */
export function hasOption(info: MessageInfo, code: number): boolean {
  return info.opt?.options.some((o) => o.code === code) ?? false;
}

/**
 * Rewrites the OPT record: keeps the options `keep` accepts, adds `extra`, then, if `padBlock`
 * is given, a padding option that makes the whole message a multiple of `padBlock` bytes.
 * Creates an OPT record if there is none.
 */
export function rewriteOptions(
  wire: Uint8Array,
  info: MessageInfo,
  keep: (option: EdnsOption) => boolean,
  extra: readonly EdnsOption[] = [],
  padBlock?: number,
): Uint8Array {
  return setOpt(wire, info, rewrittenOptions(wire, info, keep, extra, padBlock));
}

/** The options {@linkcode rewriteOptions} writes: kept, extra, then padding if asked. */
export function rewrittenOptions(
  wire: Uint8Array,
  info: MessageInfo,
  keep: (option: EdnsOption) => boolean,
  extra: readonly EdnsOption[] = [],
  padBlock?: number,
): EdnsOption[] {
  // One array, not a filtered copy and a concatenated one: this runs for every upstream query.
  const options: EdnsOption[] = [];
  const old = info.opt?.options;
  if (old) { for (const o of old) if (keep(o)) options.push(o); }
  for (const o of extra) options.push(o);
  if (padBlock) {
    const optOld = info.opt ? info.opt.end - info.opt.start : 0;
    const length = wire.length - optOld + optRecordSize(options);
    options.push(paddingOption(length, padBlock));
  }
  return options;
}
