// When a node's buffer may go back to the pool. Nodes are freed by counting
// pending readers (Node.consumers) and by the end of transformation scopes,
// never by waiting for the garbage collector: the FinalizationRegistry in
// ndarray.ts is only a backstop for handles a user forgets.

import { isComputed, isHeld, withNodeScope, type Node } from './node';

// Backstop only: arrays a user simply forgets give their buffer back when collected.
const handles = new FinalizationRegistry<{ node: Node; token: object }>(({ node, token }) => {
  if (node.holder !== token) return;
  if (pinned.has(node)) return void orphaned.add(node); // still held, for the pullback
  node.holder = null;
  if (!node.dead) releaseIfUnused(node, 'garbage-collected');
});
/** Nodes kept for a pullback (vjp) while its function is alive, whatever happens to their handles. */
const pinned = new WeakSet<Node>();
/** Pinned nodes whose handle was collected meanwhile. */
const orphaned = new WeakSet<Node>();

/** A user handle now refers to `node`: returns its token (held by the handle, and by the node while it is the holder). */
export function registerHandle(handle: object, node: Node): object {
  const token = {};
  node.holder = token;
  handles.register(handle, { node, token }, token);
  return token;
}

/** The handle with this token is done (revoked, or its node sealed inside a transformation): no finalizer, not a holder. */
export function forgetHandle(node: Node, token: object | null): void {
  if (!token) return;
  handles.unregister(token);
  if (node.holder === token) node.holder = null;
}

/**
 * Keep `nodes` (a traced forward pass) while `owner` (a pullback) is alive;
 * once it is collected, the ones nobody else reads or holds are released.
 */
export function pinWhileAlive(owner: object, nodes: Node[]): void {
  for (const n of nodes) pinned.add(n);
  pins.register(owner, nodes);
}
const pins = new FinalizationRegistry<Node[]>((nodes) => {
  for (const n of nodes) {
    pinned.delete(n);
    if (!orphaned.has(n)) continue;
    n.holder = null;
    if (!n.dead && n.consumers === 0) releaseIfUnused(n, 'garbage-collected');
  }
});

/**
 * Release a node's buffer (dispose, donation, finalization) unless pending work still reads it.
 * A released pending node no longer reads its inputs, so inputs that are then
 * unread, unheld and not in `keep` are released too (else their buffers leak).
 */
export function releaseIfUnused(n: Node, reason: string, keep?: ReadonlySet<Node>): void {
  n.internal = true;
  const stack = [n];
  while (stack.length) {
    const m = stack.pop()!;
    if (m.consumers > 0) continue;
    const pending = !isComputed(m);
    if (m.storage) {
      m.storage.pool.release(m.storage);
      m.storage = null;
    }
    if (pending) {
      for (const i of m.inputs) {
        i.consumers--;
        if (i.consumers === 0 && !i.dead && !keep?.has(i) && !isHeld(i)) stack.push(i);
      }
    }
    m.cpu = null;
    m.inputs = [];
    m.internal = true;
    m.dead = m === n ? reason : 'freed: only released arrays read it';
  }
}

/** A node just computed stops reading its inputs; inputs nobody else reads, holds or keeps are freed. */
export function letGoOfInputs(n: Node, keep: ReadonlySet<Node>): void {
  for (const q of n.inputs) {
    q.consumers--;
    if (q.consumers === 0 && !keep.has(q) && !isHeld(q)) releaseIfUnused(q, 'freed after use as an intermediate', keep);
  }
  n.inputs = [];
}

/**
 * End of a traced scope (grad, an optimizer update): every node it created
 * except `outputs` becomes internal (no outside reader, so its buffer is
 * recycled right after use), and pending nodes that no output needs (dead
 * code, VJP branches of constants) are dropped, so they don't pin their
 * inputs' buffers forever.
 */
export function sealScope(created: Node[], outputs: Node[]): void {
  const out = new Set(outputs);
  const mine = new Set(created);
  // What the outputs need, walked only through this scope's nodes: older pending work (an
  // earlier step not yet dispatched) cannot be this scope's dead code, and walking it would
  // make every step cost as much as the whole undispatched history.
  const live = new Set<Node>();
  const stack = outputs.filter((n) => mine.has(n));
  while (stack.length) {
    const n = stack.pop()!;
    if (live.has(n)) continue;
    live.add(n);
    if (!isComputed(n)) for (const i of n.inputs) if (mine.has(i)) stack.push(i);
  }
  for (let k = created.length - 1; k >= 0; k--) {
    const n = created[k]!;
    if (out.has(n)) continue;
    n.internal = true;
    n.group = null;
    forgetHandle(n, n.holder); // a trace's temporaries need no finalizer: they are freed by use
    if (!live.has(n) && !isComputed(n) && !n.dead && n.consumers === 0) releaseIfUnused(n, 'never used (dropped from the graph)');
  }
  for (const n of out) n.group = null;
}

/** Run fn as a sealed scope whose outputs are `keep(result)`. */
export function sealed<T>(fn: () => T, keep: (result: T) => Node[]): T {
  const [result, created] = withNodeScope(fn);
  sealScope(created, keep(result));
  return result;
}
