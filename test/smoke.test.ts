import { describe, it, expect } from 'vitest';
import { array, add, sum, square } from '../src/array/ops';
import { matmul } from '../src/array/linalg';

describe('smoke', () => {
  it('adds', async () => {
    const a = array([
      [1, 2],
      [3, 4],
    ]);
    const b = array([10, 20]);
    expect(Array.from(await add(a, b).data('float32'))).toEqual([11, 22, 13, 24]);
    const c = matmul(
      a,
      array([
        [1, 0],
        [0, 1],
      ]),
    );
    expect(Array.from(await c.data('float32'))).toEqual([1, 2, 3, 4]);
    expect(await sum(square(a)).item()).toBe(30);
  });
});
