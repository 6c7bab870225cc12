// Public API.
export * from './errors';
export { NDArray, type NestedArray } from './array/ndarray';
export type { DType, ArrayData } from './array/dtype';
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
  equal,
  notEqual,
  less,
  lessEqual,
  greater,
  greaterEqual,
  logicalAnd,
  logicalOr,
  logicalXor,
  logicalNot,
  isFinite,
  where,
  clip,
  astype,
  copy,
  neg,
  square,
  sqrt,
  exp,
  log,
  log1p,
  erf,
  erfInv,
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
  type ArrayOrScalar,
  type ArrayOptions,
} from './array/ops';
export { matmul, dot } from './array/linalg';
export { concatenate, expandDims, squeeze, stack, split, swapaxes, moveaxis } from './array/shape-ops';
export { max, min, argmax, argmin, logsumexp } from './array/reductions';
export { take, takeAlongAxis } from './array/indexing';
export { conv2d, maxPool, avgPool, type ConvOptions, type Padding } from './array/conv';
export { softmax, logSoftmax, oneHot, gelu, silu, softplus, logSigmoid, standardize, variance, leakyRelu } from './nn/nn';
export { softmaxCrossEntropy, softmaxCrossEntropyWithIntegerLabels } from './nn/losses';
/** jax.nn's functions (and Optax's classification losses) as one namespace: nn.softmax, nn.gelu, ... */
export * as nn from './nn/index';
export { saveSafetensors, loadSafetensors, type ArrayTree } from './io/safetensors';
/** jax.random's keys and samplers: random.key(seed), random.split, random.uniform, random.normal, ... */
export * as random from './random/index';
export { memoryStats, flushPool } from './gpu/runtime';
export { setKernelPolicy, logDispatches, profileKernels, timeSubmissions, setDebugNans, setHostEvaluation, type KernelPolicy } from './config';
export { evaluateArrays as evaluate, MAX_IN_FLIGHT } from './exec/dispatch';
export { PENDING_BOUND } from './array/node';
export type { KernelTiming } from './gpu/timing';
export { init, reinit, deviceInfo, type InitOptions, type DeviceInfo } from './gpu/device';
export type { MemoryStats } from './gpu/pool';
export { tree, flatten, unflatten, leaves, structure, leavesWithPath, assertSameStructure, TreeDef, type MapLeaves } from './tree/tree';
export { grad, valueAndGrad, vjp, type GradOptions } from './autodiff/grad';
export { jit, JIT_CACHE_SIZE, type JitOptions, type Jitted, type JitArg } from './jit/jit';
export { foriLoop, scan, LOOP_CHUNK_NODES } from './jit/loops';
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
  cosineDecaySchedule,
  type GradientTransformation,
  type LearningRate,
  type Schedule,
  type AdamOptions,
  type AdamState,
} from './optim/optimizers';
