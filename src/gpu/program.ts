// A compiled program: one plan's dispatch list recorded over numbered buffers
// instead of nodes, so that running it again (a jitted function's next call)
// builds no graph, plans and fuses nothing, and writes no uniforms: it binds
// the call's inputs, takes each intermediate's buffer from the pool where the
// plan's first kernel writes it and gives it back after its last reader (the
// same lifetimes the general path gives, so memory is the same), encodes the
// recorded dispatches and submits once.
//
// A program runs only where the general path would have nothing to decide:
// every input computed, no transformation open, no earlier failure to settle.
// It follows the general path's out-of-memory policy (failure.ts): a run that
// would create CHECKED_BYTES of new buffers or more (or any, on a device that
// has run out of memory before) is undone before submitting and left to the
// general path, which checks new allocations before it frees anything.

import { config } from '../config';
import { DisposedArrayError } from '../errors';
import { makeComputedNode, isComputed, type Node, type Shape } from '../array/node';
import type { DType, HostArray } from '../array/dtype';
import type { Prim } from '../array/prims';
import { SMALL_MAX, type Plan } from '../exec/plan';
import { buildSteps } from './fuse';
import { grid1d, type ShaderSpec } from './kernels';
import { lowerContext } from './backend';
import { afterSubmit } from './encode';
import { CHECKED_BYTES, popScopes } from './failure';
import { align, type Runtime } from './runtime';
import type { Storage } from './pool';

/** Where a numbered buffer comes from on each run. */
type Source =
  | { kind: 'input'; index: number } // the run's k-th input (its buffer, or its host data uploaded)
  | { kind: 'captured'; node: Node } // an array from outside the recorded function (a closure's constant)
  | { kind: 'constant'; data: HostArray } // a constant made inside the function: uploaded each run
  | { kind: 'made'; bytes: number; recent: GPUBuffer[] }; // written by one of the program's kernels (recent: the buffers it had, newest first)

interface Dispatch {
  pipeline: GPUComputePipeline;
  uniform: { offset: number; size: number };
  binds: Array<{ buf: number; offset: number; size: number }>;
  grid: [number, number, number];
  name: string;
  /** The bind groups of the last two runs, with the buffers and offsets they name (a donated loop alternates two sets). */
  recent: Array<{ generation: number; buffers: GPUBuffer[]; offsets: number[]; group: GPUBindGroup }>;
}

/**
 * The recorded encoding: take a buffer from the pool, dispatch, give one
 * back, or let go of an input after its last reader (freed there if the call
 * consumes it: a donated array, as the general path frees it mid-submission).
 */
type Op = { acquire: number } | { release: number } | { drop: number } | Dispatch;

export interface Program {
  readonly runtime: Runtime;
  readonly sources: Source[];
  readonly ops: Op[];
  /** Every dispatch's params, in one uniform buffer the program owns: written once, when compiled. */
  readonly uniform: GPUBuffer;
  readonly outputs: Array<{ buf: number; offset: number; prim: Prim; params: Record<string, unknown>; shape: Shape; dtype: DType }>;
  readonly dispatches: number;
  /**
   * The last run's outputs, and which of them went to small-value slots: an
   * output position whose last value this call consumed (donated back, as a
   * training step's params and state are) stays in its own buffer instead;
   * one that was not (a loss, a value dropped) goes to a slot, so its buffer
   * is freed without the garbage collector.
   */
  last: Node[] | null;
  /** What the idle wait keys its estimate of this submission's GPU time by (as encode.ts). */
  readonly signature: string;
}

/** A run's input: an array's node, or host data (a jitted function's Float32Array leaf, a number). */
export type ProgramInput = Node | HostArray;

/** Internal, for the tests and profiling: a switch, the programs run, and runs left to the general path (too much to create). */
export const programs = { enabled: true, runs: 0, declined: 0 };

/** Submissions that may be unfinished before a program leaves the call to the general path (which bounds the queue). */
export const PROGRAM_MAX_IN_FLIGHT = 16;

/** May a program run on this runtime now? Not while anything needs the general path's care. */
export function programsAllowed(r: Runtime): boolean {
  return (
    programs.enabled &&
    !config.debugNans &&
    !config.kernelProfile &&
    !r.settling &&
    !r.careful &&
    !r.poisoned &&
    !r.ctx.lostError &&
    r.submitted - r.finished < PROGRAM_MAX_IN_FLIGHT
  );
}

/**
 * Record the plan of `outputs` as a program over `inputs` (the nodes the
 * function's inputs stand for, in order). Everything else the plan reads must
 * be a constant made by the plan's own nodes (`made`) or a computed array
 * from outside; otherwise (pending work from outside) there is no program: null.
 * Pipelines missing are compiled now (blocking), as a dispatch from
 * synchronous code does.
 */
