// Fusion and WGSL generation for a Plan: chains of elementwise nodes that
// nothing else reads fold into one generated kernel (shaders/elementwise.wgsl
// is its template); every other node lowers to kernel calls through the
// primitives table. The result is the list of steps encode.ts records.

import { config } from '../config';
import { isComputed, type Node } from '../array/node';
import { rulesOf, type LowerContext } from '../array/primitives';
import { MAX_RANK } from '../array/ops';
import type { Plan } from '../exec/plan';
import type { Lowering, ShaderSpec } from './kernels';
import { wgslType } from '../array/dtype';
import { runDims } from '../array/host';
import { STRIDED_ONE_PASS } from '../array/lowering';
import { chainOf, leafAccess, leavesOf } from './chain';
import { epilogueStep, epilogues } from './epilogue';

export type Step =
  /** One generated kernel: `node` and `extras` (members also written out, each to a buffer of its own) from `leaves`. */
  | {
      kind: 'fused';
      node: Node;
      members: Node[];
      extras: Node[];
      leaves: Node[];
      shader: ShaderSpec;
      params: ArrayBuffer;
      threads: number;
      /** The grid, when it is not one thread per `threads` (a matrix product running the chain as its epilogue). */
      grid?: [number, number, number];
    }
  | { kind: 'lowered'; node: Node; lowering: Extract<Lowering, { calls: unknown }> }
  | { kind: 'alias'; node: Node; of: Node; offset: number }; // the node is `of`'s buffer, `offset` bytes further

// A kernel's inputs and extra outputs, + the output, fit the device's storage bindings (8 by
// WebGPU's default; the device asks for the adapter's own limit, 12 on SwiftShader).
const MAX_BINDINGS = 16;
const MAX_BROADCAST_INPUTS = 6; // stride slots in the params uniform
const MAX_CONSTS = 64;

const MAX_MEMBERS = 64; // nodes computed in one generated kernel
const MAX_SHARED_READERS = 8; // an intermediate read more often than this gets a buffer of its own

