// Every runtime switch in one place (as jax/_src/config.py holds JAX's flags):
// what the runtime reads while planning and encoding, and the setters the
// public API exports. Nothing here touches the GPU.

import type { KernelTiming } from './gpu/timing';

/** Which kernel variants to use (setKernelPolicy); "auto" picks by adapter. */
export interface KernelPolicy {
  /** Tiled matmul kernel: 'auto' = register-blocked on CPU adapters, shared-memory tiles on GPUs. Forcing one also disables the matrix-vector kernels. */
  matmul: 'auto' | 'register' | 'shared';
  /** Row sums: workgroup-memory tree ('tree') or per-thread blocks ('strided'); 'auto' = tree on GPUs. */
  reduce: 'auto' | 'tree' | 'strided';
  /** A @ v: thread per row or workgroup per row; 'auto' = thread on CPU adapters. */
  matvec: 'auto' | 'thread' | 'group';
  /** 'auto': an elementwise kernel that reads a matrix product runs inside the product's kernel, on its results (src/gpu/epilogue.ts); 'off': a kernel of its own. */
  epilogue: 'auto' | 'off';
}

export const config = {
  /** setDebugNans */
  debugNans: false,
  /** setHostEvaluation: most element-operations a graph may have to run on the host; 0 = never. */
  hostWorkLimit: 1 << 15,
  policy: { matmul: 'auto', reduce: 'auto', matvec: 'auto', epilogue: 'auto' } as KernelPolicy,
  /** logDispatches: kernels of later submissions, or null. */
  dispatchLog: null as string[] | null,
  /** profileKernels: per-dispatch GPU times, or null. */
  kernelProfile: null as KernelTiming[] | null,
  /** timeSubmissions: per-submission GPU times, or null. */
  submissionTimes: null as number[] | null,
};

/**
 * Like jax_debug_nans: when on, every evaluation writes every intermediate to
 * memory and checks it, and the first primitive that turns NaN-free inputs
 * into a NaN throws a NanError naming it. Slow; for debugging.
 */
export function setDebugNans(on: boolean): void {
  config.debugNans = on;
}

/**
 * Evaluate pending graphs on the host (no GPU round trip) when every input
 * already has a host copy and the whole graph does at most `maxWork`
 * element-operations (a matmul counts its multiply-adds); 0 turns it off.
 * Default 32768: below it, the GPU's fixed cost per submission dominates.
 * See src/exec/host-backend.ts.
 */
export function setHostEvaluation(maxWork: number): void {
  config.hostWorkLimit = Math.max(0, maxWork);
}

/** Override kernel choices (for tests and benchmarks); unspecified fields keep their value. Returns the policy now in force. */
export function setKernelPolicy(p: Partial<KernelPolicy>): KernelPolicy {
  Object.assign(config.policy, p);
  return { ...config.policy };
}

/** Record the kernels of later submissions (debugging, kernel-count tests); pass false to stop. Returns the log. */
export function logDispatches(on: boolean): string[] {
  config.dispatchLog = on ? [] : null;
  return config.dispatchLog ?? [];
}

/**
 * Time every kernel of later submissions on the GPU (timestamp queries, one
 * compute pass per dispatch); pass false to stop. Returns the list the
 * timings are appended to once each submission's results are read. Empty on
 * adapters without 'timestamp-query'.
 */
export function profileKernels(on: boolean): KernelTiming[] {
  config.kernelProfile = on ? [] : null;
  return config.kernelProfile ?? [];
}

/**
 * Record the GPU time of each later submission (ms, from timestamps at the
 * start and end of its compute pass); pass false to stop. Returns the list
 * the times are appended to, each once its submission has finished.
 * Empty on adapters without 'timestamp-query'. Cheap: one 16-byte readback
 * per submission.
 */
export function timeSubmissions(on: boolean): number[] {
  config.submissionTimes = on ? [] : null;
  return config.submissionTimes ?? [];
}
