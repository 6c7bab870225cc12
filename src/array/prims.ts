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
  greater_equal: None;
  // elementwise, unary
  neg: None;
  square: None;
  sqrt: None;
  exp: None;
  log: None;
  sin: None;
  cos: None;
  tanh: None;
  relu: None;
  logistic: None;
  abs: None;
  sign: None;
  scale: { c: number };
  add_scalar: { c: number };
  pow_scalar: { c: number };
  broadcast_to: None;
  // elementwise, no inputs
  fill: { value: number };
  arange: { start: number; step: number };
  random_uniform: { seed: number; low: number; high: number };
  random_normal: { seed: number; mean: number; std: number };
  // no computation
  constant: None;
  reshape: None;
  identity: None;
  stop_gradient: None;
  /** Byte offset into a packed multi-output buffer. */
  view: { offset: number };
  // data movement
  transpose: { perm: number[] };
  slice: { starts: number[] };
  pad: { starts: number[] };
  // reductions and contractions
  /** A contiguous run of axes. */
  sum: { axes: number[] };
  matmul: { transA: boolean; transB: boolean };
  // optimizers
  adam: { b1: number; b2: number; eps: number; epsRoot: number; bc1: number; bc2: number; scale: number; n: number; seg: number };
}

export type Prim = keyof PrimParams;
