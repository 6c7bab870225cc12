// Reductions that choose an element: max, min, their argmax/argmin, and the
// max-shifted logsumexp built on max. (sum and mean are in ops.ts, next to
// the broadcasting they undo.)

import { ValueError } from '../errors';
import type { NDArray } from './ndarray';
import { add, astype, bind, exp, isFinite, log, need, normAxes, reshape, stopGradient, sub, sum, transpose, where } from './ops';

/** The reduced axes as one contiguous run: transposed to the end if they are not. */
function asRun(x: NDArray, ax: number[]): [NDArray, number[]] {
  if (ax.every((a, i) => i === 0 || a === ax[i - 1]! + 1)) return [x, ax];
  const perm = [...x.shape.keys()].filter((i) => !ax.includes(i)).concat(ax);
  return [transpose(x, perm), ax.map((_, i) => x.ndim - ax.length + i)];
}

function chooser(prim: 'max' | 'min', x: NDArray, axes: number | readonly number[] | undefined, keepdims: boolean): NDArray {
  need(x, prim);
  const ax = normAxes(axes, x.ndim, prim);
  if (ax.some((a) => x.shape[a] === 0))
    throw new ValueError(`${prim}: cannot reduce over an empty axis (shape [${x.shape.join(', ')}]); it has no identity`);
  const kept = x.shape.map((d, i) => (ax.includes(i) ? 1 : d));
  if (ax.length === 0) return x;
  const [src, run] = asRun(x, ax);
  const out = bind(
    prim,
    [src],
    { axes: run },
    x.shape.filter((_, i) => !ax.includes(i)),
  );
  return keepdims ? reshape(out, kept) : out;
}

/** The largest element over `axes` (all by default); NaN if any is NaN. Ties share the gradient equally, as in JAX. */
export const max = (x: NDArray, axes?: number | readonly number[], keepdims = false) => chooser('max', x, axes, keepdims);
/** The smallest element over `axes` (all by default); NaN if any is NaN. */
export const min = (x: NDArray, axes?: number | readonly number[], keepdims = false) => chooser('min', x, axes, keepdims);

function arg(prim: 'argmax' | 'argmin', x: NDArray, axis: number | undefined, keepdims: boolean): NDArray {
  need(x, prim);
  const src = axis === undefined ? reshape(x, [x.size]) : x;
  if (src.ndim === 0) return arg(prim, reshape(src, [1]), 0, keepdims);
  const ax = normAxes(axis ?? 0, src.ndim, prim)[0]!;
  if (src.shape[ax] === 0) throw new ValueError(`${prim}: axis ${ax} of shape [${x.shape.join(', ')}] is empty`);
  const out = bind(
    prim,
    [src],
    { axis: ax },
    src.shape.filter((_, i) => i !== ax),
    'int32',
  );
  if (!keepdims) return out;
  return reshape(out, axis === undefined ? x.shape.map(() => 1) : src.shape.map((d, i) => (i === ax ? 1 : d)));
}

/** The index (int32) of the largest element along `axis` (of the flattened array by default); the first one on ties, the first NaN if any. */
export const argmax = (x: NDArray, axis?: number, keepdims = false) => arg('argmax', x, axis, keepdims);
/** The index (int32) of the smallest element along `axis`. */
export const argmin = (x: NDArray, axis?: number, keepdims = false) => arg('argmin', x, axis, keepdims);

/**
 * log(sum(exp(x))) over `axes`, shifted by the maximum so it is exact for
 * inputs near ±3e38; a row of -Inf gives -Inf (not NaN), as JAX's does.
 */
export function logsumexp(x: NDArray, axes?: number | readonly number[], keepdims = false): NDArray {
  need(x, 'logsumexp');
  const xf = astype(x, 'float32');
  const ax = normAxes(axes, xf.ndim, 'logsumexp');
  // The shift carries no gradient (it cancels); a non-finite maximum (a row of -Inf) shifts by 0.
  const m = stopGradient(max(xf, ax, true));
  const shift = where(isFinite(m), m, 0);
  const out = add(log(sum(exp(sub(xf, shift)), ax, true)), shift);
  return keepdims
    ? out
    : reshape(
        out,
        xf.shape.filter((_, i) => !ax.includes(i)),
      );
}
