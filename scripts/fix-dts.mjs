// After tsc emits dist/**/*.d.ts: make them resolvable by a consumer's strict
// TypeScript under any moduleResolution. Relative imports (and module augmentations) get the `.js`
// extension Node ESM requires (nodenext rejects extensionless ones), and the
// entry declares the WebGPU types and the disposable lib its signatures use.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const root = 'dist';
const files = [];
(function walk(d) {
  for (const f of readdirSync(d)) {
    const p = join(d, f);
    if (statSync(p).isDirectory()) walk(p);
    else if (p.endsWith('.d.ts')) files.push(p);
  }
})(root);

const exists = (p) => {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
};
for (const file of files) {
  const src = readFileSync(file, 'utf8');
  const out = src.replace(/(from\s+|import\(|declare module\s+)(['"])(\.{1,2}\/[^'"]+)\2/g, (m, lead, q, spec) => {
    if (/\.(js|json)$/.test(spec)) return m;
    const base = join(dirname(file), spec);
    const target = exists(`${base}.d.ts`) ? `${spec}.js` : exists(join(base, 'index.d.ts')) ? `${spec}/index.js` : spec;
    return `${lead}${q}${target}${q}`;
  });
  const head = file === join(root, 'index.d.ts') ? '/// <reference types="@webgpu/types" />\n/// <reference lib="esnext.disposable" />\n' : '';
  writeFileSync(file, head + out);
}
console.log(`fix-dts: ${files.length} declaration files`);
