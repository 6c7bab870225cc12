// Epilogues: an elementwise kernel that reads a matrix product (a layer's
// bias and activation, an optimizer's update of the weight gradient x^T g)
// runs inside the product's own kernel, on each result as it is stored,
// instead of as a second dispatch that reads the product back from memory.
// The matrix-product templates (matmul_register, matmul_shared, matvec)
// write every element through `store(i, value)`, i the flat index of the
// output; here `store` becomes the fused chain, which reads the product's
// value from its argument and every other input at i, as fusedStep would.
// The stored value is the same float32 the product would have written to
// memory, so the results are bit for bit those of the two kernels.

import { config } from '../config';
import type { Node } from '../array/node';
import { rulesOf, type LowerContext } from '../array/primitives';
import { wgslType } from '../array/dtype';
import type { Plan } from '../exec/plan';
import type { KernelCall } from './kernels';
import { chainOf, leafAccess, leavesOf } from './chain';

/** The templates whose kernels store through store()/store4(), and the name of their output. */
const OUTPUT_NAME: Record<string, string> = { matmul_register: 'C', matmul_shared: 'C', matvec: 'out', reduce: 'out' };
/** The primitives whose one-call lowerings use those templates. */
const PRODUCERS = new Set(['matmul', 'sum', 'max', 'min']);

/** A matrix product whose one reader is computed by the kernel of `root`, and its one kernel call. */
export interface Epilogue {
  product: Node;
  call: KernelCall;
}

/**
 * The elementwise roots whose kernels become epilogues: root -> the product it
 * reads. The product must be read by nothing else (not a target, every
 * reader inside that one kernel only; a handle a user still holds keeps it
 * pending, with its inputs, as a fused intermediate's does), have the root's shape (so it is read
 * at the root's index i) and lower to one kernel call (no split-K, whose
 * partial sums are only final after a second pass); the fused kernel's
 * bindings must fit the device's limit.
 */
export function epilogues(
  p: Plan,
  groups: Map<Node, Node[]>,
  extras: Map<Node, Node[]>,
  /** The loaded sums (fuse.ts), which compute their input themselves, and the groups they compute. */
  loaded: Map<Node, Node[]>,
  ctx: LowerContext,
): Map<Node, Epilogue> {
  const out = new Map<Node, Epilogue>();
  const skip = new Set([...loaded.values()].map((m) => m[m.length - 1]!)); // (no kernel of their own)
  if (config.debugNans || ctx.policy.epilogue === 'off') return out;
  const readers = new Map<Node, Node[]>();
  for (const n of p.order) for (const q of n.inputs) (readers.get(q) ?? readers.set(q, []).get(q)!).push(n);
  const kernelsOf = new Map<Node, Node[]>(); // member -> the roots whose kernels compute it
  for (const [root, members] of groups) for (const m of members) (kernelsOf.get(m) ?? kernelsOf.set(m, []).get(m)!).push(root);
  for (const n of p.order) {
    if (!PRODUCERS.has(n.prim) || loaded.has(n) || n.dtype !== 'float32' || p.targets.has(n) || n.materialize) continue;
    const rs = readers.get(n) ?? [];
    if (n.consumers !== rs.length || rs.length === 0) continue; // (fewer: a reader outside this plan)
    // Every reader computed by one kernel, the same one.
    const root = kernelsOf.get(rs[0]!)?.[0];
    if (!root || rs.some((r) => kernelsOf.get(r)?.length !== 1 || kernelsOf.get(r)![0] !== root)) continue;
    if (skip.has(root) || out.has(root) || root.dtype !== 'float32' || !sameShape(root.shape, n.shape)) continue;
    const lowering = rulesOf(n).lower!(n, ctx);
    if (!('calls' in lowering) || lowering.calls.length !== 1 || lowering.scratch?.length) continue;
    const call = lowering.calls[0]!;
    if (!(call.shader.template in OUTPUT_NAME) || !('out' in call.slots[0]!) || call.slots.slice(1).some((s) => !('input' in s))) continue;
    const members = groups.get(root)!;
    const others = leavesOf(members, new Set(members)).filter((q) => q !== n).length;
    const bindings = 1 + (extras.get(root)?.length ?? 0) + (call.slots.length - 1) + others;
    if (bindings > ctx.maxStorageBuffers) continue;
    out.set(root, { product: n, call });
  }
  return out;
}

/**
 * The product's kernel with `root`'s chain as its store: bindings are the
 * output, the extra outputs, the product's inputs, then the chain's other
 * inputs. The params are the product's, then the chain's words (P.w).
 */
export function epilogueStep(root: Node, members: Node[], extras: Node[], e: Epilogue) {
  const memberSet = new Set(members);
  const others = leavesOf(members, memberSet).filter((q) => q !== e.product);
  const leaves = [e.product, ...others]; // the product is v0: store()'s argument
  const words = new DataView(new ArrayBuffer(128 * 4));
  const access = leafAccess(root.shape, root.size, leaves, words);
  const { chain, names } = chainOf(members, memberSet, leaves, words);
  const inputs = e.call.slots.slice(1).map((s) => e.product.inputs[(s as { input: number }).input]!);
  const first = 2 + extras.length + inputs.length; // binding of the chain's first other input
  const decls = [
    ...extras.map((x, k) => `@group(0) @binding(${2 + k}) var<storage, read_write> xout${k}: array<${wgslType(x.dtype)}>;`),
    ...others.map((q, k) => `@group(0) @binding(${first + k}) var<storage, read> in${k + 1}: array<${wgslType(q.dtype)}>;`),
  ];
  const loads = access.slice(1).map((a, k) => `let v${k + 1} = in${k + 1}[${a.expr('i')}];`);
  const store = [
    'fn store(i: u32, v0: f32) {',
    ...[...loads, ...chain].map((l) => `  ${l}`),
    `  ${OUTPUT_NAME[e.call.shader.template]}[i] = ${names.get(root)!};`,
    ...extras.map((x, k) => (x.size < root.size ? `  if (i == 0u) { xout${k}[0] = ${names.get(x)!}; }` : `  xout${k}[i] = ${names.get(x)!};`)),
    '}',
    'fn store4(j: u32, v: vec4<f32>) { store(4u * j, v.x); store(4u * j + 1u, v.y); store(4u * j + 2u, v.z); store(4u * j + 3u, v.w); }',
  ];
  const fill = {
    ...e.call.shader.fill,
    IN0: String(2 + extras.length),
    IN1: String(3 + extras.length),
    PARAMS_W: ', w: array<vec4<u32>, 32>',
    EPILOGUE: [...decls, '{{SCALAR_FUNCTIONS}}', ...store].join('\n'),
  };
  const params = new Uint8Array(e.call.params.byteLength + words.byteLength);
  params.set(new Uint8Array(e.call.params), 0);
  params.set(new Uint8Array(words.buffer), e.call.params.byteLength);
  return {
    kind: 'fused' as const,
    node: root,
    members,
    extras,
    leaves: [...inputs, ...others],
    shader: { ...e.call.shader, fill },
    params: params.buffer,
    threads: 0,
    grid: e.call.grid,
  };
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);
