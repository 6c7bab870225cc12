// The issue's real models at full size, in Node: the MNIST MLP and CNN on the
// fixed 8,000 / 2,000 split, and the transformer on two-digit addition
// (1,000 problems held out). Prints each epoch and writes a summary to
// bench/results/<date>-<adapter>-models.md. `npm run bench:models [-- mlp|cnn|transformer]`.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cosineDecaySchedule, deviceInfo, init, random } from '../src/index';
import { cnnLogits, initCnn, initMlp, mlpLogits, trainClassifier } from '../src/models/classifier';
import { ADDITION_VOCAB, trainAddition } from '../src/models/transformer';
import { loadMnist } from '../test/helpers/mnist';

await init();
const info = await deviceInfo();
const only = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const want = (name: string) => only.length === 0 || only.includes(name);
const rows: string[] = [];

async function classifier(name: string, epochs: number, batch: number) {
  const d = loadMnist();
  const isMlp = name === 'mlp';
  const r = await trainClassifier({
    ...d,
    init: isMlp ? initMlp(random.key(0)) : initCnn(random.key(0)),
    logits: (isMlp ? mlpLogits : cnnLogits) as never,
    key: random.key(1),
    epochs,
    batch,
    // The CNN's held-out accuracy wanders by ~0.5% from epoch to epoch at a constant rate: decay it.
    learningRate: isMlp ? 3e-3 : cosineDecaySchedule(3e-3, epochs * Math.floor(d.trainY.length / batch)),
    onEpoch: (e, l, a) => console.log(`${name} epoch ${e}: loss ${l.toFixed(4)}, held-out accuracy ${(100 * a).toFixed(2)}%`),
  });
  const last = r.history[r.history.length - 1]!;
  // Steps per second over the epochs after the first (the first compiles the pipelines).
  const later = r.history.slice(1);
  const sps = later.length ? (later.length * r.stepsPerEpoch) / later.reduce((s, h) => s + h.seconds, 0) : r.stepsPerEpoch / last.seconds;
  rows.push(
    `| MNIST ${isMlp ? 'MLP 784-256-10' : 'CNN (conv 8, conv 16, dense)'} | ${epochs} epochs, batch ${batch}, Adam 3e-3${isMlp ? '' : ' cosine-decayed'} | ${(100 * last.testAccuracy).toFixed(2)}% held-out | ${sps.toFixed(1)} |`,
  );
}

if (want('mlp')) await classifier('mlp', 6, 128);
if (want('cnn')) await classifier('cnn', 15, 128);
if (want('transformer')) {
  const steps = 2000;
  const config = { vocab: ADDITION_VOCAB, context: 8, dim: 32, heads: 4, layers: 2 };
  const r = await trainAddition({
    config,
    steps,
    batch: 64,
    key: random.key(0),
    onLog: (s, l) => console.log(`transformer step ${s}: loss ${l.toFixed(5)}`),
    every: 250,
  });
  console.log(`transformer: held-out exact match ${(100 * r.exact).toFixed(1)}%, ${r.stepsPerSecond.toFixed(1)} steps/s`);
  rows.push(
    `| Transformer, 2 layers, d 32, 4 heads | ${steps} steps, batch 64, Adam 3e-3 | ${(100 * r.exact).toFixed(1)}% exact on 1,000 held-out sums | ${r.stepsPerSecond.toFixed(1)} |`,
  );
}

const table = ['| model | training | result | steps/s |', '| --- | --- | --- | ---: |', ...rows].join('\n');
console.log(table);
const date = new Date().toISOString().slice(0, 10);
const device = `${info.vendor}-${info.architecture}`.replace(/[^a-z0-9-]+/gi, '-').toLowerCase();
mkdirSync('bench/results', { recursive: true });
writeFileSync(
  `bench/results/${date}-${device}-models${only.length ? `-${only.join('-')}` : ''}.md`,
  `# Models, ${info.vendor} ${info.architecture} (${info.description}), Node\n\n${table}\n`,
);
