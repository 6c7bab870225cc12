import { it } from 'vitest';
import * as g from '../src/index';
it('probe', async () => {
  const x = g.randomUniform([1000], 1);
  await x.data();
  const s0 = g.memoryStats();
  let y = x;
  for (let i = 0; i < 20; i++) y = g.addScalar(g.scale(y, 0.5), 0.1);
  await y.data();
  const s1 = g.memoryStats();
  console.log('chain', s1.submissions - s0.submissions, s1.dispatches - s0.dispatches);
  // mixed
  const a = g.randomUniform([8, 8], 2); const b = g.randomUniform([8, 8], 3);
  await a.data(); await b.data();
  const s2 = g.memoryStats();
  const r = g.sum(g.add(g.matmul(a, b), 1));
  await r.data();
  const s3 = g.memoryStats();
  console.log('mixed', s3.submissions - s2.submissions, s3.dispatches - s2.dispatches);
  // empty
  console.log('empty sum', await g.sum(g.zeros([3, 0]), 1).data(), await g.sum(g.ones([0, 4]), 0).data());
  console.log('empty mm', await g.matmul(g.ones([2, 0]), g.ones([0, 3])).data());
  console.log('pad bad', await g.pad(g.ones([2, 3]), [1], [4, 5]).data().catch(e => String(e)));
  console.log('item', await g.ones([2]).item().catch(e => e.name));
  console.log(await g.deviceInfo());
});
