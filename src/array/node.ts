// The lazy graph. Every op creates a Node; nothing runs on the GPU until a
// result is read or evaluate() is called (see src/gpu/executor.ts).
//
// A Node is the graph vertex; an NDArray is the user's handle to it. They are
// separate objects so the graph can hold nodes strongly while the runtime
// checks, through a WeakRef, whether any user code still holds the handle:
// nodes nobody can read again are never written to memory (or are fused away)
// and their buffers go straight back to the pool.

import type { NDArray } from './ndarray';
import type { Storage } from '../gpu/pool';

export type Shape = readonly number[];

export interface Node {
  readonly id: number;
  readonly prim: string;
  /** Inputs; cleared once the node is computed so the graph behind it can be collected. */
  inputs: Node[];
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- per-primitive, read by its own rule
  readonly params: Record<string, any>;
  readonly shape: Shape;
  readonly size: number;
  /** The GPU buffer holding the value, once computed. */
  storage: Storage | null;
  /** Byte offset of the value inside storage (views of a packed multi-output kernel). */
  offset: number;
  /** A host copy: the data of a constant not yet uploaded, or a value read back. */
  cpu: Float32Array | null;
  /** Why the value can no longer be read (disposed, donated, freed intermediate), or null. */
  dead: string | null;
  /** No user handle will read this node: created inside a transformation and not returned, donated, or disposed. */
  internal: boolean;
  /** The user's handle, weakly. */
  holder: WeakRef<NDArray> | null;
  /** Nodes to compute in the same submission whenever this one is (the outputs of one grad call). */
  group: Node[] | null;
  /** How many not-yet-computed nodes read this one. */
  consumers: number;
}

let nextId = 1;
const scopes: Node[][] = [];

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function makeNode(prim: string, inputs: Node[], params: Record<string, unknown>, shape: Shape,
  cpu: Float32Array | null = null): Node {
  const node: Node = {
    id: nextId++, prim, inputs, params, shape: Object.freeze([...shape]), size: sizeOf(shape),
    storage: null, offset: 0, cpu, dead: null, internal: false, holder: null, group: null, consumers: 0,
  };
  for (const i of inputs) i.consumers++;
  const scope = scopes[scopes.length - 1];
  if (scope) scope.push(node);
  return node;
}

export function isComputed(n: Node): boolean {
  return n.storage !== null || n.cpu !== null;
}

/** Is a user handle to this node (possibly) still alive? */
export function isHeld(n: Node): boolean {
  return !n.internal && n.holder !== null && n.holder.deref() !== undefined;
}

/**
 * Run fn and report every node it created. Transformations use this to mark
 * everything a traced function made but did not return as internal.
 */
export function withNodeScope<T>(fn: () => T): [T, Node[]] {
  const created: Node[] = [];
  scopes.push(created);
  try {
    return [fn(), created];
  } finally {
    scopes.pop();
    const outer = scopes[scopes.length - 1];
    if (outer) for (const n of created) outer.push(n);
  }
}

