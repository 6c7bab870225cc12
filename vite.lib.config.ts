import { defineConfig } from 'vite';

// `npm run build`: the library as one ESM file, WGSL inlined as strings;
// declarations come from tsc (tsconfig.build.json). Dawn ('webgpu') stays an
// import resolved at run time in Node only.
export default defineConfig({
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: true,
    lib: { entry: 'src/index.ts', formats: ['es'], fileName: () => 'index.js' },
    rollupOptions: { external: ['webgpu', /^node:/] },
    target: 'es2022',
    minify: false,
  },
});
