// What one dispatch computes. Every dispatch takes all the work pending since
// the last one (node.ts keeps the list), so a training loop's graph never
// spans more than one step:
//  - nodes nobody can read any more (dropped handles, dead code) are released
//    before anything is computed;
//  - the targets are the nodes to read, every pending root a user still holds,
//    and the live members of their evaluation groups (one grad call's loss,
//    aux and gradients are computed together);
//  - the walk back from the targets stops at computed nodes.
// Backend-independent: the GPU backend fuses and encodes a Plan, the host
// backend runs it in JavaScript.

import { DisposedArrayError } from '../errors';
import { config } from '../config';
import { releaseIfUnused } from '../array/lifetime';
import { isComputed, isHeld, type Node } from '../array/node';

/** Values up to this many elements come back to the host after a dispatch (losses, metrics), freeing their GPU buffer. */
export const SMALL_MAX = 1024;

export interface Plan {
  /** Every node this plan computes, inputs before readers. */
  order: Node[];
  /** Nodes that must be materialised (written to memory, never fused away). */
  targets: Set<Node>;
  /** Nodes whose values are written to memory: targets, held nodes, all of them under debugNans. */
  keep: Set<Node>;
  /** Computed inputs that have only a host copy (constants, values read back): uploaded first. */
  uploads: Node[];
  /** Computed inputs on the GPU. */
  gpuInputs: Node[];
  /** Targets a user can read that are small: brought back to the host after the dispatch. */
  small: Node[];
}

function deadError(n: Node): DisposedArrayError {
  return new DisposedArrayError(`cannot compute with an array that was ${n.dead} (shape [${n.shape.join(', ')}])`);
}

/** A member of a group that someone can still read: not donated, disposed or already computed. */
const liveMember = (m: Node) => !m.dead && !m.internal && !isComputed(m);

/**
 * The targets of a dispatch: the nodes to read and the pending roots among
 * `candidates` (nodes created since the last dispatch) that a user holds or
 * that are live group members. Candidates nobody can read are released here,
 * so an unread, dropped value never pins its inputs' buffers.
 */
export function dispatchTargets(candidates: Node[], read: Node[]): Node[] {
  for (const n of candidates) {
    if (n.dead || isComputed(n) || n.consumers > 0) continue;
    if (!isHeld(n) && !(n.group && !n.internal)) releaseIfUnused(n, 'never used (dropped before it was computed)');
  }
  const targets = read.filter((n) => !isComputed(n) || n.dead);
  for (const n of candidates) {
    if (n.dead || isComputed(n) || n.consumers > 0) continue;
    targets.push(n);
  }
  return targets;
}

export function plan(targetList: Node[]): Plan {
  const targets = new Set<Node>();
  const work: Node[] = [];
  const target = (t: Node) => {
    if (targets.has(t)) return;
    targets.add(t);
    work.push(t);
  };
  for (const t of targetList) {
    target(t);
    for (const m of t.group ?? []) if (liveMember(m)) target(m);
  }
  // Post-order DFS over pending nodes (iterative: chains can be long).
  const order: Node[] = [];
  const seen = new Set<Node>();
  const uploads = new Set<Node>();
  const gpuInputs = new Set<Node>();
  const reach = (c: Node): boolean => {
    if (seen.has(c)) return false;
    seen.add(c);
    if (c.dead) throw deadError(c);
    if (isComputed(c)) {
      (c.storage ? gpuInputs : uploads).add(c);
      return false;
    }
    return true;
  };
  const stack: Array<[Node, number]> = [];
  for (let k = 0; k < work.length; k++) {
    if (!reach(work[k]!)) continue;
    stack.push([work[k]!, 0]);
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      const [n, i] = top;
      if (i < n.inputs.length) {
        top[1]++;
        const c = n.inputs[i]!;
        if (!reach(c)) continue;
        // An input from a group (one grad call's outputs) brings its live siblings: computed together, materialised.
        if (c.group) for (const m of c.group) if (liveMember(m)) target(m);
        stack.push([c, 0]);
      } else {
        stack.pop();
        order.push(n);
      }
    }
  }
  const keep = new Set<Node>();
  // debugNans: every node is written to memory (no fusion) so each one can be checked.
  for (const n of order) if (config.debugNans || targets.has(n) || isHeld(n)) keep.add(n);
  const small = order.filter((n) => targets.has(n) && !n.internal && n.size > 0 && n.size <= SMALL_MAX);
  return { order, targets, keep, uploads: [...uploads], gpuInputs: [...gpuInputs], small };
}
