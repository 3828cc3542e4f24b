/**
 * The quick run (`deno task test:quick`): every test file that needs no program besides Deno, so
 * it runs on a machine without the interop tools. Real sockets, TLS, QUIC and child `deno`
 * processes are all still in it; only the files below, which start kdig, dig, curl, openssl,
 * dnsdist, HAProxy, redis-server or wrangler, are left out. `deno task test` runs them all.
 *
 * `test/vitest_quick.test.ts` keeps {@linkcode NEEDS_TOOLS} complete: a test file that starts
 * another program and is not listed here fails it.
 *
 * @module
 */
import { configDefaults, defineConfig, mergeConfig } from "vitest/config";
import base from "./vitest.config.ts";

/** Test files that start a program other than Deno, with what they start. */
export const NEEDS_TOOLS: Readonly<Record<string, string>> = {
  "test/cache/redis.test.ts": "redis-server",
  "test/deno/bidirectional.test.ts": "kdig",
  "test/deno/cert_check.test.ts": "openssl",
  "test/deno/cert_key_warning.test.ts": "openssl",
  "test/deno/cli.test.ts": "openssl",
  "test/deno/ddr.test.ts": "dig",
  "test/deno/dns_face.test.ts": "dig, kdig",
  "test/deno/doh_face.test.ts": "kdig, dig, curl",
  "test/deno/devcert.test.ts": "openssl",
  "test/deno/dnstap.test.ts": "dnstap",
  "test/deno/query_log.test.ts": "mkfifo",
  "test/deno/proxy_protocol.test.ts": "haproxy",
  "test/deno/ready_haproxy.test.ts": "haproxy",
  "test/deno/redis_cache_e2e.test.ts": "redis-server",
  "test/deno/routes_e2e.test.ts": "knotd, dig",
  "test/deno/redis_cache_limits.test.ts": "redis-server",
  "test/deno/redis_cache_process.test.ts": "redis-server",
  "test/deno/redis_cache_trust.test.ts": "redis-server",
  "test/deno/status_page.test.ts": "chromium",
  "test/deno/tenants.test.ts": "kdig",
  "test/deno/tls_connector.test.ts": "openssl",
  "test/deno/tls_resumption.test.ts": "openssl",
  "test/deno/trusted_proxy.test.ts": "haproxy",
  "test/http/doh_faces.test.ts": "wrangler (workerd)",
  "test/interop/clients.test.ts": "kdig, dig",
  "test/interop/dnsdist_upstream.test.ts": "dnsdist",
  "test/interop/doq_kdig.test.ts": "kdig",
  "test/interop/filter_clients.test.ts": "kdig, dig",
  "test/pki/authority.test.ts": "openssl",
  "test/pki/spki.test.ts": "openssl",
  "test/scripts/bench_pki.test.ts": "openssl",
  "test/scripts/grafana_dashboard.test.ts": "prometheus",
  "test/scripts/install_cli.test.ts": "sh (the installed dotbridge shim)",
  "test/worker/filter_workerd.test.ts": "wrangler (workerd)",
  "test/worker/policy.test.ts": "wrangler (workerd)",
  "test/worker/worker.test.ts": "wrangler (workerd), kdig",
};

export default mergeConfig(
  base,
  defineConfig({
    test: {
      exclude: [...configDefaults.exclude, ...Object.keys(NEEDS_TOOLS)],
    },
  }),
);
