// NDArray: the user's handle to a node of the lazy graph (n-d; float32, int32 or bool).

import { ConcretizationError, DisposedArrayError, DTypeError, ValueError } from '../errors';
import { evaluator } from './evaluator';
import { forgetHandle, registerHandle, releaseIfUnused } from './lifetime';
import { isTracing, traceKind, type Node, type Shape } from './node';
import { registerLeafClass } from '../tree/tree';
import { userData, type ArrayData, type DType } from './dtype';

/** An n-dimensional array (float32, int32 or bool): the user's handle to a value of the lazy graph (read it with data(), item(), toNested()). */
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
  /** The element type: 'float32', 'int32' or 'bool'. */
  get dtype(): DType {
    return this.node.dtype;
  }

  /** @internal The node, after checking the handle is still usable. */
  use(): Node {
    if (this.revoked) throw new DisposedArrayError(`this array (shape [${this.shape.join(', ')}]) was ${this.revoked}`);
    if (this.node.dead) throw new DisposedArrayError(`this array (shape [${this.shape.join(', ')}]) was ${this.node.dead}`);
    return this.node;
  }

  /**
   * Compute (if pending) and copy the values to the host: a Float32Array, an
   * Int32Array, or for bool a Uint8Array of 0 and 1. Name the dtype you
   * expect (`await x.data('float32')`) for the precise typed array: a
   * different dtype is then a DTypeError, not a silently wrong type.
   */
  data(): Promise<ArrayData>;
  data(dtype: 'float32'): Promise<Float32Array>;
  data(dtype: 'int32'): Promise<Int32Array>;
  data(dtype: 'bool'): Promise<Uint8Array>;
  async data(dtype?: DType): Promise<ArrayData> {
    if (dtype !== undefined && dtype !== this.node.dtype) {
      throw new DTypeError(`data('${dtype}'): this array (shape [${this.shape.join(', ')}]) is ${this.node.dtype}`);
    }
    const node = this.use();
    if (isTracing()) {
      throw new ConcretizationError(
        traceKind() === 'jit'
          ? `cannot read an array's values inside a jitted function (shape [${this.shape.join(', ')}]): jit records the function ` +
              'once and replays it, so its arrays stand for values of later calls, not yet computed. Return it as an output and read it afterwards'
          : `cannot read an array's values inside a function being differentiated (shape [${this.shape.join(', ')}]): ` +
              'while grad/valueAndGrad/vjp trace it, arrays stand for values not yet computed. Return it as aux (hasAux) and read it afterwards',
      );
    }
    if (node.cpu) return userData(node.dtype, node.cpu);
    const [host] = await evaluator().read([node]);
    return userData(node.dtype, host!);
  }

  /** Values as nested JS arrays (a number for a 0-d array; bool as true and false). */
  async toNested(): Promise<NestedArray> {
    const d = await this.data();
    const flat: Array<number | boolean> = this.dtype === 'bool' ? Array.from(d, (v) => v !== 0) : Array.from(d);
    const build = (dim: number, at: number): NestedArray => {
      if (dim === this.ndim) return flat[at]!;
      const stride = this.node.shape.slice(dim + 1).reduce((a, b) => a * b, 1);
      return Array.from({ length: this.node.shape[dim]! }, (_, i) => build(dim + 1, at + i * stride));
    };
    return build(0, 0);
  }

  /** The value of a 0-d or one-element array (bool as 0 or 1). */
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

  /** @internal Is this handle its node's holder (the one whose revoke frees it)? */
  get isHolder(): boolean {
    return !this.revoked && this.token !== null && this.node.holder === this.token;
  }

  get isDisposed(): boolean {
    return this.revoked !== null || this.node.dead !== null;
  }

  /** `NDArray(shape=[2, 3], float32)`: the shape and dtype, not the values (reading them is asynchronous). */
  toString(): string {
    return `NDArray(shape=[${this.shape.join(', ')}], ${this.dtype})`;
  }
}

/** A number (or boolean), or nested JS arrays of them (the shape of toNested()). */
export type NestedArray = number | boolean | NestedArray[];

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
