// Fusion and WGSL generation for a Plan: chains of elementwise nodes that
// nothing else reads fold into one generated kernel (shaders/elementwise.wgsl
// is its template); every other node lowers to kernel calls through the
// primitives table. The result is the list of steps encode.ts records.

import { config } from '../config';
import { isComputed, type Node } from '../array/node';
import { rulesOf, type LowerContext } from '../array/primitives';
import { contiguousStrides } from '../array/shapes';
import { MAX_RANK } from '../array/ops';
import type { Plan } from '../exec/plan';
import type { Lowering, ShaderSpec } from './kernels';
import { wgslType } from '../array/dtype';

export type Step =
  | { kind: 'fused'; node: Node; members: Node[]; leaves: Node[]; shader: ShaderSpec; params: ArrayBuffer; threads: number }
  | { kind: 'lowered'; node: Node; lowering: Extract<Lowering, { calls: unknown }> }
  | { kind: 'alias'; node: Node; of: Node };

const MAX_FUSED_INPUTS = 7; // + the output = 8 storage bindings, WebGPU's default limit
const MAX_BROADCAST_INPUTS = 6; // stride slots in the params uniform
const MAX_CONSTS = 64;

const MAX_MEMBERS = 64; // nodes computed in one generated kernel
const MAX_SHARED_READERS = 8; // an intermediate read more often than this gets a buffer of its own

/** The plan's nodes as steps, inputs before readers. */
export function buildSteps(p: Plan, lctx: LowerContext): Step[] {
  const groups = fusionGroups(p);
  const steps: Step[] = [];
  for (const n of p.order) {
    if (rulesOf(n).elementwise) {
      const members = groups.get(n);
      if (members) steps.push(fusedStep(n, members, new Set(members)));
      continue;
    }
    const lowering = rulesOf(n).lower!(n, lctx);
    if ('alias' in lowering) steps.push({ kind: 'alias', node: n, of: n.inputs[lowering.alias]! });
    else steps.push({ kind: 'lowered', node: n, lowering });
  }
  return steps;
}

/**
 * Which elementwise nodes get a kernel (and a buffer) of their own, and what
 * each such root computes inline: root -> members, inputs first, root last.
 * An elementwise intermediate whose every reader is elementwise and in this
 * plan is not materialised: it is computed inside each kernel that reads it,
 * recomputed where several do (XLA duplicates producers the same way). That
 * is what keeps a forward pass's residuals, which the backward pass reads
 * again, from costing a dispatch and a round trip through memory each.
 * Held inputs (a user handle, maybe not yet collected) fuse too: they stay
 * pending, with their inputs, and are computed again if read later. Targets,
 * intermediates read by other kernels or later plans, and those read by more
 * than MAX_SHARED_READERS are materialised; so is a node whose folding
 * would pass a kernel's limits (bindings, broadcast slots, constants).
 */
function fusionGroups(p: Plan): Map<Node, Node[]> {
  const { order, targets } = p;
  const index = new Map(order.map((n, i) => [n, i]));
  const isEw = (n: Node) => !!rulesOf(n).elementwise;
  const nConsts = (n: Node) => rulesOf(n).elementwise!.consts?.(n.params, n.dtype).length ?? 0;
  const readers = new Map<Node, Node[]>();
  for (const n of order) for (const q of n.inputs) (readers.get(q) ?? readers.set(q, []).get(q)!).push(n);
  const own = new Set<Node>();
  for (const n of order) {
    if (!isEw(n)) continue;
    const rs = readers.get(n) ?? [];
    // rs counts edges, as consumers does: fewer means a reader outside this plan.
    const inline = rs.length === n.consumers && rs.every((r) => isEw(r) && foldsInto(n.shape, r.shape));
    if (config.debugNans || targets.has(n) || !inline || n.consumers === 0 || n.consumers > MAX_SHARED_READERS) own.add(n);
  }
  const foldable = (q: Node) => index.has(q) && isEw(q) && !own.has(q) && !isComputed(q);
  /** The members of `root`, or the node whose folding would pass a limit. */
  const gather = (root: Node): Node[] | Node => {
    const members = [root];
    let leaves = new Set(root.inputs);
    let consts = nConsts(root);
    for (;;) {
      let next: Node | null = null; // the latest foldable leaf: the closest to the root first
      for (const q of leaves) if (foldable(q) && (!next || index.get(q)! > index.get(next)!)) next = q;
      if (!next) break;
      // (the kernel's index is the root's: a node that reads it must have the root's shape)
      if (rulesOf(next).elementwise!.indexed && !sameShape(next.shape, root.shape)) return next;
      const after = new Set(leaves);
      after.delete(next);
      for (const q of next.inputs) after.add(q);
      const broadcast = [...after].filter((q) => q.size !== root.size).length;
      consts += nConsts(next);
      if (after.size > MAX_FUSED_INPUTS || broadcast > MAX_BROADCAST_INPUTS || consts > MAX_CONSTS || members.length >= MAX_MEMBERS) return next;
      members.push(next);
      leaves = after;
    }
    return members.sort((a, b) => index.get(a)! - index.get(b)!);
  };
  // A node that would pass a limit gets its own kernel; then only the groups that had folded it in
  // are redone (redoing every group per overflow made a loop's 20,000-node plan quadratic).
  const groups = new Map<Node, Node[]>();
  const containing = new Map<Node, Set<Node>>(); // member -> the roots whose kernels compute it inline
  const place = (root: Node): void => {
    for (;;) {
      const g = gather(root);
      if (Array.isArray(g)) {
        for (const m of groups.get(root) ?? []) containing.get(m)?.delete(root);
        groups.set(root, g);
        for (const m of g) if (m !== root) (containing.get(m) ?? containing.set(m, new Set()).get(m)!).add(root);
        return;
      }
      own.add(g);
      place(g);
      for (const r of [...(containing.get(g) ?? [])]) place(r);
    }
  };
  for (const n of order) if (own.has(n) && !groups.has(n)) place(n);
  return groups;
}

