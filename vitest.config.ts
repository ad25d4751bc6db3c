import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 600_000,
    pool: 'forks',
    // Two cores: llama.cpp oracles and fixture generation are heavy, keep workers few.
    maxWorkers: 2,
  },
});
