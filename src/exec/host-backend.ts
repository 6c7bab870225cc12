// The host backend: a Plan whose inputs all have host copies and whose work
// is tiny runs in JavaScript with each primitive's `host` rule (the rules sit
// in array/primitives.ts beside their WGSL; helpers in array/host.ts). A GPU
// round trip costs a fixed few hundred microseconds whatever the size, which
// is all of the time of a problem like the reference one at (N, d) = (1, 2).

import { config } from '../config';
import { hostWork } from '../array/host';
import { letGoOfInputs } from '../array/lifetime';
import type { Node } from '../array/node';
import { rulesOf } from '../array/primitives';
import type { Plan } from './plan';
import type { HostArray } from '../array/dtype';

/** Can this plan run on the host? Every input has a host copy, every primitive a host rule, and the work is small. */
export function fitsHost(p: Plan, read: Node[]): boolean {
  if (config.hostWorkLimit === 0 || config.debugNans || config.kernelProfile || config.dispatchLog) return false;
  if (p.order.length === 0 || p.gpuInputs.some((n) => !n.cpu) || read.some((n) => n.storage && !n.cpu)) return false;
  let work = 0;
  for (const n of p.order) {
    if (!rulesOf(n).host) return false;
    work += hostWork(n);
    if (work > config.hostWorkLimit) return false;
  }
  return true;
}

/** Run the plan on the host; returns copies of `read`. Counted in memoryStats().hostEvaluations by the caller. */
export function runOnHost(p: Plan, read: Node[]): HostArray[] {
  for (const n of p.order)
    n.cpu = rulesOf(n).host!(
      n,
      n.inputs.map((q) => q.cpu!),
    );
  for (const n of p.order) letGoOfInputs(n, p.keep); // as after a submission
  return read.map((n) => n.cpu!.slice());
}
