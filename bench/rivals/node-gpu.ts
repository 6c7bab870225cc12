// Node-only: expose a WebGPU implementation (Dawn via the `webgpu` package) as
// navigator.gpu so that browser-oriented libraries (jax-js, TF.js WebGPU) find
// it. Import this BEFORE any rival library is loaded (workloads.ts loads the
// libraries lazily inside init(), so importing this first is sufficient).
//
// On a machine without GPU hardware, Dawn is pointed at Chromium's SwiftShader
// ICD (a CPU Vulkan implementation); if the system drivers yield no adapter it
// retries on SwiftShader. It also installs a Node ESM resolve hook so TF.js
// loads its ESM build (needed for its gradients; see below) and a global
// `require` for tfjs-core's Node platform shim. Both only affect this process.
import fs from 'node:fs';
import { createRequire, register } from 'node:module';

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

function hasGpuHardware(): boolean {
  // A Vulkan ICD json alone proves nothing (Mesa ships several); look for a
  // GPU device node instead.
  try {
    if (fs.readdirSync('/dev/dri').some((f) => f.startsWith('renderD'))) return true;
  } catch {
    /* no /dev/dri */
  }
  return fs.existsSync('/dev/nvidia0');
}

// TF.js gradients live only in tfjs-core's per-file ESM build
// (dist/register_all_gradients.js); the CommonJS bundle that Node picks
// ("main": dist/tf-core.node.js) has none, and that ESM build uses
// bundler-style specifiers ('./gradients' meaning gradients.js next to a
// gradients/ folder, no extensions). This resolve hook makes Node load the
// TF.js packages the way a bundler does in the browser: bare package names go
// to their "module" entry (dist/index.js), extensionless specifiers get '.js'
// (file before folder), and all of it is ESM, so core, the CPU backend and the
// WebGPU backend share one module instance.
const TFJS_ESM_HOOK = `
const PKGS = ['@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-cpu', '@tensorflow/tfjs-backend-webgpu'];
const hasExt = (s) => /\\.[cm]?js$/.test(s);
const asModule = (r) => (r.url.includes('/node_modules/@tensorflow/') && r.url.endsWith('.js') ? { ...r, format: 'module' } : r);
export async function resolve(specifier, context, next) {
  const parent = context.parentURL || '';
  if (PKGS.includes(specifier)) return asModule(await next(specifier + '/dist/index.js', context));
  if (PKGS.some((p) => specifier.startsWith(p + '/')) && !hasExt(specifier)) return asModule(await next(specifier + '.js', context));
  if (parent.includes('/node_modules/@tensorflow/') && /^\\.\\.?\\//.test(specifier) && !hasExt(specifier)) {
    try {
      return asModule(await next(specifier + '.js', context));
    } catch {
      return asModule(await next(specifier + '/index.js', context));
    }
  }
  return next(specifier, context);
}
`;

let tfjsHookInstalled = false;

/** Make `import('@tensorflow/tfjs-core')` etc. load the ESM builds in Node (see above). Idempotent. */
export function installTfjsEsmResolver(): void {
  if (tfjsHookInstalled) return;
  tfjsHookInstalled = true;
  register(`data:text/javascript,${encodeURIComponent(TFJS_ESM_HOOK)}`);
  // tfjs-core's ESM Node platform calls a bare require('util') (it expects a
  // bundler to provide `require`); give it one.
  const g = globalThis as { require?: NodeRequire };
  g.require ??= createRequire(import.meta.url);
}

export interface NodeGpuInfo {
  gpu: GPU;
  adapterDescription: string;
  software: boolean;
}

let installed: Promise<NodeGpuInfo> | undefined;

/**
 * Install navigator.gpu (and a minimal navigator.userAgent /
 * hardwareConcurrency, which jax-js reads) on globalThis. Idempotent.
 * Set RIVALS_FORCE_SWIFTSHADER=1 to force the software adapter.
 */
export function installNodeGpu(): Promise<NodeGpuInfo> {
  installed ??= (async () => {
    installTfjsEsmResolver();
    const { create, globals } = await import('webgpu');
    Object.assign(globalThis, globals);
    const useSwiftShader = () => {
      process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
    };
    const canSwiftShader = !process.env.VK_ICD_FILENAMES && fs.existsSync(SWIFTSHADER_ICD);
    if (canSwiftShader && (process.env.RIVALS_FORCE_SWIFTSHADER === '1' || !hasGpuHardware())) useSwiftShader();
    let gpu = create([]) as unknown as GPU;
    let adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    // Dawn reads VK_ICD_FILENAMES per instance, so a second instance can retry
    // on SwiftShader when the system drivers offer no usable adapter (e.g. only
    // Mesa lavapipe, which Dawn rejects).
    if (!adapter && canSwiftShader && !process.env.VK_ICD_FILENAMES) {
      useSwiftShader();
      gpu = create([]) as unknown as GPU;
      adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    }
    if (!adapter) throw new Error('no WebGPU adapter (Dawn). Is libvulkan1 installed?');
    const prev = (globalThis as { navigator?: object }).navigator;
    const nav = {
      userAgent: `Node.js/${process.versions.node}`,
      hardwareConcurrency: (await import('node:os')).cpus().length,
      ...(prev ?? {}),
      gpu,
    };
    Object.defineProperty(globalThis, 'navigator', { value: nav, configurable: true, writable: true });
    const info = adapter.info;
    const adapterDescription = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' / ');
    const text = adapterDescription.toLowerCase();
    const software = text.includes('swiftshader') || text.includes('llvmpipe') || !!process.env.VK_ICD_FILENAMES?.includes('swiftshader');
    return { gpu, adapterDescription, software };
  })();
  return installed;
}
