// Section 2: the reference problem's worked examples, then gradient descent
// on flat params [w, b] of a linear model with targets.

import { gradOverFlatParams, zeros } from '../index';
import { B_TRUE, W_TRUE, gdStep, linearData } from './models';
import { $, demo, fmt, h } from './page';

const EXAMPLES: { p: number[]; x: number[][]; want: number[] }[] = [
  { p: [1, 0, 0], x: [[2, 3]], want: [8, 12, 4] },
  {
    p: [0, 0, 1],
    x: [
      [1, 0],
      [0, 1],
    ],
    want: [2, 2, 4],
  },
];

const vec = (v: ArrayLike<number>, digits = 4) => `[${Array.from(v, (x) => fmt(x, digits)).join(', ')}]`;
const short = (v: number[]) => `[${v.map((x) => +x.toFixed(5)).join(', ')}]`;

export async function runExamples(): Promise<void> {
  const body = $('examples').querySelector('tbody')!;
  body.replaceChildren();
  for (const ex of EXAMPLES) {
    const got = Array.from(await gradOverFlatParams(ex.p, ex.x).data());
    demo.examples.push(got);
    const ok = got.length === ex.want.length && got.every((g, i) => Math.abs(g - ex.want[i]!) <= 1e-5 * Math.max(1, Math.abs(ex.want[i]!)));
    body.append(
      h(
        'tr',
        {},
        h('td', {}, h('code', {}, `gradOverFlatParams(${JSON.stringify(ex.p)}, ${JSON.stringify(ex.x)})`)),
        h('td', { class: 'mono' }, short(ex.want)),
        h('td', { class: 'mono' }, short(got)),
        h('td', { class: ok ? 'ok' : 'bad', title: ok ? 'matches' : 'does not match' }, ok ? '✓' : '✗'),
      ),
    );
  }
}

export async function runLinear(steps = 30, lr = 0.1): Promise<void> {
  const n = 256;
  const { x, y } = linearData(n);
  $('linear-intro').className = '';
  $('linear-intro').innerHTML =
    `${n} samples of <code>y = x @ w_true + b_true + 0.1·noise</code> with <code>x</code> ~ N(0, 1) of shape (${n}, ${W_TRUE.length}), ` +
    `<code>w_true = [${W_TRUE.join(', ')}]</code>, <code>b_true = ${B_TRUE}</code>. Starting from <code>p = 0</code>, ` +
    `${steps} steps of gradient descent with learning rate ${lr}; each row was read back from the GPU as it ran.`;
  const body = $('linear-steps').querySelector('tbody')!;
  const box = $('linear-steps-box');
  body.replaceChildren();
  let p = zeros([W_TRUE.length + 1]);
  for (let i = 0; i < steps; i++) {
    const { loss, g, next } = gdStep(p, x, y, lr);
    const [l, gv] = [await loss.item(), await g.data()];
    demo.linear.losses.push(l);
    body.append(h('tr', {}, h('td', {}, String(i)), h('td', {}, fmt(l)), h('td', {}, vec(gv, 3))));
    box.scrollTop = box.scrollHeight;
    p.dispose();
    g.dispose();
    p = next;
  }
  const learned = Array.from(await p.data());
  demo.linear.params = learned;
  const truth = [...W_TRUE, B_TRUE];
  const names = ['w₀', 'w₁', 'w₂', 'w₃', 'b'];
  $('linear-result').replaceChildren(
    h('thead', {}, h('tr', {}, h('th', {}, ''), h('th', {}, 'learned'), h('th', {}, 'true'))),
    h('tbody', {}, ...names.map((nm, i) => h('tr', {}, h('th', {}, nm), h('td', {}, fmt(learned[i]!, 3)), h('td', {}, String(truth[i]))))),
    h('tfoot', {}, h('tr', {}, h('th', {}, 'loss'), h('td', {}, fmt(demo.linear.losses.at(-1)!)), h('td', { class: 'muted' }, '≈ 0.01 (noise)'))),
  );
}