export function compileProgram(r: Runtime, p: Plan, made: ReadonlySet<Node>, inputs: readonly Node[], outputs: readonly Node[]): Program | null {
  if (p.order.some((n) => !made.has(n))) return null;
  const steps = buildSteps(p, lowerContext(r));
  const sources: Source[] = [];
  const where = new Map<Node, { buf: number; offset: number }>();
  const add = (s: Source) => sources.push(s) - 1;
  const inputIndex = new Map<Node, number>();
  inputs.forEach((n, i) => inputIndex.has(n) || inputIndex.set(n, i));
  for (const n of [...p.gpuInputs, ...p.uploads]) {
    const k = inputIndex.get(n);
    if (k !== undefined) where.set(n, { buf: add({ kind: 'input', index: k }), offset: 0 });
    else if (made.has(n) && n.cpu) where.set(n, { buf: add({ kind: 'constant', data: n.cpu }), offset: 0 });
    else if (isComputed(n)) where.set(n, { buf: add({ kind: 'captured', node: n }), offset: 0 });
    else return null;
  }

  const ops: Op[] = [];
  const lastRead = new Map<number, number>();
  const params: Array<[number, ArrayBuffer]> = [];
  let paramBytes = 0;
  let signature = '';
  const dispatch = (spec: ShaderSpec, data: ArrayBuffer, binds: Dispatch['binds'], grid: [number, number, number]) => {
    if (grid[0] * grid[1] * grid[2] === 0) return;
    const pipeline = r.pipelines.get(spec) ?? r.pipelines.loadNow(spec);
    params.push([paramBytes, data]);
    ops.push({
      pipeline,
      uniform: { offset: paramBytes, size: data.byteLength },
      binds,
      grid,
      name: `${spec.template}:${spec.entry} [${grid.join(',')}]`,
      recent: [],
    });
    paramBytes += align(data.byteLength);
    signature += `${grid[0] * grid[1] * grid[2]},`;
    for (const b of binds) lastRead.set(b.buf, ops.length - 1);
  };
  const bindOf = (n: Node) => {
    const w = where.get(n)!;
    return { buf: w.buf, offset: w.offset, size: Math.max(4, n.size * 4) };
  };
  const acquire = (bytes: number) => {
    const buf = add({ kind: 'made', bytes, recent: [] });
    ops.push({ acquire: buf });
    return buf;
  };
  for (const s of steps) {
    const n = s.node;
    if (s.kind === 'alias') {
      const w = where.get(s.of)!;
      where.set(n, { buf: w.buf, offset: w.offset + s.offset });
      continue;
    }
    where.set(n, { buf: acquire(n.size * 4), offset: 0 });
    if (s.kind === 'fused') {
      for (const x of s.extras) where.set(x, { buf: acquire(x.size * 4), offset: 0 });
      dispatch(s.shader, s.params, [bindOf(n), ...s.extras.map(bindOf), ...s.leaves.map(bindOf)], s.grid ?? grid1d(s.threads));
      continue;
    }
    const scratch = (s.lowering.scratch ?? []).map((bytes) => ({ buf: acquire(bytes), bytes }));
    for (const c of s.lowering.calls) {
      const binds = c.slots.map((slot) => {
        if ('out' in slot) return bindOf(n);
        if ('input' in slot) return bindOf(n.inputs[slot.input]!);
        const sc = scratch[slot.scratch]!;
        return { buf: sc.buf, offset: 0, size: Math.max(4, sc.bytes) };
      });
      dispatch(c.shader, c.params, binds, c.grid);
    }
    for (const sc of scratch) ops.push({ release: sc.buf });
  }
  // Each intermediate goes back to the pool after its last reader; the outputs' buffers are the caller's.
  const kept = new Set(outputs.map((n) => where.get(n)!.buf));
  const releaseAfter = new Map<number, number[]>();
  ops.forEach((op, i) => {
    if (!('acquire' in op) || kept.has(op.acquire)) return;
    const at = Math.max(i, lastRead.get(op.acquire) ?? i);
    if (ops.some((o) => 'release' in o && o.release === op.acquire)) return; // scratch: released by its step
    (releaseAfter.get(at) ?? releaseAfter.set(at, []).get(at)!).push(op.acquire);
  });
  const dropAfter = new Map<number, number[]>();
  sources.forEach((s, buf) => {
    if (s.kind !== 'input') return;
    const at = lastRead.get(buf) ?? -1;
    (dropAfter.get(at) ?? dropAfter.set(at, []).get(at)!).push(buf);
  });
  const placed: Op[] = (dropAfter.get(-1) ?? []).map((b) => ({ drop: b }));
  ops.forEach((op, i) => {
    placed.push(op);
    for (const b of releaseAfter.get(i) ?? []) placed.push({ release: b });
    for (const b of dropAfter.get(i) ?? []) placed.push({ drop: b });
  });

  // An output that is a view of an input's (or a constant's) buffer: the general path keeps that
  // buffer for it; here the input's drop would give it back to the pool under the output.
  if (outputs.some((n) => sources[where.get(n)!.buf]!.kind !== 'made')) return null;
  const uniform = r.ctx.device.createBuffer({ size: Math.max(256, paramBytes), usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  const arena = new Uint8Array(Math.max(256, paramBytes));
  for (const [at, data] of params) arena.set(new Uint8Array(data), at);
  r.ctx.device.queue.writeBuffer(uniform, 0, arena);
  return {
    runtime: r,
    sources,
    ops: placed,
    uniform,
    outputs: outputs.map((n) => ({ ...where.get(n)!, prim: n.prim, params: n.params, shape: n.shape, dtype: n.dtype })),
    dispatches: params.length,
    last: null,
    signature: `${p.uploads.length}:${signature}`,
  };
}

interface Bound {
  buffer: GPUBuffer;
  offset: number;
  storage: Storage;
}

/**
 * Run the program over these inputs as one submission and return its
 * outputs as computed nodes; null (nothing changed) when it cannot run
 * without the general path: an input not yet computed or on another device,
 * or a buffer the pool does not have. `consumed`: input nodes the call
 * frees (donated, read by nothing else): their buffers go back to the pool
 * after their last reader, for the outputs to reuse.
 */
export function runProgram(prog: Program, inputs: readonly ProgramInput[], consumed: ReadonlySet<Node>): Node[] | null {
  const r = prog.runtime;
  const { device } = r.ctx;
  const pool = r.pool;
  for (const s of prog.sources) {
    const x = s.kind === 'input' ? inputs[s.index] : s.kind === 'captured' ? s.node : null;
    if (!x || !('prim' in x)) continue;
    if (x.dead) throw new DisposedArrayError(`jit: an array the function reads (shape [${x.shape.join(', ')}]) was ${x.dead}`);
    if (!isComputed(x) || (x.storage && x.storage.pool !== pool)) return null;
  }
  device.pushErrorScope('validation');
  device.pushErrorScope('out-of-memory');
  const journal = pool.begin();
  const staged0 = r.staging.buffers;
  const bound: Bound[] = new Array(prog.sources.length);
  const uploads: Storage[] = [];
  const dropped: Array<[Node, Storage]> = [];
  const upload = (data: HostArray): Bound => {
    const s = pool.acquire(data.byteLength);
    if (data.byteLength) device.queue.writeBuffer(s.buffer, 0, data.buffer, data.byteOffset, data.byteLength);
    uploads.push(s);
    return { buffer: s.buffer, offset: 0, storage: s };
  };
  const times = config.submissionTimes;
  const clock = r.idle.clock(device, prog.signature, !!times);
  let encoder: GPUCommandEncoder;
  try {
    // Uploads first: a buffer this submission gives back must not receive a writeBuffer meant for it.
    prog.sources.forEach((s, i) => {
      if (s.kind === 'made') return;
      const x = s.kind === 'input' ? inputs[s.index]! : s.kind === 'captured' ? s.node : s.data;
      if (!('prim' in x)) bound[i] = upload(x);
      else if (x.storage) bound[i] = { buffer: x.storage.buffer, offset: x.offset, storage: x.storage };
      else bound[i] = upload(x.cpu!);
    });
    encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass(clock ? { timestampWrites: clock.timestampWrites } : undefined);
    // The buffers the program's values had in the last two runs. A value whose own are taken
    // (the first runs) takes none of the others', even if that means a new buffer: one taken
    // from another makes that one take a third, and so on, and with several values of one
    // size the rotation can last hundreds of runs.
    const claimed = new Set<GPUBuffer>();
    for (const s of prog.sources) if (s.kind === 'made') for (const b of s.recent) claimed.add(b);
    for (const op of prog.ops) {
      if ('acquire' in op) {
        // The buffer it had last time, or the time before (an output still read as this run's input): the same bind groups.
        const src = prog.sources[op.acquire] as Extract<Source, { kind: 'made' }>;
        const s = pool.acquire(src.bytes, src.recent, claimed);
        if (s.buffer !== src.recent[0]) src.recent = [s.buffer, ...src.recent.slice(0, 1)];
        bound[op.acquire] = { buffer: s.buffer, offset: 0, storage: s };
      } else if ('release' in op) {
        pool.release(bound[op.release]!.storage);
      } else if ('drop' in op) {
        const x = inputs[(prog.sources[op.drop] as { index: number }).index]!;
        const at = bound[op.drop]!;
        if (!('prim' in x) || at.storage !== x.storage) {
          pool.release(at.storage); // an upload: this run's own buffer
          uploads.splice(uploads.indexOf(at.storage), 1);
        } else if (consumed.has(x)) {
          pool.release(at.storage);
          dropped.push([x, at.storage]);
          x.storage = null;
        }
      } else {
        pass.setPipeline(op.pipeline);
        pass.setBindGroup(0, bindGroup(prog, op, bound));
        pass.dispatchWorkgroups(op.grid[0], op.grid[1], op.grid[2]);
      }
    }
    pass.end();
  } catch (e) {
    undo(r, clock, dropped);
    throw e;
  }
  if (journal.createdBytes >= CHECKED_BYTES || (r.careful && journal.created.length > 0)) {
    // Past what the general path would create unchecked: leave the call to it (failure.ts).
    undo(r, clock, dropped);
    programs.declined++;
    return null;
  }
  clock?.finish(encoder);
  const outs: Node[] = [];
  const given: Array<[Node, Storage]> = [];
  const taken = new Set<number>();
  for (const o of prog.outputs) {
    const at = bound[o.buf]!;
    // A made buffer becomes the first output's own; inputs and a second output on the same buffer share it.
    if (prog.sources[o.buf]!.kind !== 'made' || taken.has(o.buf)) pool.retain(at.storage);
    taken.add(o.buf);
    const n = makeComputedNode(o.prim, o.params, o.shape, o.dtype, at.storage, at.offset + o.offset);
    outs.push(n);
    given.push([n, at.storage]);
  }
  // Small outputs (a loss) go to the small-value slots, as the general path's do, unless they come back.
  const last = prog.last;
  const slotted = outs.filter((n, j) => n.size > 0 && n.size <= SMALL_MAX && !(last && consumed.has(last[j]!)));
  prog.last = outs;
  const retiring = r.small.put(encoder, slotted);
  device.queue.submit([encoder.finish()]);
  pool.commit();
  for (const s of uploads) pool.release(s);
  pool.stats.submissions++;
  pool.stats.dispatches += prog.dispatches;
  programs.runs++;
  if (config.dispatchLog) for (const op of prog.ops) if ('pipeline' in op) config.dispatchLog.push(op.name);
  const created = journal.created.length > 0 || r.staging.buffers > staged0;
  const ex = afterSubmit(r, {
    gating: created,
    failure: popScopes(device, [], journal.injected),
    given: created ? given : null,
    slotted,
    uniform: { buffer: prog.uniform, created: false },
    signature: prog.signature,
    retiring,
    read: [],
    staging: [],
    timer: null,
    clock,
    times,
  });
  if ('values' in ex) ex.values.catch(() => {}); // a lost value says so when read
  return outs;
}

/** The dispatch's bind group over this run's buffers: one of its last two if they name the same buffers. */
function bindGroup(prog: Program, op: Dispatch, bound: Bound[]): GPUBindGroup {
  const cache = prog.runtime.bindGroups;
  for (const m of op.recent) {
    if (m.generation !== cache.generation) continue;
    let same = true;
    for (let i = 0; i < op.binds.length && same; i++) {
      const b = op.binds[i]!;
      const at = bound[b.buf]!;
      same = at.buffer === m.buffers[i] && at.offset + b.offset === m.offsets[i];
    }
    if (same) return m.group;
  }
  const buffers = op.binds.map((b) => bound[b.buf]!.buffer);
  const offsets = op.binds.map((b) => bound[b.buf]!.offset + b.offset);
  const group = cache.get(op.pipeline, [
    { buffer: prog.uniform, offset: op.uniform.offset, size: op.uniform.size },
    ...op.binds.map((b, i) => ({ buffer: buffers[i]!, offset: offsets[i]!, size: b.size })),
  ]);
  op.recent = [{ generation: cache.generation, buffers, offsets, group }, ...op.recent.slice(0, 1)];
  return group;
}

/** Undo a run that did not submit: every pool call since begin() (consumed inputs get their buffers back), and buffers it created destroyed. */
function undo(r: Runtime, clock: { discard: () => void } | null, dropped: Array<[Node, Storage]>): void {
  for (const [n, s] of dropped) n.storage = s;
  const created = r.pool.rollback();
  if (created.length) r.bindGroups.clear();
  for (const b of created) b.destroy();
  clock?.discard();
  void popScopes(r.ctx.device, [], 0);
}
