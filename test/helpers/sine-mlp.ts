// The 1 -> 16 (tanh) -> 1 MLP fitted to a sine that the jit and loop tests
// train, and a way to read a pytree's values for bitwise comparisons.
import { add, matmul, mean, randomNormal, scale, square, sub, tanh, tree, type NDArray } from '../../src/index';

export type P = { w1: NDArray; b1: NDArray; w2: NDArray; b2: NDArray };

export const makeParams = (seed: number): P => ({
  w1: randomNormal([1, 16], seed),
  b1: randomNormal([16], seed + 1, 0, 0.1),
  w2: scale(randomNormal([16, 1], seed + 2), 0.3),
  b2: randomNormal([1], seed + 3, 0, 0.01),
});

export const loss = (p: P, x: NDArray, y: NDArray) => mean(square(sub(add(matmul(tanh(add(matmul(x, p.w1), p.b1)), p.w2), p.b2), y)));

/** Every leaf's values, in tree order. */
export async function values(t: unknown): Promise<number[][]> {
  return Promise.all((tree.leaves(t) as NDArray[]).map(async (a) => Array.from(await a.data())));
}
