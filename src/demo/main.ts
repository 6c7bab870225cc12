// Entry point. It checks for WebGPU before the library is even loaded (the
// library and charts come in with a dynamic import), so a browser without it
// gets a plain explanation instead of a blank page, and every error that
// escapes lands in a visible banner.

import './style.css';
import { demo, noWebGpu, showError } from './page';

window.addEventListener('error', (e) => showError(e.error ?? e.message));
window.addEventListener('unhandledrejection', (e) => showError(e.reason));
window.addEventListener('securitypolicyviolation', (e) => {
  demo.cspViolations.push(`${e.violatedDirective}: ${e.blockedURI || 'inline'}`);
});

async function main(): Promise<void> {
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
  if (!gpu)
    return noWebGpu(
      `This browser does not expose <code>navigator.gpu</code>${window.isSecureContext ? '' : ' (and this page is not a secure context)'}.`,
    );
  // Ask once here so "no adapter" is told apart from real failures later.
  const adapter = (await gpu.requestAdapter()) ?? (await gpu.requestAdapter({ forceFallbackAdapter: true }));
  if (!adapter) return noWebGpu('The browser supports WebGPU, but it found no usable GPU adapter (it may be disabled or blocklisted).');
  const { run } = await import('./app');
  await run();
}

main().catch(showError);
