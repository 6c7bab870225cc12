// The lazy graph. Every op creates a Node; work is dispatched to the GPU at
// the end of a training step, when the pending graph grows past a bound, and
// when something is read (src/exec/dispatch.ts says when and why).
//
// A Node is the graph vertex; an NDArray is the user's handle to it. They are
// separate objects so the graph can hold nodes strongly while the runtime
// checks, through a WeakRef, whether any user code still holds the handle:
// nodes nobody can read again are never written to memory (or are fused away)
// and their buffers go straight back to the pool.

import type { Storage } from '../gpu/pool';
import type { Prim, PrimParams } from './prims';
import { evaluator } from './evaluator';
import type { DType, HostArray } from './dtype';

export type Shape = readonly number[];

export interface Node {
  readonly id: number;
  readonly prim: Prim;
  /** Inputs; cleared once the node is computed so the graph behind it can be collected. */
  inputs: Node[];
  /** This primitive's params (PrimParams[prim]); each rule reads its own. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- typed per primitive in the rules table
  readonly params: Record<string, any>;
  readonly shape: Shape;
  readonly size: number;
  /** The element type (every dtype is 4 bytes per element on the GPU). */
  readonly dtype: DType;
  /** The GPU buffer holding the value, once computed. */
  storage: Storage | null;
  /** Byte offset of the value inside storage (views of a packed multi-output kernel, small-value slots). */
  offset: number;
  /** A host copy: the data of a constant not yet uploaded, or a value read back. */
  cpu: HostArray | null;
  /** Why the value can no longer be read (disposed, donated, freed intermediate), or null. */
  dead: string | null;
  /** No user handle will read this node: created inside a transformation and not returned, donated, or disposed. */
  internal: boolean;
  /**
   * The user's handle, as its token in the handle registry (lifetime.ts):
   * null when there is none, it was revoked, or it was garbage-collected.
   * (Not a WeakRef: one created during a synchronous loop keeps its target
   * alive until the loop yields, so every step's arrays would pile up.)
   */
  holder: object | null;
  /** Nodes to compute in the same submission whenever this one is (the outputs of one grad call). */
  group: Node[] | null;
  /**
   * Written to memory like a target, though no one reads it back: a loop's carry between
   * iterations (the next iteration's kernels read it instead of computing it again).
   */
  materialize?: boolean;
  /** How many not-yet-computed nodes read this one. */
  consumers: number;
}

let nextId = 1;
/** What traces a function: grad/vjp (differentiating it) or jit (recording it); either way its values are symbolic. */
export type TraceKind = 'grad' | 'jit';
/** Open scopes (transformations running); `traced` ones are grad/vjp/jit traces, whose values are symbolic. */
const scopes: Array<{ created: Node[]; traced: TraceKind | null }> = [];

/**
 * Nodes created since the last dispatch: the candidates it looks at. Every
 * dispatch takes them all, so this never holds more than one step's nodes
 * (or PENDING_BOUND of them).
 */
let unsent: Node[] = [];
/** Past this many nodes created outside any transformation, the next op dispatches what is pending first. */
export const PENDING_BOUND = 4096;

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function makeNode<P extends Prim>(
  prim: P,
  inputs: Node[],
  params: PrimParams[P],
  shape: Shape,
  dtype: DType,
  cpu: HostArray | null = null,
): Node {
  // The size bound: dispatch before this node exists (so nothing half-made is in the graph). Never
  // inside a transformation: a trace's nodes must stay pending until its VJP has been recorded.
  if (unsent.length >= PENDING_BOUND && scopes.length === 0) evaluator().flush();
  const node: Node = {
    id: nextId++,
    prim,
    inputs,
    params,
    shape: Object.freeze([...shape]),
    size: sizeOf(shape),
    dtype,
    storage: null,
    offset: 0,
    cpu,
    dead: null,
    internal: false,
    holder: null,
    group: null,
    consumers: 0,
  };
  for (const i of inputs) i.consumers++;
  const scope = scopes[scopes.length - 1];
  if (scope) scope.created.push(node);
  if (!cpu) unsent.push(node);
  return node;
}

/**
 * A node whose value is already in `storage` (a compiled program's output):
 * never pending, so it neither joins the dispatch list nor triggers the size bound.
 */
export function makeComputedNode(prim: Prim, params: Record<string, unknown>, shape: Shape, dtype: DType, storage: Storage, offset: number): Node {
  return {
    id: nextId++,
    prim,
    inputs: [],
    params,
    shape,
    size: sizeOf(shape),
    dtype,
    storage,
    offset,
    cpu: null,
    dead: null,
    internal: false,
    holder: null,
    group: null,
    consumers: 0,
  };
}

/** Hand the dispatcher every node created since the last call. */
export function takeUnsent(): Node[] {
  const out = unsent;
  unsent = [];
  return out;
}

/** An attempt that did not submit gives its nodes back, ahead of any made since. */
export function putBack(nodes: Node[]): void {
  unsent = nodes.concat(unsent);
}

/** Drop computed and dead nodes from the list (a read computed them), so they do not count towards the bound. */
export function pruneUnsent(): void {
  unsent = unsent.filter((n) => !n.dead && n.storage === null && n.cpu === null);
}

/** Nodes created since the last dispatch (for the size bound and the tests). */
export function unsentCount(): number {
  return unsent.length;
}

export function isComputed(n: Node): boolean {
  return n.storage !== null || n.cpu !== null;
}

/** Is a user handle to this node (possibly) still alive? */
export function isHeld(n: Node): boolean {
  return !n.internal && n.holder !== null;
}

/** Is a grad/vjp/jit trace running? Its values are symbolic: they cannot be read or dispatched. */
export function isTracing(): boolean {
  return scopes.some((s) => s.traced);
}

/** The innermost running trace's kind (for error messages), or null. */
export function traceKind(): TraceKind | null {
  for (let i = scopes.length - 1; i >= 0; i--) if (scopes[i]!.traced) return scopes[i]!.traced;
  return null;
}

/** Are we inside any transformation (grad, vjp, an optimizer update)? Dispatch waits until it ends. */
export function inScope(): boolean {
  return scopes.length > 0;
}

/**
 * Run fn and report every node it created. Transformations use this to mark
 * everything a traced function made but did not return as internal.
 * `traced`: fn is a grad/vjp (true or 'grad') or jit trace (reading values inside it is an error).
 */
export function withNodeScope<T>(fn: () => T, traced: boolean | TraceKind = false): [T, Node[]] {
  const created: Node[] = [];
  scopes.push({ created, traced: traced === true ? 'grad' : traced || null });
  try {
    return [fn(), created];
  } finally {
    scopes.pop();
    const outer = scopes[scopes.length - 1];
    if (outer) for (const n of created) outer.created.push(n);
  }
}
