import { defineConfig } from 'vitest/config';
import { playwright } from '@vitest/browser-playwright';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from './test/helpers/chromium';

// One config for the demo page (vite), the library tests on Node with Dawn
// (project "node") and the same tests in headless Chromium with WebGPU
// (project "browser", system Chromium driven by playwright-core).

export default defineConfig({
  build: { outDir: 'dist-demo', rollupOptions: { input: { main: 'index.html' } } },
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'node',
          include: ['test/**/*.test.ts'],
          exclude: ['test/browser/**'],
          setupFiles: ['test/setup/kernels-on-gpu.ts'],
          environment: 'node',
          testTimeout: 120_000,
          hookTimeout: 120_000,
          // One GPU, one device: run files one after another in one process.
          fileParallelism: false,
          pool: 'forks', // Dawn reads VK_ICD_FILENAMES from the real environment, which worker threads don't share
        },
      },
      {
        extends: true,
        test: {
          name: 'browser',
          include: ['test/browser/**/*.test.ts'],
          setupFiles: ['test/setup/kernels-on-gpu.ts'],
          testTimeout: 120_000,
          browser: {
            enabled: true,
            headless: true,
            provider: playwright({
              launchOptions: { executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS },
            }),
            instances: [{ browser: 'chromium' }],
            screenshotFailures: false,
          },
        },
      },
    ],
  },
});
