// The primitives' names and each one's params: the graph (node.ts), the op
// constructors (ops.ts) and the rules table (primitives.ts) all take their
// types from here, so an unknown primitive, a primitive without rules, or a
// misspelt or missing param is a compile error.

type None = Record<string, never>;

export interface PrimParams {
  // elementwise, binary (NumPy broadcasting)
  add: None;
  sub: None;
  mul: None;
  div: None;
  maximum: None;
  // comparisons and logic (bool results; bool inputs of the logical ones)
  equal: None;
  not_equal: None;
  less: None;
  less_equal: None;
  greater: None;
  greater_equal: None;
  logical_and: None;
  logical_or: None;
  // elementwise, ternary: cond ? x : y
  select: None;
  // elementwise, unary
  neg: None;
  square: None;
  sqrt: None;
  exp: None;
  log: None;
  log1p: None;
  erf: None;
  erf_inv: None;
  sin: None;
  cos: None;
  tanh: None;
  relu: None;
  logistic: None;
  abs: None;
  sign: None;
  logical_not: None;
  is_finite: None;
  /** To the node's dtype from its input's. */
  convert: None;
  scale: { c: number };
  add_scalar: { c: number };
  pow_scalar: { c: number };
  broadcast_to: None;
  // elementwise, no inputs
  fill: { value: number };
  arange: { start: number; step: number };
  random_uniform: { seed: number; low: number; high: number };
  random_normal: { seed: number; mean: number; std: number };
  // counter-based random numbers from a key (int32 [2]): Threefry-2x32 (shaders/random.wgsl)
  /** Counter i (for split, i / 2) plus `offset`: foldIn(key, d) is split's row d. */
  threefry: { out: 'bits' | 'split' | 'unit'; offset: number };
  /** A permutation of 0..n-1: the stable ranks of its float input, inverted. */
  permutation_of: None;
  // no computation
  constant: None;
  reshape: None;
  identity: None;
  stop_gradient: None;
  /** Byte offset into a packed multi-output buffer. */
  // data movement
  transpose: { perm: number[] };
  slice: { starts: number[] };
  pad: { starts: number[] };
  /** The inputs (one dtype, equal off the axis) one after another along `axis`. */
  concatenate: { axis: number };
  // reductions and contractions
  /** A contiguous run of axes. */
  sum: { axes: number[]; scale?: number }; // scale: the result times it, in the last pass (a mean)
  max: { axes: number[] };
  min: { axes: number[] };
  /** The first index of the largest (smallest) element along one axis, int32. */
  argmax: { axis: number };
  argmin: { axis: number };
  // indexing along one axis; the _add forms are their VJPs (scatter-add), `size` the axis' length
  take: { axis: number };
  take_along_axis: { axis: number };
  take_add: { axis: number; size: number };
  take_along_axis_add: { axis: number; size: number };
  matmul: { transA: boolean; transB: boolean };
  // convolution as patches (shaders/conv.wgsl): NHWC windows, and the transpose (the VJP)
  im2col: Window;
  col2im: Window;
  // max pool without patches, and its VJP (inputs x and the cotangent)
  max_pool: Window;
  max_pool_grad: Window;
  // optimizers
}

/** A 2-D window over an NHWC array: kernel size, strides, padding before, output size, and the value padding reads. */
export interface Window {
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  padTop: number;
  padLeft: number;
  oh: number;
  ow: number;
  pad: number;
}

export type Prim = keyof PrimParams;
