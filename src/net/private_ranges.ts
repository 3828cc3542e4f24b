/**
 * Which addresses are local to a site and which are the public Internet's: loopback, the private
 * ranges of RFC 1918, the shared address space of RFC 6598 (carrier-grade NAT), IPv6 unique local
 * addresses (RFC 4193) and link-local addresses (RFC 3927, RFC 4291). The plain DNS face answers
 * only these by default, so a bridge put on a public address is not an open resolver.
 *
 * Runtime-agnostic: no `Deno.*`.
 *
 * @module
 */
import { parseAddress } from "./cidr_set.ts";

/** Where an address belongs. */
export type AddressScope =
  /** 127.0.0.0/8, ::1 */
  | "loopback"
  /** RFC 1918: 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 */
  | "private"
  /** RFC 6598 shared address space (carrier-grade NAT): 100.64.0.0/10 */
  | "shared"
  /** RFC 4193 unique local addresses: fc00::/7 */
  | "unique-local"
  /** 169.254.0.0/16, fe80::/10 */
  | "link-local"
  /** Everything else. */
  | "public";

/** The ranges of every scope but `public`, by scope, as CIDR text. */
export const LOCAL_RANGES: Readonly<Record<Exclude<AddressScope, "public">, readonly string[]>> = {
  loopback: ["127.0.0.0/8", "::1/128"],
  private: ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"],
  shared: ["100.64.0.0/10"],
  "unique-local": ["fc00::/7"],
  "link-local": ["169.254.0.0/16", "fe80::/10"],
};

/**
 * Every local range in one list (the plain DNS face's default `--dns-default-allow`).
 *
 * @example
 * ```ts
 * PRIVATE_RANGES.join(","); // "127.0.0.0/8,::1/128,10.0.0.0/8,..."
 * ```
 */
export const PRIVATE_RANGES: readonly string[] = Object.values(LOCAL_RANGES).flat();

/** An IPv4 range as a 32-bit network and mask. */
interface V4Range {
  readonly scope: AddressScope;
  readonly net: number;
  readonly mask: number;
}

/** An IPv6 range, compared on its first 16-bit groups. */
interface V6Range {
  readonly scope: AddressScope;
  readonly parts: readonly number[];
  readonly bits: number;
}

const V4: V4Range[] = [];
const V6: V6Range[] = [];
for (const [scope, list] of Object.entries(LOCAL_RANGES) as [AddressScope, string[]][]) {
  for (const cidr of list) {
    const [text, bitsText] = cidr.split("/");
    const bits = Number(bitsText);
    const addr = parseAddress(text)!;
    if (addr.kind() === "ipv4") {
      const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
      V4.push({ scope, net: (v4Number(addr.toByteArray()) & mask) >>> 0, mask });
    } else {
      V6.push({ scope, parts: (addr as { parts: number[] }).parts, bits });
    }
  }
}

function v4Number(bytes: readonly number[]): number {
  return ((bytes[0] << 24) | (bytes[1] << 16) | (bytes[2] << 8) | bytes[3]) >>> 0;
}

/** A dotted quad's number without a general parser (the common case); NaN when not one. */
function quickV4(text: string): number {
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2e) {
      if (digits === 0 || ++dots > 3) return NaN;
      value = value * 256 + part;
      part = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      part = part * 10 + (c - 0x30);
      if (++digits > 3 || part > 255) return NaN;
    } else {
      return NaN;
    }
  }
  if (dots !== 3 || digits === 0) return NaN;
  return value * 256 + part;
}

function v6Matches(parts: readonly number[], range: V6Range): boolean {
  let bits = range.bits;
  for (let i = 0; bits > 0; i++, bits -= 16) {
    const mask = bits >= 16 ? 0xffff : (0xffff << (16 - bits)) & 0xffff;
    if ((parts[i] & mask) !== (range.parts[i] & mask)) return false;
  }
  return true;
}

/**
 * The scope of `address` (an IPv4 or IPv6 address, brackets and zone allowed; an IPv4-mapped
 * IPv6 address counts as its IPv4 address), or `undefined` when it is not an address.
 *
 * @example
 * ```ts
 * addressScope("192.168.1.20"); // "private"
 * addressScope("::ffff:100.64.0.1"); // "shared"
 * addressScope("fd12:3456::1"); // "unique-local"
 * addressScope("203.0.113.9"); // "public"
 * ```
 */
export function addressScope(address: string): AddressScope | undefined {
  let v4 = quickV4(address);
  let parts: readonly number[] | undefined;
  if (Number.isNaN(v4)) {
    const addr = parseAddress(address);
    if (addr === undefined) return undefined;
    if (addr.kind() === "ipv4") v4 = v4Number(addr.toByteArray());
    else parts = (addr as { parts: number[] }).parts;
  }
  if (parts === undefined) {
    for (const r of V4) if (((v4 & r.mask) >>> 0) === r.net) return r.scope;
    return "public";
  }
  for (const r of V6) if (v6Matches(parts, r)) return r.scope;
  return "public";
}

/**
 * True for an address in one of the local scopes (loopback, private, shared, unique local,
 * link-local); false for a public address or text that is no address.
 *
 * @example
 * ```ts
 * isPrivateAddress("10.1.2.3"); // true
 * isPrivateAddress("8.8.8.8"); // false
 * ```
 */
export function isPrivateAddress(address: string): boolean {
  const scope = addressScope(address);
  return scope !== undefined && scope !== "public";
}
