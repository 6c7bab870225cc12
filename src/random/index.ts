// The `random` namespace, as jax.random.

export { key, split, foldIn, bits, uniform, normal, bernoulli, categorical, permutation, randint } from './random';
