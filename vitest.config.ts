import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

// Most suites wait (on servers they start, timers, child processes) rather than
// compute, so files run two per core: on 2 cores vitest's default (cores - 1)
// ran them one at a time. Every suite takes free ports and its own temp dirs, so
// files do not share ports or state. TVM_TEST_WORKERS overrides.
const workers = Number(process.env.TVM_TEST_WORKERS) || Math.max(2, availableParallelism() * 2);

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    maxWorkers: workers,
    minWorkers: 1,
    reporters: ['default'],
  },
});
