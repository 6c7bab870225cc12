// The seam between the graph (array/) and whatever computes it (exec/, gpu/).
// The graph calls these two functions; src/exec/dispatch.ts registers them
// when it loads (src/index.ts imports it), so array/ never imports the runtime
// and the runtime may import array/ freely: no import cycle.

import type { Node } from './node';
import type { HostArray } from './dtype';

export interface Evaluator {
  /** Compute these nodes (and what they need) and read their values back: the only thing that waits. */
  read(nodes: Node[]): Promise<HostArray[]>;
  /** Dispatch everything pending, without waiting for it. */
  flush(): void;
}

let impl: Evaluator | null = null;

export function setEvaluator(e: Evaluator): void {
  impl = e;
}

export function evaluator(): Evaluator {
  if (!impl) throw new Error('internal error: no evaluator is registered (import the library from src/index.ts)');
  return impl;
}
