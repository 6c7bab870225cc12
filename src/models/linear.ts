// The reference problem, written the JAX way: slice the flat parameter
// vector inside the loss and differentiate with grad (argnums 0). No
// hand-derived formula anywhere.
//
//   def loss(p, x):
//     d = x.shape[1]
//     y_hat = x @ p[:d] + p[d:d+1]
//     return jnp.sum(y_hat ** 2)
//   grad_over_flat_params = jax.grad(loss)

import { ShapeError, ValueError } from '../errors';
import { NDArray } from '../array/ndarray';
import { add, array, slice, square, sum } from '../array/ops';
import { matmul } from '../array/linalg';
import { grad } from '../autodiff/grad';

/** x as an NDArray, nested rows, or flat data with its shape. */
export type MatrixInput = NDArray | number[][] | { data: Float32Array | ArrayLike<number>; shape: readonly [number, number] };
/** A vector as an NDArray, a JS array or a Float32Array. */
export type VectorInput = NDArray | ArrayLike<number>;

/** The reference problem's loss: sum((x @ w + b)^2) with flatParams = [w; b]. */
export function linearLoss(p: NDArray, x: NDArray): NDArray {
  const d = x.shape[1]!;
  const w = slice(p, [0], [d]);
  const b = slice(p, [d], [d + 1]);
  const yHat = add(matmul(x, w), b);
  return sum(square(yHat));
}

const gradLinear = grad(linearLoss);

function toMatrix(x: MatrixInput): NDArray {
  if (x instanceof NDArray) return x;
  if (Array.isArray(x)) return array(x);
  if (x && typeof x === 'object' && 'data' in x && 'shape' in x) return array(x.data, x.shape);
  throw new ValueError('gradOverFlatParams: x must be an NDArray, nested rows, or { data, shape }');
}

/** d loss / d flatParams for loss = sum((x @ w + b)^2), flatParams = [w (d values), b]; shape (d+1,). */
export function gradOverFlatParams(flatParams: VectorInput, x: MatrixInput): NDArray {
  const xs = toMatrix(x);
  if (xs.ndim !== 2) throw new ShapeError(`gradOverFlatParams: x must be 2-D (N, d); got shape [${xs.shape.join(', ')}]`);
  const p = flatParams instanceof NDArray ? flatParams : array(flatParams as ArrayLike<number>);
  const d = xs.shape[1]!;
  if (p.ndim !== 1 || p.shape[0] !== d + 1) {
    throw new ShapeError(
      `gradOverFlatParams: flatParams must have shape (d+1,) = (${d + 1},) for x of shape [${xs.shape.join(', ')}]; got shape [${p.shape.join(', ')}]`,
    );
  }
  return gradLinear(p, xs);
}
