// Code generation shared by the kernels that compute a chain of elementwise
// nodes (fuse.ts's fused and loaded-sum kernels, epilogue.ts's matrix
// products): which inputs the chain reads, how each is indexed at output
// element i (broadcasting), and the chain itself as WGSL statements.

import type { Node } from '../array/node';
import { rulesOf } from '../array/primitives';
import { contiguousStrides } from '../array/shapes';

/** The inputs of a kernel computing `members` that no member computes. */
export function leavesOf(members: Node[], memberSet: Set<Node>): Node[] {
  const leaves: Node[] = [];
  for (const m of members) for (const q of m.inputs) if (!memberSet.has(q) && !leaves.includes(q)) leaves.push(q);
  return leaves;
}

/** How each leaf is read at element i of `shape` (its rank and dims go to words 1 and 4..; broadcast strides at 12 + 8k). */
export function leafAccess(
  shape: readonly number[],
  size: number,
  leaves: Node[],
  words: DataView,
): Array<{ expr: (i: string) => string; lanes: Lanes }> {
  words.setUint32(4, shape.length, true);
  shape.forEach((d, i) => words.setUint32((4 + i) * 4, d, true));
  let nBroadcast = 0;
  return leaves.map((q) => {
    if (q.size === size) return { expr: (i: string) => i, lanes: 'vec' as Lanes };
    const base = 12 + 8 * nBroadcast++;
    const st = contiguousStrides(q.shape);
    const off = shape.length - q.shape.length;
    const strides = shape.map((_, d) => (d - off >= 0 && q.shape[d - off] !== 1 ? st[d - off]! : 0));
    const fast = broadcastIndex(shape, strides);
    if (fast) {
      fast.words.forEach((w, j) => words.setUint32((base + j) * 4, w, true));
      return { expr: (i: string) => fast.expr(base, i), lanes: fast.lanes };
    }
    // Broadcast: align trailing axes; size-1 and missing axes get stride 0.
    strides.forEach((s, d) => words.setUint32((base + d) * 4, s, true));
    return { expr: (i: string) => `bcast(${i}, ${base}u)`, lanes: null };
  });
}

/** The members as WGSL statements over v0, v1, ... (the leaves' values); their constants go to words 64.. */
export function chainOf(members: Node[], memberSet: Set<Node>, leaves: Node[], words: DataView): { chain: string[]; names: Map<Node, string> } {
  const chain: string[] = [];
  const names = new Map<Node, string>();
  let nConst = 0;
  for (const m of members) {
    const rule = rulesOf(m).elementwise!;
    const args = m.inputs.map((q) => (memberSet.has(q) ? names.get(q)! : `v${leaves.indexOf(q)}`));
    const cs = rule.consts?.(m.params, m.dtype) ?? [];
    const base = nConst;
    cs.forEach(([t, v], j) => {
      const at = (64 + base + j) * 4;
      if (t === 'f') words.setFloat32(at, v, true);
      else if (t === 'i') words.setInt32(at, v | 0, true);
      else words.setUint32(at, v >>> 0, true);
    });
    nConst += cs.length;
    // Constant k as its declared type: cf (f32), ci (i32) or cu (u32) reads word 64 + base + k.
    const expr = rule.expr(args, (k) => `c${cs[k]![0]}(${base + k}u)`, {
      out: m.dtype,
      ins: m.inputs.map((q) => q.dtype),
    });
    const name = `t${names.size}`;
    names.set(m, name);
    chain.push(`let ${name} = ${expr};`);
  }
  return { chain, names };
}

/** How one input is read by four consecutive output elements 4j..4j+3: as four aligned consecutive elements, as one element, or neither. */
type Lanes = 'vec' | 'uniform' | null;

/**
 * The offset into a broadcast input as one or two integer operations, when
 * its broadcast axes and its own axes form at most three runs: a row bias
 * (broadcast, own) is `i % inner`, a column (own, broadcast) `i / inner`,
 * (broadcast, own, broadcast) `(i / a) % b`, all broadcast `0`. The general
 * per-axis loop costs 4x as much on SwiftShader (a div and a mod per axis,
 * and integer division has no SIMD form on a CPU). Words go at `base`.
 */
function broadcastIndex(
  shape: readonly number[],
  strides: readonly number[],
): { words: number[]; expr: (base: number, i: string) => string; lanes: Lanes } | null {
  const runs: Array<{ own: boolean; size: number }> = [];
  shape.forEach((d, i) => {
    if (d === 1) return;
    const own = strides[i] !== 0;
    const last = runs[runs.length - 1];
    if (last && last.own === own) last.size *= d;
    else runs.push({ own, size: d });
  });
  const kinds = runs.map((r) => (r.own ? 'o' : 'b')).join('');
  const size = (k: number) => runs[k]!.size;
  switch (kinds) {
    case '':
    case 'b':
      return { words: [], expr: () => '0u', lanes: 'uniform' };
    case 'bo':
      return { words: [size(1)], expr: (b, i) => `${i} % p(${b}u)`, lanes: size(1) % 4 === 0 ? 'vec' : null };
    case 'ob':
      return { words: [size(1)], expr: (b, i) => `${i} / p(${b}u)`, lanes: size(1) % 4 === 0 ? 'uniform' : null };
    case 'bob':
      return { words: [size(2), size(1)], expr: (b, i) => `(${i} / p(${b}u)) % p(${b + 1}u)`, lanes: size(2) % 4 === 0 ? 'uniform' : null };
    default:
      return null; // ('o' alone is an input of the output's size, read at i)
  }
}
