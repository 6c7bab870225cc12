// The `nn` namespace, as jax.nn groups them (the losses are Optax's).

export { softmax, logSoftmax, oneHot, gelu, silu, softplus, logSigmoid, relu, sigmoid, standardize, variance, leakyRelu } from './nn';
export { softmaxCrossEntropy, softmaxCrossEntropyWithIntegerLabels } from './losses';
