import { describe, expect, it } from "vitest";
import { messageOf } from "../../src/errors/message_of.ts";

describe("messageOf", () => {
  it.each([
    ["an Error", new Error("connection refused"), "connection refused"],
    ["a subclass", new RangeError("port 70000"), "port 70000"],
    ["a thrown string", "boom", "boom"],
    ["undefined", undefined, "undefined"],
    ["an object with a message but no Error", { message: "not an Error" }, "[object Object]"],
  ])("gives the text of %s", (_what, value, text) => {
    expect(messageOf(value)).toBe(text);
  });
});
