// Reverse mode over the lazy graph, micrograd-style: walk back from the
// outputs in reverse topological order, apply each primitive's VJP rule from
// the rules table, and accumulate cotangents of values used more than once.
// Only nodes on a path from a target to an output are visited (pruning), so
// constants get no backward kernels. The backward pass is recorded as new
// nodes of the same graph, built from differentiable ops: grad of grad works.

import { GradError } from '../errors';
import { wrap, type NDArray } from '../array/ndarray';
import { isComputed, type Node } from '../array/node';
import { rulesOf } from '../array/primitives';
import { add } from '../array/ops';

/**
 * Cotangents of `targets` given cotangents `seeds` of `outputs`.
 * Returns a map from target node to its cotangent (absent: no dependence).
 *
 * `savedInputs` gives the inputs a node had when it was traced: the executor
 * clears a node's inputs once it is computed, so a pullback run after its
 * forward pass was evaluated (vjp) walks the graph as recorded, not as left.
 */
export function backward(
  outputs: Node[],
  seeds: NDArray[],
  targets: Set<Node>,
  savedInputs?: ReadonlyMap<Node, readonly Node[]>,
): Map<Node, NDArray> {
  const inputsOf = (n: Node): readonly Node[] => savedInputs?.get(n) ?? n.inputs;
  // Which nodes depend on a target? (memoised DFS, iterative post-order)
  const depends = new Map<Node, boolean>();
  const order: Node[] = []; // post-order: inputs before users
  const stack: Array<[Node, number]> = [];
  for (const o of outputs) {
    if (depends.has(o)) continue;
    stack.push([o, 0]);
    depends.set(o, false);
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      const [n, i] = top;
      const ins = inputsOf(n);
      const stopHere = targets.has(n) || (isComputed(n) && !savedInputs?.has(n)) || !!rulesOf(n).nonDifferentiable;
      if (!stopHere && i < ins.length) {
        top[1]++;
        const c = ins[i]!;
        if (!depends.has(c)) {
          depends.set(c, false);
          stack.push([c, 0]);
        }
        continue;
      }
      stack.pop();
      depends.set(n, targets.has(n) || (!stopHere && ins.some((c) => depends.get(c))));
      order.push(n);
    }
  }

  const ct = new Map<Node, NDArray>();
  const accumulate = (n: Node, g: NDArray) => {
    const have = ct.get(n);
    ct.set(n, have ? add(have, g) : g);
  };
  outputs.forEach((o, i) => depends.get(o) && accumulate(o, seeds[i]!));

  const result = new Map<Node, NDArray>();
  for (let k = order.length - 1; k >= 0; k--) {
    const n = order[k]!;
    const g = ct.get(n);
    if (!g || !depends.get(n)) continue;
    ct.delete(n);
    if (targets.has(n)) {
      result.set(n, g);
      continue;
    }
    const rule = rulesOf(n).vjp;
    if (!rule) throw new GradError(`no VJP rule for primitive '${n.prim}'`);
    const ins = inputsOf(n);
    const cts = rule(g, ins.map(wrap), wrap(n), n.params);
    ins.forEach((input, i) => {
      const c = cts[i];
      // Only float32 values carry cotangents (JAX's float0 for the rest).
      if (c && depends.get(input) && input.dtype === 'float32') accumulate(input, c);
    });
  }
  return result;
}
