/**
 * The buffers of bodies being received: one per stream, sized from a declared length or grown
 * by doubling under the side's cap, and two caps over the open streams together (octets of
 * buffers, DATA frames) that end the connection.
 */
import { describe, expect, it } from "vitest";
import { BodyBuffers, type BodyStream } from "../../src/h2/bodies.ts";
import { Code } from "../../src/h2/frames.ts";
import { codeOf } from "../support/h2_pipe.ts";

const stream = (): BodyStream => ({ dataFrames: 0, buffer: undefined, buffered: 0 });
const bytes = (...values: number[]) => Uint8Array.from(values);

describe("BodyBuffers", () => {
  it("gathers a body into one buffer of the declared size, handed over without a copy", () => {
    const bodies = new BodyBuffers(1_000, 100);
    const s = stream();
    bodies.append(s, bytes(1, 2), 100, 4);
    bodies.append(s, bytes(3, 4), 100, 4);
    expect(s.buffer!.length).toBe(4);
    const buffer = s.buffer;
    const body = bodies.take(s);
    expect(body).toBe(buffer);
    expect([...body]).toEqual([1, 2, 3, 4]);
    expect(bodies.bytes).toBe(0);
  });

  it("grows a buffer of unknown size by doubling up to the side's cap, and copies out the part used", () => {
    const bodies = new BodyBuffers(1_000, 100);
    const s = stream();
    const sizes: number[] = [];
    for (let i = 0; i < 6; i++) {
      bodies.append(s, bytes(i, i, i), 20);
      sizes.push(s.buffer!.length);
    }
    expect(sizes).toEqual([3, 6, 12, 12, 20, 20]);
    expect(bodies.bytes).toBe(20);
    const body = bodies.take(s);
    expect(body.length).toBe(18);
    expect(body[17]).toBe(5);
    expect(bodies.take(s).length).toBe(0); // nothing left
  });

  it("ends the connection when the buffers of the open streams pass the cap", () => {
    const bodies = new BodyBuffers(10, 100);
    const [a, b] = [stream(), stream()];
    bodies.append(a, bytes(1), 100, 6);
    expect(codeOf(() => bodies.append(b, bytes(1), 100, 5))).toBe(Code.EnhanceYourCalm);
  });

  it("ends the connection when DATA frames on the open streams pass the cap, counting them back as streams go", () => {
    const bodies = new BodyBuffers(1_000, 3);
    const [a, b] = [stream(), stream()];
    bodies.countFrame(a);
    bodies.countFrame(a);
    bodies.countFrame(b);
    bodies.release(a);
    expect(bodies.frames).toBe(1);
    bodies.countFrame(b);
    bodies.countFrame(b);
    expect(codeOf(() => bodies.countFrame(b))).toBe(Code.EnhanceYourCalm);
  });

  it("lets go of a forgotten stream's buffer", () => {
    const bodies = new BodyBuffers(100, 100);
    const s = stream();
    bodies.append(s, bytes(1, 2, 3), 50, 50);
    expect(bodies.bytes).toBe(50);
    bodies.release(s);
    expect([bodies.bytes, s.buffer, s.buffered]).toEqual([0, undefined, 0]);
  });
});
