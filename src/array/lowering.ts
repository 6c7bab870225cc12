// How primitives become kernel calls (the rules table's `lower` fields call
// these): the parameter words each WGSL kernel reads, its grid, and the
// multi-pass plans (tree reductions, split-K matmul, matrix-vector forms)
// chosen per adapter.

import { isComputed, type Node } from './node';
import type { KernelPolicy } from '../config';
import { grid1d, Words, type KernelCall, type Lowering, type Slot } from '../gpu/kernels';
import { aroundAxis, contiguousStrides, matmulDims } from './shapes';
import { runDims } from './host';
import { SMALL_MAX } from '../exec/plan';
import { wgslType, type DType } from './dtype';

/** What a lowering may depend on besides the node: the adapter and the kernel policy. */
export interface LowerContext {
  isFallback: boolean;
  maxWorkgroups: number;
  /** Storage buffers one kernel may bind (the device's maxStorageBuffersPerShaderStage). */
  maxStorageBuffers: number;
  policy: KernelPolicy;
}

export const useTree = (ctx: LowerContext) => (ctx.policy.reduce === 'auto' ? !ctx.isFallback : ctx.policy.reduce === 'tree');

export function prod(xs: readonly number[]): number {
  return xs.reduce((a, b) => a * b, 1);
}

export function transposeStrides(inShape: readonly number[], perm: number[]): number[] {
  const st = contiguousStrides(inShape);
  return perm.map((p) => st[p]!);
}

export function single(shader: KernelCall['shader'], w: Words, inputs: Slot[], threads: number): Lowering {
  return { calls: [{ shader, params: w.buffer, slots: [{ out: true }, ...inputs], grid: grid1d(threads) }] };
}

/**
 * Output axes (size, input stride) with size-1 axes dropped and neighbours
 * merged where the input stays contiguous across them (a transpose of
 * (B, T, H, D) to (B, H, T, D) becomes three axes, a slice of rows one).
 */
function mergedAxes(shape: readonly number[], strides: readonly number[]): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  shape.forEach((d, i) => {
    if (d === 1) return;
    const last = out[out.length - 1];
    if (last && last[1] === strides[i]! * d) {
      last[0] *= d;
      last[1] = strides[i]!;
    } else out.push([d, strides[i]!]);
  });
  return out;
}

/** Storage-buffer bindings start at multiples of this many bytes (WebGPU's largest minStorageBufferOffsetAlignment). */
const BINDING_ALIGNMENT = 256;

/**
 * A slice that is one contiguous run of an array already computed, starting at
 * element `first` on a binding boundary: a view of its buffer, not a copy
 * (scan's minibatch x[k], a batch of a stacked dataset). Only of a computed
 * input, which its holder keeps anyway; a view of an intermediate would keep
 * the whole intermediate alive for as long as the slice is. Not of a small
 * array (≤ SMALL_MAX elements): its value may sit in a small-value slot, which
 * a view's read would not find.
 */
export function contiguousView(n: Node, first: number): Lowering | null {
  const x = n.inputs[0]!;
  if (!isComputed(x) || x.size <= SMALL_MAX || n.size === 0 || (first * 4) % BINDING_ALIGNMENT !== 0) return null;
  // One run: one index on each leading axis, then any range on one axis, then whole axes.
  const j = n.shape.findIndex((d) => d !== 1);
  const ok = j < 0 || n.shape.slice(j + 1).every((d, i) => d === x.shape[j + 1 + i]);
  return ok ? { alias: 0, offset: first * 4 } : null;
}

/** out[i] = src[base + sum_d pos_d(i) * strides[d]], the sizes and strides as WGSL literals (shaders/layout.wgsl). */
export function gather(n: Node, base: number, strides: number[]): Lowering {
  // (An empty output runs no thread: no index code, and no division by a zero size.)
  const axes = n.size === 0 ? [] : mergedAxes(n.shape, strides);
  const lines: string[] = [];
  for (let d = axes.length - 1; d >= 0; d--) {
    const [size, stride] = axes[d]!;
    lines.push(d === 0 ? `off += rem * ${stride}u;` : `off += (rem % ${size}u) * ${stride}u; rem /= ${size}u;`);
  }
  const w = new Words(4).u32(0, n.size).u32(2, base);
  return single({ template: 'layout', entry: 'gather', fill: { GATHER: lines.join(' '), PAD: '' } }, w, [{ input: 0 }], n.size);
}

