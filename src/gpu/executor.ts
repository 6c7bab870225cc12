// Turns the pending part of the lazy graph into GPU work: one command encoder,
// one compute pass, one queue.submit per evaluation.
//
//   plan:    walk back from the targets to computed nodes; fuse chains of
//            elementwise nodes that nothing else reads into single kernels;
//            lower everything else through the primitives table.
//   compile: create any missing pipelines (async), then plan again.
//   execute: upload constants, encode every dispatch, hand each
//            intermediate's buffer back to the pool right after its last
//            reader is encoded, copy requested results to staging buffers,
//            submit once, then map the staging buffers.
//
// Out of memory. WebGPU reports a failed allocation through an error scope,
// asynchronously; the buffer it returns is invalid, and so is any submission
// that uses it. Each execute() runs inside 'out-of-memory' and 'validation'
// scopes, and the next evaluation waits until they are settled (microseconds),
// so no evaluation ever uses a bad buffer or a value that failed.
//  - An evaluation that creates CHECKED_BYTES or more of new buffers (any
//    amount once this device has run out of memory) is encoded, then undone:
//    graph and pool restored exactly (pool journal, saved node fields), the
//    new buffers set aside. Once the scopes say they are good they join the
//    pool and the evaluation is encoded again for real. If an allocation
//    failed, the pool's idle buffers are freed and it is tried once more; a
//    second failure throws OutOfMemoryError and the graph is unchanged.
//  - Smaller growth is submitted at once. If its scopes then report a
//    failure, the submission did not run: the values it was computing are
//    marked lost (reading one throws DisposedArrayError), the pool is freed,
//    and the read rejects with OutOfMemoryError.

import { DisposedArrayError, DeviceLostError, NanError, OutOfMemoryError } from '../errors';
import { currentContext, envFlag, init, onDeviceReset, type GpuContext } from './device';
import { BufferPool, AllocationFailed, bucketSize, describeStats, type MemoryStats, type Storage } from './pool';
import { IdleWait, idleWaitWanted, type PassClock } from './wait';
import { SubmissionTimer, type KernelTiming } from './timing';
import { grid1d, PipelineCache, shaderKey, type KernelCall, type Lowering, type ShaderSpec, type Slot } from './kernels';
import { isComputed, isHeld, withNodeScope, type Node } from '../array/node';
import { primitives, type KernelPolicy, type LowerContext } from '../array/primitives';
import { contiguousStrides } from '../array/shapes';
import { hostWork } from '../array/host';

interface Runtime {
  ctx: GpuContext;
  pool: BufferPool;
  pipelines: PipelineCache;
  uniforms: GPUBuffer[];
  staging: Map<number, GPUBuffer[]>; // free readback buffers by size
  idle: IdleWait;
  /** The last execute()'s error scopes, until they are settled: the next evaluation waits for them. */
  settling: Promise<void> | null;
  /** This device has run out of memory before: every evaluation that creates a buffer is checked first. */
  careful: boolean;
}

let rt: Runtime | null = null;
const policy: KernelPolicy = { matmul: 'auto', reduce: 'auto', matvec: 'auto' };
onDeviceReset(() => {
  if (rt) freeIdle(rt);
  rt = null;
});

/** Destroy what is idle: the pool's free buffers and the kept readback buffers. */
function freeIdle(r: Runtime): void {
  r.pool.flush();
  for (const free of r.staging.values()) for (const b of free.splice(0)) b.destroy();
}

let kernelProfile: KernelTiming[] | null = null;
/**
 * Time every kernel of later submissions on the GPU (timestamp queries, one
 * compute pass per dispatch); pass false to stop. Returns the list the
 * timings are appended to once each submission's results are read. Empty on
 * adapters without 'timestamp-query'.
 */
export function profileKernels(on: boolean): KernelTiming[] {
  kernelProfile = on ? [] : null;
  return kernelProfile ?? [];
}

let submissionTimes: number[] | null = null;
/**
 * Record the GPU time of each later submission (ms, from timestamps at the
 * start and end of its compute pass); pass false to stop. Returns the list
 * the times are appended to, each just after its submission's results.
 * Empty on adapters without 'timestamp-query'. Cheap: one 16-byte readback
 * per submission.
 */
export function timeSubmissions(on: boolean): number[] {
  submissionTimes = on ? [] : null;
  return submissionTimes ?? [];
}

let dispatchLog: string[] | null = null;
/** Record the kernels of later submissions (debugging, kernel-count tests); pass false to stop. Returns the log. */
export function logDispatches(on: boolean): string[] {
  dispatchLog = on ? [] : null;
  return dispatchLog ?? [];
}

/** Force a matmul kernel variant ('auto' picks by adapter: register-blocked on CPU adapters, shared-memory tiles on GPUs). */
export function setMatmulVariant(v: KernelPolicy['matmul']): void {
  policy.matmul = v;
}

/** Override kernel choices (for tests and benchmarks); unspecified fields keep their value. Returns the policy now in force. */
export function setKernelPolicy(p: Partial<KernelPolicy>): KernelPolicy {
  Object.assign(policy, p);
  return { ...policy };
}

async function runtime(): Promise<Runtime> {
  const ctx = currentContext() ?? (await init());
  if (ctx.lostError) throw ctx.lostError;
  if (!rt || rt.ctx !== ctx) {
    const { maxStorageBufferBindingSize, maxBufferSize } = ctx.info.limits;
    rt = { ctx, pool: new BufferPool(ctx.device, maxStorageBufferBindingSize, maxBufferSize), pipelines: new PipelineCache(ctx.device), uniforms: [], staging: new Map(),
      idle: new IdleWait(idleWaitWanted(ctx.info.backend, ctx.info.isFallback, envFlag('GRADGPU_IDLE_WAIT'))),
      settling: null, careful: false };
  }
  return rt;
}

