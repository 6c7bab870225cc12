// How the project launches the system Chromium (vitest browser mode, the demo
// e2e test, bench:chrome): WebGPU on, SwiftShader allowed, and quiet on a
// machine with no network (background services would retry and fail).
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const WEBGPU_ARGS = ['--enable-unsafe-webgpu', '--enable-features=Vulkan'];
export const QUIET_ARGS = [
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
  ...(process.getuid?.() === 0 ? ['--no-sandbox'] : []),
];
export const CHROMIUM_ARGS = [...WEBGPU_ARGS, ...QUIET_ARGS];
