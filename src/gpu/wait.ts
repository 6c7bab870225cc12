// Waiting for a submission's results without starving a software GPU.
//
// In Node, Dawn settles mapAsync by polling from the main thread (a
// setImmediate loop) for as long as the map is pending. With a software
// adapter (SwiftShader) the "GPU" runs on the same CPU cores, so that
// polling takes a core away from the kernels: on 2 cores a 1024 matmul ran
// 1.6x faster when the main thread slept instead of polling.
//
// So, for submissions expected to take a while, sleep through the expected
// time and only then map. Polling is worse than it looks: when it starts
// while kernels still run, the remaining work slows down several-fold (an
// 8.5 ms MLP step took 12-19 ms after a 7.7 ms sleep). So the estimate,
// kept per plan signature (same kernels, same grid sizes), aims to oversleep
// a little: it shrinks 3% after each call that was done when we woke, and
// grows 7% after each call that was not. The first call of a signature
// polls throughout and seeds the estimate.
// Browsers do not poll (mapAsync is event-driven there) and real GPUs do not
// share the cores, so this is on only for Dawn's fallback adapter in Node.

const MIN_SLEEP_MS = 2; // setTimeout's granularity: below this, polling answers sooner
const MAX_SIGNATURES = 1024;
const LATE_MS = 1; // done this soon after waking counts as done when we woke

export class IdleWait {
  private readonly estimate = new Map<string, number>();

  constructor(readonly enabled: boolean) {}

  /** Resolves after the time this signature's work is expected to take (at once when unknown or short). */
  before(signature: string): Promise<void> {
    const ms = this.enabled ? this.estimate.get(signature) ?? 0 : 0;
    return ms >= MIN_SLEEP_MS ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve();
  }

  /** The measured submit-to-result time of one submission with this signature. */
  record(signature: string, ms: number): void {
    if (!this.enabled) return;
    if (this.estimate.size >= MAX_SIGNATURES && !this.estimate.has(signature)) this.estimate.clear();
    const slept = this.estimate.get(signature);
    const next = slept === undefined ? ms : ms <= slept + LATE_MS ? slept * 0.97 : slept * 1.07;
    this.estimate.set(signature, next);
  }
}

/** On for Dawn's fallback adapter in Node; GRADGPU_IDLE_WAIT=0 or 1 overrides. */
export function idleWaitWanted(backend: string, isFallback: boolean, env: string | undefined): boolean {
  if (env === '0' || env === 'false') return false;
  if (env === '1' || env === 'true') return true;
  return backend === 'node-dawn' && isFallback;
}