const emptyStats: MemoryStats = { liveBuffers: 0, liveBytes: 0, pooledBuffers: 0, pooledBytes: 0, submissions: 0, dispatches: 0, hostEvaluations: 0 };
/** Live and pooled GPU memory, and submissions/dispatches so far (on the current device). */
export function memoryStats(): MemoryStats {
  return { ...(rt?.pool.stats ?? emptyStats) };
}

/**
 * Destroy the pool's idle buffers (those kept for reuse; arrays are untouched),
 * giving their GPU memory back. The library does this itself when an
 * allocation fails. Returns memoryStats() afterwards (pooledBytes 0).
 */
export function flushPool(): MemoryStats {
  if (rt) freeIdle(rt);
  return memoryStats();
}

/**
 * Release a node's buffer (dispose, donation, finalization) unless pending work still reads it.
 * A released pending node no longer reads its inputs, so inputs that are then
 * unread, unheld and not in `keep` are released too (else their buffers leak).
 */
export function releaseIfUnused(n: Node, reason: string, keep?: ReadonlySet<Node>): void {
  n.internal = true;
  const stack = [n];
  while (stack.length) {
    const m = stack.pop()!;
    if (m.consumers > 0) continue;
    const pending = !isComputed(m);
    if (m.storage) {
      m.storage.pool.release(m.storage);
      m.storage = null;
    }
    if (pending) {
      for (const i of m.inputs) {
        i.consumers--;
        if (i.consumers === 0 && !i.dead && !keep?.has(i) && !isHeld(i)) stack.push(i);
      }
    }
    m.cpu = null;
    m.inputs = [];
    m.internal = true;
    m.dead = m === n ? reason : 'freed: only released arrays read it';
  }
}

/**
 * End of a traced scope (grad, an optimizer update): every node it created
 * except `outputs` becomes internal (no outside reader, so its buffer is
 * recycled right after use), and pending nodes that no output needs (dead
 * code, VJP branches of constants) are dropped, so they don't pin their
 * inputs' buffers forever.
 */
export function sealScope(created: Node[], outputs: Node[]): void {
  const out = new Set(outputs);
  const live = new Set<Node>();
  const stack = [...outputs];
  while (stack.length) {
    const n = stack.pop()!;
    if (live.has(n)) continue;
    live.add(n);
    if (!isComputed(n)) stack.push(...n.inputs);
  }
  for (let k = created.length - 1; k >= 0; k--) {
    const n = created[k]!;
    if (out.has(n)) continue;
    n.internal = true;
    n.group = null;
    if (!live.has(n) && !isComputed(n) && !n.dead && n.consumers === 0) releaseIfUnused(n, 'never used (dropped from the graph)');
  }
  for (const n of out) n.group = null;
}

/** Run fn as a sealed scope whose outputs are `keep(result)`. */
export function sealed<T>(fn: () => T, keep: (result: T) => Node[]): T {
  const [result, created] = withNodeScope(fn);
  sealScope(created, keep(result));
  return result;
}

// ---------------------------------------------------------------- planning

type Step =
  | { kind: 'fused'; node: Node; members: Node[]; leaves: Node[]; shader: ShaderSpec; params: ArrayBuffer; threads: number }
  | { kind: 'lowered'; node: Node; lowering: Extract<Lowering, { calls: unknown }> }
  | { kind: 'alias'; node: Node; of: Node };

interface Plan {
  steps: Step[];
  keep: Set<Node>;
  uploads: Node[];
  /** Members of evaluation groups computed by this plan (read back to the host when small). */
  groupMembers: Node[];
  /** Every node this plan computes, inputs before readers. */
  order: Node[];
  targets: Set<Node>;
  /** Small enough to evaluate on the host (see setHostEvaluation). */
  onHost: boolean;
}

const MAX_FUSED_INPUTS = 7; // + the output = 8 storage bindings, WebGPU's default limit
const MAX_BROADCAST_INPUTS = 6; // stride slots in the params uniform
const MAX_CONSTS = 64;
const MAX_RANK = 8;

function deadError(n: Node): DisposedArrayError {
  return new DisposedArrayError(`cannot compute with an array that was ${n.dead} (shape [${n.shape.join(', ')}])`);
}

