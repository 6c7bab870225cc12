// NDArray: the user's handle to a node of the lazy graph (float32, n-d).

import { ConcretizationError, DisposedArrayError, ValueError } from '../errors';
import { evaluator } from './evaluator';
import { forgetHandle, registerHandle, releaseIfUnused } from './lifetime';
import { isTracing, type Node, type Shape } from './node';
import { registerLeafClass } from '../tree/tree';

/** An n-dimensional float32 array: the user's handle to a value of the lazy graph (read it with data(), item(), toNested()). */
export class NDArray {
  /** Why this handle may no longer be used (disposed / donated), or null. */
  private revoked: string | null = null;
  /** This handle's token in the handle registry (lifetime.ts), or null for an internal handle. */
  private readonly token: object | null;

  /** @internal Use the op functions (array, add, matmul, ...) to make arrays. */
  constructor(
    readonly node: Node,
    register = true,
  ) {
    this.token = register ? registerHandle(this, node) : null;
  }

  get shape(): number[] {
    return [...this.node.shape];
  }
  get ndim(): number {
    return this.node.shape.length;
  }
  get size(): number {
    return this.node.size;
  }
  get dtype(): 'float32' {
    return 'float32';
  }

  /** @internal The node, after checking the handle is still usable. */
  use(): Node {
    if (this.revoked) throw new DisposedArrayError(`this array (shape [${this.shape.join(', ')}]) was ${this.revoked}`);
    if (this.node.dead) throw new DisposedArrayError(`this array (shape [${this.shape.join(', ')}]) was ${this.node.dead}`);
    return this.node;
  }

  /** Compute (if pending) and copy the values to the host. */
  async data(): Promise<Float32Array> {
    const node = this.use();
    if (isTracing()) {
      throw new ConcretizationError(
        `cannot read an array's values inside a function being differentiated (shape [${this.shape.join(', ')}]): ` +
          'while grad/valueAndGrad/vjp trace it, arrays stand for values not yet computed. Return it as aux (hasAux) and read it afterwards',
      );
    }
    if (node.cpu) return node.cpu.slice();
    const [host] = await evaluator().read([node]);
    return host!;
  }

  /** Values as nested JS arrays (a number for a 0-d array). */
  async toNested(): Promise<NestedArray> {
    const flat = Array.from(await this.data());
    const build = (dim: number, at: number): NestedArray => {
      if (dim === this.ndim) return flat[at]!;
      const stride = this.node.shape.slice(dim + 1).reduce((a, b) => a * b, 1);
      return Array.from({ length: this.node.shape[dim]! }, (_, i) => build(dim + 1, at + i * stride));
    };
    return build(0, 0);
  }

  /** The value of a 0-d or one-element array. */
  async item(): Promise<number> {
    const d = await this.data();
    if (d.length !== 1) throw new ValueError(`item() needs exactly one element; shape is [${this.shape.join(', ')}]`);
    return d[0]!;
  }

  /** Give the GPU buffer back now. Later use of this handle throws DisposedArrayError. */
  dispose(): void {
    this.revoke('disposed');
  }
  /** `using x = ...` disposes x at the end of its block. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /** @internal Donation and dispose: this handle is done; free the buffer once pending work has read it. */
  revoke(reason: string): void {
    if (this.revoked) return;
    this.revoked = reason;
    const holder = this.token !== null && this.node.holder === this.token;
    forgetHandle(this.node, this.token);
    if (holder) releaseIfUnused(this.node, reason);
  }

  get isDisposed(): boolean {
    return this.revoked !== null || this.node.dead !== null;
  }

  /** `NDArray(shape=[2, 3], float32)`: the shape, not the values (reading them is asynchronous). */
  toString(): string {
    return `NDArray(shape=[${this.shape.join(', ')}], float32)`;
  }
}

/** A number, or nested JS arrays of numbers (the shape of toNested()). */
export type NestedArray = number | NestedArray[];

/** @internal A handle for rules and transformations that must not count as a user holder. */
export function wrap(node: Node): NDArray {
  return new NDArray(node, false);
}

export type { Shape };

// NDArrays are pytree leaves (next to numbers).
registerLeafClass(NDArray);
declare module '../tree/tree' {
  interface LeafTypes {
    ndarray: NDArray;
  }
}
