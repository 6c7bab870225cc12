// The demo's two problems, free of DOM code: a linear model over flat
// parameters (the reference problem with targets) and a pytree MLP.

import {
  NDArray,
  add,
  applyUpdates,
  array,
  matmul,
  mean,
  randomNormal,
  scale,
  slice,
  square,
  sub,
  tanh,
  valueAndGrad,
  type GradientTransformation,
} from '../index';

// ---------------------------------------------------------------- linear model, flat params

// #region linear
/** mean((x @ p[:d] + p[d] - y)²): slice the flat vector inside the loss, as in JAX. */
export function linearMse(p: NDArray, x: NDArray, y: NDArray): NDArray {
  const d = x.shape[1]!;
  const w = slice(p, [0], [d]);
  const b = slice(p, [d], [d + 1]);
  return mean(square(sub(add(matmul(x, w), b), y)));
}

/** [loss, d loss / d p]: argnums 0 is p; x and y are data. */
export const lossAndGrad = valueAndGrad(linearMse, { argnums: 0 });

/** One step of gradient descent, p ← p − lr·∇p. */
export function gdStep(p: NDArray, x: NDArray, y: NDArray, lr: number) {
  const [loss, g] = lossAndGrad(p, x, y);
  return { loss, g, next: sub(p, scale(g, lr)) };
}
// #endregion

export const W_TRUE = [2, -1, 0.5, 3];
export const B_TRUE = -1.5;

/** N samples of y = x @ w_true + b_true + 0.1·noise, x ~ N(0, 1). */
export function linearData(n = 256, seed = 7): { x: NDArray; y: NDArray } {
  const x = randomNormal([n, W_TRUE.length], seed);
  const y = add(add(matmul(x, array(W_TRUE)), B_TRUE), randomNormal([n], seed + 1, 0, 0.1));
  return { x, y };
}

// ---------------------------------------------------------------- MLP over a pytree

export interface Mlp {
  layer1: { w: NDArray; b: NDArray };
  layer2: { w: NDArray; b: NDArray };
}

// #region mlp
/** x (N,1) -> tanh(x W1 + b1) W2 + b2, shape (N,1). */
export function mlp(p: Mlp, x: NDArray): NDArray {
  const h = tanh(add(matmul(x, p.layer1.w), p.layer1.b));
  return add(matmul(h, p.layer2.w), p.layer2.b);
}

/** MSE with the predictions as aux, so the page can redraw the fit without a second pass. */
export function mlpLoss(p: Mlp, x: NDArray, y: NDArray): [NDArray, NDArray] {
  const pred = mlp(p, x);
  return [mean(square(sub(pred, y))), pred];
}

const mlpLossAndGrad = valueAndGrad(mlpLoss, { hasAux: true });

/** One optimizer step on the whole tree. update() consumes grads and state, applyUpdates the old params. */
export async function trainStep(
  opt: GradientTransformation<unknown[]>,
  params: Mlp,
  state: unknown[],
  x: NDArray,
  y: NDArray,
  inspect?: (params: Mlp, grads: Mlp) => Promise<void>,
) {
  const [[loss, pred], grads] = mlpLossAndGrad(params, x, y);
  if (inspect) await inspect(params, grads); // read values before they are consumed
  const [updates, nextState] = opt.update(grads, state, params);
  return { loss, pred, params: applyUpdates(params, updates), state: nextState };
}
// #endregion

export function initMlp(width: number, seed: number): Mlp {
  return {
    layer1: { w: randomNormal([1, width], seed, 0, 1), b: randomNormal([width], seed + 1, 0, 1) },
    layer2: { w: scale(randomNormal([width, 1], seed + 2), 1 / Math.sqrt(width)), b: array([0]) },
  };
}

/** A noisy sine on sorted x in [-π, π] (sorted so the fit draws as a line). Host arrays, too, for plotting. */
export function curveData(n = 256, seed = 1, noise = 0.05): { xs: Float64Array; ys: Float64Array; x: NDArray; y: NDArray } {
  let s = seed >>> 0;
  const rand = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const xs = Float64Array.from({ length: n }, () => -Math.PI + 2 * Math.PI * rand()).sort();
  const ys = xs.map((v) => Math.sin(v) + noise * gauss());
  return { xs, ys, x: array(Float32Array.from(xs), [n, 1]), y: array(Float32Array.from(ys), [n, 1]) };
}
