/**
 * SETTINGS: ours encoded, the peer's read (the last of repeats standing) within the entry cap,
 * the rate limit and the ranges RFC 9113 §6.5.2 sets.
 */
import { describe, expect, it } from "vitest";
import { Code, Setting } from "../../src/h2/frames.ts";
import {
  encodeSettings,
  MAX_SETTINGS_ENTRIES,
  SETTINGS_BURST,
  SETTINGS_RATE,
  SettingsReader,
} from "../../src/h2/settings.ts";
import { codeOf } from "../support/h2_pipe.ts";

const NOW = 1_000_000;

describe("encodeSettings", () => {
  it("writes each pair in 6 octets", () => {
    const payload = encodeSettings([[Setting.MaxConcurrentStreams, 128], [Setting.EnablePush, 0]]);
    expect(payload.toHex()).toBe("000300000080" + "000200000000");
  });
});

describe("SettingsReader", () => {
  it("reads what the core uses, the last of repeats standing, and skips the rest", () => {
    const payload = encodeSettings([
      [Setting.InitialWindowSize, 1_000],
      [Setting.MaxConcurrentStreams, 10],
      [Setting.InitialWindowSize, 2_000],
      [0x99, 7], // unknown: ignored
      [Setting.MaxFrameSize, 32_768],
    ]);
    expect(new SettingsReader(NOW).read(payload, NOW)).toEqual({
      maxConcurrentStreams: 10,
      initialWindowSize: 2_000,
      maxFrameSize: 32_768,
    });
    expect(new SettingsReader(NOW).read(new Uint8Array(0), NOW)).toEqual({
      maxConcurrentStreams: undefined,
      initialWindowSize: undefined,
      maxFrameSize: undefined,
    });
  });

  const bad: [string, Uint8Array, number][] = [
    ["a payload not of 6-octet entries", new Uint8Array(7), Code.FrameSizeError],
    [
      `more than ${MAX_SETTINGS_ENTRIES} entries`,
      new Uint8Array(6 * (MAX_SETTINGS_ENTRIES + 1)),
      Code.EnhanceYourCalm,
    ],
    [
      "an initial window over 2^31-1",
      encodeSettings([[Setting.InitialWindowSize, 0x80000000]]),
      Code.FlowControlError,
    ],
    [
      "a frame size under 16 384",
      encodeSettings([[Setting.MaxFrameSize, 16_383]]),
      Code.ProtocolError,
    ],
    [
      "a frame size over 2^24-1",
      encodeSettings([[Setting.MaxFrameSize, 16_777_216]]),
      Code.ProtocolError,
    ],
  ];
  for (const [what, payload, code] of bad) {
    it(`refuses ${what}`, () => {
      expect(codeOf(() => new SettingsReader(NOW).read(payload, NOW))).toBe(code);
    });
  }

  it(`takes ${SETTINGS_BURST} frames at once and ${SETTINGS_RATE} a second after`, () => {
    const reader = new SettingsReader(NOW);
    const empty = new Uint8Array(0);
    for (let i = 0; i < SETTINGS_BURST; i++) reader.read(empty, NOW);
    expect(codeOf(() => reader.read(empty, NOW))).toBe(Code.EnhanceYourCalm);
    const later = NOW + 1_000;
    for (let i = 0; i < SETTINGS_RATE; i++) reader.read(empty, later);
    expect(codeOf(() => reader.read(empty, later))).toBe(Code.EnhanceYourCalm);
  });
});
