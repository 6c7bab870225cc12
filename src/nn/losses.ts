// Optax's classification losses, per example (reduce them with mean).

import { DTypeError, ShapeError } from '../errors';
import type { NDArray } from '../array/ndarray';
import { mul, need, neg, sum } from '../array/ops';
import { takeAlongAxis } from '../array/indexing';
import { expandDims, squeeze } from '../array/shape-ops';
import { logSoftmax } from './nn';

const fmt = (s: readonly number[]) => `[${s.join(', ')}]`;

/** -sum(labels * logSoftmax(logits)) over the last axis: labels are probabilities of logits' shape (one-hot or smoothed). */
export function softmaxCrossEntropy(logits: NDArray, labels: NDArray): NDArray {
  need(logits, 'softmaxCrossEntropy', 'logits');
  need(labels, 'softmaxCrossEntropy', 'labels');
  if (logits.shape.join() !== labels.shape.join()) {
    throw new ShapeError(`softmaxCrossEntropy: labels ${fmt(labels.shape)} must have the shape of logits ${fmt(logits.shape)}`);
  }
  return neg(sum(mul(labels, logSoftmax(logits)), -1));
}

/**
 * -logSoftmax(logits)[label] per example: logits (..., C), int32 labels
 * (...). Picks each row's label with takeAlongAxis, so no one-hot matrix is made.
 */
export function softmaxCrossEntropyWithIntegerLabels(logits: NDArray, labels: NDArray): NDArray {
  need(logits, 'softmaxCrossEntropyWithIntegerLabels', 'logits');
  need(labels, 'softmaxCrossEntropyWithIntegerLabels', 'labels');
  if (labels.dtype !== 'int32') throw new DTypeError(`softmaxCrossEntropyWithIntegerLabels: labels must be int32, got ${labels.dtype}`);
  if (logits.ndim === 0 || labels.shape.join() !== logits.shape.slice(0, -1).join()) {
    throw new ShapeError(
      `softmaxCrossEntropyWithIntegerLabels: labels ${fmt(labels.shape)} must be logits ${fmt(logits.shape)} without the last axis`,
    );
  }
  const picked = takeAlongAxis(logSoftmax(logits), expandDims(labels, -1), -1);
  return neg(squeeze(picked, -1));
}
