import { describe, expect, it } from "vitest";
import dnsPacket from "dns-packet";
import { Buffer } from "node:buffer";
import { answerOf } from "../../src/dns/answer.ts";
import { Rcode } from "../../src/dns/constants.ts";
import { parseMessage } from "../../src/dns/message.ts";
import { localRecordsMiddleware, parseLocalRecords } from "../../src/records/mod.ts";
import { createProcessor } from "../../src/resolver/processor.ts";
import type { Handler, QueryContext } from "../../src/pipeline/types.ts";
import { answers, decode, query } from "./fixtures.ts";

describe("localRecordsMiddleware", () => {
  const local = parseLocalRecords("192.168.1.10 nas.lan\n");
  const NEXT_ANSWER = answerOf(new Uint8Array([0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
  const ctx: QueryContext = { face: "dot", signal: new AbortController().signal };

  function upstream() {
    const seen: string[] = [];
    const handler: Handler = (q) => {
      seen.push(q.question.name);
      return Promise.resolve(NEXT_ANSWER);
    };
    return { seen, handler };
  }

  it("answers local names without calling the next handler", async () => {
    const up = upstream();
    const answer = await localRecordsMiddleware(() => local)(up.handler)(query("nas.lan"), ctx);
    expect(answers(answer.wire)).toEqual(["nas.lan A 192.168.1.10"]);
    expect(up.seen).toEqual([]);
  });

  it("passes other names, and every name when no set is selected, to the next handler", async () => {
    const up = upstream();
    await localRecordsMiddleware(() => local)(up.handler)(query("example.com"), ctx);
    expect(up.seen).toEqual(["example.com"]);
    const none = await localRecordsMiddleware(() => undefined)(up.handler)(query("nas.lan"), ctx);
    expect(none).toBe(NEXT_ANSWER);
    expect(up.seen).toEqual(["example.com", "nas.lan"]);
  });

  it("asks the selector per query with the query's context", async () => {
    const up = upstream();
    const faces: string[] = [];
    const mw = localRecordsMiddleware((c) => {
      faces.push(c.face);
      return c.face === "doh" ? local : undefined;
    });
    const doh = await mw(up.handler)(query("nas.lan"), { ...ctx, face: "doh" });
    await mw(up.handler)(query("nas.lan"), ctx);
    expect(faces).toEqual(["doh", "dot"]);
    expect(decode(doh.wire).rcode).toBe(Rcode.NOERROR);
    expect(up.seen).toEqual(["nas.lan"]);
  });

  it("lets the face's processor pad a local answer to the RFC 8467 block", async () => {
    const wire = new Uint8Array(dnsPacket.encode({
      type: "query",
      id: 3,
      questions: [{ type: "A", name: "nas.lan" }],
      additionals: [{
        type: "OPT",
        name: ".",
        udpPayloadSize: 1232,
        options: [{ code: 12, data: Buffer.alloc(8) }],
      } as unknown as dnsPacket.Answer],
    }));
    const up = upstream();
    const process = createProcessor({ handler: localRecordsMiddleware(() => local)(up.handler) });
    const answer = (await process(wire, ctx))!;
    expect(answer.wire.length % 468).toBe(0);
    expect(answers(answer.wire)).toEqual(["nas.lan A 192.168.1.10"]);
    expect(answer.info).toEqual(parseMessage(answer.wire));
    expect(up.seen).toEqual([]);
  });
});
