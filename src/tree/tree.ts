// Pytrees, after jax.tree_util: nested plain objects and arrays (arrays double as
// tuples) whose leaves are numbers or instances of a registered array class (the
// core registers NDArray). `null` and `undefined` are empty subtrees, like JAX's
// None: no leaves, and they unflatten back to themselves. Object keys flatten in
// sorted order, so key insertion order never changes a treedef.

import { TreeError, TreeStructureError } from '../errors';

// ---- types ------------------------------------------------------------------

/**
 * Type-level leaf registry, extended by declaration merging next to the runtime
 * `registerLeafClass(NDArray)`:
 *   declare module '../tree/tree' { interface LeafTypes { ndarray: NDArray } }
 */
export interface LeafTypes {
  number: number;
}
export type RegisteredLeaf = LeafTypes[keyof LeafTypes];

/**
 * `T` with every leaf (a number or a `Leaf`) replaced by `L`, recursing through plain
 * objects, arrays and tuples; null/undefined and optional members are kept.
 * E.g. `MapLeaves<{ w: NDArray; b: [NDArray, number] }, G>` is `{ w: G; b: [G, G] }`,
 * which is how grads are typed from params. `Leaf` defaults to the registered leaf
 * types; pass it explicitly to use another array class.
 */
export type MapLeaves<T, L, Leaf = RegisteredLeaf> = unknown extends T
  ? T // any / unknown: nothing to map over
  : T extends number | Leaf
    ? L
    : T extends null | undefined
      ? T
      : T extends object
        ? { [K in keyof T]: MapLeaves<T[K], L, Leaf> }
        : never; // strings, booleans, ...: not valid in a pytree

export type IsLeaf = (x: unknown) => boolean;
export interface FlattenOptions {
  /** Checked before anything else on every node; true makes the node a leaf (it may even be a container). */
  isLeaf?: IsLeaf;
  /** Name of the root in error paths (default "tree"). */
  rootName?: string;
}
export interface CompareOptions {
  /** Name of the root in error paths (default "tree"). */
  rootName?: string;
  /** Names of the trees in messages (default "the first tree", "the second tree", ...). */
  names?: readonly string[];
}

/** A treedef node. Leaf and none nodes are shared singletons. */
export type TreeNode =
  | { readonly kind: 'leaf' }
  | { readonly kind: 'none'; readonly value: null | undefined }
  | { readonly kind: 'array'; readonly children: readonly TreeNode[] }
  | { readonly kind: 'object'; readonly keys: readonly string[]; readonly children: readonly TreeNode[] };

const LEAF: TreeNode = { kind: 'leaf' };
const NULL: TreeNode = { kind: 'none', value: null };
const UNDEF: TreeNode = { kind: 'none', value: undefined };

// ---- leaves -----------------------------------------------------------------

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any class (constructor signatures vary)
type Class = abstract new (...args: any[]) => unknown;
const leafClasses: Class[] = [];

/** Make instances of `cls` (and subclasses) pytree leaves. */
export function registerLeafClass(cls: Class): void {
  if (!leafClasses.includes(cls)) leafClasses.push(cls);
}

/** The default leaf predicate: a number or an instance of a registered class. */
export function isDefaultLeaf(x: unknown): boolean {
  if (typeof x === 'number') return true;
  if (typeof x !== 'object' || x === null) return false;
  for (const c of leafClasses) if (x instanceof c) return true;
  return false;
}

/** A pytree container (a JS array or a plain object), as opposed to a leaf or an unsupported object. */
export function isContainer(x: unknown): boolean {
  return Array.isArray(x) || isPlainObject(x);
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  if (typeof x !== 'object' || x === null) return false;
  const p = Object.getPrototypeOf(x);
  return p === Object.prototype || p === null;
}

function invalidLeaf(x: unknown): string {
  const type = typeof x === 'object' ? (x as object).constructor?.name || 'object' : typeof x;
  const hint = ArrayBuffer.isView(x)
    ? 'typed arrays are not pytree leaves; wrap with array(...)'
    : 'expected an NDArray, a number, a plain object, an array, or null';
  return `unsupported pytree leaf of type ${type} (${hint})`;
}

// ---- paths ------------------------------------------------------------------

type Seg = string | number;
const IDENT = /^[A-Za-z_$][\w$]*$/;
const keyStr = (k: string) => (IDENT.test(k) ? k : JSON.stringify(k));

/** `root` + `.key`, `["odd key"]` and `[i]` segments; paths are only built when needed. */
function fmtPath(root: string, trail: readonly Seg[]): string {
  let s = root;
  for (const k of trail) {
    s += typeof k === 'number' ? `[${k}]` : IDENT.test(k) ? (s ? `.${k}` : k) : `[${JSON.stringify(k)}]`;
  }
  return s;
}

// ---- treedef ----------------------------------------------------------------

/** The structure of a pytree. `T` is a phantom type: the tree it was taken from. */
export class TreeDef<T = unknown> {
  declare readonly __tree?: T;
  constructor(
    readonly node: TreeNode,
    readonly numLeaves: number,
  ) {}

