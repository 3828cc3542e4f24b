import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    root: ".",
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
    // Test files run in parallel: every test binds its own ephemeral loopback ports and stops
    // its own processes, so files share nothing. vitest's default on two cores is one worker
    // (cpus - 1); three keep both cores busy while some files wait on the network.
    maxWorkers: 3,
  },
});