function plan(targets: Node[], ctx: GpuContext): Plan {
  const targetSet = new Set<Node>();
  // Siblings of a target (one grad call's outputs) come along, unless nobody can read them any more (disposed).
  const groupMembers = new Set<Node>();
  for (const t of targets) for (const m of t.group ?? [t]) if (!m.dead || m === t) targetSet.add(m);
  for (const t of targets) for (const m of t.group ?? []) if (!m.dead && !isComputed(m)) groupMembers.add(m);
  // Post-order DFS over pending nodes (iterative: chains can be long).
  const order: Node[] = [];
  const seen = new Set<Node>();
  const uploads = new Set<Node>();
  const uses = new Map<Node, number>();
  const stack: Array<[Node, number]> = [];
  for (const t of targetSet) {
    if (t.dead) throw deadError(t);
    if (seen.has(t)) continue;
    seen.add(t);
    if (isComputed(t)) {
      if (!t.storage) uploads.add(t);
      continue;
    }
    stack.push([t, 0]);
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      const [n, i] = top;
      if (i < n.inputs.length) {
        top[1]++;
        const c = n.inputs[i]!;
        uses.set(c, (uses.get(c) ?? 0) + 1);
        if (seen.has(c)) continue;
        seen.add(c);
        if (c.dead) throw deadError(c);
        if (isComputed(c)) {
          if (!c.storage) uploads.add(c);
          else if (c.storage.pool.device !== ctx.device) throw new DeviceLostError('an input array lives on a GPU device that was lost or replaced');
          continue;
        }
        // An input from a group (one grad call's outputs) brings its siblings: computed together, materialised.
        if (c.group) for (const m of c.group) if (!m.dead && !isComputed(m)) { targetSet.add(m); groupMembers.add(m); }
        stack.push([c, 0]);
      } else {
        stack.pop();
        order.push(n);
      }
    }
  }
  const keep = new Set<Node>();
  // debugNans: every node is written to memory (no fusion) so each one can be checked.
  for (const n of order) if (debugNans || targetSet.has(n) || isHeld(n)) keep.add(n);
  if (runsOnHost(order, targetSet)) return { steps: [], keep, uploads: [], groupMembers: [...groupMembers], order, targets: targetSet, onHost: true };
  const maxBytes = ctx.info.limits.maxStorageBufferBindingSize;
  for (const n of order) {
    if (n.size * 4 > maxBytes) {
      throw new OutOfMemoryError(`${n.prim} would produce an array of ${n.size * 4} bytes (shape [${n.shape.join(', ')}]), ` +
        `over this device's maxStorageBufferBindingSize of ${maxBytes} bytes (memoryStats: ${describeStats(memoryStats())})`);
    }
  }

  // Fusion: decide in reverse order which elementwise inputs fold into their reader.
  const fusedInto = new Map<Node, Node>();
  const rootOf = (n: Node): Node => fusedInto.get(n) ?? n;
  const leavesOf = new Map<Node, Set<Node>>();
  const constsOf = new Map<Node, number>();
  const isEw = (n: Node) => !!primitives[n.prim]!.elementwise;
  const nConsts = (n: Node) => primitives[n.prim]!.elementwise!.consts?.(n.params).length ?? 0;
  for (let k = order.length - 1; k >= 0; k--) {
    const n = order[k]!;
    if (!isEw(n)) continue;
    const root = rootOf(n);
    if (root === n) {
      leavesOf.set(n, new Set(n.inputs));
      constsOf.set(n, nConsts(n));
    }
    const leaves = leavesOf.get(root)!;
    for (const p of n.inputs) {
      // Held inputs (a user handle, maybe not yet collected) fuse too: they stay pending, with their
      // inputs, and are computed again if read later. Only the targets are always materialised.
      if (debugNans || isComputed(p) || !isEw(p) || targetSet.has(p) || uses.get(p) !== 1 || p.consumers !== 1 || fusedInto.has(p)) continue;
      if (p.shape.length !== root.shape.length || p.shape.some((d, i) => d !== root.shape[i])) continue;
      const next = new Set(leaves);
      next.delete(p);
      for (const q of p.inputs) next.add(q);
      const broadcast = [...next].filter((q) => q.size !== root.size).length;
      const consts = constsOf.get(root)! + nConsts(p);
      if (next.size > MAX_FUSED_INPUTS || broadcast > MAX_BROADCAST_INPUTS || consts > MAX_CONSTS) continue;
      fusedInto.set(p, root);
      leavesOf.set(root, next);
      constsOf.set(root, consts);
    }
  }

  const lctx: LowerContext = { isFallback: ctx.info.isFallback, maxWorkgroups: ctx.info.limits.maxComputeWorkgroupsPerDimension, policy };
  const steps: Step[] = [];
  const members = new Map<Node, Node[]>();
  for (const n of order) {
    const root = fusedInto.get(n);
    if (root) {
      let list = members.get(root);
      if (!list) members.set(root, (list = []));
      list.push(n);
      continue;
    }
    if (isEw(n)) {
      const mem = [...(members.get(n) ?? []), n];
      steps.push(fusedStep(n, mem, new Set(mem)));
      continue;
    }
    const lowering = primitives[n.prim]!.lower!(n, lctx);
    if ('alias' in lowering) steps.push({ kind: 'alias', node: n, of: n.inputs[lowering.alias]! });
    else steps.push({ kind: 'lowered', node: n, lowering });
  }
  return { steps, keep, uploads: [...uploads], groupMembers: [...groupMembers], order, targets: targetSet, onHost: false };
}

