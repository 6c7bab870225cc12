// Encoding and submitting one evaluation: upload constants, encode every
// dispatch into one compute pass, hand each intermediate's buffer back to the
// pool right after its last reader is encoded, bring small results back
// (readback.ts), submit once, then map what is read. The out-of-memory
// protocol around it is described in failure.ts.

import { config } from '../config';
import { letGoOfInputs } from '../array/lifetime';
import { isHeld, type Node } from '../array/node';
import { hostArray, hostView, type HostArray } from '../array/dtype';
import type { Plan } from '../exec/plan';
import { AllocationFailed, type Storage } from './pool';
import { grid1d, type ShaderSpec, type Slot } from './kernels';
import type { Step } from './fuse';
import type { PassClock } from './wait';
import { SubmissionTimer } from './timing';
import { align, freeIdle, markFinished, takeUniform, type Runtime } from './runtime';
import type { Retiring } from './readback';
import { bytesBound, CHECKED_BYTES, internalError, LOST_OOM, outOfMemory, popScopes, restore, save, type Executed, type Failure } from './failure';

/**
 * Encode and submit `steps` (the plan's nodes), then read back `read`. Small
 * targets nobody is reading go to small-value slots; a read also retires the
 * active slot batch, so logged losses come back with it.
 */
export function execute(p: Plan, steps: Step[], read: Node[], r: Runtime, mayCheck: boolean): Executed {
  const { device } = r.ctx;
  const { pool } = r;
  if (r.ctx.lostError) throw r.ctx.lostError;
  const acquired: Array<[Node, Storage]> = [];
  /** Every node this evaluation gives a buffer: lost if the submission turns out to have failed. */
  const assigned: Array<[Node, Storage]> = [];
  // Check (undo, wait for the scopes, run again) an evaluation once it has created this much.
  const threshold = r.careful ? 1 : CHECKED_BYTES;
  const checked = mayCheck && bytesBound(p, steps) >= threshold;
  const saved = checked ? save(p) : [];
  const dispatches0 = pool.stats.dispatches;
  const dispatchLog = config.dispatchLog;
  const logged0 = dispatchLog?.length ?? 0;
  const staged0 = r.staging.buffers;
  device.pushErrorScope('validation');
  device.pushErrorScope('out-of-memory');
  const journal = pool.begin();
  const requests: Failure['requests'] = [];
  // Past the threshold, a checked evaluation stops encoding (dry) and only tracks buffers.
  const dry = () => checked && journal.createdBytes >= threshold;
  let uniform: { buffer: GPUBuffer; created: boolean } | null = null;
  let timer: SubmissionTimer | null = null;
  let clock: PassClock | null = null;
  const times = config.submissionTimes;
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
  const settle = (failure: Promise<Failure | null>, act: (f: Failure | null) => void) => settleScopes(r, failure, true, act);
  const lose = (why: string) => loseNodes(assigned, slotNodes, why);
  const dropUniform = () => dropNewUniform(r, uniform);
  let encoder: GPUCommandEncoder;
  let staging: Array<GPUBuffer | null>;
  let retiring: Retiring[];
  let slotNodes: Node[] = [];
  let signature = `${p.uploads.length}:`; // what the idle wait keys its time estimate by
  try {
    // Constants first: writeBuffer runs before the submit, so it must not land in a buffer this submission frees and reuses.
    for (const n of p.uploads) {
      const s = pool.acquire(n.size * 4);
      acquired.push([n, s]);
      if (n.size && !dry()) device.queue.writeBuffer(s.buffer, 0, n.cpu!.buffer, n.cpu!.byteOffset, n.size * 4);
    }
    // All params of this submission in one uniform buffer, 256-byte aligned slices.
    let paramBytes = 0;
    const count = (grid: [number, number, number]) => {
      const size = grid[0] * grid[1] * grid[2];
      if (size) signature += `${size},`;
    };
    for (const s of steps) {
      if (s.kind === 'fused') {
        paramBytes += align(s.params.byteLength);
        count(s.grid ?? grid1d(s.threads));
      } else if (s.kind === 'lowered')
        for (const c of s.lowering.calls) {
          paramBytes += align(c.params.byteLength);
          count(c.grid);
        }
    }
    const arena = new Uint8Array(Math.max(256, paramBytes));
    uniform = takeUniform(r, arena.byteLength);
    const uniformBuffer = uniform.buffer;
    let paramAt = 0;
    encoder = device.createCommandEncoder();
    timer = config.kernelProfile && device.features.has('timestamp-query') ? new SubmissionTimer(device) : null;
    // A read of computed values has no kernels: no compute pass, and no clock to map back (it added a mapAsync to every read).
    const kernels = steps.some((st) => st.kind !== 'alias');
    clock = timer || !kernels ? null : r.idle.clock(device, signature, !!times);
    const pass = timer || !kernels ? null : encoder.beginComputePass(clock ? { timestampWrites: clock.timestampWrites } : undefined);
    const bindOf = (n: Node) => ({ buffer: n.storage!.buffer, offset: n.offset, size: Math.max(4, n.size * 4) });
    const dispatch = (spec: ShaderSpec, params: ArrayBuffer, resources: GPUBufferBinding[], grid: [number, number, number]) => {
      if (grid[0] * grid[1] * grid[2] === 0 || dry()) return;
      arena.set(new Uint8Array(params), paramAt);
      const pipeline = r.pipelines.get(spec)!;
      const group = r.bindGroups.get(pipeline, [{ buffer: uniformBuffer, offset: paramAt, size: params.byteLength }, ...resources]);
      paramAt += align(params.byteLength);
      const ps = pass ?? encoder!.beginComputePass(timer!.pass(`${spec.template}:${spec.entry}`, grid));
      ps.setPipeline(pipeline);
      ps.setBindGroup(0, group);
      ps.dispatchWorkgroups(grid[0], grid[1], grid[2]);
      if (!pass) ps.end();
      if (dispatchLog) dispatchLog.push(`${spec.template}:${spec.entry} [${grid.join(',')}]`);
      pool.stats.dispatches++;
    };
    for (const [n, s] of acquired) {
      n.storage = s;
      n.offset = 0; // a view read back to the host comes back at the start of a fresh buffer
      assigned.push([n, s]);
    }

    const finish = (n: Node) => letGoOfInputs(n, p.keep);
    // How many kernels compute each inlined intermediate, and those that must stay pending.
    const computedIn = new Map<Node, number>();
    for (const s of steps)
      if (s.kind === 'fused') for (const m of s.members) if (m !== s.node && !s.extras.includes(m)) computedIn.set(m, (computedIn.get(m) ?? 0) + 1);
    const stays = new Set<Node>();

    for (const s of steps) {
      const n = s.node;
      if (s.kind === 'alias') {
        n.storage = s.of.storage;
        n.storage!.pool.retain(n.storage!);
        assigned.push([n, n.storage!]);
        n.offset = s.of.offset + s.offset;
        finish(n);
        continue;
      }
      const out = pool.acquire(n.size * 4);
      n.storage = out;
      n.offset = 0;
      assigned.push([n, out]);
      if (s.kind === 'fused') {
        for (const x of s.extras) {
          x.storage = pool.acquire(x.size * 4);
          x.offset = 0;
          assigned.push([x, x.storage]);
        }
        dispatch(s.shader, s.params, [bindOf(n), ...s.extras.map(bindOf), ...s.leaves.map(bindOf)], s.grid ?? grid1d(s.threads));
        // A member a user still holds stays pending, with its inputs (recomputed if read later),
        // and so does every member below it; the others are done once the last kernel that
        // computes them (a shared intermediate is computed in each of its readers') is encoded.
        const pending = new Set<Node>();
        for (let k = s.members.length - 1; k >= 0; k--) {
          const m = s.members[k]!;
          if (m !== n && isHeld(m) && !s.extras.includes(m)) pending.add(m);
          if (pending.has(m)) for (const q of m.inputs) pending.add(q);
        }
        for (const m of s.members) {
          if (m === n) continue;
          if (s.extras.includes(m)) {
            finish(m); // written out: computed, like the root
            continue;
          }
          if (pending.has(m)) stays.add(m);
          const left = (computedIn.get(m) ?? 1) - 1;
          computedIn.set(m, left);
          if (left > 0 || stays.has(m)) continue;
          m.dead = 'fused into another kernel (an intermediate nobody held)';
          finish(m);
        }
        finish(n);
      } else {
        const scratch = (s.lowering.scratch ?? []).map((b) => pool.acquire(b));
        const res = (slot: Slot): GPUBufferBinding =>
          'out' in slot
            ? bindOf(n)
            : 'input' in slot
              ? bindOf(n.inputs[slot.input]!)
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
      const failure = popScopes(device, requests, journal.injected);
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
    // Small results: into slots (their own buffers freed), and a read takes the active batch along.
    slotNodes = p.small.filter((n) => !read.includes(n) && n.storage);
    retiring = r.small.put(encoder, slotNodes);
    staging = stageReads(r, encoder, read, retiring, requests);
    device.queue.writeBuffer(uniformBuffer, 0, arena.buffer, 0, Math.max(256, paramAt));
  } catch (e) {
    // A synchronous failure while encoding (createBuffer threw, a bug): nothing was submitted.
    const alloc = e instanceof AllocationFailed;
    if (checked) {
      r.bindGroups.clear();
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
    const failure = popScopes(device, requests, journal.injected);
    settle(failure, () => {});
    if (!alloc) throw e;
    const thrown: Failure = { oom: true, message: e.message, requests: [e.allocation] };
    if (checked) return { failure: failure.then(() => thrown) };
    throw outOfMemory(thrown, pool, 'lost');
  }
  device.queue.submit([encoder.finish()]);
  pool.commit();
  pool.stats.submissions++;
  r.uniforms.push(uniform!.buffer);
  journal.created.forEach((a) => requests.unshift({ bytes: a.bytes, size: a.size }));
  return afterSubmit(r, {
    // The next evaluation waits for this one's scopes only when it created buffers: an evaluation
    // that reused pooled ones cannot have failed to allocate, and must not stall a loop that never yields.
    gating: journal.created.length > 0 || uniform!.created || r.staging.buffers > staged0,
    failure: popScopes(device, requests, journal.injected),
    // Only an evaluation that created buffers can fail to allocate; one that did not fails only through a
    // bug, and then poisons the runtime instead (holding every step's nodes until the verdict would make a
    // loop that never yields keep its whole history).
    given: journal.created.length > 0 || uniform!.created ? assigned : null,
    slotted: slotNodes,
    uniform: uniform!,
    signature,
    retiring,
    read,
    staging: staging!,
    timer,
    clock,
    times,
  });
}

/**
 * Encode the copies that bring `read` back: the active small-value batch (a
 * read takes it along, so logged losses come back with it; pushed to
 * `retiring`), and a staging buffer for each value not in a slot or on the host.
 */
function stageReads(
  r: Runtime,
  encoder: GPUCommandEncoder,
  read: Node[],
  retiring: Retiring[],
  requests: Failure['requests'],
): Array<GPUBuffer | null> {
  const slotted = read.filter((n) => r.small.holds(n));
  if (read.length > 0 && r.small.hasActive) {
    const batch = r.small.retire()!;
    batch.copy(encoder);
    retiring.push(batch);
  }
  return read.map((n) => {
    if ((n.cpu && !n.storage) || n.size === 0 || slotted.includes(n)) return null;
    const b = r.staging.take(n.size * 4);
    encoder.copyBufferToBuffer(n.storage!.buffer, n.offset, b, 0, n.size * 4);
    requests.push({ bytes: n.size * 4, size: b.size });
    return b;
  });
}

/**
 * Read values that are all computed (on the GPU, in a small-value slot, or
 * on the host): the read alone, without planning or a uniform buffer. A
 * loss read after each step spent most of its ~0.2 ms in the general path's
 * planning and setup here; the copy and the map are ~0.06 ms of it.
 */
export function readComputed(r: Runtime, read: Node[]): Promise<HostArray[]> {
  const { device } = r.ctx;
  if (read.every((n) => n.cpu && !n.storage)) return Promise.resolve(read.map((n) => n.cpu!.slice()));
  device.pushErrorScope('validation');
  device.pushErrorScope('out-of-memory');
  const staged0 = r.staging.buffers;
  const encoder = device.createCommandEncoder();
  const requests: Failure['requests'] = [];
  const retiring: Retiring[] = [];
  const staging = stageReads(r, encoder, read, retiring, requests);
  device.queue.submit([encoder.finish()]);
  r.pool.stats.submissions++;
  const ex = afterSubmit(r, {
    gating: r.staging.buffers > staged0,
    failure: popScopes(device, requests, 0),
    given: null,
    slotted: [],
    uniform: null,
    signature: '0:',
    retiring,
    read,
    staging,
    timer: null,
    clock: null,
    times: null,
  });
  return 'values' in ex ? ex.values : Promise.reject(new Error('internal error: a read was undone'));
}

/**
 * What follows a submission, in its own function so that the callbacks left
 * waiting on the GPU capture only this (a loop that never yields runs none of
 * them, and must not keep every step's graph alive meanwhile: nodes are held weakly).
 */
export function afterSubmit(
  r: Runtime,
  s: {
    gating: boolean;
    failure: Promise<Failure | null>;
    given: Array<[Node, Storage]> | null;
    slotted: Node[];
    uniform: { buffer: GPUBuffer; created: boolean } | null;
    signature: string;
    retiring: Retiring[];
    read: Node[];
    staging: Array<GPUBuffer | null>;
    timer: SubmissionTimer | null;
    clock: PassClock | null;
    times: number[] | null;
  },
): Executed {
  const { failure, read, staging, timer, clock, times, signature } = s;
  const pool = r.pool;
  const serial = ++r.submitted;
  // A failure now means the submission did not run (its command buffer was invalid):
  // the values it was computing are lost.
  const { given } = s;
  const slotted = given ? s.slotted : [];
  settleScopes(r, failure, s.gating, (f) => {
    if (!f) return;
    if (!given) {
      r.poisoned = internalError(f);
      return;
    }
    loseNodes(given, slotted, f.oom ? LOST_OOM : 'lost: WebGPU rejected the evaluation that computed it');
    freeIdle(r);
    dropNewUniform(r, s.uniform);
  });
  const profile = config.kernelProfile;
  const slept = r.idle.before(signature);
  const batches = s.retiring.map((batch) => slept.then(() => batch.afterSubmit()).then(() => markFinished(r, serial)));
  for (const done of batches) done.catch(() => {});
  const results = Promise.all(
    read.map(async (n, i) => {
      await slept;
      const b = staging[i];
      if (!b) {
        // In a slot: its batch was retired by this submission (or an earlier one).
        await Promise.all(batches);
        await r.small.whenRead(n);
        return n.cpu ? n.cpu.slice() : hostArray(n.dtype, 0);
      }
      try {
        const data = hostView(n.dtype, await r.staging.read(b, n.size * 4), 0, n.size);
        markFinished(r, serial);
        // Batches retired by this submission map a moment later: wait for them, so that after an
        // awaited read nothing of its submission is still in flight (memoryStats is then settled).
        await Promise.allSettled(batches);
        return data;
      } catch (e) {
        if (r.ctx.lostError) throw r.ctx.lostError;
        throw e;
      }
    }),
  );
  if (timer)
    void timer.read().then(
      (t) => profile!.push(...t),
      () => {},
    );
  if (clock) {
    // Mapped only after the sleep, like the results: a pending map keeps Dawn polling.
    void slept
      .then(() => clock.read())
      .then(
        (ms) => {
          r.idle.record(signature, ms);
          times?.push(ms);
        },
        () => {},
      );
  }
  const values = Promise.all([
    failure,
    results.then(
      (v) => ({ v }),
      (e: unknown) => ({ e }),
    ),
  ]).then(([f, res]) => {
    if (f) throw f.oom ? outOfMemory(f, pool, 'lost') : internalError(f);
    if ('e' in res) throw res.e;
    return res.v;
  });
  return { values };
}

/** The scopes' verdict, acted on before any other evaluation may plan (when gating). */
function settleScopes(r: Runtime, failure: Promise<Failure | null>, gating: boolean, act: (f: Failure | null) => void): void {
  const gate = failure
    .then((f) => {
      if (f?.oom) r.careful = true;
      act(f);
    })
    .catch(() => {});
  if (!gating) return;
  r.settling = gate;
  void gate.then(() => {
    if (r.settling === gate) r.settling = null;
  });
}

/** Values given buffers by an evaluation that never ran: their buffers go back, and reading them says why. */
function loseNodes(given: Iterable<[Node, Storage]>, slotted: Iterable<Node>, why: string): void {
  for (const [n, s] of given) {
    if (n.storage !== s) continue;
    n.storage = null;
    s.pool.release(s);
    if (!n.cpu) n.dead = why;
  }
  // Values moved into small-value slots by that evaluation hold garbage: mark them lost too.
  for (const n of slotted) if (!n.cpu && !n.dead) n.dead = why;
}

/** A uniform buffer created for an evaluation that failed: destroyed rather than reused. */
function dropNewUniform(r: Runtime, uniform: { buffer: GPUBuffer; created: boolean } | null): void {
  if (!uniform?.created) return;
  const i = r.uniforms.indexOf(uniform.buffer);
  if (i >= 0) r.uniforms.splice(i, 1);
  r.bindGroups.clear();
  uniform.buffer.destroy();
}
