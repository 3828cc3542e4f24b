/**
 * A DNS response together with what was learnt about it when it was walked, so nothing downstream
 * parses it again.
 *
 * @module
 */
import { type MessageInfo, parseMessage } from "./message.ts";

/** A response in wire format and its parse. `info` always describes `wire` exactly. */
export interface Answer {
  readonly wire: Uint8Array;
  readonly info: MessageInfo;
}

/** Walks `wire` once and pairs it with what the walk found. @throws {RangeError} if malformed */
export function answerOf(wire: Uint8Array): Answer {
  return { wire, info: parseMessage(wire) };
}