/** Generate the fused elementwise kernel for `root` and the nodes folded into it. */
function fusedStep(root: Node, members: Node[], memberSet: Set<Node>): Step {
  if (root.shape.length > MAX_RANK) throw new Error(`internal error: rank ${root.shape.length} > ${MAX_RANK}`);
  const leaves: Node[] = [];
  for (const m of members) for (const q of m.inputs) if (!memberSet.has(q) && !leaves.includes(q)) leaves.push(q);
  const words = new DataView(new ArrayBuffer(128 * 4));
  words.setUint32(4, root.shape.length, true);
  root.shape.forEach((d, i) => words.setUint32((4 + i) * 4, d, true));
  // How each leaf is read at output element i. Broadcast word slots start at 12, 8 words each.
  let nBroadcast = 0;
  const access = leaves.map((q) => {
    if (q.size === root.size) return { expr: (i: string) => i, lanes: 'vec' as Lanes };
    const base = 12 + 8 * nBroadcast++;
    const st = contiguousStrides(q.shape);
    const off = root.shape.length - q.shape.length;
    const strides = root.shape.map((_, d) => (d - off >= 0 && q.shape[d - off] !== 1 ? st[d - off]! : 0));
    const fast = broadcastIndex(root.shape, strides);
    if (fast) {
      fast.words.forEach((w, j) => words.setUint32((base + j) * 4, w, true));
      return { expr: (i: string) => fast.expr(base, i), lanes: fast.lanes };
    }
    // Broadcast: align trailing axes; size-1 and missing axes get stride 0.
    strides.forEach((s, d) => words.setUint32((base + d) * 4, s, true));
    return { expr: (i: string) => `bcast(${i}, ${base}u)`, lanes: null };
  });
  // Four elements per thread with vec4 loads and stores (about 2x on SwiftShader) when every
  // leaf is read either as four consecutive, aligned elements or as one element for all four.
  const vec4 = root.size > 0 && root.size % 4 === 0 && access.every((a) => a.lanes !== null);
  words.setUint32(0, vec4 ? root.size / 4 : root.size, true);
  const bindings = [`@group(0) @binding(1) var<storage, read_write> ${vec4 ? 'out4: array<vec4<f32>>' : 'out: array<f32>'};`];
  leaves.forEach((_, k) => {
    const type = vec4 && access[k]!.lanes === 'vec' ? 'vec4<f32>' : 'f32';
    bindings.push(`@group(0) @binding(${k + 2}) var<storage, read> in${k}: array<${type}>;`);
  });
  // The chain, as statements for one element i whose inputs are v0, v1, ...
  const chain: string[] = [];
  const names = new Map<Node, string>();
  let nConst = 0;
  for (const m of members) {
    const rule = primitives[m.prim]!.elementwise!;
    const args = m.inputs.map((q) => (memberSet.has(q) ? names.get(q)! : `v${leaves.indexOf(q)}`));
    const cs = rule.consts?.(m.params) ?? [];
    const base = nConst;
    cs.forEach(([t, v], j) => {
      const at = (64 + base + j) * 4;
      if (t === 'f') words.setFloat32(at, v, true);
      else words.setUint32(at, v >>> 0, true);
    });
    nConst += cs.length;
    const expr = rule.expr(args, (k) => `cf(${base + k}u)`, (k) => `cu(${base + k}u)`);
    const name = `t${names.size}`;
    names.set(m, name);
    chain.push(`let ${name} = ${expr};`);
  }
  const result = names.get(root)!;
  const lines: string[] = [];
  if (!vec4) {
    access.forEach((a, k) => lines.push(`  let v${k} = in${k}[${a.expr('i')}];`));
    lines.push(...chain.map((c) => `  ${c}`), `  out[i] = ${result};`);
  } else {
    // Here i counts vec4s; each component's block re-declares i as its element index.
    lines.push('  let j = i;', '  let i4 = j * 4u;');
    access.forEach((a, k) => lines.push(a.lanes === 'vec' ? `  let q${k} = in${k}[${a.expr('i4')} / 4u];` : `  let s${k} = in${k}[${a.expr('i4')}];`));
    lines.push('  var r: vec4<f32>;');
    ['x', 'y', 'z', 'w'].forEach((c, lane) => {
      const loads = access.map((a, k) => `let v${k} = ${a.lanes === 'vec' ? `q${k}.${c}` : `s${k}`};`);
      lines.push(`  { let i = i4 + ${lane}u; ${[...loads, ...chain].join(' ')} r.${c} = ${result}; _ = i; }`);
    });
    lines.push('  out4[j] = r;');
  }
  const shader: ShaderSpec = { template: 'elementwise', entry: 'main', fill: { BINDINGS: bindings.join('\n'), BODY: lines.join('\n') } };
  return { kind: 'fused', node: root, members, leaves, shader, params: words.buffer, threads: vec4 ? root.size / 4 : root.size };
}

/** How one input is read by four consecutive output elements 4j..4j+3: as four aligned consecutive elements, as one element, or neither. */
type Lanes = 'vec' | 'uniform' | null;

/**
 * The offset into a broadcast input as one or two integer operations, when
 * its broadcast axes and its own axes form at most three runs: a row bias
 * (broadcast, own) is `i % inner`, a column (own, broadcast) `i / inner`,
 * (broadcast, own, broadcast) `(i / a) % b`, all broadcast `0`. The general
 * per-axis loop costs 4x as much on SwiftShader (a div and a mod per axis,
 * and integer division has no SIMD form on a CPU). Words go at `base`.
 */
function broadcastIndex(shape: readonly number[], strides: readonly number[]): { words: number[]; expr: (base: number, i: string) => string; lanes: Lanes } | null {
  const runs: Array<{ own: boolean; size: number }> = [];
  shape.forEach((d, i) => {
    if (d === 1) return;
    const own = strides[i] !== 0;
    const last = runs[runs.length - 1];
    if (last && last.own === own) last.size *= d;
    else runs.push({ own, size: d });
  });
  const kinds = runs.map((r) => (r.own ? 'o' : 'b')).join('');
  const size = (k: number) => runs[k]!.size;
  switch (kinds) {
    case '':
    case 'b':
      return { words: [], expr: () => '0u', lanes: 'uniform' };
    case 'bo':
      return { words: [size(1)], expr: (b, i) => `${i} % p(${b}u)`, lanes: size(1) % 4 === 0 ? 'vec' : null };
    case 'ob':
      return { words: [size(1)], expr: (b, i) => `${i} / p(${b}u)`, lanes: size(1) % 4 === 0 ? 'uniform' : null };
    case 'bob':
      return { words: [size(2), size(1)], expr: (b, i) => `(${i} / p(${b}u)) % p(${b + 1}u)`, lanes: size(2) % 4 === 0 ? 'uniform' : null };
    default:
      return null; // ('o' alone is an input of the output's size, read at i)
  }
}

function shadersOf(p: Plan): ShaderSpec[] {
  const out: ShaderSpec[] = [];
  for (const s of p.steps) {
    if (s.kind === 'fused') out.push(s.shader);
    else if (s.kind === 'lowered') for (const c of s.lowering.calls) out.push(c.shader);
  }
  return out;
}

