// 2-D convolution and pooling over NHWC arrays: the subset of JAX's
// lax.conv_general_dilated (NHWC input, HWIO kernel, strides, 'SAME' or
// 'VALID' padding) and reduce_window (max and average pools) that image
// models use. A convolution is im2col (each output position's window as a
// row, shaders/conv.wgsl) times the kernel as a matrix, so it runs on the
// matmul kernels; its input VJP is col2im, its kernel VJP a matmul.

import { ShapeError, ValueError } from '../errors';
import type { NDArray } from './ndarray';
import type { Window } from './prims';
import { astype, bind, mean, need, reshape } from './ops';
import { matmul } from './linalg';
import { argmax } from './reductions';
import { takeAlongAxis } from './indexing';

/** 'SAME' (output ceil(size / stride), zero padding split as TF and JAX do: the extra one after) or 'VALID' (no padding). */
export type Padding = 'SAME' | 'VALID';

const fmt = (s: readonly number[]) => `[${s.join(', ')}]`;

function pair(v: number | readonly number[], what: string, op: string): [number, number] {
  const [a, b] = typeof v === 'number' ? [v, v] : v;
  if (!Number.isInteger(a) || !Number.isInteger(b) || a! < 1 || b! < 1)
    throw new ValueError(`${op}: ${what} must be positive integers, got ${String(v)}`);
  return [a!, b!];
}

/** The window of a (KH, KW) kernel with strides over an (H, W) image. */
function windowOf(H: number, W: number, kh: number, kw: number, sh: number, sw: number, padding: Padding, pad: number, op: string): Window {
  if (padding !== 'SAME' && padding !== 'VALID') throw new ValueError(`${op}: padding must be 'SAME' or 'VALID', got ${String(padding)}`);
  const same = padding === 'SAME';
  const oh = same ? Math.ceil(H / sh) : Math.floor((H - kh) / sh) + 1;
  const ow = same ? Math.ceil(W / sw) : Math.floor((W - kw) / sw) + 1;
  if (oh < 1 || ow < 1) throw new ShapeError(`${op}: a ${kh}x${kw} window does not fit in a ${H}x${W} image with 'VALID' padding`);
  const padTop = same ? Math.floor(Math.max((oh - 1) * sh + kh - H, 0) / 2) : 0;
  const padLeft = same ? Math.floor(Math.max((ow - 1) * sw + kw - W, 0) / 2) : 0;
  return { kh, kw, sh, sw, padTop, padLeft, oh, ow, pad };
}

function patches(x: NDArray, w: Window): NDArray {
  const [N, , , C] = x.shape as [number, number, number, number];
  return bind('im2col', [x], w, [N, w.oh, w.ow, w.kh * w.kw * C]);
}

/** @internal im2col's VJP: the cotangent of the patches summed back into an image of `shape`. */
export function col2im(g: NDArray, w: Window, shape: readonly number[]): NDArray {
  return bind('col2im', [g], w, shape);
}

function image(x: NDArray, op: string): [number, number, number, number] {
  need(x, op, 'x');
  if (x.ndim !== 4) throw new ShapeError(`${op}: x must be NHWC (rank 4), got ${fmt(x.shape)}`);
  return x.shape as [number, number, number, number];
}

/** Options of conv2d and the pools: strides (one number or [sh, sw]) and padding. */
export interface ConvOptions {
  strides?: number | [number, number];
  padding?: Padding;
}

/**
 * 2-D convolution (cross-correlation, as in JAX and TF) of x (N, H, W, Cin)
 * with kernel w (KH, KW, Cin, Cout): (N, OH, OW, Cout). Differentiable in both.
 */
export function conv2d(x: NDArray, w: NDArray, { strides = 1, padding = 'SAME' }: ConvOptions = {}): NDArray {
  const [N, H, W, C] = image(x, 'conv2d');
  need(w, 'conv2d', 'w');
  if (w.ndim !== 4 || w.shape[2] !== C)
    throw new ShapeError(`conv2d: kernel ${fmt(w.shape)} must be HWIO with I = ${C} (the input's channels, x ${fmt(x.shape)})`);
  const [kh, kw, , co] = w.shape as [number, number, number, number];
  const [sh, sw] = pair(strides, 'strides', 'conv2d');
  const win = windowOf(H, W, kh, kw, sh, sw, padding, 0, 'conv2d');
  const cols = patches(astype(x, 'float32'), win);
  const y = matmul(reshape(cols, [N * win.oh * win.ow, kh * kw * C]), reshape(astype(w, 'float32'), [kh * kw * C, co]));
  return reshape(y, [N, win.oh, win.ow, co]);
}

function pool(kind: 'max' | 'avg', x: NDArray, window: number | [number, number], opts: ConvOptions): NDArray {
  const op = kind === 'max' ? 'maxPool' : 'avgPool';
  const [N, H, W, C] = image(x, op);
  const [kh, kw] = pair(window, 'window', op);
  const [sh, sw] = pair(opts.strides ?? window, 'strides', op);
  const win = windowOf(H, W, kh, kw, sh, sw, opts.padding ?? 'VALID', kind === 'max' ? -Infinity : 0, op);
  // The max pool reads its windows in place (one kernel each way); the average is a mean of patches.
  if (kind === 'max') return bind('max_pool', [astype(x, 'float32')], win, [N, win.oh, win.ow, C]);
  return mean(reshape(patches(astype(x, 'float32'), win), [N, win.oh, win.ow, kh * kw, C]), 3);
}

/**
 * @internal The VJP of max_pool_grad in its cotangent: for each window of x,
 * the entry of `gg` (an image like x) at the window's first maximum. Only
 * second-order derivatives use it, so it is built from patches and argmax.
 */
export function maxPoolGather(gg: NDArray, x: NDArray, w: Window, shape: readonly number[]): NDArray {
  const [N, , , C] = x.shape as [number, number, number, number];
  const windows = [N, w.oh, w.ow, w.kh * w.kw, C];
  const choice = argmax(reshape(patches(x, w), windows), 3, true);
  const picked = takeAlongAxis(reshape(patches(gg, { ...w, pad: 0 }), windows), choice, 3);
  return reshape(picked, shape);
}

/**
 * The maximum over each window (reduce_window with max): window size,
 * strides (default: the window) and padding (default 'VALID'; 'SAME' pads with -Inf).
 * The gradient goes to the first maximum of each window (ties do not share
 * it, unlike max's), as JAX's select_and_scatter_add gives it.
 */
export const maxPool = (x: NDArray, window: number | [number, number], opts: ConvOptions = {}) => pool('max', x, window, opts);
/** The mean over each window; with 'SAME' padding, the padded zeros count in the mean (as lax.reduce_window's sum divided by the window size). */
export const avgPool = (x: NDArray, window: number | [number, number], opts: ConvOptions = {}) => pool('avg', x, window, opts);
