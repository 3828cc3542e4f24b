/**
 * The Workers Cache API store, over a fake `Cache` that keeps `Response`s as the real one does
 * (in workerd it is exercised by test/worker/policy.test.ts).
 */
import { describe, expect, it } from "vitest";
import { WorkersCacheStore } from "../../src/cache/workers.ts";

function fakeCache() {
  const kept = new Map<string, Response>();
  return {
    kept,
    match: (url: Request | string) => Promise.resolve(kept.get(String(url))?.clone()),
    put: (url: Request | string, response: Response) => {
      kept.set(String(url), response);
      return Promise.resolve();
    },
    delete: (url: Request | string) => Promise.resolve(kept.delete(String(url))),
  };
}

describe("WorkersCacheStore", () => {
  it("keeps the bytes in a Response with max-age and the stored time, under a synthetic URL", async () => {
    const cache = fakeCache();
    const store = new WorkersCacheStore({ cache });
    const wire = Uint8Array.from([0, 0, 0x81, 0x80, 0, 0, 0, 0, 0, 0, 0, 0]);
    await store.set(
      "dotbridge:v2::1:1:0::a b/c",
      { wire, storedAt: 1_000, expiresAt: 301_000 },
      360,
    );
    const [url, response] = [...cache.kept][0];
    expect(url).toBe(
      "https://dotbridge.cache.invalid/dotbridge%3Av2%3A%3A1%3A1%3A0%3A%3Aa%20b%2Fc",
    );
    expect(response.headers.get("cache-control")).toBe("max-age=360");
    expect(await store.get("dotbridge:v2::1:1:0::a b/c")).toEqual({
      wire,
      storedAt: 1_000,
      expiresAt: 301_000,
    });
    await store.delete("dotbridge:v2::1:1:0::a b/c");
    expect(await store.get("dotbridge:v2::1:1:0::a b/c")).toBeUndefined();
  });

  it("answers a miss when the cache fails or holds something else", async () => {
    const broken = new WorkersCacheStore({
      cache: {
        match: () => Promise.reject(new Error("down")),
        put: () => Promise.reject(new Error("down")),
        delete: () => Promise.reject(new Error("down")),
      },
    });
    expect(await broken.get("k")).toBeUndefined();
    const cache = fakeCache();
    cache.kept.set("https://dotbridge.cache.invalid/k", new Response("not ours"));
    expect(await new WorkersCacheStore({ cache }).get("k")).toBeUndefined();
  });
});
