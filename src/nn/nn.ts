// jax.nn's functions, composed from the ops (each fuses into few kernels):
// activations, softmax and its log, one-hot encoding, standardize (the core
// of a layer norm). Exported at the top level and grouped as `nn`.

import type { NDArray } from '../array/ndarray';
import {
  abs,
  add,
  arange,
  astype,
  div,
  equal,
  erf,
  exp,
  log1p,
  mean,
  mul,
  need,
  neg,
  relu as reluOp,
  scale,
  sigmoid as sigmoidOp,
  sqrt,
  square,
  stopGradient,
  sub,
  sum,
  tanh,
  addScalar,
  maximum,
  where,
  isFinite,
  log,
} from '../array/ops';
import { max } from '../array/reductions';
import { expandDims } from '../array/shape-ops';
import { ValueError } from '../errors';

/** exp(x) / sum(exp(x)) along `axis` (the last by default), shifted by the maximum so large logits do not overflow. */
export function softmax(x: NDArray, axis: number | readonly number[] = -1): NDArray {
  need(x, 'softmax');
  const e = exp(sub(x, stopGradient(max(x, axis, true))));
  return div(e, sum(e, axis, true));
}

/**
 * x - logsumexp(x) along `axis` (the last by default): log-probabilities,
 * exact where softmax would underflow. Computed as JAX does, from the
 * max-shifted logits, so the shift never absorbs the log-sum (logits near 3e38).
 */
export function logSoftmax(x: NDArray, axis: number | readonly number[] = -1): NDArray {
  need(x, 'logSoftmax');
  const m = stopGradient(max(x, axis, true));
  const shifted = sub(x, where(isFinite(m), m, 0));
  return sub(shifted, log(sum(exp(shifted), axis, true)));
}

/** float32 one-hot vectors of length `numClasses` for integer labels: shape labels.shape + [numClasses]; an out-of-range label gives zeros. */
export function oneHot(labels: NDArray, numClasses: number): NDArray {
  need(labels, 'oneHot');
  if (!Number.isInteger(numClasses) || numClasses < 0) throw new ValueError(`oneHot: numClasses must be a non-negative integer, got ${numClasses}`);
  return astype(equal(expandDims(labels, -1), arange(0, numClasses, 1, 'int32')), 'float32');
}

/**
 * The Gaussian error linear unit. `approximate` (the default, as in JAX):
 * 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))); else exact, 0.5 x (1 + erf(x / sqrt 2)).
 */
export function gelu(x: NDArray, approximate = true): NDArray {
  need(x, 'gelu');
  if (!approximate) return mul(scale(x, 0.5), addScalar(erf(scale(x, Math.SQRT1_2)), 1));
  const inner = scale(add(x, scale(mul(square(x), x), 0.044715)), Math.sqrt(2 / Math.PI));
  return mul(scale(x, 0.5), addScalar(tanh(inner), 1));
}

/** x * sigmoid(x) (also called swish). */
export const silu = (x: NDArray) => mul(need(x, 'silu'), sigmoidOp(x));

/** log(1 + exp(x)), as max(x, 0) + log1p(exp(-|x|)): no overflow for large x, no lost digits for very negative x. */
export function softplus(x: NDArray): NDArray {
  need(x, 'softplus');
  return add(reluOp(x), log1p(exp(neg(abs(x)))));
}

/** log(sigmoid(x)) = -softplus(-x), stable at both ends. */
export const logSigmoid = (x: NDArray) => neg(softplus(neg(need(x, 'logSigmoid'))));

/** relu(x) = max(x, 0). */
export const relu = reluOp;
/** sigmoid(x) = 1 / (1 + exp(-x)). */
export const sigmoid = sigmoidOp;

/** The mean of squared deviations over `axes` (all by default): jnp.var (named so because `var` is a JS keyword). */
export function variance(x: NDArray, axes?: number | readonly number[], keepdims = false): NDArray {
  need(x, 'variance');
  const xf = astype(x, 'float32');
  return mean(square(sub(xf, mean(xf, axes, true))), axes, keepdims);
}

/** (x - mean) / sqrt(variance + epsilon) over `axis` (the last by default): a layer norm before its scale and offset. */
export function standardize(x: NDArray, axis: number | readonly number[] = -1, epsilon = 1e-5): NDArray {
  need(x, 'standardize');
  const xf = astype(x, 'float32');
  const centered = sub(xf, mean(xf, axis, true));
  return div(centered, sqrt(addScalar(mean(square(centered), axis, true), epsilon)));
}

/** A leaky relu: x where x >= 0, else slope * x. */
export const leakyRelu = (x: NDArray, slope = 0.01) => maximum(need(x, 'leakyRelu'), scale(x, slope));