/** Pad: each output axis' position checked against [start, start + input size), the input offset from it. */
export function padLowering(n: Node, starts: readonly number[], inShape: readonly number[]): Lowering {
  const st = contiguousStrides(inShape);
  const lines: string[] = [];
  for (let d = n.size === 0 ? -1 : n.shape.length - 1; d >= 0; d--) {
    const dim = n.shape[d]!;
    const [s, len] = [starts[d]!, inShape[d]!];
    if (dim === 1 && s === 0 && len === 1) continue; // (a size-1 axis of an empty input still rules every element out)
    lines.push(
      `{ let c = ${d === 0 ? 'rem' : `rem % ${dim}u`}; ${d === 0 ? '' : `rem /= ${dim}u; `}` +
        (s === 0 && len === dim ? '' : `if (c < ${s}u || c >= ${s + len}u) { inside = false; } `) +
        `off += (c - ${s}u) * ${st[d]}u; }`,
    );
  }
  const w = new Words(4).u32(0, n.size);
  return single({ template: 'layout', entry: 'pad', fill: { GATHER: '', PAD: lines.join(' ') } }, w, [{ input: 0 }], n.size);
}

/** Inputs one concatenation dispatch copies at most (its params hold 4 + 2 words per input in 36). */
export const CONCAT_PER_CALL = 15;

/**
 * Concatenation: consecutive non-empty inputs in runs of as many as one
 * kernel may bind (the output takes one binding), one call per run. Each
 * call writes its run's columns of every output row (concat.wgsl).
 */
export function concatLowering(n: Node, ctx: LowerContext): Lowering {
  const ax = n.params.axis as number;
  const outer = prod(n.shape.slice(0, ax));
  const width = prod(n.shape.slice(ax));
  const per = Math.max(1, Math.min(CONCAT_PER_CALL, ctx.maxStorageBuffers - 1));
  const parts = n.inputs.map((q, k) => ({ k, width: prod(q.shape.slice(ax)) }));
  let start = 0;
  const at = parts.map((q) => (start += q.width) - q.width); // where each input starts in an output row
  const live = parts.filter((q) => q.width > 0);
  const calls: KernelCall[] = [];
  for (let c = 0; c < live.length && outer > 0; c += per) {
    const run = live.slice(c, c + per);
    const first = at[run[0]!.k]!;
    const w = new Words(36).u32(2, width).u32(3, first);
    let end = 0;
    run.forEach((q, j) => {
      end += q.width;
      w.u32(4 + 2 * j, end).u32(5 + 2 * j, q.width);
    });
    w.u32(0, outer * end).u32(1, end);
    const inputs = run.map((_, j) => `@group(0) @binding(${2 + j}) var<storage, read> in${j}: array<u32>;`);
    const pick = run.map((_, j) => {
      const read = `v = in${j}[o * p(${5 + 2 * j}u) + r${j ? ` - p(${2 + 2 * j}u)` : ''}];`;
      return j === run.length - 1 ? `{ ${read} }` : `if (r < p(${4 + 2 * j}u)) { ${read} }`;
    });
    calls.push({
      shader: { template: 'concat', entry: 'main', fill: { INPUTS: inputs.join('\n'), PICK: pick.join(' else ') } },
      params: w.buffer,
      slots: [{ out: true }, ...run.map((q) => ({ input: q.k }))],
      grid: grid1d(outer * end),
    });
  }
  return { calls };
}

const ROWS_CHUNK = 1024; // elements a reduce_rows workgroup reduces
const STRIDED_CHUNK = 64; // elements one reduce_strided thread combines
// Up to this many rows a strided reduction is one pass, a thread per output looping over all of
// them: a second pass would cost a dispatch, more than the longer loop (a small model's bias
// gradients, a batch's loss).
export const STRIDED_ONE_PASS = 256;

/**
 * Reduce the middle axis of (A, R, B) in passes (a float32 sum unless `fill`
 * says otherwise, see reduceFill); the last pass writes the output, a float32
 * sum times `scale`. Appends scratch sizes.
 */
