import { describe, expect, it } from "vitest";
import { createBridgeMetrics } from "../../src/metrics/bridge.ts";

describe("createBridgeMetrics", () => {
  it("shows each group member's health as dotbridge_upstream_up 1 or 0", () => {
    const m = createBridgeMetrics({
      upstreamHealth: () => [
        { name: "https://a.example/dns-query", healthy: true },
        { name: "tls://b.example", healthy: false },
      ],
    });
    const lines = m.registry.render().split("\n").filter((l) =>
      l.startsWith("dotbridge_upstream_up{")
    );
    expect(lines).toEqual([
      'dotbridge_upstream_up{upstream="https://a.example/dns-query"} 1',
      'dotbridge_upstream_up{upstream="tls://b.example"} 0',
    ]);
  });
});