/** The plan's nodes as steps, inputs before readers. */
export function buildSteps(p: Plan, lctx: LowerContext): Step[] {
  const { groups, extras } = fusionGroups(p, Math.min(lctx.maxStorageBuffers, MAX_BINDINGS) - 1);
  const loaded = loadedSums(p, groups, extras);
  const inside = new Set([...loaded.values()].map((m) => m[m.length - 1]!));
  const epi = epilogues(p, groups, extras, loaded, lctx);
  const products = new Set([...epi.values()].map((e) => e.product));
  const steps: Step[] = [];
  for (const n of p.order) {
    if (rulesOf(n).elementwise) {
      const members = groups.get(n);
      const e = epi.get(n);
      if (members && e) steps.push(epilogueStep(n, members, extras.get(n) ?? [], e));
      else if (members && !inside.has(n)) steps.push(fusedStep(n, members, new Set(members), extras.get(n) ?? []));
      continue;
    }
    if (products.has(n)) continue; // computed by its reader's kernel
    const load = loaded.get(n);
    if (load) {
      steps.push(loadedSumStep(n, load));
      continue;
    }
    const lowering = rulesOf(n).lower!(n, lctx);
    if ('alias' in lowering)
      steps.push({ kind: 'alias', node: n, of: n.inputs[lowering.alias]!, offset: lowering.offset ?? (n.params.offset as number | undefined) ?? 0 });
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
 *
 * A target with one reader, elementwise and of its shape, is computed inside
 * that reader's kernel and written out from there as an extra output
 * (multi-output fusion): an optimizer's new moments and the new parameter
 * they give are one kernel, not three. A one-element target (a step count)
 * can be written out by the kernel of a bigger reader, by its element 0.
 */
function fusionGroups(p: Plan, maxInputs: number): { groups: Map<Node, Node[]>; extras: Map<Node, Node[]> } {
  const { order, targets } = p;
  const index = new Map(order.map((n, i) => [n, i]));
  const isEw = (n: Node) => !!rulesOf(n).elementwise;
  const nConsts = (n: Node) => rulesOf(n).elementwise!.consts?.(n.params, n.dtype).length ?? 0;
  const readers = new Map<Node, Node[]>();
  for (const n of order) for (const q of n.inputs) (readers.get(q) ?? readers.set(q, []).get(q)!).push(n);
  const own = new Set<Node>();
  /** Targets that could be extra outputs of their one reader's kernel. */
  const extraCandidates = new Set<Node>();
  for (const n of order) {
    if (!isEw(n)) continue;
    const rs = readers.get(n) ?? [];
    // rs counts edges, as consumers does: fewer means a reader outside this plan.
    const inline = rs.length === n.consumers && rs.every((r) => isEw(r) && foldsInto(n.shape, r.shape));
    const written = targets.has(n) || !!n.materialize;
    if (config.debugNans || written || !inline || n.consumers === 0 || n.consumers > MAX_SHARED_READERS) own.add(n);
    if (!config.debugNans && written && inline && n.consumers > 0 && (n.size === 1 || rs.every((r) => sameShape(n.shape, r.shape))))
      extraCandidates.add(n);
  }
  const groups = new Map<Node, Node[]>();
  const extras = new Map<Node, Node[]>();
  /**
   * Whether what `q`'s readers inside this kernel compute is this kernel's alone: an
   * intermediate inlined here and into another kernel too would read `q` there, maybe first.
   */
  const exclusive = (q: Node, root: Node, members: ReadonlySet<Node>): boolean => {
    const stack = readers.get(q)!.filter((r) => members.has(r));
    const seen = new Set<Node>();
    while (stack.length) {
      const c = stack.pop()!;
      if (c === root || own.has(c) || seen.has(c)) continue; // (an extra output's other readers read it from memory)
      seen.add(c);
      for (const r of readers.get(c) ?? []) {
        if (!members.has(r)) return false;
        stack.push(r);
      }
    }
    return true;
  };
  /**
   * Whether `root`'s kernel can write `q` out. Its readers outside the kernel read it from
   * memory, so each must come after `root` in the plan's order (their kernels run later), and
   * only one kernel writes it.
   */
  const isExtra = (q: Node, root: Node, members: ReadonlySet<Node>) =>
    extraCandidates.has(q) &&
    !groups.has(q) &&
    (sameShape(q.shape, root.shape) || (q.size === 1 && root.size > 0)) && // (a scalar: written by thread 0)
    (absorbed.get(q) ?? root) === root &&
    readers.get(q)!.every((r) => members.has(r) || index.get(r)! > index.get(root)!) &&
    exclusive(q, root, members);
  const foldable = (q: Node, root: Node, members: ReadonlySet<Node>) =>
    index.has(q) && isEw(q) && !isComputed(q) && (!own.has(q) || isExtra(q, root, members));
  /**
   * How many leaves the kernel will have once every foldable node below these
   * leaves is folded in too: folding goes one node at a time, and counting
   * only the leaves of the moment would see a chain's inputs before it is in.
   */
  const finalLeaves = (leaves: Set<Node>, root: Node, members: ReadonlySet<Node>): number => {
    const out = new Set(leaves);
    const stack = [...leaves];
    while (stack.length) {
      const c = stack.pop()!;
      if (!foldable(c, root, members) || own.has(c)) continue;
      out.delete(c);
      for (const i of c.inputs) {
        if (out.has(i)) continue;
        out.add(i);
        stack.push(i);
      }
    }
    return out.size;
  };
  /** The members of `root` and those written out too, or the node whose folding would pass a limit. */
  const gather = (root: Node): { members: Node[]; outs: Node[] } | { overflow: Node } => {
    const members = [root];
    const memberSet = new Set(members);
    const outs: Node[] = [];
    let leaves = new Set(root.inputs);
    let consts = nConsts(root);
    for (;;) {
      let next: Node | null = null; // the latest foldable leaf: the closest to the root first
      for (const q of leaves) if (foldable(q, root, memberSet) && (!next || index.get(q)! > index.get(next)!)) next = q;
      if (!next) break;
      // (the kernel's index is the root's: a node that reads it must have the root's shape)
      if (rulesOf(next).elementwise!.indexed && !sameShape(next.shape, root.shape)) return { overflow: next };
      const out = own.has(next);
      const after = new Set(leaves);
      after.delete(next);
      for (const q of next.inputs) after.add(q);
      const broadcast = [...after].filter((q) => q.size !== root.size).length;
      const withNext = consts + nConsts(next);
      const bindings = finalLeaves(after, root, memberSet) + outs.length + (out ? 1 : 0); // inputs and extra outputs share the limit
      if (bindings > maxInputs || broadcast > MAX_BROADCAST_INPUTS || withNext > MAX_CONSTS || members.length >= MAX_MEMBERS) {
        if (!out) return { overflow: next };
        extraCandidates.delete(next); // it gets a kernel of its own instead (its constants not counted here)
        continue;
      }
      consts = withNext;
      members.push(next);
      memberSet.add(next);
      if (out) outs.push(next);
      leaves = after;
    }
    return { members: members.sort((a, b) => index.get(a)! - index.get(b)!), outs };
  };
  // A node that would pass a limit gets its own kernel; then only the groups that had folded it in
  // are redone (redoing every group per overflow made a loop's 20,000-node plan quadratic).
  const containing = new Map<Node, Set<Node>>(); // member -> the roots whose kernels compute it inline
  const absorbed = new Map<Node, Node>(); // extra output -> the root whose kernel writes it out
  const place = (root: Node): void => {
    for (;;) {
      const g = gather(root);
      if ('members' in g) {
        for (const m of groups.get(root) ?? []) containing.get(m)?.delete(root);
        for (const m of extras.get(root) ?? []) if (absorbed.get(m) === root) absorbed.delete(m);
        groups.set(root, g.members);
        if (g.outs.length) extras.set(root, g.outs);
        else extras.delete(root);
        for (const m of g.outs) absorbed.set(m, root);
        for (const m of g.members) if (m !== root) (containing.get(m) ?? containing.set(m, new Set()).get(m)!).add(root);
        return;
      }
      const o = g.overflow;
      own.add(o);
      extraCandidates.delete(o);
      place(o);
      for (const r of [...(containing.get(o) ?? [])]) place(r);
    }
  };
  // Readers first, so that a target their kernels can write out is not given a kernel of its own before.
  for (let k = order.length - 1; k >= 0; k--) {
    const n = order[k]!;
    if (own.has(n) && !groups.has(n) && !absorbed.has(n) && !extraCandidates.has(n)) place(n);
  }
  // Candidates no reader took (or that a regrouped reader let go of) get kernels of their own.
  for (;;) {
    const left = order.filter((n) => own.has(n) && !groups.has(n) && !absorbed.has(n));
    if (!left.length) return { groups, extras };
    for (const n of left) if (!groups.has(n) && !absorbed.has(n)) place(n);
  }
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
  return p.every((d, i) => d === 1 || d === root[i + off]) && p.reduce((a, b) => a * b, 1) <= root.reduce((a, b) => a * b, 1);
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * Sums whose input is an elementwise kernel that only they read, over few
 * enough rows for one thread per output to loop over them: the input is then
 * computed inside the sum's kernel, as it reads it (a mean squared error is one
 * kernel, not a kernel and a reduction). An input a user still holds stays
 * pending, as any fused intermediate does, and is computed if read.
 */
function loadedSums(p: Plan, groups: Map<Node, Node[]>, extras: Map<Node, Node[]>): Map<Node, Node[]> {
  const out = new Map<Node, Node[]>();
  if (config.debugNans) return out;
  for (const n of p.order) {
    if (n.prim !== 'sum' || n.dtype !== 'float32') continue;
    const q = n.inputs[0]!;
    const members = groups.get(q);
    if (!members || extras.has(q) || p.targets.has(q) || q.materialize || q.consumers !== 1 || q.dtype !== 'float32') continue;
    const [A, R, B] = runDims(q.shape, n.params.axes as number[]);
    if (A * B > 0 && R <= STRIDED_ONE_PASS) out.set(n, members);
  }
  return out;
}

/** Generate the fused elementwise kernel for `root` and the nodes folded into it (`extras` written out too). */
function fusedStep(root: Node, members: Node[], memberSet: Set<Node>, extras: Node[]): Step {
  if (root.shape.length > MAX_RANK) throw new Error(`internal error: rank ${root.shape.length} > ${MAX_RANK}`);
  const leaves = leavesOf(members, memberSet);
  const words = new DataView(new ArrayBuffer(128 * 4));
  const access = leafAccess(root.shape, root.size, leaves, words);
  // Four elements per thread with vec4 loads and stores (about 2x on SwiftShader) when every
  // leaf is read either as four consecutive, aligned elements or as one element for all four.
  const vec4 = root.size > 0 && root.size % 4 === 0 && access.every((a) => a.lanes !== null);
  words.setUint32(0, vec4 ? root.size / 4 : root.size, true);
  const T = wgslType(root.dtype);
  const bindings = [`@group(0) @binding(1) var<storage, read_write> ${vec4 ? `out4: array<vec4<${T}>>` : `out: array<${T}>`};`];
  // An extra output of one element in a bigger kernel (a step count) is written by element 0 alone.
  const scalar = (x: Node) => x.size < root.size;
  extras.forEach((x, k) => {
    const e = wgslType(x.dtype);
    bindings.push(`@group(0) @binding(${k + 2}) var<storage, read_write> xout${k}: array<${vec4 && !scalar(x) ? `vec4<${e}>` : e}>;`);
  });
  const firstIn = 2 + extras.length;
  leaves.forEach((q, k) => {
    const e = wgslType(q.dtype);
    const type = vec4 && access[k]!.lanes === 'vec' ? `vec4<${e}>` : e;
    bindings.push(`@group(0) @binding(${k + firstIn}) var<storage, read> in${k}: array<${type}>;`);
  });
  // The chain, as statements for one element i whose inputs are v0, v1, ...
  const { chain, names } = chainOf(members, memberSet, leaves, words);
  const result = names.get(root)!;
  const lines: string[] = [];
  if (!vec4) {
    access.forEach((a, k) => lines.push(`  let v${k} = in${k}[${a.expr('i')}];`));
    lines.push(...chain.map((c) => `  ${c}`), `  out[i] = ${result};`);
    extras.forEach((x, k) => lines.push(scalar(x) ? `  if (i == 0u) { xout${k}[0] = ${names.get(x)!}; }` : `  xout${k}[i] = ${names.get(x)!};`));
  } else {
    // Here i counts vec4s; each component's block re-declares i as its element index.
    lines.push('  let j = i;', '  let i4 = j * 4u;');
    access.forEach((a, k) =>
      lines.push(a.lanes === 'vec' ? `  let q${k} = in${k}[${a.expr('i4')} / 4u];` : `  let s${k} = in${k}[${a.expr('i4')}];`),
    );
    lines.push(`  var r: vec4<${T}>;`);
    extras.forEach((x, k) => scalar(x) || lines.push(`  var x${k}: vec4<${wgslType(x.dtype)}>;`));
    ['x', 'y', 'z', 'w'].forEach((c, lane) => {
      const loads = access.map((a, k) => `let v${k} = ${a.lanes === 'vec' ? `q${k}.${c}` : `s${k}`};`);
      const written = extras.map((x, k) =>
        !scalar(x) ? `x${k}.${c} = ${names.get(x)!};` : lane === 0 ? `if (i == 0u) { xout${k}[0] = ${names.get(x)!}; }` : '',
      );
      lines.push(`  { let i = i4 + ${lane}u; ${[...loads, ...chain].join(' ')} r.${c} = ${result}; ${written.join(' ')} _ = i; }`);
    });
    lines.push('  out4[j] = r;', ...extras.flatMap((x, k) => (scalar(x) ? [] : [`  xout${k}[j] = x${k};`])));
  }
  const shader: ShaderSpec = { template: 'elementwise', entry: 'main', fill: { BINDINGS: bindings.join('\n'), BODY: lines.join('\n') } };
  return { kind: 'fused', node: root, members, extras, leaves, shader, params: words.buffer, threads: vec4 ? root.size / 4 : root.size };
}

/**
 * A float32 sum over a contiguous run of axes whose input, the last of
 * `members`, is computed inside it: one thread per output loops over the
 * (at most STRIDED_ONE_PASS) rows, computing each element as it goes, in two
 * running sums as reduce_strided does. Words 2, 3: R, B; 60: the mean's scale.
 */
function loadedSumStep(sum: Node, members: Node[]): Step {
  const src = members[members.length - 1]!;
  const memberSet = new Set(members);
  const leaves = leavesOf(members, memberSet);
  const words = new DataView(new ArrayBuffer(128 * 4));
  const access = leafAccess(src.shape, src.size, leaves, words);
  const [A, R, B] = runDims(src.shape, sum.params.axes as number[]);
  words.setUint32(0, A * B, true);
  words.setUint32(2 * 4, R, true);
  words.setUint32(3 * 4, B, true);
  words.setFloat32(60 * 4, (sum.params.scale as number | undefined) ?? 1, true);
  const bindings = ['@group(0) @binding(1) var<storage, read_write> out: array<f32>;'];
  leaves.forEach((q, k) => bindings.push(`@group(0) @binding(${k + 2}) var<storage, read> in${k}: array<${wgslType(q.dtype)}>;`));
  const { chain, names } = chainOf(members, memberSet, leaves, words);
  const element = (acc: string, row: string) => {
    const loads = access.map((a, k) => `let v${k} = in${k}[${a.expr('i')}];`);
    return `  { let i = base + (${row}) * p(3u); ${[...loads, ...chain].join(' ')} ${acc} = ${acc} + ${names.get(src)!}; }`;
  };
  const lines = [
    '  let base = (i / p(3u)) * p(2u) * p(3u) + i % p(3u);',
    '  var s0 = 0.0;',
    '  var s1 = 0.0;',
    '  var r = 0u;',
    '  for (; r + 1u < p(2u); r += 2u) {',
    element('s0', 'r'),
    element('s1', 'r + 1u'),
    '  }',
    '  if (r < p(2u)) {',
    element('s0', 'r'),
    '  }',
    '  out[i] = (s0 + s1) * bitcast<f32>(p(60u));',
  ];
  const shader: ShaderSpec = { template: 'elementwise', entry: 'main', fill: { BINDINGS: bindings.join('\n'), BODY: lines.join('\n') } };
  return { kind: 'fused', node: sum, members, extras: [], leaves, shader, params: words.buffer, threads: A * B };
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
