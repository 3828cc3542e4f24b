import { describe, expect, it } from "vitest";
import * as fc from "fast-check";
import dnsPacket from "dns-packet";
import { Buffer } from "node:buffer";
import {
  hasOption,
  keepaliveOption,
  optRecordSize,
  paddingOption,
  rewriteOptions,
  setOpt,
  writeOpt,
} from "../../src/dns/edns.ts";
import { type EdnsOption, parseMessage } from "../../src/dns/message.ts";
import { decodePacket, encodePacket, makeQuery } from "./fixtures.ts";

const ECS: EdnsOption = { code: 8, data: Uint8Array.from([0, 1, 24, 0, 192, 0, 2]) };
const COOKIE: EdnsOption = { code: 10, data: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]) };
const KEEPALIVE_EMPTY: EdnsOption = { code: 11, data: new Uint8Array(0) };
const PAD: EdnsOption = { code: 12, data: new Uint8Array(5) };

interface RefOpt {
  udpPayloadSize: number;
  flags: number;
  extendedRcode: number;
  ednsVersion: number;
  options: { code: number; data: Buffer }[];
}

function refOpt(wire: Uint8Array): RefOpt | undefined {
  return decodePacket(wire).additionals!.find((a) => a.type === "OPT") as RefOpt | undefined;
}

function optionsOf(wire: Uint8Array): [number, number[]][] {
  return parseMessage(wire).opt!.options.map((o) => [o.code, Array.from(o.data)]);
}

describe("setOpt", () => {
  it("adds an OPT record with default fields and increments ARCOUNT", () => {
    const wire = makeQuery({ id: 77, name: "example.org" });
    const info = parseMessage(wire);
    const out = setOpt(wire, info, [COOKIE]);
    const after = parseMessage(out);
    expect(after.arcount).toBe(info.arcount + 1);
    expect(out.length).toBe(wire.length + optRecordSize([COOKIE]));
    expect(out.subarray(0, 10)).toEqual(wire.subarray(0, 10));
    expect(out.subarray(12, wire.length)).toEqual(wire.subarray(12));
    expect(after.opt).toMatchObject({ udpSize: 1232, ttl: 0, start: wire.length, end: out.length });
    expect(optionsOf(out)).toEqual([[10, [1, 2, 3, 4, 5, 6, 7, 8]]]);
    const ref = refOpt(out)!;
    expect(ref.udpPayloadSize).toBe(1232);
    expect(ref.options.map((o) => o.code)).toEqual([10]);
    expect(decodePacket(out).questions![0].name).toBe("example.org");
  });

  it("adds an OPT record with the given create fields", () => {
    const wire = makeQuery();
    const out = setOpt(wire, parseMessage(wire), [], { udpSize: 4096, ttl: 0x01008000 });
    const ref = refOpt(out)!;
    expect(ref.udpPayloadSize).toBe(4096);
    expect(ref.extendedRcode).toBe(1);
    expect(ref.flags).toBe(0x8000);
    expect(ref.options).toEqual([]);
  });

  it("replaces the options and keeps the record's UDP size and TTL", () => {
    const wire = makeQuery({ opt: { udpSize: 1400, flags: 0x8000, options: [ECS, COOKIE] } });
    const info = parseMessage(wire);
    const out = setOpt(wire, info, [PAD]);
    const after = parseMessage(out);
    expect(after.arcount).toBe(1);
    expect(after.opt).toMatchObject({ udpSize: 1400, ttl: 0x8000 });
    expect(optionsOf(out)).toEqual([[12, [0, 0, 0, 0, 0]]]);
    expect(out.length).toBe(wire.length - optRecordSize([ECS, COOKIE]) + optRecordSize([PAD]));
    expect(out.subarray(0, info.opt!.start)).toEqual(wire.subarray(0, info.opt!.start));
    expect(refOpt(out)!.flags).toBe(0x8000);
  });

  it("removes the OPT record and decrements ARCOUNT", () => {
    const plain = makeQuery({ id: 5 });
    const wire = makeQuery({ id: 5, opt: { options: [COOKIE] } });
    const out = setOpt(wire, parseMessage(wire), null);
    expect(out).toEqual(plain);
    expect(parseMessage(out).opt).toBeUndefined();
    expect(decodePacket(out).additionals).toEqual([]);
  });

  it("returns an equal copy when asked to remove an OPT record that is not there", () => {
    const wire = makeQuery();
    const out = setOpt(wire, parseMessage(wire), null);
    expect(out).toEqual(wire);
    expect(out).not.toBe(wire);
  });

  it("keeps records after an OPT that is not the last additional record", () => {
    const wire = encodePacket({
      type: "response",
      id: 9,
      flags: 0x0180,
      questions: [{ type: "A", name: "example.com", class: "IN" }],
      answers: [{ type: "A", name: "example.com", ttl: 60, data: "192.0.2.1" }],
      additionals: [
        {
          type: "OPT",
          name: ".",
          udpPayloadSize: 1232,
          options: [{ code: 10, data: Buffer.from([1, 2]) }],
        } as unknown as dnsPacket.Answer,
        { type: "A", name: "ns.example.com", ttl: 30, data: "192.0.2.53" },
      ],
    });
    const info = parseMessage(wire);
    expect(info.opt!.end).toBeLessThan(wire.length);
    for (const options of [[COOKIE, PAD], [], null]) {
      const out = setOpt(wire, info, options);
      const ref = decodePacket(out);
      const glue = ref.additionals!.find((a) => a.type === "A") as { data: string; name: string };
      expect(glue).toMatchObject({ name: "ns.example.com", data: "192.0.2.53" });
      expect(ref.answers![0]).toMatchObject({ type: "A", data: "192.0.2.1" });
      expect(ref.additionals!.length).toBe(options ? 2 : 1);
      expect(out.subarray(out.length - (wire.length - info.opt!.end))).toEqual(
        wire.subarray(info.opt!.end),
      );
    }
  });

  it("never modifies its input", () => {
    const wire = makeQuery({ opt: { options: [ECS] } });
    const copy = wire.slice();
    setOpt(wire, parseMessage(wire), [COOKIE]);
    setOpt(wire, parseMessage(wire), null);
    expect(wire).toEqual(copy);
  });
});

