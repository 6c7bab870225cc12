// When work goes to the GPU: the execution model.
//
//   Work is dispatched, without waiting, at the end of every training step
//   (applyUpdates) and whenever PENDING_BOUND nodes are pending outside a
//   transformation; a read computes what it needs and is the only thing
//   that waits.
//
// Each dispatch takes everything pending (plan.ts), so a step is one
// submission and its graph is fused as a whole, but the graph never spans
// steps. Small results nobody is reading (a loss, a metric) go to
// small-value slots and come back to the host in batches (gpu/readback.ts),
// so their GPU buffers are freed without the garbage collector.
//
// Work in flight is bounded: while MAX_IN_FLIGHT submissions are not known to
// have finished, a step's dispatch waits (asynchronously: its graph stays
// pending and goes with the next dispatch) until the queue drains. JavaScript
// cannot block, so a loop that never yields to the event loop cannot observe
// the queue draining; there the size bound alone applies (one submission per
// PENDING_BOUND nodes), and GPU memory stays flat because buffers are reused
// in queue order.

import { setEvaluator } from '../array/evaluator';
import { NDArray } from '../array/ndarray';
import { leaves } from '../tree/tree';
import { inScope, isComputed, isTracing, pruneUnsent, putBack, takeUnsent, unsentCount, PENDING_BOUND, type Node } from '../array/node';
import { dispatchTargets, plan, SMALL_MAX, type Plan } from './plan';
import { fitsHost, runOnHost } from './host-backend';
import { attemptOnGpu, checkFits, compile, type Outcome } from '../gpu/backend';
import { readComputed } from '../gpu/encode';
import { config } from '../config';
import { countHostEvaluation, markFinished, runtime, runtimeNow, type Runtime } from '../gpu/runtime';
import { internalError, MAX_CHECKS, outOfMemory } from '../gpu/failure';
import type { HostArray } from '../array/dtype';

/** Submissions that may be unfinished before a step's dispatch waits for the queue. */
export const MAX_IN_FLIGHT = 4;

/** Internal, for the tests: the largest plan any evaluation made (nodes computed), a proxy for per-step cost. */
export const planStats = { largest: 0 };

interface Tries {
  checks: number;
  failures: number;
}

/**
 * One attempt at an evaluation: on the host if it fits, else on the GPU.
 * A dispatch (`all`) takes everything pending, and gives it back unless the
 * attempt submitted; a read or evaluate() computes only what it asked for, so
 * unrelated pending work that fails (out of memory) cannot block it.
 */
function attempt(r: Runtime, read: Node[], tries: Tries, also: Node[], compileNow = false, all = false): Outcome {
  const candidates = all ? takeUnsent() : [];
  try {
    const p = planIsolating(dispatchTargets(candidates, [...read, ...also]), read, also, r);
    if (p.order.length > planStats.largest) planStats.largest = p.order.length;
    // evaluate(x) of an array with only a host copy puts it on the GPU.
    for (const n of also) if (n.cpu && !n.storage && !p.uploads.includes(n)) p.uploads.push(n);
    if (p.order.length === 0 && p.uploads.length === 0 && read.length === 0) return { kind: 'submitted', values: Promise.resolve([]) };
    if (fitsHost(p, read)) {
      const values = runOnHost(p, read);
      countHostEvaluation();
      return { kind: 'submitted', values: Promise.resolve(values) };
    }
    const out = attemptOnGpu(p, read, r, tries.checks < MAX_CHECKS, compileNow);
    if (out.kind !== 'submitted') putBack(candidates);
    return out;
  } catch (e) {
    putBack(candidates);
    throw e;
  }
}

/**
 * Plan the targets; if that fails (an array too large for the device, one
 * computed from a disposed array), plan each alone and leave out the ones that
 * fail, so one bad array does not block everything else. They stay pending
 * and throw their error when read; a failing node that was asked for throws now.
 */
function planIsolating(targets: Node[], read: Node[], also: Node[], r: Runtime): Plan {
  const checked = (ts: Node[], rd: Node[]) => {
    const p = plan(ts);
    checkFits(p, rd, r);
    return p;
  };
  try {
    return checked(targets, read);
  } catch (e) {
    const asked = new Set([...read, ...also]);
    const good = targets.filter((t) => {
      try {
        checked([t], []);
        return true;
      } catch (e2) {
        if (asked.has(t)) throw e2;
        return false;
      }
    });
    if (good.length === targets.length) throw e;
    return checked(good, read);
  }
}

/** Keep trying until submitted: compile what is missing, wait out checked evaluations and settling scopes. */
async function evaluateAsync(read: Node[], also: Node[], first?: Outcome, all = false): Promise<HostArray[]> {
  const tries: Tries = { checks: 0, failures: 0 };
  for (let out = first; ; out = undefined) {
    const r = await runtime();
    if (!out) {
      while (r.settling) await r.settling;
      out = attempt(r, read, tries, also, false, all);
    }
    if (out.kind === 'submitted') return out.values;
    if (out.kind === 'compile') {
      await compile(r, out.shaders);
      continue;
    }
    // Undone before submitting because it created buffers: they were created and set aside.
    tries.checks++;
    const failure = await out.failure;
    if (failure && !failure.oom) throw internalError(failure);
    // Out of memory: the pool was flushed; try once more, then give up, graph unchanged.
    if (failure && ++tries.failures > 1) throw outOfMemory(failure, r.pool, 'retried');
  }
}