  /** Whether two structures are the same (keys, nesting, leaf positions). */
  equals(other: TreeDef<unknown>): boolean {
    return this === other || (this.numLeaves === other.numLeaves && nodesEqual(this.node, other.node));
  }
  /** E.g. `{a: *, b: [*, null]}`; `*` is a leaf. */
  toString(): string {
    return show(this.node);
  }
  /** Leaf paths in flatten order, e.g. `layer1.b`, `[0]`, `x[2].y` (`''` for a root leaf). */
  paths(): string[] {
    const out: string[] = [];
    const go = (n: TreeNode, trail: Seg[]): void => {
      if (n.kind === 'leaf') out.push(fmtPath('', trail));
      else if (n.kind !== 'none') n.children.forEach((c, i) => go(c, [...trail, n.kind === 'array' ? i : n.keys[i]]));
    };
    go(this.node, []);
    return out;
  }
}

function nodesEqual(a: TreeNode, b: TreeNode): boolean {
  if (a === b) return true; // also covers leaf/leaf and none/none (singletons)
  if (a.kind === 'array' && b.kind === 'array') {
    return a.children.length === b.children.length && a.children.every((c, i) => nodesEqual(c, b.children[i]));
  }
  if (a.kind === 'object' && b.kind === 'object') {
    return a.keys.length === b.keys.length && a.keys.every((k, i) => k === b.keys[i]) && a.children.every((c, i) => nodesEqual(c, b.children[i]));
  }
  return false;
}

function show(n: TreeNode): string {
  switch (n.kind) {
    case 'leaf':
      return '*';
    case 'none':
      return String(n.value);
    case 'array':
      return `[${n.children.map(show).join(', ')}]`;
    case 'object':
      return `{${n.keys.map((k, i) => `${keyStr(k)}: ${show(n.children[i])}`).join(', ')}}`;
  }
}

function describe(n: TreeNode): string {
  switch (n.kind) {
    case 'leaf':
      return 'a leaf';
    case 'none':
      return String(n.value);
    case 'array':
      return `an array of length ${n.children.length}`;
    case 'object':
      return `an object with keys [${n.keys.join(', ')}]`;
  }
}

// ---- flatten / unflatten ----------------------------------------------------

const MAX_DEPTH = 1000;

/** `where` is appended to leaf errors to say which tree of several is at fault. */
function flattenImpl(t: unknown, isLeaf: IsLeaf | undefined, root: string, where = ''): [unknown[], TreeDef] {
  const leaves: unknown[] = [];
  const trail: Seg[] = [];
  const go = (x: unknown): TreeNode => {
    if (isLeaf?.(x) || isDefaultLeaf(x)) {
      leaves.push(x);
      return LEAF;
    }
    if (x === null) return NULL;
    if (x === undefined) return UNDEF;
    if (trail.length >= MAX_DEPTH) {
      throw new TreeError(`${fmtPath(root, trail)}: pytree nested deeper than ${MAX_DEPTH} levels (is it cyclic?)${where}`);
    }
    if (Array.isArray(x)) {
      const children = new Array<TreeNode>(x.length);
      for (let i = 0; i < x.length; i++) {
        trail.push(i);
        children[i] = go(x[i]);
        trail.pop();
      }
      return { kind: 'array', children };
    }
    if (isPlainObject(x)) {
      // Symbol keys are not pytree keys (JAX's dicts have string keys); silently dropping one would lose its grads.
      const sym = Object.getOwnPropertySymbols(x).filter((k) => Object.prototype.propertyIsEnumerable.call(x, k));
      if (sym.length)
        throw new TreeError(`${fmtPath(root, trail) || 'the tree'}: key ${String(sym[0])} is a Symbol; pytree keys must be strings${where}`);
      const keys = Object.keys(x).sort();
      const children = new Array<TreeNode>(keys.length);
      for (let i = 0; i < keys.length; i++) {
        trail.push(keys[i]);
        children[i] = go(x[keys[i]]);
        trail.pop();
      }
      return { kind: 'object', keys, children };
    }
    throw new TreeError(`${fmtPath(root, trail)}: ${invalidLeaf(x)}${where}`);
  };
  const node = go(t);
  return [leaves, new TreeDef(node, leaves.length)];
}

const opts = (o?: IsLeaf | FlattenOptions): FlattenOptions => (typeof o === 'function' ? { isLeaf: o } : (o ?? {}));

/** Leaves in flatten order (sorted object keys, array order) and the structure. */
export function flatten<T>(t: T, isLeaf?: IsLeaf | FlattenOptions): [unknown[], TreeDef<T>] {
  const o = opts(isLeaf);
  return flattenImpl(t, o.isLeaf, o.rootName ?? 'tree') as [unknown[], TreeDef<T>];
}

