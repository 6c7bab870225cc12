import { defineConfig } from 'vitest/config';
import { playwright } from '@vitest/browser-playwright';
import type { Plugin } from 'vite';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from './test/helpers/chromium';
import { loadMnist } from './test/helpers/mnist';

// The demo's digits: the README's fixed MNIST split (8,000 training, then
// 2,000 held-out) from the `mnist` devDependency, packed as bytes (pixels
// 0-255 row after row, then the labels) and served as /mnist.bin, in dev
// and in the build alike; nothing generated is kept in the repository.
function mnistAsset(): Plugin {
  const bytes = () => {
    const d = loadMnist();
    const pixels = d.trainX.length + d.testX.length;
    const out = new Uint8Array(pixels + d.trainY.length + d.testY.length);
    d.trainX.forEach((v, i) => (out[i] = Math.round(v * 255)));
    d.testX.forEach((v, i) => (out[d.trainX.length + i] = Math.round(v * 255)));
    out.set(d.trainY, pixels);
    out.set(d.testY, pixels + d.trainY.length);
    return out;
  };
  let cached: Uint8Array | null = null;
  return {
    name: 'mnist-asset',
    configureServer(server) {
      server.middlewares.use('/mnist.bin', (_req, res) => {
        cached ??= bytes();
        res.setHeader('Content-Type', 'application/octet-stream');
        res.end(Buffer.from(cached));
      });
    },
    generateBundle() {
      this.emitFile({ type: 'asset', fileName: 'mnist.bin', source: (cached ??= bytes()) });
    },
  };
}

// One config for the demo page (vite), the library tests on Node with Dawn
// (project "node") and the same tests in headless Chromium with WebGPU
// (project "browser", system Chromium driven by playwright-core).

export default defineConfig({
  plugins: [mnistAsset()],
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