export function sumPasses(
  A: number,
  R: number,
  B: number,
  src: Slot,
  scratch: number[],
  workgroupTree = true,
  fill: Record<string, string> = reduceFill('sum', 'float32'),
  scale = 1,
): KernelCall[] {
  const calls: KernelCall[] = [];
  let from = src;
  let r = R;
  do {
    // Workgroup-memory trees pay off on GPUs; on CPU adapters barriers cost more than they save.
    const rows = workgroupTree && B === 1 && r > 1;
    const chunk = rows ? ROWS_CHUNK : r <= STRIDED_ONE_PASS ? Math.max(1, r) : STRIDED_CHUNK;
    const rOut = Math.max(1, Math.ceil(r / chunk));
    let to: Slot = { out: true };
    if (rOut > 1) {
      scratch.push(A * rOut * B * 4);
      to = { scratch: scratch.length - 1 };
    }
    const w = new Words(8)
      .u32(0, A)
      .u32(1, r)
      .u32(2, B)
      .u32(3, rOut)
      .u32(4, chunk)
      .f32(5, rOut === 1 ? scale : 1);
    const vec4 = !rows && A * r * B > 0 && B % 4 === 0; // (vec4 bindings need 16 bytes or more)
    const grid = rows ? grid1d(A * rOut, 1) : grid1d((A * rOut * B) / (vec4 ? 4 : 1));
    const entry = rows ? 'reduce_rows' : vec4 ? 'reduce_strided4' : 'reduce_strided';
    calls.push({ shader: { template: 'reduce', entry, fill }, params: w.buffer, slots: [to, from], grid });
    from = to;
    r = rOut;
  } while (r > 1);
  return calls;
}

export function lowerMatmul(n: Node, ctx: LowerContext): Lowering {
  const { ta, tb, M, N, K, batch, aBatch, bBatch } = matmulDims(n);
  if (batch === 1 && (N === 1 || M === 1) && K > 0 && ctx.policy.matmul === 'auto') {
    // A matrix-vector product. With N = 1, C = op(A) v; with M = 1, C^T = op(B)^T a^T.
    // A stored row-major (R, C) either gives out = A v ("rows") or out = A^T v ("cols").
    const [mat, vec, transposed] = N === 1 ? [0, 1, ta] : [1, 0, !tb];
    const R = transposed ? K : N === 1 ? M : N;
    const C = transposed ? (N === 1 ? M : N) : K;
    return lowerMatvec(mat, vec, transposed, R, C, ctx);
  }
  // Thin products waste most of a 64x64 tile: one thread per output instead.
  if (ctx.policy.matmul === 'auto' && (M < 16 || N < 16) && K <= 1024 && batch * M * N > 0) {
    const w = new Words(12).u32(0, M).u32(1, N).u32(2, K).u32(3, batch).u32(4, aBatch).u32(5, bBatch).u32(6, K).u32(7, 1);
    const four = N % 4 === 0; // four outputs of a row per thread
    const shader = { template: 'matmul_register', entry: four ? 'small4' : 'small', fill: { TRANS_A: String(ta), TRANS_B: String(tb) } } as const;
    return {
      calls: [{ shader, params: w.buffer, slots: [{ out: true }, { input: 0 }, { input: 1 }], grid: grid1d((batch * M * N) / (four ? 4 : 1)) }],
    };
  }
  const variant = ctx.policy.matmul !== 'auto' ? ctx.policy.matmul : ctx.isFallback ? 'register' : 'shared';
  const tiles = Math.ceil(M / 64) * Math.ceil(N / 64) * batch;
  // Split-K when the output is too small to occupy the GPU but K is long
  // (the seed's x^T g: 512 outputs, K = 65536 rows).
  // A CPU adapter (SwiftShader) runs workgroups on a few cores: a handful of tiles already fills
  // them, and the extra reduction pass would cost more than it saves.
  const [fewTiles, targetGroups] = ctx.isFallback ? [4, 8] : [64, 256];
  let splits = 1;
  if (tiles < fewTiles && K >= 256 && batch * M * N > 0)
    splits = Math.min(Math.ceil(K / 128), Math.max(1, Math.floor(targetGroups / tiles)), ctx.maxWorkgroups);
  const kChunk = Math.max(16, Math.ceil(Math.ceil(K / splits) / 16) * 16);
  splits = Math.max(1, Math.ceil(K / kChunk));
  // Grid z runs over (batch, split) pairs; past maxWorkgroups of them, dispatch in parts (word 8: first z).
  const params = (zBase: number) =>
    new Words(12).u32(0, M).u32(1, N).u32(2, K).u32(3, batch).u32(4, aBatch).u32(5, bBatch).u32(6, kChunk).u32(7, splits).u32(8, zBase).buffer;
  // vec4 loads need every dimension (and so every row start and k chunk) a multiple of 4.
  const aligned = M % 4 === 0 && N % 4 === 0 && K % 4 === 0;
  const shader = {
    template: variant === 'shared' ? 'matmul_shared' : 'matmul_register',
    entry: variant === 'register' && aligned ? 'main8' : 'main',
    fill: { TRANS_A: String(ta), TRANS_B: String(tb) },
  } as const;
  const mm = (out: Slot): KernelCall[] => {
    const calls: KernelCall[] = [];
    for (let z0 = 0; z0 < batch * splits; z0 += ctx.maxWorkgroups) {
      const grid: [number, number, number] = [Math.ceil(N / 64), Math.ceil(M / 64), Math.min(ctx.maxWorkgroups, batch * splits - z0)];
      calls.push({ shader, params: params(z0), slots: [out, { input: 0 }, { input: 1 }], grid });
    }
    return calls;
  };
  if (splits === 1) return { calls: mm({ out: true }) };
  const scratch = [splits * batch * M * N * 4];
  const reduce = sumPasses(1, splits, batch * M * N, { scratch: 0 }, scratch, useTree(ctx));
  return { calls: [...mm({ scratch: 0 }), ...reduce], scratch };
}

