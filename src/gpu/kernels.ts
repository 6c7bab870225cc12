// WGSL sources, their small generated specialisations, and the pipeline cache.
// The .wgsl files are imported as text at build time (Vite's ?raw), so the
// same sources reach Node (vitest, vite-node) and the browser bundle.

import elementwiseSrc from '../../shaders/elementwise.wgsl?raw';
import reduceSrc from '../../shaders/reduce.wgsl?raw';
import layoutSrc from '../../shaders/layout.wgsl?raw';
import matmulRegisterSrc from '../../shaders/matmul_register.wgsl?raw';
import matmulSharedSrc from '../../shaders/matmul_shared.wgsl?raw';
import matvecSrc from '../../shaders/matvec.wgsl?raw';
import argreduceSrc from '../../shaders/argreduce.wgsl?raw';
import indexingSrc from '../../shaders/indexing.wgsl?raw';
import randomSrc from '../../shaders/random.wgsl?raw';
import convSrc from '../../shaders/conv.wgsl?raw';
import concatSrc from '../../shaders/concat.wgsl?raw';
import scalarFunctionsSrc from '../../shaders/scalar_functions.wgsl?raw';

const templates: Record<string, string> = {
  elementwise: elementwiseSrc,
  reduce: reduceSrc,
  layout: layoutSrc,
  concat: concatSrc,
  matmul_register: matmulRegisterSrc,
  matmul_shared: matmulSharedSrc,
  matvec: matvecSrc,
  argreduce: argreduceSrc,
  indexing: indexingSrc,
  random: randomSrc,
  conv: convSrc,
};

/** A shader: which template, with what substitutions. `key` identifies the specialisation. */
export interface ShaderSpec {
  template: keyof typeof templates;
  entry: string;
  fill?: Record<string, string>;
}

export function shaderKey(s: ShaderSpec): string {
  return `${s.template}:${s.entry}:${s.fill ? JSON.stringify(s.fill) : ''}`;
}

// What the matrix-product and reduction templates store when no epilogue is fused into them (src/gpu/epilogue.ts).
const productDefaults = (out: string, vec4: boolean, T = 'f32') => ({
  IN0: '2',
  IN1: '3',
  PARAMS_W: '',
  EPILOGUE: `fn store(i: u32, v: ${T}) { ${out}[i] = v; }${vec4 ? `\nfn store4(j: u32, v: vec4<${T}>) { ${out}4[j] = v; }` : ''}`,
});

/** Fills a template gets unless its spec gives them. */
const defaults: Record<string, Record<string, string>> = {
  matmul_register: productDefaults('C', true),
  matmul_shared: productDefaults('C', false),
  matvec: productDefaults('out', false),
  reduce: {
    ...productDefaults('out', true, 'T'),
    // NaN test on the bits (x != x is an ordered compare on Vulkan, false for NaN); an epilogue brings scalar_functions' own.
    EPILOGUE: `${productDefaults('out', true, 'T').EPILOGUE}\nfn is_nan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }`,
  },
};

export function shaderSource(s: ShaderSpec): string {
  let src = templates[s.template]!;
  const fill = { ...defaults[s.template], ...s.fill };
  for (const [k, v] of Object.entries(fill)) src = src.split(`{{${k}}}`).join(v);
  return src.split('{{SCALAR_FUNCTIONS}}').join(scalarFunctionsSrc);
}

/** Where a kernel's binding i (after the params uniform at 0) gets its buffer. */
export type Slot = { out: true } | { input: number } | { scratch: number };

export interface KernelCall {
  shader: ShaderSpec;
  params: ArrayBuffer;
  /** Storage bindings 1..n, in order. */
  slots: Slot[];
  grid: [number, number, number];
}

/** What a primitive becomes on the GPU: kernel calls, or an alias of an input's buffer. */
export type Lowering =
  | { calls: KernelCall[]; scratch?: number[] }
  /** `offset`: bytes past the input's own offset (a contiguous slice), else the node's params.offset or 0. */
  | { alias: number; offset?: number };

/** Packs u32/f32 words for a params uniform. */
export class Words {
  private view: DataView;
  constructor(words: number) {
    this.view = new DataView(new ArrayBuffer(Math.ceil(words / 4) * 16));
  }
  u32(i: number, v: number): this {
    this.view.setUint32(i * 4, v >>> 0, true);
    return this;
  }
  f32(i: number, v: number): this {
    this.view.setFloat32(i * 4, v, true);
    return this;
  }
  get buffer(): ArrayBuffer {
    return this.view.buffer as ArrayBuffer;
  }
}

export const WG = 256;
/** Workgroups for one thread per element, folded into 2-D past the 65,535-per-dimension limit. */
export function grid1d(threads: number, perGroup = WG, maxDim = 65535): [number, number, number] {
  const groups = Math.ceil(threads / perGroup);
  if (groups <= maxDim) return [groups, 1, 1];
  const y = Math.ceil(groups / maxDim);
  return [Math.ceil(groups / y), y, 1];
}

/** Pipelines, compiled once per device and specialisation (async, so compiling never blocks). */
export class PipelineCache {
  private ready = new Map<string, GPUComputePipeline>();
  private pending = new Map<string, Promise<GPUComputePipeline>>();
  constructor(private device: GPUDevice) {}

  get(s: ShaderSpec): GPUComputePipeline | undefined {
    return this.ready.get(shaderKey(s));
  }

  /**
   * Compile now, blocking (createComputePipeline): for a dispatch from
   * synchronous code, which cannot await a compile. A compile already under
   * way asynchronously is not waited for; this one replaces it.
   */
  loadNow(s: ShaderSpec): GPUComputePipeline {
    const key = shaderKey(s);
    const have = this.ready.get(key);
    if (have) return have;
    const module = this.device.createShaderModule({ code: shaderSource(s) });
    const pl = this.device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: s.entry } });
    this.ready.set(key, pl);
    return pl;
  }

  async load(s: ShaderSpec): Promise<GPUComputePipeline> {
    const key = shaderKey(s);
    const have = this.ready.get(key);
    if (have) return have;
    let p = this.pending.get(key);
    if (!p) {
      const code = shaderSource(s);
      const module = this.device.createShaderModule({ code });
      p = this.device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: s.entry } }).then(
        (pl) => (this.ready.has(key) || this.ready.set(key, pl), this.pending.delete(key), this.ready.get(key)!),
        async (e) => {
          this.pending.delete(key);
          const info = await module.getCompilationInfo();
          const msgs = info.messages.map((m) => `${m.lineNum}:${m.linePos} ${m.message}`).join('\n');
          throw new Error(`internal error: WGSL pipeline ${key} failed: ${(e as Error).message}\n${msgs}`);
        },
      );
      this.pending.set(key, p);
    }
    return p;
  }
}