// ---------------------------------------------------------------- execution

/**
 * Compute every target (and its group), reading back the nodes in `read`.
 * Returns host copies of `read`, in order.
 */
let debugNans = false;
/**
 * Like jax_debug_nans: when on, every evaluation writes every intermediate to
 * memory and checks it, and the first primitive that turns NaN-free inputs
 * into a NaN throws a NanError naming it. Slow; for debugging.
 */
export function setDebugNans(on: boolean): void {
  debugNans = on;
}

function findFirstNan(p: Plan, nodes: Node[], values: Float32Array[]): void {
  const hasNan = new Map<Node, boolean>();
  nodes.forEach((n, i) => hasNan.set(n, values[i]!.some(Number.isNaN)));
  // Release what was kept only to be checked.
  for (const n of nodes) if (!p.targets.has(n) && !isHeld(n) && n.consumers === 0) releaseIfUnused(n, 'freed after the debugNans check');
  const first = nodes.find((n) => hasNan.get(n));
  if (first) {
    throw new NanError(`debugNans: primitive '${first.prim}' produced NaN (node #${first.id}, shape [${first.shape.join(', ')}]` +
      `${Object.keys(first.params).length ? `, params ${JSON.stringify(first.params)}` : ''}); the first op in evaluation order with a NaN output`);
  }
}

/** New buffers an evaluation may create before it is checked (undone, then run once they are known good). */
const CHECKED_BYTES = 8 << 20;
/** Checked runs of one evaluation; past this many (other work keeps taking its buffers), it runs unchecked. */
const MAX_CHECKS = 4;

export async function evaluate(targets: Node[], read: Node[] = []): Promise<Float32Array[]> {
  const r = await runtime();
  let checks = 0;
  let failures = 0;
  for (;;) {
    while (r.settling) await r.settling;
    const p = plan([...targets, ...read], r.ctx);
    if (p.onHost) return evaluateOnHost(p, read, r);
    const missing = shadersOf(p).filter((s) => !r.pipelines.get(s));
    if (missing.length === 0) {
      // Small group members (a loss, small grads) come back to the host in the same submission,
      // so reading them later needs no submission, and an unread one holds no GPU buffer.
      const extras = p.groupMembers.filter((n) => n.size > 0 && n.size <= 1024 && !read.includes(n));
      const checked = debugNans ? p.order.filter((n) => n.size > 0) : [];
      const ex = execute(p, [...read, ...extras, ...checked], r, checks < MAX_CHECKS);
      if ('failure' in ex) {
        // Undone before submitting: the buffers it needed were created and set aside.
        checks++;
        const failure = await ex.failure;
        if (failure && !failure.oom) throw internalError(failure);
        // Out of memory: the pool was flushed (settle); try once more, then give up, graph unchanged.
        if (failure && ++failures > 1) throw outOfMemory(failure, r, 'retried');
        continue;
      }
      const out = await ex.values;
      if (debugNans) findFirstNan(p, checked, out.slice(read.length + extras.length));
      extras.forEach((n, i) => {
        if (n.dead) return;
        n.cpu = out[read.length + i]!;
        if (n.storage && n.consumers === 0) {
          n.storage.pool.release(n.storage);
          n.storage = null;
        }
      });
      return out.slice(0, read.length);
    }
    const unique = new Map(missing.map((s) => [shaderKey(s), s]));
    await Promise.all([...unique.values()].map((s) => r.pipelines.load(s)));
    if (r.ctx.lostError) throw r.ctx.lostError;
  }
}

// ---------------------------------------------------------------- small graphs on the host

let hostWorkLimit = 1 << 15;
/**
 * Evaluate pending graphs on the host (no GPU round trip) when every input
 * already has a host copy and the whole graph does at most `maxWork`
 * element-operations (a matmul counts its multiply-adds); 0 turns it off.
 * Default 32768: below it, the GPU's fixed cost per submission dominates.
 * See src/array/host.ts.
 */
export function setHostEvaluation(maxWork: number): void {
  hostWorkLimit = Math.max(0, maxWork);
}

function runsOnHost(order: Node[], targets: Set<Node>): boolean {
  if (hostWorkLimit === 0 || debugNans || kernelProfile || dispatchLog || order.length === 0) return false;
  let work = 0;
  for (const n of order) {
    if (!primitives[n.prim]!.host) return false;
    for (const q of n.inputs) if (isComputed(q) && !q.cpu) return false;
    work += hostWork(n);
    if (work > hostWorkLimit) return false;
  }
  for (const t of targets) if (isComputed(t) && !t.cpu) return false;
  return true;
}

/** A node just computed stops reading its inputs; inputs nobody else reads, holds or keeps are freed. */
function letGoOfInputs(n: Node, keep: ReadonlySet<Node>): void {
  for (const q of n.inputs) {
    q.consumers--;
    if (q.consumers === 0 && !keep.has(q) && !isHeld(q)) releaseIfUnused(q, 'freed after use as an intermediate', keep);
  }
  n.inputs = [];
}

function evaluateOnHost(p: Plan, read: Node[], r: Runtime): Float32Array[] {
  for (const n of p.order) n.cpu = primitives[n.prim]!.host!(n, n.inputs.map((q) => q.cpu!));
  for (const n of p.order) letGoOfInputs(n, p.keep); // as after a submission
  r.pool.stats.hostEvaluations++;
  return read.map((n) => n.cpu!.slice());
}

/** What an evaluation's error scopes reported. */
interface Failure {
  /** An allocation failed ('out-of-memory'), rather than a validation error. */
  oom: boolean;
  /** The device's message. */
  message: string;
  /** GPU memory this evaluation asked for anew: pool buffers (and, when submitted, staging buffers). */
  requests: Array<{ bytes: number; size: number }>;
}

