import { describe, expect, it } from "vitest";
import { createBridgeMetrics, resumedLabel } from "../../src/metrics/bridge.ts";

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

  it("counts TLS handshakes by face and resumed true, false or unknown", () => {
    const m = createBridgeMetrics();
    for (
      const [face, resumed] of [["dot", true], ["dot", false], ["dot", true], [
        "doq",
        undefined,
      ]] as const
    ) {
      m.tlsHandshakes.inc({ face, resumed: resumedLabel(resumed) });
    }
    const lines = m.registry.render().split("\n").filter((l) =>
      l.startsWith("dotbridge_tls_handshakes_total{")
    );
    expect(lines.sort()).toEqual([
      'dotbridge_tls_handshakes_total{face="doq",resumed="unknown"} 1',
      'dotbridge_tls_handshakes_total{face="dot",resumed="false"} 1',
      'dotbridge_tls_handshakes_total{face="dot",resumed="true"} 2',
    ]);
  });
});