/**
 * Compute `read` and `also` (materialised) with what they need, reading back
 * `read`: now if that needs no waiting (device ready, pipelines compiled, or
 * `compileNow`: compile them blocking), else asynchronously. (flush() is the
 * one that takes everything pending.)
 */
function evaluate(read: Node[], also: Node[] = [], compileNow = false): Promise<HostArray[]> {
  const r = runtimeNow();
  if (r && !r.settling) {
    const out = attempt(r, read, { checks: 0, failures: 0 }, also, compileNow);
    return out.kind === 'submitted' ? out.values : evaluateAsync(read, also, out);
  }
  return evaluateAsync(read, also);
}

let waiting: Promise<void> | null = null;
let later: Promise<unknown> | null = null;

/**
 * Dispatch everything pending (the end of a step, the size bound). Never
 * waits; errors surface at the next read. What cannot go now (the device not
 * ready yet, too much in flight, an earlier submission's new buffers not yet
 * confirmed, a large allocation to check first) goes with one asynchronous
 * dispatch once it can, however many steps ask meanwhile; past the size bound
 * it goes now regardless, unchecked (a loop that never yields gets no verdicts).
 * Reads always wait for the verdicts (gpu/failure.ts).
 */
function flush(): void {
  if (inScope() || unsentCount() === 0) return; // a transformation's nodes stay pending until it ends
  const r = runtimeNow();
  const force = unsentCount() >= PENDING_BOUND;
  if (r && !force && r.submitted - r.finished >= MAX_IN_FLIGHT) return waitForQueue(r);
  // A previous submission's new buffers still unconfirmed matter only on a device that has run out of
  // memory before; elsewhere a failure there is caught by the next submission's own scopes.
  if (r && (force || !r.settling || !r.careful)) {
    try {
      const out = attempt(r, [], { checks: force ? MAX_CHECKS : 0, failures: 0 }, [], true, true);
      if (out.kind === 'submitted') {
        out.values.catch(() => {}); // a lost value reports itself when read (DisposedArrayError saying why)
        return;
      }
    } catch {
      return; // the nodes stay pending: the next read plans them again and throws there
    }
  }
  if (!later)
    later = evaluateAsync([], [], undefined, true)
      .catch(() => {})
      .finally(() => (later = null));
}

/** Too much in flight: once the queue has drained, dispatch what accumulated meanwhile (also for compiled programs, to count finished submissions). */
export function waitForQueue(r: Runtime): void {
  if (waiting) return;
  const upTo = r.submitted;
  // Sleep through the expected GPU time first where polling would starve a software GPU (gpu/wait.ts).
  waiting = r.idle
    .untilIdle()
    .then(() => r.ctx.device.queue.onSubmittedWorkDone())
    .then(
      () => markFinished(r, upTo),
      () => {},
    )
    .finally(() => {
      waiting = null;
      flush();
    });
}

/** Nodes already computed, on a runtime with nothing to settle: read them without planning anything. */
function readsOnly(nodes: Node[]): Promise<HostArray[]> | null {
  const r = runtimeNow();
  if (!r || r.settling || r.poisoned || r.ctx.lostError || config.debugNans || config.kernelProfile) return null;
  for (const n of nodes) {
    if (n.dead || !isComputed(n)) return null;
    if (n.storage && n.storage.pool.device !== r.ctx.device) return null; // (the general path says why)
  }
  return readComputed(r, nodes);
}

/** Compute these nodes (with what they need, and their groups) and read them back: the only thing that waits. */
async function read(nodes: Node[]): Promise<HostArray[]> {
  if (isTracing()) throw new Error('internal error: read during a trace'); // NDArray.data() says why first
  const values = await (readsOnly(nodes) ?? evaluate(nodes));
  pruneUnsent();
  // A small value read back drops its GPU buffer (re-uploaded if used again): losses, metrics.
  nodes.forEach((n, i) => {
    if (n.size <= SMALL_MAX && n.storage && n.consumers === 0 && !n.dead) {
      n.cpu = values[i]!.slice();
      n.storage.pool.release(n.storage);
      n.storage = null;
      n.offset = 0;
    }
  });
  return values;
}

/**
 * Compute the arrays in these pytrees now and wait until the GPU has
 * finished everything submitted (JAX's block_until_ready); arrays with only a
 * host copy are uploaded. Optional: reads and the end of each step dispatch by
 * themselves.
 */
export async function evaluateArrays(...trees: unknown[]): Promise<void> {
  const arrays = leaves(trees, { isLeaf: (x) => typeof x !== 'object' || x === null }).filter((x): x is NDArray => x instanceof NDArray);
  await evaluate(
    [],
    arrays.map((a) => a.use()),
  );
  const r = runtimeNow();
  if (r && r.submitted > r.finished) {
    const upTo = r.submitted;
    await r.idle.untilIdle();
    await r.ctx.device.queue.onSubmittedWorkDone();
    markFinished(r, upTo);
  }
}

setEvaluator({ read, flush });