type Executed =
  /** Submitted: the values of `read` (or the error). */
  | { values: Promise<Float32Array[]> }
  /** Undone before submitting because it created buffers: resolves with the scopes' verdict on them. */
  | { failure: Promise<Failure | null> };

/** Node fields execute() changes: saved before encoding, put back if the evaluation is undone. */
type Saved = [Node, Storage | null, number, number, Node[], string | null, boolean, Float32Array | null];

function save(p: Plan): Saved[] {
  const out: Saved[] = [];
  const put = (n: Node) => out.push([n, n.storage, n.offset, n.consumers, n.inputs, n.dead, n.internal, n.cpu]);
  // Encoding changes the planned nodes and their inputs (consumer counts, intermediates released), nothing else.
  for (const n of p.uploads) put(n);
  for (const n of p.order) {
    put(n);
    for (const i of n.inputs) put(i);
  }
  return out;
}

function restore(saved: Saved[]): void {
  for (let k = saved.length - 1; k >= 0; k--) {
    const [n, storage, offset, consumers, inputs, dead, internal, cpu] = saved[k]!;
    n.storage = storage;
    n.offset = offset;
    n.consumers = consumers;
    n.inputs = inputs;
    n.dead = dead;
    n.internal = internal;
    n.cpu = cpu;
  }
}

/** Bytes the pool would have to create if none of this plan's buffers were in it (an upper bound). */
function bytesBound(p: Plan): number {
  let b = 0;
  for (const n of p.uploads) b += bucketSize(n.size * 4);
  for (const s of p.steps) {
    if (s.kind === 'alias') continue;
    b += bucketSize(s.node.size * 4);
    if (s.kind === 'lowered') for (const x of s.lowering.scratch ?? []) b += bucketSize(x);
  }
  return b;
}

/** Pop the two scopes execute() pushed; resolves with what they caught (an allocation failure first). */
function popScopes(device: GPUDevice, requests: Failure['requests'], injected: () => number): Promise<Failure | null> {
  const oom = device.popErrorScope();
  const validation = device.popErrorScope();
  return Promise.all([oom, validation]).then(
    ([o, v]) => {
      if (o) return { oom: true, message: o.message, requests };
      // The test hook's invalid buffers stand for failed allocations.
      if (v && injected() > 0) return { oom: true, message: 'simulated out-of-memory (failNextAllocations)', requests };
      if (v) return { oom: false, message: v.message, requests };
      return null;
    },
    () => null, // device lost: reported through device.lost instead
  );
}

function outOfMemory(f: Failure, r: Runtime, how: 'retried' | 'lost'): OutOfMemoryError {
  const device = f.message.split('\n')[0];
  const largest = f.requests.reduce<Failure['requests'][number] | null>((a, q) => (!a || q.size > a.size ? q : a), null);
  const total = f.requests.reduce((a, q) => a + q.size, 0);
  const what = largest
    ? `could not allocate ${largest.bytes} bytes (a buffer of ${largest.size} bytes` +
      (f.requests.length > 1 ? `, the largest of ${f.requests.length} new buffers, ${total} bytes in all` : '') + ')'
    : 'ran out of memory';
  const after = how === 'retried'
    ? 'also after freeing the pool\'s idle buffers and trying again; nothing was computed and the arrays involved are unchanged'
    : 'so the values this evaluation was computing are lost (reading one throws DisposedArrayError); the pool\'s idle buffers were freed';
  return new OutOfMemoryError(`out of GPU memory: the device ${what}, ${after}. Device: ${device}. ` +
    `memoryStats: ${describeStats(r.pool.stats)}. Dispose arrays you no longer need, or use smaller ones.`);
}

function internalError(f: Failure): Error {
  return new Error(`internal error: WebGPU rejected an evaluation (${f.message.split('\n')[0]})`);
}

const LOST_OOM = 'lost: the GPU ran out of memory while computing it (OutOfMemoryError)';