export function lowerMatvec(mat: number, vec: number, transposed: boolean, R: number, C: number, ctx: LowerContext): Lowering {
  const w = (chunk: number) => new Words(4).u32(0, R).u32(1, C).u32(2, chunk).buffer;
  const slots: Slot[] = [{ out: true }, { input: mat }, { input: vec }];
  if (!transposed) {
    const perThread = ctx.policy.matvec === 'auto' ? ctx.isFallback : ctx.policy.matvec === 'thread';
    // On CPU adapters, four rows per thread (rows_block4); a forced 'thread' policy keeps one.
    const block = ctx.policy.matvec === 'auto' && ctx.isFallback && C % 4 === 0;
    const entry = block ? 'rows_block4' : perThread ? (C % 4 === 0 ? 'rows_thread4' : 'rows_thread') : 'rows_group';
    const grid = perThread ? grid1d(block ? Math.ceil(R / 4) : R, 64) : grid1d(R, 1);
    return { calls: [{ shader: { template: 'matvec', entry }, params: w(0), slots, grid }] };
  }
  // Columns, split over chunks of rows so there is enough parallelism, then summed.
  const vec4 = C % 4 === 0;
  const wide = vec4 && C % 16 === 0 && ctx.isFallback && ctx.policy.matvec === 'auto'; // sixteen columns per thread on CPU adapters
  const entry = wide ? 'cols16' : vec4 ? 'cols4' : 'cols';
  const colGroups = Math.ceil((wide ? C / 16 : vec4 ? C / 4 : C) / 64);
  // A CPU adapter needs far fewer splits to fill its cores, and each split's partial sums cost a
  // pass over splits x C floats afterwards (3.5 ms of the (65536, 512) gradient with 1024 splits).
  // Up to STRIDED_ONE_PASS rows, one pass: the sum of the splits would cost a dispatch, more than
  // the longer loop (a small layer's weight gradient h^T g).
  const splits = R <= STRIDED_ONE_PASS ? 1 : Math.max(1, Math.min(Math.ceil(R / 64), Math.ceil((ctx.isFallback ? 256 : 2048) / colGroups)));
  const chunk = Math.ceil(R / splits);
  const realSplits = Math.ceil(R / chunk);
  const grid: [number, number, number] = [colGroups, Math.min(realSplits, 65535), Math.ceil(realSplits / 65535)];
  if (realSplits === 1) return { calls: [{ shader: { template: 'matvec', entry }, params: w(chunk), slots, grid }] };
  const scratch = [realSplits * C * 4];
  const first: KernelCall = { shader: { template: 'matvec', entry }, params: w(chunk), slots: [{ scratch: 0 }, slots[1]!, slots[2]!], grid };
  return { calls: [first, ...sumPasses(1, realSplits, C, { scratch: 0 }, scratch, useTree(ctx))], scratch };
}

// ---- max, min, argmax, argmin ----

/** reduce.wgsl's fill for one reduction of one dtype: the element type, combine (scalar and vec4), identity. */
export function reduceFill(kind: 'sum' | 'max' | 'min', d: DType): Record<string, string> {
  const T = wgslType(d);
  const lanes = 'vec4<T>(combine(a.x, b.x), combine(a.y, b.y), combine(a.z, b.z), combine(a.w, b.w))';
  if (kind === 'sum')
    return {
      T,
      COMBINE: 'a + b',
      COMBINE4: 'a + b',
      ZERO: T === 'f32' ? '0.0' : `0${T === 'i32' ? 'i' : 'u'}`,
      FINISH: T === 'f32' ? 'v * P.scale' : 'v',
    };
  const [fn, cmp] = kind === 'max' ? ['max', '>='] : ['min', '<='];
  if (T !== 'f32') {
    const zero = kind === 'max' ? (T === 'i32' ? '(-2147483647i - 1i)' : '0u') : T === 'i32' ? '2147483647i' : '1u';
    return { T, COMBINE: `${fn}(a, b)`, COMBINE4: `${fn}(a, b)`, ZERO: zero, FINISH: 'v' };
  }
  // NaN wins, whichever side it is on (tested on the bits).
  return {
    T,
    COMBINE: `select(select(select(b, a, a ${cmp} b), b, is_nan(b)), a, is_nan(a))`,
    COMBINE4: lanes,
    // -Inf / Inf from a runtime word: WGSL rejects an infinite value in a constant expression.
    ZERO: `bitcast<f32>(${kind === 'max' ? '0xff800000u' : '0x7f800000u'} | (P.A & 0u))`,
    FINISH: 'v',
  };
}

