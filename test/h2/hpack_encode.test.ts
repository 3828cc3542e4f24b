/**
 * The HPACK encoders (a DoH request's head, a response's head), their blocks decoded back.
 */
import { describe, expect, it } from "vitest";
import { HpackDecoder } from "../../src/h2/hpack_decode.ts";
import {
  encodeRequestHead,
  encodeResponseHead,
  withContentLength,
} from "../../src/h2/hpack_encode.ts";

/** Every field of one block, in order. */
function fieldsOf(decoder: HpackDecoder, block: Uint8Array): [string, string][] {
  const fields: [string, string][] = [];
  decoder.decode(block, (n, v) => fields.push([n, v]));
  return fields;
}

describe("encodeRequestHead", () => {
  it("encodes a POST head that decodes back to the fields given, plus content-length", () => {
    const head = encodeRequestHead({
      method: "POST",
      scheme: "https",
      authority: "dns.example:8443",
      path: "/dns-query",
      accept: "application/dns-message",
      contentType: "application/dns-message",
    });
    expect(fieldsOf(new HpackDecoder(), withContentLength(head, 33))).toEqual([
      [":method", "POST"],
      [":scheme", "https"],
      [":authority", "dns.example:8443"],
      [":path", "/dns-query"],
      ["accept", "application/dns-message"],
      ["content-type", "application/dns-message"],
      ["content-length", "33"],
    ]);
  });

  it("encodes a long GET path with multi-byte length prefixes", () => {
    const path = "/dns-query?dns=" + "A".repeat(5_000);
    const head = encodeRequestHead({
      method: "GET",
      scheme: "https",
      authority: "x",
      path,
      accept: "application/dns-message",
    });
    const fields = fieldsOf(new HpackDecoder(), head);
    expect(fields[0]).toEqual([":method", "GET"]);
    expect(fields[3]).toEqual([":path", path]);
  });
});

describe("encodeResponseHead", () => {
  it("encodes status and fields that decode back, octets kept as octets", () => {
    const head = encodeResponseHead(413, [
      ["Content-Type", "text/plain"],
      ["x-bytes", "caf\u00e9"],
    ]);
    expect(fieldsOf(new HpackDecoder(), head)).toEqual([
      [":status", "413"],
      ["content-type", "text/plain"],
      ["x-bytes", "caf\u00e9"],
    ]);
    expect(head.includes(0xe9)).toBe(true); // one octet, not UTF-8's two
  });
});
