// Out of memory. WebGPU reports a failed allocation through an error scope,
// asynchronously; the buffer it returns is invalid, and so is any submission
// that uses it. Each submission runs inside 'out-of-memory' and 'validation'
// scopes, and when it created buffers the next evaluation waits until they are
// settled (microseconds), so no evaluation ever uses a bad buffer.
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
// This file has the pieces: the scopes' verdict, the error messages, and the
// saved node fields that make an evaluation undoable.

import { OutOfMemoryError } from '../errors';
import type { Node } from '../array/node';
import type { Plan } from '../exec/plan';
import { bucketSize, describeStats, type BufferPool, type Storage } from './pool';
import type { Step } from './fuse';
import type { HostArray } from '../array/dtype';

/** New buffers an evaluation may create before it is checked (undone, then run once they are known good). */
export const CHECKED_BYTES = 8 << 20;
/** Checked runs of one evaluation; past this many (other work keeps taking its buffers), it runs unchecked. */
export const MAX_CHECKS = 4;

export const LOST_OOM = 'lost: the GPU ran out of memory while computing it (OutOfMemoryError)';
/** What an evaluation's error scopes reported. */
export interface Failure {
  /** An allocation failed ('out-of-memory'), rather than a validation error. */
  oom: boolean;
  /** The device's message. */
  message: string;
  /** GPU memory this evaluation asked for anew: pool buffers (and, when submitted, staging buffers). */
  requests: Array<{ bytes: number; size: number }>;
}

export type Executed =
  /** Submitted: the values of `read` (or the error), resolved once they are mapped. */
  | { values: Promise<HostArray[]> }
  /** Undone before submitting because it created buffers: resolves with the scopes' verdict on them. */
  | { failure: Promise<Failure | null> };

/** Node fields execute() changes: saved before encoding, put back if the evaluation is undone. */
type Saved = [Node, Storage | null, number, number, Node[], string | null, boolean, HostArray | null];

export function save(p: Plan): Saved[] {
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

export function restore(saved: Saved[]): void {
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
export function bytesBound(p: Plan, steps: Step[]): number {
  let b = 0;
  for (const n of p.uploads) b += bucketSize(n.size * 4);
  for (const s of steps) {
    if (s.kind === 'alias') continue;
    b += bucketSize(s.node.size * 4);
    if (s.kind === 'fused') for (const x of s.extras) b += bucketSize(x.size * 4);
    if (s.kind === 'lowered') for (const x of s.lowering.scratch ?? []) b += bucketSize(x);
  }
  return b;
}

/** Pop the two scopes execute() pushed; resolves with what they caught (an allocation failure first). */
export function popScopes(device: GPUDevice, requests: Failure['requests'], injected: number): Promise<Failure | null> {
  const oom = device.popErrorScope();
  const validation = device.popErrorScope();
  return Promise.all([oom, validation]).then(
    ([o, v]) => {
      if (o) return { oom: true, message: o.message, requests };
      // The test hook's invalid buffers stand for failed allocations.
      if (v && injected > 0) return { oom: true, message: 'simulated out-of-memory (failNextAllocations)', requests };
      if (v) return { oom: false, message: v.message, requests };
      return null;
    },
    () => null, // device lost: reported through device.lost instead
  );
}

export function outOfMemory(f: Failure, pool: BufferPool, how: 'retried' | 'lost'): OutOfMemoryError {
  const device = f.message.split('\n')[0];
  const largest = f.requests.reduce<Failure['requests'][number] | null>((a, q) => (!a || q.size > a.size ? q : a), null);
  const total = f.requests.reduce((a, q) => a + q.size, 0);
  const what = largest
    ? `could not allocate ${largest.bytes} bytes (a buffer of ${largest.size} bytes` +
      (f.requests.length > 1 ? `, the largest of ${f.requests.length} new buffers, ${total} bytes in all` : '') +
      ')'
    : 'ran out of memory';
  const after =
    how === 'retried'
      ? "also after freeing the pool's idle buffers and trying again; nothing was computed and the arrays involved are unchanged"
      : "so the values this evaluation was computing are lost (reading one throws DisposedArrayError); the pool's idle buffers were freed";
  return new OutOfMemoryError(
    `out of GPU memory: the device ${what}, ${after}. Device: ${device}. ` +
      `memoryStats: ${describeStats(pool.stats)}. Dispose arrays you no longer need, or use smaller ones.`,
  );
}

export function internalError(f: Failure): Error {
  return new Error(`internal error: WebGPU rejected an evaluation (${f.message.split('\n')[0]})`);
}
