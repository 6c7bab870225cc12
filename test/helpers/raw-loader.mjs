// Node module hooks for `import text from './x.wgsl?raw'` (a Vite feature), so
// that src/ modules can be loaded by plain Node + tsx in test/modules.test.ts.
import { readFile } from 'node:fs/promises';

export async function resolve(specifier, context, next) {
  if (specifier.endsWith('?raw')) {
    const { url } = await next(specifier.slice(0, -4), context);
    return { url: `${url}?raw`, shortCircuit: true };
  }
  return next(specifier, context);
}

export async function load(url, context, next) {
  if (url.endsWith('?raw')) {
    const text = await readFile(new URL(url.slice(0, -4)), 'utf8');
    return { format: 'module', source: `export default ${JSON.stringify(text)};`, shortCircuit: true };
  }
  return next(url, context);
}
