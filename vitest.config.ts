import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Compression workers run the build (dist/): rebuilt here when stale.
    globalSetup: ['test/setup/build.ts'],
    // Real guests boot QEMU: `npm run test:real-guest` (own config).
    exclude: ['test/real-guest/**', 'node_modules/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
