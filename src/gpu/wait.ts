// Waiting for a submission's results without starving a software GPU.
//
// In Node, Dawn settles mapAsync by polling from the main thread (a
// setImmediate loop) for as long as the map is pending. With a software
// adapter (SwiftShader) the "GPU" runs on the same CPU cores, so that
// polling takes a core away from the kernels: on 2 cores a 1024 matmul ran
// 1.6x faster when the main thread slept instead of polling.
//
// So when a submission is expected to take a while, sleep through the
// expected time and only then map. The expectation comes from the GPU times
// of recent submissions with the same plan signature (same kernels, same
// grid sizes), read from timestamps written at the start and end of their
// compute pass: unlike the wall time to the result, they do not include our
// own sleep. A submission whose end was polled for runs slower, so the
// recent times mix fast and slowed-down runs: the estimate is the fastest of
// the last few plus 2% and 0.5 ms for jitter (oversleeping a little costs less
// than polling).
// Browsers do not poll (mapAsync is event-driven there) and real GPUs do not
// share the cores, so this is on only for Dawn's fallback adapter in Node,
// and only where the adapter offers timestamp queries.

import { PassTimestamps } from './timing';

const MIN_SLEEP_MS = 2; // setTimeout's granularity: below this, polling answers sooner
const MAX_SIGNATURES = 1024;
const RECENT = 5; // GPU times kept per signature
const MARGIN = 1.02; // plus MARGIN_MS: long submissions vary by a few percent, short ones by a fraction of a millisecond
const MARGIN_MS = 0.5;
const MAX_CLOCKS = 16;
// Once a signature has RECENT times, only every SAMPLE_EVERY-th of its submissions is timed: a
// clock costs a query resolve, a copy and a map (~0.1 ms of JS on SwiftShader), and a repeated
// plan's GPU time barely moves.
const SAMPLE_EVERY = 8;

export class IdleWait {
  private readonly recent = new Map<string, number[]>();
  private readonly untimed = new Map<string, number>();
  private readonly clocks: PassClock[] = [];
  private clocksMade = 0;
  /** When the GPU is expected to finish everything submitted so far (performance.now() time). */
  private queueEnd = 0;

  constructor(readonly enabled: boolean) {}

  /**
   * Called as a submission is made: resolves when the queue is expected to
   * have finished it, i.e. after the submissions still running ahead of it
   * and this signature's usual GPU time (at once when unknown or short).
   */
  before(signature: string): Promise<void> {
    if (!this.enabled) return Promise.resolve();
    const times = this.recent.get(signature);
    const ms = times ? MARGIN * Math.min(...times) + MARGIN_MS : 0;
    const now = performance.now();
    this.queueEnd = Math.max(now, this.queueEnd) + ms;
    const sleep = this.queueEnd - now;
    return sleep >= MIN_SLEEP_MS ? new Promise((r) => setTimeout(r, sleep)) : Promise.resolve();
  }

  /** Resolves when everything submitted so far is expected to have finished (at once when disabled). */
  untilIdle(): Promise<void> {
    const sleep = this.enabled ? this.queueEnd - performance.now() : 0;
    return sleep >= MIN_SLEEP_MS ? new Promise((r) => setTimeout(r, sleep)) : Promise.resolve();
  }

  /** The GPU time of one submission with this signature. */
  record(signature: string, ms: number): void {
    if (!this.enabled) return;
    if (this.recent.size >= MAX_SIGNATURES && !this.recent.has(signature)) this.recent.clear();
    const times = this.recent.get(signature) ?? [];
    times.push(ms);
    if (times.length > RECENT) times.shift();
    this.recent.set(signature, times);
  }

  /**
   * A clock for one submission's pass, when the idle wait (for this
   * signature, now) or `wanted` needs one and the device can; read() gives it back.
   */
  clock(device: GPUDevice, signature: string, wanted = false): PassClock | null {
    if (!(this.enabled || wanted) || !device.features.has('timestamp-query')) return null;
    if (!wanted && (this.recent.get(signature)?.length ?? 0) >= RECENT) {
      if (this.untimed.size >= MAX_SIGNATURES && !this.untimed.has(signature)) this.untimed.clear();
      const n = (this.untimed.get(signature) ?? 0) + 1;
      this.untimed.set(signature, n % SAMPLE_EVERY);
      if (n < SAMPLE_EVERY) return null;
    }
    const free = this.clocks.pop();
    if (free) return free;
    // A loop that never yields reads none back: past this many, its submissions go untimed.
    if (this.clocksMade >= MAX_CLOCKS) return null;
    this.clocksMade++;
    return new PassClock(device, this.clocks);
  }
}

/** Start and end timestamps of one compute pass. Reused: read() returns it to its free list. */
export class PassClock {
  private readonly stamps: PassTimestamps;

  constructor(
    device: GPUDevice,
    private readonly free: PassClock[],
  ) {
    this.stamps = new PassTimestamps(device, 1);
  }

  get timestampWrites(): GPUComputePassTimestampWrites {
    return this.stamps.writes(0);
  }

  /** Encode the copy of the timestamps, after the pass ended. */
  finish(encoder: GPUCommandEncoder): void {
    this.stamps.resolve(encoder, 1);
  }

  /** Not submitted after all (an evaluation undone before its submit): back to the free list unread. */
  discard(): void {
    this.free.push(this);
  }

  /** After the submission: the pass's GPU time in ms. */
  async read(): Promise<number> {
    const [ms] = await this.stamps.read(1);
    this.free.push(this);
    return ms!;
  }
}

/** On for Dawn's fallback adapter in Node; GRADGPU_IDLE_WAIT=0 or 1 overrides. */
export function idleWaitWanted(backend: string, isFallback: boolean, env: string | undefined): boolean {
  if (env === '0' || env === 'false') return false;
  if (env === '1' || env === 'true') return true;
  return backend === 'node-dawn' && isFallback;
}