describe("optRecordSize", () => {
  it("counts 11 fixed bytes plus 4 per option plus data", () => {
    expect(optRecordSize([])).toBe(11);
    expect(optRecordSize([COOKIE])).toBe(11 + 4 + 8);
    expect(optRecordSize([COOKIE, KEEPALIVE_EMPTY, PAD])).toBe(11 + 12 + 4 + 9);
  });
});

describe("paddingOption", () => {
  it("brings every length from 12 to 2000 to a multiple of the block", () => {
    for (const block of [1, 2, 16, 128, 468]) {
      for (let length = 12; length <= 2000; length++) {
        const option = paddingOption(length, block);
        expect(option.code).toBe(12);
        expect(option.data.length).toBeLessThan(block);
        expect((length + 4 + option.data.length) % block).toBe(0);
        expect(option.data.every((b) => b === 0)).toBe(true);
      }
    }
  });

  it("pads real messages to the block whatever their name and options (property)", () => {
    const label = fc.stringMatching(/^[a-z0-9]{1,63}$/);
    fc.assert(
      fc.property(
        fc.array(label, { minLength: 1, maxLength: 3 }),
        fc.constantFrom(128, 468),
        fc.boolean(),
        fc.uint8Array({ maxLength: 200 }),
        (labels, block, withOpt, cookie) => {
          const wire = makeQuery({
            name: labels.join("."),
            opt: withOpt ? { options: [{ code: 10, data: cookie }] } : undefined,
          });
          const out = rewriteOptions(wire, parseMessage(wire), () => true, [], block);
          expect(out.length % block).toBe(0);
          const ref = refOpt(out)!;
          expect(ref.options.at(-1)!.code).toBe(12);
          expect(ref.options.length).toBe(withOpt ? 2 : 1);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("keepaliveOption", () => {
  const cases: [ms: number, units: number][] = [
    [0, 0],
    [49, 0],
    [50, 1],
    [100, 1],
    [149, 1],
    [150, 2],
    [10_000, 100],
    [6_553_500, 65535],
    [10_000_000, 65535],
    [-500, 0],
  ];
  for (const [ms, units] of cases) {
    it(`announces ${ms} ms as ${units} units of 100 ms`, () => {
      const option = keepaliveOption(ms);
      expect(option.code).toBe(11);
      expect(Array.from(option.data)).toEqual([units >> 8, units & 0xff]);
    });
  }

  it("is decoded by dns-packet as the same timeout", () => {
    const wire = makeQuery();
    const out = setOpt(wire, parseMessage(wire), [keepaliveOption(12_300)]);
    const option = refOpt(out)!.options[0] as unknown as { code: number; timeout: number };
    expect(option).toMatchObject({ code: 11, timeout: 123 });
  });
});

describe("hasOption", () => {
  it("looks only at the OPT record's option codes", () => {
    const wire = makeQuery({ opt: { options: [ECS, COOKIE] } });
    const info = parseMessage(wire);
    expect(hasOption(info, 8)).toBe(true);
    expect(hasOption(info, 10)).toBe(true);
    expect(hasOption(info, 12)).toBe(false);
    expect(hasOption(parseMessage(makeQuery()), 8)).toBe(false);
  });
});

describe("rewriteOptions", () => {
  const wire = makeQuery({
    opt: { udpSize: 4096, flags: 0x8000, options: [ECS, COOKIE, KEEPALIVE_EMPTY, PAD] },
  });
  const info = parseMessage(wire);

  const cases: {
    name: string;
    keep: (o: EdnsOption) => boolean;
    extra?: EdnsOption[];
    pad?: number;
    codes: number[];
  }[] = [
    { name: "keeps everything", keep: () => true, codes: [8, 10, 11, 12] },
    { name: "drops all", keep: () => false, codes: [] },
    { name: "drops ECS", keep: (o) => o.code !== 8, codes: [10, 11, 12] },
    {
      name: "appends extras after the kept options",
      keep: (o) => o.code === 10,
      extra: [keepaliveOption(1000)],
      codes: [10, 11],
    },
    {
      name: "puts padding last, after extras",
      keep: (o) => o.code !== 12 && o.code !== 11,
      extra: [keepaliveOption(1000)],
      pad: 128,
      codes: [8, 10, 11, 12],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const out = rewriteOptions(wire, info, c.keep, c.extra, c.pad);
      const after = parseMessage(out);
      expect(after.opt!.options.map((o) => o.code)).toEqual(c.codes);
      expect(after.opt).toMatchObject({ udpSize: 4096, ttl: 0x8000 });
      expect(after.arcount).toBe(1);
      if (c.pad) expect(out.length % c.pad).toBe(0);
      expect(refOpt(out)!.options.map((o) => o.code)).toEqual(c.codes);
    });
  }

  it("creates an OPT record when the message has none", () => {
    const plain = makeQuery();
    const out = rewriteOptions(plain, parseMessage(plain), () => true, [COOKIE], 128);
    const after = parseMessage(out);
    expect(after.arcount).toBe(1);
    expect(after.opt!.options.map((o) => o.code)).toEqual([10, 12]);
    expect(out.length).toBe(128);
  });

  it("keeps an already padded message at the block size when re-padding", () => {
    const once = rewriteOptions(wire, info, (o) => o.code !== 12, [], 128);
    const again = rewriteOptions(once, parseMessage(once), (o) => o.code !== 12, [], 128);
    expect(again).toEqual(once);
  });

  it("grows to the next block when the message is already a multiple of it", () => {
    const plain = makeQuery();
    const exact = rewriteOptions(plain, parseMessage(plain), () => true, [], 128);
    expect(exact.length).toBe(128);
    const big = rewriteOptions(
      plain,
      parseMessage(plain),
      () => true,
      [{ code: 65001, data: new Uint8Array(150) }],
      128,
    );
    expect(big.length).toBe(256);
  });
});

describe("writeOpt", () => {
  it.each([
    [{ udpSize: 1232, ttl: 0 }, [], [0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]],
    [{ udpSize: 1232, ttl: 0x8000 }, [], [0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0]],
    [{ udpSize: 512, ttl: 0x01008000 }, [KEEPALIVE_EMPTY], [
      ...[0, 0, 41, 0x02, 0x00, 0x01, 0x00, 0x80, 0x00, 0, 4],
      ...[0, 11, 0, 0],
    ]],
  ])("writes %j with %j at an offset and returns the end", (fields, options, bytes) => {
    const out = new Uint8Array(3 + optRecordSize(options));
    expect(writeOpt(out, 3, fields, options)).toBe(out.length);
    expect([...out.subarray(3)]).toEqual(bytes);
  });
});
