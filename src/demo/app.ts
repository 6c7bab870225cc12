// Loaded only once WebGPU is known to exist: the library, the charts and the sections.

import { NoAdapterError, deviceInfo } from '../index';
import modelsSource from './models.ts?raw';
import { enableMlp, setupMlp } from './mlp';
import { $, demo, noWebGpu } from './page';
import { runExamples, runLinear } from './reference';
import { setupMnist } from './mnist';
import { setupAddition } from './addition';

/** The code between `// #region name` and `// #endregion` in models.ts: the page shows what it runs. */
function region(name: string): string {
  const m = modelsSource.match(new RegExp(`// #region ${name}\\n([\\s\\S]*?)// #endregion`));
  return m ? m[1]!.trim() : '';
}

export async function run(): Promise<void> {
  let info;
  try {
    info = await deviceInfo();
  } catch (e) {
    if (e instanceof NoAdapterError) return noWebGpu(e.message);
    throw e;
  }
  demo.adapter = { vendor: info.vendor, architecture: info.architecture, description: info.description, isFallback: info.isFallback };
  const show = (s: string) => s || '(not reported)';
  $('adapter').innerHTML = '';
  $('adapter').append(
    'Adapter: ',
    Object.assign(document.createElement('b'), { textContent: show(info.vendor) }),
    ` · architecture ${show(info.architecture)} · ${show(info.description)} `,
    Object.assign(document.createElement('span'), {
      className: info.isFallback ? 'pill warn' : 'pill ok',
      textContent: info.isFallback ? 'software fallback (runs on the CPU, slow)' : 'hardware GPU',
    }),
  );

  $('linear-code').textContent = region('linear');
  $('mlp-code').textContent = region('mlp');
  const query = new URLSearchParams(location.search);
  const { autostart } = setupMlp(query);
  await runExamples();
  demo.state = 'ready';
  await runLinear();
  // The models' data is on the GPU before the MLP starts (its buffer count is watched from then on).
  setupAddition(query);
  await setupMnist(query);
  enableMlp(autostart);
}
