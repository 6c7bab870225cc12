// Shape ops built from the primitives (reshape, transpose, slice, concatenate):
// joining, splitting and re-arranging axes. Axes may be negative (counted
// from the end), as in JAX.

import { ShapeError, ValueError } from '../errors';
import type { NDArray } from './ndarray';
import { astype, bind, need, normAxes, reshape, slice, transpose } from './ops';
import { promote } from './dtype';

const fmt = (s: readonly number[]) => `[${s.join(', ')}]`;

/** One axis of an array of rank ndim (negative counts from the end). */
function axisOf(axis: number, ndim: number, op: string): number {
  return normAxes(axis, ndim, op)[0]!;
}

/** Arrays joined along `axis` (promoted to a common dtype). */
export function concatenate(xs: NDArray[], axis = 0): NDArray {
  if (!Array.isArray(xs)) throw new ValueError(`concatenate: expected an array of NDArrays; got ${xs === null ? 'null' : typeof xs}`);
  xs.forEach((x, i) => need(x, 'concatenate', `element ${i}`));
  if (xs.length === 0) throw new ValueError('concatenate: needs at least one array');
  const nd = xs[0]!.ndim;
  if (nd === 0) throw new ShapeError('concatenate: 0-d arrays cannot be concatenated (stack them)');
  const ax = axisOf(axis, nd, 'concatenate');
  const total = xs.reduce((n, x) => {
    if (x.ndim !== nd || x.shape.some((d, i) => i !== ax && d !== xs[0]!.shape[i])) {
      throw new ShapeError(`concatenate: shape ${fmt(x.shape)} does not match ${fmt(xs[0]!.shape)} off axis ${ax}`);
    }
    return n + x.shape[ax]!;
  }, 0);
  const dtype = xs.map((x) => x.dtype).reduce(promote);
  if (xs.length === 1) return astype(xs[0]!, dtype);
  const shape = xs[0]!.shape.map((d, i) => (i === ax ? total : d));
  return bind(
    'concatenate',
    xs.map((x) => astype(x, dtype)),
    { axis: ax },
    shape,
    dtype,
  );
}

/** x with a new axis of size 1 at `axis` (or at each of several axes). */
export function expandDims(x: NDArray, axis: number | readonly number[]): NDArray {
  need(x, 'expandDims');
  const list = typeof axis === 'number' ? [axis] : [...axis];
  const nd = x.ndim + list.length;
  const at = normAxes(list, nd, 'expandDims');
  const shape: number[] = [];
  let k = 0;
  for (let i = 0; i < nd; i++) shape.push(at.includes(i) ? 1 : x.shape[k++]!);
  return reshape(x, shape);
}

/** x without its size-1 axes (all of them, or those named; naming an axis of another size is a ShapeError). */
export function squeeze(x: NDArray, axis?: number | readonly number[]): NDArray {
  need(x, 'squeeze');
  const ax = axis === undefined ? x.shape.flatMap((d, i) => (d === 1 ? [i] : [])) : normAxes(axis, x.ndim, 'squeeze');
  for (const a of ax) if (x.shape[a] !== 1) throw new ShapeError(`squeeze: axis ${a} of shape ${fmt(x.shape)} has size ${x.shape[a]}, not 1`);
  return reshape(
    x,
    x.shape.filter((_, i) => !ax.includes(i)),
  );
}

/** Arrays of one shape stacked along a new axis. */
export function stack(xs: NDArray[], axis = 0): NDArray {
  if (!Array.isArray(xs) || xs.length === 0) throw new ValueError('stack: needs a non-empty array of NDArrays');
  xs.forEach((x, i) => need(x, 'stack', `element ${i}`));
  const shape = xs[0]!.shape;
  for (const x of xs)
    if (x.ndim !== shape.length || x.shape.some((d, i) => d !== shape[i]))
      throw new ShapeError(`stack: shapes ${fmt(shape)} and ${fmt(x.shape)} differ`);
  const ax = axisOf(axis, shape.length + 1, 'stack');
  return concatenate(
    xs.map((x) => expandDims(x, ax)),
    ax,
  );
}

/**
 * x split along `axis`: into `sections` equal parts (a number that divides
 * the axis), or at the given indices (NumPy's split).
 */
export function split(x: NDArray, sections: number | readonly number[], axis = 0): NDArray[] {
  need(x, 'split');
  const ax = axisOf(axis, x.ndim, 'split');
  const dim = x.shape[ax]!;
  let cuts: number[];
  if (typeof sections === 'number') {
    if (!Number.isInteger(sections) || sections <= 0 || dim % sections !== 0) {
      throw new ValueError(`split: ${sections} sections do not divide axis ${ax} of size ${dim} equally`);
    }
    cuts = Array.from({ length: sections - 1 }, (_, i) => ((i + 1) * dim) / sections);
  } else cuts = sections.map((c) => Math.min(Math.max(c < 0 ? c + dim : c, 0), dim));
  const bounds = [0, ...cuts, dim];
  return bounds.slice(1).map((end, i) => {
    const start = Math.min(bounds[i]!, end);
    const starts = x.shape.map((_, d) => (d === ax ? start : 0));
    const stops = x.shape.map((s, d) => (d === ax ? end : s));
    return slice(x, starts, stops);
  });
}

/** x with axes a and b exchanged. */
export function swapaxes(x: NDArray, a: number, b: number): NDArray {
  need(x, 'swapaxes');
  const i = axisOf(a, x.ndim, 'swapaxes');
  const j = axisOf(b, x.ndim, 'swapaxes');
  const perm = [...x.shape.keys()];
  [perm[i], perm[j]] = [perm[j]!, perm[i]!];
  return transpose(x, perm);
}

/** x with axis `from` moved to position `to`. */
export function moveaxis(x: NDArray, from: number, to: number): NDArray {
  need(x, 'moveaxis');
  const i = axisOf(from, x.ndim, 'moveaxis');
  const j = axisOf(to, x.ndim, 'moveaxis');
  const perm = [...x.shape.keys()].filter((k) => k !== i);
  perm.splice(j, 0, i);
  return transpose(x, perm);
}