function execute(p: Plan, read: Node[], r: Runtime, mayCheck: boolean): Executed {
  const { device } = r.ctx;
  const { pool } = r;
  if (r.ctx.lostError) throw r.ctx.lostError;
  const acquired: Array<[Node, Storage]> = [];
  /** Every node this evaluation gives a buffer: lost if the submission turns out to have failed. */
  const assigned: Array<[Node, Storage]> = [];
  // Check (undo, wait for the scopes, run again) an evaluation once it has created this much.
  const threshold = r.careful ? 1 : CHECKED_BYTES;
  const checked = mayCheck && bytesBound(p) >= threshold;
  const saved = checked ? save(p) : [];
  const dispatches0 = pool.stats.dispatches;
  const logged0 = dispatchLog?.length ?? 0;
  device.pushErrorScope('validation');
  device.pushErrorScope('out-of-memory');
  const journal = pool.begin();
  const requests: Failure['requests'] = [];
  const injected = () => journal.injected;
  // Past the threshold, a checked evaluation stops encoding (dry) and only tracks buffers.
  const dry = () => checked && journal.createdBytes >= threshold;
  let uniform: { buffer: GPUBuffer; created: boolean } | null = null;
  let timer: SubmissionTimer | null = null;
  let clock: PassClock | null = null;
  const times = submissionTimes;
  let undone = false;
  const undo = (): GPUBuffer[] => {
    if (undone) return [];
    undone = true;
    restore(saved);
    pool.stats.dispatches = dispatches0;
    if (dispatchLog) dispatchLog.length = logged0;
    if (uniform) r.uniforms.push(uniform.buffer);
    timer?.discard();
    clock?.discard();
    return pool.rollback();
  };
  /** The scopes' verdict, acted on before any other evaluation may plan. */
  const settle = (failure: Promise<Failure | null>, act: (f: Failure | null) => void) => {
    const gate = failure.then((f) => {
      if (f?.oom) r.careful = true;
      act(f);
    }).catch(() => {});
    r.settling = gate;
    void gate.then(() => {
      if (r.settling === gate) r.settling = null;
    });
  };
  /** Values given buffers by an evaluation that never ran: their buffers go back, and reading them says why. */
  const lose = (why: string) => {
    for (const [n, s] of assigned) {
      if (n.storage !== s) continue;
      n.storage = null;
      s.pool.release(s);
      if (!n.cpu) n.dead = why;
    }
  };
  const dropUniform = () => {
    if (!uniform?.created) return;
    const i = r.uniforms.indexOf(uniform.buffer);
    if (i >= 0) r.uniforms.splice(i, 1);
    uniform.buffer.destroy();
  };
  let encoder: GPUCommandEncoder;
  let staging: Array<GPUBuffer | null>;
  let signature = `${p.uploads.length}:`; // what the idle wait keys its time estimate by
  try {
    // Constants first: writeBuffer runs before the submit, so it must not land in a buffer this submission frees and reuses.
    for (const n of p.uploads) {
      const s = pool.acquire(n.size * 4);
      acquired.push([n, s]);
      if (n.size && !dry()) device.queue.writeBuffer(s.buffer, 0, n.cpu!.buffer, n.cpu!.byteOffset, n.size * 4);
    }
    // All params of this submission in one uniform buffer, 256-byte aligned slices.
    const calls: Array<{ step: Step; call?: KernelCall }> = [];
    let paramBytes = 0;
    for (const s of p.steps) {
      if (s.kind === 'fused') paramBytes += align(s.params.byteLength);
      else if (s.kind === 'lowered') for (const c of s.lowering.calls) paramBytes += align(c.params.byteLength);
    }
    const arena = new Uint8Array(Math.max(256, paramBytes));
    uniform = takeUniform(r, arena.byteLength);
    const uniformBuffer = uniform.buffer;
    let paramAt = 0;
    encoder = device.createCommandEncoder();
    timer = kernelProfile && device.features.has('timestamp-query') ? new SubmissionTimer(device) : null;
    clock = timer ? null : r.idle.clock(device, !!times);
    const pass = timer ? null : encoder.beginComputePass(clock ? { timestampWrites: clock.timestampWrites } : undefined);
    const bindOf = (n: Node) => ({ buffer: n.storage!.buffer, offset: n.offset, size: Math.max(4, n.size * 4) });
    const dispatch = (spec: ShaderSpec, params: ArrayBuffer, resources: GPUBufferBinding[], grid: [number, number, number]) => {
      if (grid[0] * grid[1] * grid[2] === 0 || dry()) return;
      arena.set(new Uint8Array(params), paramAt);
      const pipeline = r.pipelines.get(spec)!;
      const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: uniformBuffer, offset: paramAt, size: params.byteLength } }];
      resources.forEach((res, i) => entries.push({ binding: i + 1, resource: res }));
      paramAt += align(params.byteLength);
      const ps = pass ?? encoder!.beginComputePass(timer!.pass(`${spec.template}:${spec.entry}`, grid));
      ps.setPipeline(pipeline);
      ps.setBindGroup(0, device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries }));
      ps.dispatchWorkgroups(grid[0], grid[1], grid[2]);
      if (!pass) ps.end();
      signature += `${grid[0] * grid[1] * grid[2]},`;
      if (dispatchLog) dispatchLog.push(`${spec.template}:${spec.entry} [${grid.join(',')}]`);
      pool.stats.dispatches++;
    };
    for (const [n, s] of acquired) {
      n.storage = s;
      n.offset = 0; // a view read back to the host comes back at the start of a fresh buffer
      assigned.push([n, s]);
    }

    const finish = (n: Node) => letGoOfInputs(n, p.keep);

    for (const s of p.steps) {
      const n = s.node;
      if (s.kind === 'alias') {
        n.storage = s.of.storage;
        n.storage!.pool.retain(n.storage!);
        assigned.push([n, n.storage!]);
        n.offset = s.of.offset + ((n.params.offset as number | undefined) ?? 0);
        finish(n);
        continue;
      }
      const out = pool.acquire(n.size * 4);
      n.storage = out;
      n.offset = 0;
      assigned.push([n, out]);
      if (s.kind === 'fused') {
        dispatch(s.shader, s.params, [bindOf(n), ...s.leaves.map(bindOf)], grid1d(s.threads));
        // A member a user still holds stays pending, with its inputs (recomputed if read later),
        // and so does every member below it; the others are done. Members come in topological order.
        const readerOf = new Map<Node, Node>();
        for (const m of s.members) for (const q of m.inputs) readerOf.set(q, m);
        const pending = new Set<Node>();
        for (let k = s.members.length - 1; k >= 0; k--) {
          const m = s.members[k]!;
          if (m !== n && (isHeld(m) || pending.has(readerOf.get(m)!))) pending.add(m);
        }
        for (const m of s.members) {
          if (m !== n && !pending.has(m)) m.dead = 'fused into another kernel (an intermediate nobody held)';
        }
        for (const m of s.members) if (!pending.has(m)) finish(m);
      } else {
        const scratch = (s.lowering.scratch ?? []).map((b) => pool.acquire(b));
        const res = (slot: Slot): GPUBufferBinding =>
          'out' in slot ? bindOf(n)
            : 'input' in slot ? bindOf(n.inputs[slot.input]!)
              : { buffer: scratch[slot.scratch]!.buffer, size: Math.max(4, scratch[slot.scratch]!.bytes) };
        for (const c of s.lowering.calls) dispatch(c.shader, c.params, c.slots.map(res), c.grid);
        for (const sc of scratch) pool.release(sc);
        finish(n);
      }
    }
    pass?.end();
    if (dry()) {
      // It created buffers: undo it (they become idle, set aside) and run it again once they are known to be good.
      const created = undo();
      journal.created.forEach((a) => requests.push({ bytes: a.bytes, size: a.size }));
      const failure = popScopes(device, requests, injected);
      settle(failure, (f) => {
        if (!f) return pool.reserve(created);
        for (const b of created) b.destroy();
        freeIdle(r);
        dropUniform();
      });
      return { failure };
    }
    timer?.finish(encoder);
    clock?.finish(encoder);
    staging = read.map((n) => {
      if (n.cpu && !n.storage) return null;
      if (n.size === 0) return null;
      const b = takeStaging(r, n.size * 4);
      encoder.copyBufferToBuffer(n.storage!.buffer, n.offset, b, 0, n.size * 4);
      requests.push({ bytes: n.size * 4, size: b.size });
      return b;
    });
    device.queue.writeBuffer(uniformBuffer, 0, arena.buffer, 0, Math.max(256, paramAt));
  } catch (e) {
    // A synchronous failure while encoding (createBuffer threw, a bug): nothing was submitted.
    const alloc = e instanceof AllocationFailed;
    if (checked) {
      for (const b of undo()) b.destroy();
    } else {
      pool.commit();
      if (uniform) r.uniforms.push(uniform.buffer);
      timer?.discard();
      clock?.discard();
      lose(alloc ? LOST_OOM : `lost: an error stopped the evaluation that computed it (${(e as Error)?.message})`);
    }
    if (alloc) {
      freeIdle(r); // safe: the abandoned encoder is the only user of the buffers released since begin()
      r.careful = true;
    }
    const failure = popScopes(device, requests, injected);
    settle(failure, () => {});
    if (!alloc) throw e;
    const thrown: Failure = { oom: true, message: e.message, requests: [e.allocation] };
    if (checked) return { failure: failure.then(() => thrown) };
    throw outOfMemory(thrown, r, 'lost');
  }
  device.queue.submit([encoder.finish()]);
  pool.commit();
  pool.stats.submissions++;
  r.uniforms.push(uniform!.buffer);
  journal.created.forEach((a) => requests.unshift({ bytes: a.bytes, size: a.size }));
  const failure = popScopes(device, requests, injected);
  // A failure now means the submission did not run (its command buffer was invalid):
  // the values it was computing are lost.
  settle(failure, (f) => {
    if (!f) return;
    lose(f.oom ? LOST_OOM : 'lost: WebGPU rejected the evaluation that computed it');
    freeIdle(r);
    dropUniform();
  });
  const profile = kernelProfile;
  const slept = r.idle.before(signature);
  const results = Promise.all(
    read.map(async (n, i) => {
      await slept;
      const b = staging[i];
      if (!b) return n.cpu ? n.cpu.slice() : new Float32Array(0);
      try {
        await b.mapAsync(GPUMapMode.READ);
      } catch (e) {
        b.destroy();
        if (r.ctx.lostError) throw r.ctx.lostError;
        throw e;
      }
      const data = new Float32Array(b.getMappedRange(0, n.size * 4).slice(0));
      b.unmap();
      giveStaging(r, b);
      return data;
    }),
  );
  if (timer) void timer.read().then((t) => profile!.push(...t), () => {});
  if (clock) {
    // Mapped only after the sleep, like the results: a pending map keeps Dawn polling.
    void slept.then(() => clock!.read()).then((ms) => {
      r.idle.record(signature, ms);
      times?.push(ms);
    }, () => {});
  }
  const values = Promise.all([failure, results.then((v) => ({ v }), (e: unknown) => ({ e }))]).then(([f, res]) => {
    if (f) throw f.oom ? outOfMemory(f, r, 'lost') : internalError(f);
    if ('e' in res) throw res.e;
    return res.v;
  });
  return { values };
}

