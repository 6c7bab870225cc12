// Public API.
export * from './errors';
export { NDArray, type NestedArray } from './array/ndarray';
export {
  array,
  asArray,
  zeros,
  ones,
  full,
  zerosLike,
  onesLike,
  arange,
  randomUniform,
  randomNormal,
  add,
  sub,
  mul,
  div,
  maximum,
  minimum,
  greaterEqual,
  neg,
  square,
  sqrt,
  exp,
  log,
  sin,
  cos,
  tanh,
  relu,
  abs,
  sign,
  sigmoid,
  scale,
  addScalar,
  pow,
  stopGradient,
  broadcastTo,
  broadcastShapes,
  sum,
  mean,
  sumTo,
  reshape,
  transpose,
  slice,
  pad,
  concatenate,
  matmul,
  dot,
  type ArrayOrScalar,
} from './array/ops';
export { memoryStats, flushPool } from './gpu/runtime';
export { setKernelPolicy, logDispatches, profileKernels, timeSubmissions, setDebugNans, setHostEvaluation, type KernelPolicy } from './config';
export { evaluateArrays as evaluate, MAX_IN_FLIGHT } from './exec/dispatch';
export { PENDING_BOUND } from './array/node';
export type { KernelTiming } from './gpu/timing';
export { init, reinit, deviceInfo, type InitOptions, type DeviceInfo } from './gpu/device';
export type { MemoryStats } from './gpu/pool';
export { tree, flatten, unflatten, leaves, structure, leavesWithPath, assertSameStructure, TreeDef, type MapLeaves } from './tree/tree';
export { grad, valueAndGrad, vjp, type GradOptions } from './autodiff/grad';
export { checkGrads, GradCheckError, type CheckGradsOptions } from './autodiff/check';
export { gradOverFlatParams, linearLoss, type MatrixInput, type VectorInput } from './models/linear';
export {
  adam,
  adamw,
  sgd,
  chain,
  clipByGlobalNorm,
  scaleByAdam,
  scaleByLearningRate,
  scaleBy,
  traceMomentum,
  addDecayedWeights,
  applyUpdates,
  type GradientTransformation,
  type LearningRate,
  type Schedule,
  type AdamOptions,
  type AdamState,
} from './optim/optimizers';