/**
 * Whether a producer of shape `p` can be computed inside a kernel over
 * `root`: the same shape, or one that broadcasts to it (trailing axes
 * aligned). A broadcast producer is recomputed for each output element that
 * reads it (the per-row `rsqrt(var + eps)` of a layer norm, once per
 * column), which costs less than a dispatch and a round trip through memory;
 * its own inputs broadcast to the root's shape through it, so every leaf is
 * still read at strides of the root's index.
 */
function foldsInto(p: readonly number[], root: readonly number[]): boolean {
  if (sameShape(p, root)) return true;
  if (p.length > root.length) return false;
  const off = root.length - p.length;
  return p.every((d, i) => d === 1 || d === root[i + off]) && p.reduce((a, b) => a * b, 1) < root.reduce((a, b) => a * b, 1);
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/** Generate the fused elementwise kernel for `root` and the nodes folded into it. */
function fusedStep(root: Node, members: Node[], memberSet: Set<Node>): Step {
  if (root.shape.length > MAX_RANK) throw new Error(`internal error: rank ${root.shape.length} > ${MAX_RANK}`);
  const leaves: Node[] = [];
  for (const m of members) for (const q of m.inputs) if (!memberSet.has(q) && !leaves.includes(q)) leaves.push(q);
  const words = new DataView(new ArrayBuffer(128 * 4));
  words.setUint32(4, root.shape.length, true);
  root.shape.forEach((d, i) => words.setUint32((4 + i) * 4, d, true));
  // How each leaf is read at output element i. Broadcast word slots start at 12, 8 words each.
  let nBroadcast = 0;
  const access = leaves.map((q) => {
    if (q.size === root.size) return { expr: (i: string) => i, lanes: 'vec' as Lanes };
    const base = 12 + 8 * nBroadcast++;
    const st = contiguousStrides(q.shape);
    const off = root.shape.length - q.shape.length;
    const strides = root.shape.map((_, d) => (d - off >= 0 && q.shape[d - off] !== 1 ? st[d - off]! : 0));
    const fast = broadcastIndex(root.shape, strides);
    if (fast) {
      fast.words.forEach((w, j) => words.setUint32((base + j) * 4, w, true));
      return { expr: (i: string) => fast.expr(base, i), lanes: fast.lanes };
    }
    // Broadcast: align trailing axes; size-1 and missing axes get stride 0.
    strides.forEach((s, d) => words.setUint32((base + d) * 4, s, true));
    return { expr: (i: string) => `bcast(${i}, ${base}u)`, lanes: null };
  });
  // Four elements per thread with vec4 loads and stores (about 2x on SwiftShader) when every
  // leaf is read either as four consecutive, aligned elements or as one element for all four.
  const vec4 = root.size > 0 && root.size % 4 === 0 && access.every((a) => a.lanes !== null);
  words.setUint32(0, vec4 ? root.size / 4 : root.size, true);
  const T = wgslType(root.dtype);
  const bindings = [`@group(0) @binding(1) var<storage, read_write> ${vec4 ? `out4: array<vec4<${T}>>` : `out: array<${T}>`};`];
  leaves.forEach((q, k) => {
    const e = wgslType(q.dtype);
    const type = vec4 && access[k]!.lanes === 'vec' ? `vec4<${e}>` : e;
    bindings.push(`@group(0) @binding(${k + 2}) var<storage, read> in${k}: array<${type}>;`);
  });
  // The chain, as statements for one element i whose inputs are v0, v1, ...
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
  const result = names.get(root)!;
  const lines: string[] = [];
  if (!vec4) {
    access.forEach((a, k) => lines.push(`  let v${k} = in${k}[${a.expr('i')}];`));
    lines.push(...chain.map((c) => `  ${c}`), `  out[i] = ${result};`);
  } else {
    // Here i counts vec4s; each component's block re-declares i as its element index.
    lines.push('  let j = i;', '  let i4 = j * 4u;');
    access.forEach((a, k) =>
      lines.push(a.lanes === 'vec' ? `  let q${k} = in${k}[${a.expr('i4')} / 4u];` : `  let s${k} = in${k}[${a.expr('i4')}];`),
    );
    lines.push(`  var r: vec4<${T}>;`);
    ['x', 'y', 'z', 'w'].forEach((c, lane) => {
      const loads = access.map((a, k) => `let v${k} = ${a.lanes === 'vec' ? `q${k}.${c}` : `s${k}`};`);
      lines.push(`  { let i = i4 + ${lane}u; ${[...loads, ...chain].join(' ')} r.${c} = ${result}; _ = i; }`);
    });
    lines.push('  out4[j] = r;');
  }
  const shader: ShaderSpec = { template: 'elementwise', entry: 'main', fill: { BINDINGS: bindings.join('\n'), BODY: lines.join('\n') } };
  return { kind: 'fused', node: root, members, leaves, shader, params: words.buffer, threads: vec4 ? root.size / 4 : root.size };
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

/** The pipelines a list of steps needs. */
export function shadersOf(steps: Step[]): ShaderSpec[] {
  const out: ShaderSpec[] = [];
  for (const s of steps) {
    if (s.kind === 'fused') out.push(s.shader);
    else if (s.kind === 'lowered') for (const c of s.lowering.calls) out.push(c.shader);
  }
  return out;
}
