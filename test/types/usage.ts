// Typed usages of the public API that must compile (npm run typecheck runs
// tsc over test/), and @ts-expect-error lines that must fail to. Not run.
import { adam, applyUpdates, array, grad, valueAndGrad, sum, mean, square, type MapLeaves, NDArray, GradGpuError, ShapeError } from '../../src/index';

type P = { w: NDArray; b: NDArray };
const p: P = { w: array([1, 2]), b: array([0.5]) };

// hasAux with f returning a plain array literal: aux keeps its type (it was `never`).
const [[loss, aux], grads] = valueAndGrad((q: P) => [sum(q.w), { mae: mean(square(q.b)), step: 3 }], { hasAux: true })(p);
const lossShape: number[] = loss.shape;
const maeShape: number[] = aux.mae.shape;
const step: number = aux.step;
const gw: NDArray = grads.w;

// ... and with `as const`, and with aux an NDArray itself.
const [, aux2] = grad((q: P) => [sum(q.w), q.b] as const, { hasAux: true })(p);
const aux2Shape: number[] = aux2.shape;

// grads have the params' structure.
const g: MapLeaves<P, NDArray> = grad((q: P) => sum(q.w))(p);
// @ts-expect-error -- no such leaf
void g.c;

// Optimizers keep the structure too.
const opt = adam(0.1);
const state = opt.init(p);
const [updates] = opt.update(g, state, p);
const next: MapLeaves<P, NDArray> = applyUpdates(p, updates);

// Errors are classes to catch.
try {
  void next;
} catch (e) {
  if (e instanceof ShapeError) void (e satisfies GradGpuError);
}
export { lossShape, maeShape, step, gw, aux2Shape };

// data() is the honest union; naming the dtype narrows it.
async function reads(x: NDArray) {
  const any: Float32Array | Int32Array | Uint8Array = await x.data();
  const f: Float32Array = await x.data('float32');
  const i: Int32Array = await x.data('int32');
  const b: Uint8Array = await x.data('bool');
  // @ts-expect-error -- the union is not a Float32Array
  const wrong: Float32Array = await x.data();
  return [any, f, i, b, wrong];
}
void reads;
