import { defineConfig } from 'vitest/config';

/**
 * The real-guest suite (`npm run test:real-guest`): boots Debian kernels
 * under QEMU once (setup.ts builds the guests missing from the cache) and
 * holds dumpsieve to each guest's own truth and to makedumpfile, drgn and
 * libkdumpfile. Not part of plain `npm test`.
 */
export default defineConfig({
  test: {
    include: ['test/real-guest/**/*.test.ts'],
    globalSetup: ['test/real-guest/setup.ts'],
    testTimeout: 300_000,
    hookTimeout: 600_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
  },
});