export function lowerReduce(n: Node, ctx: LowerContext, kind: 'sum' | 'max' | 'min'): Lowering {
  const [A, R, B] = runDims(n.inputs[0]!.shape, n.params.axes as number[]);
  const scratch: number[] = [];
  const scale = (n.params.scale as number | undefined) ?? 1;
  return { calls: sumPasses(A, R, B, { input: 0 }, scratch, useTree(ctx), reduceFill(kind, n.dtype), scale), scratch };
}

export function lowerArg(n: Node, better: '>' | '<'): Lowering {
  const x = n.inputs[0]!;
  const [A, R, B] = runDims(x.shape, [n.params.axis as number]);
  const fill = { T: wgslType(x.dtype), BETTER: better, IS_NAN: x.dtype === 'float32' ? 'is_nan(v)' : 'false' };
  return single({ template: 'argreduce', entry: 'main', fill }, new Words(4).u32(0, A).u32(1, R).u32(2, B), [{ input: 0 }], A * B);
}

// ---- indexing ----

/** `viewShape`: the (A, N, B) array indexed (the input of a gather, the output of a scatter-add). */
export function lowerIndexing(n: Node, entry: string, viewShape: readonly number[], K: number): Lowering {
  const [A, N, B] = aroundAxis(viewShape, n.params.axis as number);
  const w = new Words(8).u32(0, A).u32(1, K).u32(2, N).u32(3, B).u32(4, n.size);
  return single({ template: 'indexing', entry }, w, [{ input: 0 }, { input: 1 }], n.size);
}

// ---- random numbers (shaders/random.wgsl) ----

export function lowerThreefry(n: Node): Lowering {
  const entry = n.params.out as string;
  return single({ template: 'random', entry }, new Words(4).u32(0, n.size).u32(1, n.params.offset as number), [{ input: 0 }], n.size);
}

/** Two passes: stable ranks of the input into scratch, then out[rank] = i. */
export function lowerPermutationOf(n: Node): Lowering {
  const w = new Words(4).u32(0, n.size).buffer;
  const grid = grid1d(n.size);
  return {
    calls: [
      { shader: { template: 'random', entry: 'ranks' }, params: w, slots: [{ scratch: 0 }, { input: 0 }], grid },
      { shader: { template: 'random', entry: 'scatter' }, params: w, slots: [{ out: true }, { scratch: 0 }], grid },
    ],
    scratch: [Math.max(4, n.size * 4)],
  };
}

// ---- convolution windows (shaders/conv.wgsl) ----

/**
 * A window kernel of conv.wgsl over the NHWC array of shape `image`: im2col
 * and max_pool (the node is the patches / pooled output), col2im and
 * max_pool_grad (the node is the image).
 */
export function lowerWindow(n: Node, entry: 'im2col' | 'col2im' | 'max_pool' | 'max_pool_grad', image: readonly number[]): Lowering {
  const p = n.params;
  const [N, H, W, C] = image as [number, number, number, number];
  const w = new Words(16)
    .u32(0, N)
    .u32(1, H)
    .u32(2, W)
    .u32(3, C)
    .u32(4, p.oh)
    .u32(5, p.ow)
    .u32(6, p.kh)
    .u32(7, p.kw)
    .u32(8, p.sh)
    .u32(9, p.sw)
    .u32(10, p.padTop)
    .u32(11, p.padLeft)
    .u32(12, n.size)
    .f32(13, p.pad);
  const inputs = n.inputs.map((_, input) => ({ input }));
  const tiled = p.sh === p.kh && p.sw === p.kw && p.padTop === 0 && p.padLeft === 0 && p.oh * p.kh === H && p.ow * p.kw === W;
  if (entry === 'max_pool_grad' && tiled) {
    // Windows that tile the image: one thread per window writes all of its entries.
    const windows = N * p.oh * p.ow * C;
    w.u32(12, windows);
    return single({ template: 'conv', entry: 'max_pool_scatter' }, w, inputs, windows);
  }
  return single({ template: 'conv', entry }, w, inputs, n.size);
}
