import dnsPacket from "dns-packet";
import { Buffer } from "node:buffer";
import { describe, expect, it } from "vitest";
import { answerOf } from "../../src/dns/answer.ts";
import { Flag } from "../../src/dns/constants.ts";
import { parseMessage } from "../../src/dns/message.ts";
import {
  CLASSIC_UDP_SIZE,
  truncatedAnswer,
  udpAnswer,
  udpAnswerLimit,
} from "../../src/dns/truncate.ts";
import { decodePacket, encodePacket, makeQuery } from "./fixtures.ts";

/** A response with `n` TXT records of ~200 bytes each, and an OPT record with a cookie if asked. */
function bigAnswer(n: number, opt = false): Uint8Array {
  return encodePacket({
    type: "response",
    id: 0x4242,
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | dnsPacket.AUTHENTIC_DATA,
    questions: [{ type: "TXT", name: "big.example", class: "IN" }],
    answers: Array.from({ length: n }, (_, i) => ({
      type: "TXT" as const,
      name: "big.example",
      ttl: 300,
      data: [`${i}`.padEnd(200, "x")],
    })),
    authorities: [{
      type: "NS",
      name: "example",
      ttl: 300,
      data: "ns.example",
    }],
    additionals: opt
      ? [{
        type: "OPT",
        name: ".",
        udpPayloadSize: 1232,
        flags: 0x8000,
        options: [{ code: 10, data: Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]) }],
      } as unknown as dnsPacket.Answer]
      : [],
  });
}

describe("udpAnswerLimit", () => {
  it.each([
    ["no EDNS", undefined, 512],
    ["EDNS 512", 512, 512],
    ["EDNS below 512 (treated as 512)", 100, 512],
    ["EDNS 1232", 1232, 1232],
    ["EDNS 4096, clamped", 4096, 1232],
    ["EDNS 1400, clamped", 1400, 1232],
    ["EDNS 800", 800, 800],
  ])("%s: %d", (_what, udpSize, limit) => {
    const query = makeQuery(udpSize === undefined ? {} : { opt: { udpSize } });
    expect(udpAnswerLimit(parseMessage(query), 1232)).toBe(limit);
  });

  it("honours a larger maximum", () => {
    expect(udpAnswerLimit(parseMessage(makeQuery({ opt: { udpSize: 4096 } })), 4096)).toBe(4096);
    expect(CLASSIC_UDP_SIZE).toBe(512);
  });
});

describe("truncatedAnswer", () => {
  it("keeps the header (TC set), the question and the OPT record, and no records", () => {
    const answer = answerOf(bigAnswer(8, true));
    const cut = truncatedAnswer(answer);
    const p = decodePacket(cut.wire) as dnsPacket.Packet & Record<string, unknown>;
    expect(p.id).toBe(0x4242);
    expect([p.flag_tc, p.flag_rd, p.flag_ra, p.flag_ad]).toEqual([true, true, true, true]);
    expect(p.questions).toEqual([{ name: "big.example", type: "TXT", class: "IN" }]);
    expect(p.answers).toEqual([]);
    expect(p.authorities).toEqual([]);
    const opt = p.additionals!.find((r) => r.type === "OPT") as unknown as {
      udpPayloadSize: number;
      flags: number;
      options: { code: number; data: Buffer }[];
    };
    expect(opt.udpPayloadSize).toBe(1232);
    expect(opt.flags & 0x8000).toBe(0x8000);
    expect(opt.options.map((o) => [o.code, [...o.data]])).toEqual([[10, [1, 2, 3, 4, 5, 6, 7, 8]]]);
    expect(answer.wire.length).toBeGreaterThan(1600); // untouched
    expect(decodePacket(answer.wire).answers).toHaveLength(8);
  });

  it("computes an info that describes the bytes as a walk would", () => {
    for (const opt of [false, true]) {
      const cut = truncatedAnswer(answerOf(bigAnswer(3, opt)));
      const walked = parseMessage(cut.wire);
      expect(cut.info).toEqual(walked);
      expect(cut.info.flags & Flag.TC).toBe(Flag.TC);
      expect(cut.info.minTtl).toBeUndefined();
    }
  });

  it("has no OPT record when the answer had none", () => {
    const cut = truncatedAnswer(answerOf(bigAnswer(3)));
    expect(cut.info.arcount).toBe(0);
    expect(cut.wire.length).toBe(cut.info.questionEnd);
  });
});

describe("udpAnswer", () => {
  it("hands back the same answer when it fits, a truncated one when it does not", () => {
    const small = answerOf(bigAnswer(1, true));
    expect(udpAnswer(small, 512)).toBe(small);
    const big = answerOf(bigAnswer(8, true));
    const sent = udpAnswer(big, 1232);
    expect(sent).not.toBe(big);
    expect(sent.wire.length).toBeLessThanOrEqual(512);
    expect(sent.info.flags & Flag.TC).toBe(Flag.TC);
    expect(udpAnswer(big, 4096)).toBe(big);
  });
});
