// The training loop both models share, one step at a time so a page can draw
// between steps: Adam on minibatches of arrays that live on the GPU, each
// epoch in the order of a fresh random.permutation. A minibatch is a take of
// the rows it names, so a step uploads nothing.

import { NDArray } from '../array/ndarray';
import { slice } from '../array/ops';
import { take } from '../array/indexing';
import { permutation, split } from '../random/random';
import { valueAndGrad } from '../autodiff/grad';
import { adam, applyUpdates, type GradientTransformation, type LearningRate } from '../optim/optimizers';
import { leaves } from '../tree/tree';

export interface TrainerOptions<P> {
  init: P;
  /** The scalar loss of params and one minibatch: the rows of each data array, in order. */
  loss: (p: P, ...batch: NDArray[]) => NDArray;
  /** The dataset: arrays with the same leading (example) axis. */
  data: NDArray[];
  batch: number;
  learningRate: LearningRate;
  /** Where the shuffles come from. */
  key: NDArray;
}

/** Adam over shuffled minibatches (the last partial batch of an epoch dropped). */
export class MinibatchTrainer<P> {
  params: P;
  /** Steps taken, and full epochs finished. */
  steps = 0;
  epochs = 0;
  readonly stepsPerEpoch: number;
  private state: unknown[];
  private readonly opt: GradientTransformation<unknown[]>;
  private readonly lossAndGrad: (p: P, ...batch: NDArray[]) => [NDArray, P];
  private key: NDArray;
  private order: NDArray | null = null;

  constructor(private readonly o: TrainerOptions<P>) {
    const n = o.data[0]!.shape[0]!;
    this.stepsPerEpoch = Math.floor(n / o.batch);
    if (this.stepsPerEpoch === 0) throw new RangeError(`MinibatchTrainer: ${n} examples make no batch of ${o.batch}`);
    this.params = o.init;
    this.opt = adam(o.learningRate);
    this.state = this.opt.init(this.params);
    this.lossAndGrad = valueAndGrad(o.loss) as never;
    this.key = o.key;
  }

  /** One Adam step on the next minibatch; returns its loss (not read: reading is the caller's choice). */
  step(): NDArray {
    const at = (this.steps % this.stepsPerEpoch) * this.o.batch;
    if (at === 0) {
      const [next, sub] = split(this.key);
      // Give back what this trainer made as soon as pending work has read it: nothing waits for the GC.
      if (this.key !== this.o.key) this.key.dispose();
      this.order?.dispose();
      this.key = next!;
      this.order = permutation(sub!, this.o.data[0]!.shape[0]!);
      sub!.dispose();
    }
    const rows = slice(this.order!, [at], [at + this.o.batch]);
    const [loss, grads] = this.lossAndGrad(this.params, ...this.o.data.map((d) => take(d, rows, 0)));
    const [updates, state] = this.opt.update(grads, this.state, this.params);
    this.state = state;
    this.params = applyUpdates(this.params, updates) as P;
    this.steps++;
    if (this.steps % this.stepsPerEpoch === 0) this.epochs++;
    return loss;
  }

  /** Free the params, the optimizer state and the shuffle (not the data, which is the caller's). */
  dispose(): void {
    for (const l of leaves([this.params, this.state])) if (l instanceof NDArray) l.dispose();
    this.order?.dispose();
    if (this.key !== this.o.key) this.key.dispose();
  }
}