/** The pytree of this structure with these leaves (the inverse of flatten). */
export function unflatten<T = unknown, L = unknown>(treedef: TreeDef<T>, leaves: readonly L[]): MapLeaves<T, L> {
  if (leaves.length !== treedef.numLeaves) {
    throw new TreeError(`unflatten: treedef expects ${treedef.numLeaves} leaves, got ${leaves.length}`);
  }
  let i = 0;
  const go = (n: TreeNode): unknown => {
    switch (n.kind) {
      case 'leaf':
        return leaves[i++];
      case 'none':
        return n.value;
      case 'array':
        return n.children.map(go);
      case 'object': {
        const out: Record<string, unknown> = {};
        n.keys.forEach((k, j) => {
          const v = go(n.children[j]);
          // a plain assignment to "__proto__" would set the prototype instead of a key
          if (k === '__proto__') Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
          else out[k] = v;
        });
        return out;
      }
    }
  };
  return go(treedef.node) as MapLeaves<T, L>;
}

/** The leaves of a pytree, in flatten order. */
export function leaves(t: unknown, isLeaf?: IsLeaf | FlattenOptions): unknown[] {
  return flatten(t, isLeaf)[0];
}

/** The structure (treedef) of a pytree. */
export function structure<T>(t: T, isLeaf?: IsLeaf | FlattenOptions): TreeDef<T> {
  return flatten(t, isLeaf)[1];
}

/** `[path, leaf]` pairs in flatten order; paths as in `TreeDef.paths()`. */
export function leavesWithPath(t: unknown, isLeaf?: IsLeaf | FlattenOptions): [string, unknown][] {
  const [ls, td] = flatten(t, isLeaf);
  return td.paths().map((p, i) => [p, ls[i]]);
}

// ---- structure comparison -----------------------------------------------------

const ORDINALS = ['first', 'second', 'third', 'fourth', 'fifth'];
const treeName = (names: readonly string[] | undefined, i: number) =>
  names?.[i] ?? (i < ORDINALS.length ? `the ${ORDINALS[i]} tree` : `tree #${i + 1}`);

/** Throws TreeStructureError at the first place (in flatten order) where `b` differs from `a`. */
function assertNodes(a: TreeNode, b: TreeNode, root: string, nameA: string, nameB: string): void {
  const trail: Seg[] = [];
  const fail = (msg: string, key?: string): never => {
    throw new TreeStructureError(`${fmtPath(root, key === undefined ? trail : [...trail, key])}: ${msg}`);
  };
  const go = (a: TreeNode, b: TreeNode): void => {
    if (a.kind === 'object' && b.kind === 'object') {
      const ka = new Set(a.keys),
        kb = new Set(b.keys);
      for (const k of [...new Set([...a.keys, ...b.keys])].sort()) {
        if (!kb.has(k)) fail(`missing in ${nameB}`, k);
        if (!ka.has(k)) fail(`missing in ${nameA}`, k);
      }
    } else if (!(a.kind === 'array' && b.kind === 'array' && a.children.length === b.children.length) && a !== b) {
      fail(`expected ${describe(a)}, got ${describe(b)} in ${nameB}`);
    }
    if (a.kind === 'array' || a.kind === 'object') {
      a.children.forEach((c, i) => {
        trail.push(a.kind === 'array' ? i : a.keys[i]);
        go(c, (b as typeof a).children[i]);
        trail.pop();
      });
    }
  };
  go(a, b);
}

/** Throws TreeStructureError naming the first path where the structures of `a` and `b` differ. */
export function assertSameStructure(a: unknown, b: unknown, options: CompareOptions = {}): void {
  const root = options.rootName ?? 'tree';
  const [nameA, nameB] = [treeName(options.names, 0), treeName(options.names, 1)];
  const [, tdA] = flattenImpl(a, undefined, root, ` in ${nameA}`);
  const [, tdB] = flattenImpl(b, undefined, root, ` in ${nameB}`);
  assertNodes(tdA.node, tdB.node, root, nameA, nameB);
}

/**
 * Applies `fn` to the leaves at each position of `t` and of every tree in `rest`
 * (which must all have the structure of `t`), returning a tree shaped like `t`.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- leaves of any type, one per tree
export function map<T, R>(fn: (...leaves: any[]) => R, t: T, ...rest: unknown[]): MapLeaves<T, R> {
  const [ls, td] = flattenImpl(t, undefined, 'tree', rest.length ? ` in ${treeName(undefined, 0)}` : '');
  const others = rest.map((r, j) => {
    const [l, d] = flattenImpl(r, undefined, 'tree', ` in ${treeName(undefined, j + 1)}`);
    if (!d.equals(td)) assertNodes(td.node, d.node, 'tree', treeName(undefined, 0), treeName(undefined, j + 1));
    return l;
  });
  const out = others.length === 0 ? ls.map((x) => fn(x)) : ls.map((x, i) => fn(x, ...others.map((o) => o[i])));
  return unflatten(td as TreeDef<T>, out);
}

/** Everything above under one name: `tree.map(...)`, `tree.flatten(...)`, ... */
export const tree = {
  flatten,
  unflatten,
  leaves,
  structure,
  leavesWithPath,
  map,
  assertSameStructure,
  registerLeafClass,
  isDefaultLeaf,
} as const;