// Readback buffers are kept and reused: a fresh mappable buffer per read cost
// a noticeable share of a tiny evaluation, and most of a large one (allocating
// and clearing it). Up to 8 small ones per size; one per size above 64 KiB,
// up to 256 MiB. flushPool() frees them.
const STAGING_SMALL = 64 * 1024;
const STAGING_MAX = 256 * 1024 * 1024;

function takeStaging(r: Runtime, bytes: number): GPUBuffer {
  const size = bytes <= STAGING_SMALL ? Math.max(256, 2 ** Math.ceil(Math.log2(bytes))) : Math.ceil(bytes / 65536) * 65536;
  return r.staging.get(size)?.pop() ?? r.ctx.device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
}

function giveStaging(r: Runtime, b: GPUBuffer): void {
  if (b.size > STAGING_MAX) return b.destroy();
  const free = r.staging.get(b.size) ?? [];
  r.staging.set(b.size, free);
  if (free.length < (b.size <= STAGING_SMALL ? 8 : 1)) free.push(b);
  else b.destroy();
}

function align(n: number): number {
  return Math.ceil(n / 256) * 256;
}

/** A uniform buffer of at least `bytes`, reused across submissions (queue order makes that safe). */
function takeUniform(r: Runtime, bytes: number): { buffer: GPUBuffer; created: boolean } {
  const i = r.uniforms.findIndex((u) => u.size >= bytes);
  if (i >= 0) return { buffer: r.uniforms.splice(i, 1)[0]!, created: false };
  const size = Math.max(4096, 2 ** Math.ceil(Math.log2(bytes)));
  return { buffer: r.ctx.device.createBuffer({ size, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST }), created: true };
}
