// The GPU backend: one attempt at running a Plan as one submission. It
// returns what the caller must do next: nothing (submitted; the read values
// will follow), compile pipelines first, or wait for a checked evaluation's
// verdict (failure.ts) before trying again. Never waits itself, so a step can
// be dispatched from synchronous code.

import { config } from '../config';
import { DeviceLostError, NanError, OutOfMemoryError } from '../errors';
import { releaseIfUnused } from '../array/lifetime';
import { isHeld, type Node } from '../array/node';
import type { LowerContext } from '../array/primitives';
import type { Plan } from '../exec/plan';
import { buildSteps, shadersOf } from './fuse';
import { execute } from './encode';
import { describeStats } from './pool';
import { shaderKey, type ShaderSpec } from './kernels';
import type { Runtime } from './runtime';
import type { Failure } from './failure';
import type { HostArray } from '../array/dtype';

export type Outcome =
  | { kind: 'submitted'; values: Promise<HostArray[]> }
  | { kind: 'compile'; shaders: ShaderSpec[] }
  | { kind: 'checked'; failure: Promise<Failure | null> };

/** What lowering rules need to know about the device. */
export function lowerContext(r: Runtime): LowerContext {
  const { isFallback, limits } = r.ctx.info;
  return {
    isFallback,
    maxWorkgroups: limits.maxComputeWorkgroupsPerDimension,
    maxStorageBuffers: limits.maxStorageBuffersPerShaderStage,
    policy: config.policy,
  };
}

/** Errors that no retry can fix: arrays too large for the device, inputs from a lost device. */
export function checkFits(p: Plan, read: Node[], r: Runtime): void {
  const maxBytes = r.ctx.info.limits.maxStorageBufferBindingSize;
  for (const n of p.order) {
    if (n.size * 4 > maxBytes) {
      throw new OutOfMemoryError(
        `${n.prim} would produce an array of ${n.size * 4} bytes (shape [${n.shape.join(', ')}]), ` +
          `over this device's maxStorageBufferBindingSize of ${maxBytes} bytes (memoryStats: ${describeStats(r.pool.stats)})`,
      );
    }
  }
  for (const n of [...p.gpuInputs, ...read]) {
    if (n.storage && n.storage.pool.device !== r.ctx.device)
      throw new DeviceLostError('an input array lives on a GPU device that was lost or replaced');
  }
}

/**
 * Encode and submit the plan if its pipelines are ready (`compileNow`: compile
 * missing ones blocking, for a dispatch from synchronous code); `mayCheck`: it
 * may be undone and checked first (failure.ts). The caller has run checkFits.
 */
export function attemptOnGpu(p: Plan, read: Node[], r: Runtime, mayCheck: boolean, compileNow: boolean): Outcome {
  if (r.ctx.lostError) throw r.ctx.lostError;
  if (r.poisoned) throw r.poisoned;
  const steps = buildSteps(p, lowerContext(r));
  const missing = shadersOf(steps).filter((s) => !r.pipelines.get(s));
  if (missing.length && compileNow) for (const s of missing) r.pipelines.loadNow(s);
  else if (missing.length) return { kind: 'compile', shaders: [...new Map(missing.map((s) => [shaderKey(s), s])).values()] };
  // debugNans: every intermediate comes back too, and the first NaN-producing primitive is named.
  const checked = config.debugNans ? p.order.filter((n) => n.size > 0 && !read.includes(n)) : [];
  const ex = execute(p, steps, [...read, ...checked], r, mayCheck);
  if ('failure' in ex) return { kind: 'checked', failure: ex.failure };
  if (!config.debugNans) return { kind: 'submitted', values: ex.values };
  return {
    kind: 'submitted',
    values: ex.values.then((out) => {
      findFirstNan(p, checked, out.slice(read.length));
      return out.slice(0, read.length);
    }),
  };
}

/** Compile the pipelines an attempt asked for. */
export async function compile(r: Runtime, shaders: ShaderSpec[]): Promise<void> {
  await Promise.all(shaders.map((s) => r.pipelines.load(s)));
  if (r.ctx.lostError) throw r.ctx.lostError;
}

function findFirstNan(p: Plan, nodes: Node[], values: HostArray[]): void {
  const hasNan = new Map<Node, boolean>();
  nodes.forEach((n, i) => hasNan.set(n, values[i]!.some(Number.isNaN)));
  // Release what was kept only to be checked.
  for (const n of nodes) if (!p.targets.has(n) && !isHeld(n) && n.consumers === 0) releaseIfUnused(n, 'freed after the debugNans check');
  const first = nodes.find((n) => hasNan.get(n));
  if (first) {
    throw new NanError(
      `debugNans: primitive '${first.prim}' produced NaN (node #${first.id}, shape [${first.shape.join(', ')}]` +
        `${Object.keys(first.params).length ? `, params ${JSON.stringify(first.params)}` : ''}); the first op in evaluation order with a NaN output`,
    );
  }
}
