// The GPU runtime's state for the current device: buffer pool, pipeline
// cache, reusable uniform and readback buffers, the idle wait, the small-value
// slots, and what is in flight. Made on first use, dropped when the device is
// replaced (reinit) so nothing refers to an old device.

import { currentContext, envFlag, init, onDeviceReset, type GpuContext } from './device';
import { BufferPool, type MemoryStats } from './pool';
import { PipelineCache } from './kernels';
import { IdleWait, idleWaitWanted } from './wait';
import { SmallValues, Staging } from './readback';
import { BindGroupCache } from './bindgroups';

export interface Runtime {
  ctx: GpuContext;
  pool: BufferPool;
  pipelines: PipelineCache;
  bindGroups: BindGroupCache;
  /** Uniform buffers free for the next submission (queue order makes reuse safe). */
  uniforms: GPUBuffer[];
  staging: Staging;
  small: SmallValues;
  idle: IdleWait;
  /**
   * The last submission's error scopes, while it created new buffers and they
   * are not settled: the next evaluation waits for them (a failed allocation
   * must not reach another submission).
   */
  settling: Promise<void> | null;
  /** This device has run out of memory before: every evaluation that creates a buffer is checked first. */
  careful: boolean;
  /**
   * WebGPU rejected a submission that created no buffers (so a bug, not memory): values computed
   * since cannot be trusted, and every later evaluation throws this.
   */
  poisoned: Error | null;
  /** Submissions made, and how many of them are known to have finished (queue order: a prefix). */
  submitted: number;
  finished: number;
}

let rt: Runtime | null = null;
onDeviceReset(() => {
  if (rt) freeIdle(rt);
  rt = null;
});

/** Destroy what is idle: the pool's free buffers and the kept readback buffers. */
export function freeIdle(r: Runtime): void {
  r.bindGroups.clear(); // they may name a buffer destroyed here
  r.pool.flush();
  r.staging.flush();
}

function make(ctx: GpuContext): Runtime {
  const { maxStorageBufferBindingSize, maxBufferSize } = ctx.info.limits;
  const pool = new BufferPool(ctx.device, maxStorageBufferBindingSize, maxBufferSize);
  const staging = new Staging(ctx.device);
  return {
    ctx,
    pool,
    pipelines: new PipelineCache(ctx.device),
    bindGroups: new BindGroupCache(ctx.device),
    uniforms: [],
    staging,
    small: new SmallValues(pool, staging),
    idle: new IdleWait(idleWaitWanted(ctx.info.backend, ctx.info.isFallback, envFlag('GRADGPU_IDLE_WAIT'))),
    settling: null,
    careful: false,
    poisoned: null,
    submitted: 0,
    finished: 0,
  };
}

/** The runtime, initialising the device on first use. */
export async function runtime(): Promise<Runtime> {
  const ctx = currentContext() ?? (await init());
  if (ctx.lostError) throw ctx.lostError;
  if (!rt || rt.ctx !== ctx) rt = make(ctx);
  return rt;
}

/** The runtime if the device is ready now (no await), else null. */
export function runtimeNow(): Runtime | null {
  const ctx = currentContext();
  if (!ctx) return null;
  if (!rt || rt.ctx !== ctx) rt = make(ctx);
  return rt;
}

/** Queue order: once submission k has finished, so have all before it. */
export function markFinished(r: Runtime, upTo: number): void {
  if (upTo > r.finished) r.finished = upTo;
}

const emptyStats: MemoryStats = {
  liveBuffers: 0,
  liveBytes: 0,
  pooledBuffers: 0,
  pooledBytes: 0,
  submissions: 0,
  dispatches: 0,
  hostEvaluations: 0,
  readbackBuffers: 0,
  readbackBytes: 0,
  inFlight: 0,
};
let hostEvaluations = 0;

/** Count an evaluation the host backend ran. */
export function countHostEvaluation(): void {
  hostEvaluations++;
}

/** Live and pooled GPU memory, readback buffers, and submissions/dispatches so far (on the current device). */
export function memoryStats(): MemoryStats {
  if (!rt) return { ...emptyStats, hostEvaluations };
  return {
    ...rt.pool.stats,
    hostEvaluations,
    readbackBuffers: rt.staging.buffers,
    readbackBytes: rt.staging.bytes,
    inFlight: rt.submitted - rt.finished,
  };
}

/**
 * Destroy the pool's idle buffers (those kept for reuse; arrays are untouched)
 * and the idle readback buffers, giving their GPU memory back. The library does
 * this itself when an allocation fails. Returns memoryStats() afterwards (pooledBytes 0).
 */
export function flushPool(): MemoryStats {
  if (rt) freeIdle(rt);
  return memoryStats();
}

export function align(n: number): number {
  return Math.ceil(n / 256) * 256;
}

/** A uniform buffer of at least `bytes`, reused across submissions (queue order makes that safe). */
export function takeUniform(r: Runtime, bytes: number): { buffer: GPUBuffer; created: boolean } {
  const i = r.uniforms.findIndex((u) => u.size >= bytes);
  if (i >= 0) return { buffer: r.uniforms.splice(i, 1)[0]!, created: false };
  const size = Math.max(4096, 2 ** Math.ceil(Math.log2(bytes)));
  return { buffer: r.ctx.device.createBuffer({ size, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST }), created: true };
}
