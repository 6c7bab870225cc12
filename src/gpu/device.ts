// The one place that finds a GPU. Browser: navigator.gpu. Node: the `webgpu`
// package (Dawn), loaded with a dynamic import so browser bundles never see it,
// falling back to SwiftShader (a CPU Vulkan driver) when no real GPU exists.

import { DeviceLostError, NoAdapterError } from '../errors';

/** How init() chooses the device. */
export interface InitOptions {
  /** Use this device instead of finding one (the library will not destroy it). */
  device?: GPUDevice;
  /** 'high-performance' (default) or 'low-power'. */
  powerPreference?: GPUPowerPreference;
  /** Force the software adapter (SwiftShader in Node, the fallback adapter in a browser). */
  forceFallback?: boolean;
  /** Node only: pick an adapter whose vendor/architecture/description contains this text. */
  adapterMatch?: string;
}

/** What deviceInfo() reports about the adapter and device. */
export interface DeviceInfo {
  vendor: string;
  architecture: string;
  description: string;
  /** True when the adapter is a software/CPU implementation (SwiftShader, fallback adapter). */
  isFallback: boolean;
  backend: 'browser' | 'node-dawn' | 'user';
  limits: {
    maxStorageBufferBindingSize: number;
    maxBufferSize: number;
    maxComputeWorkgroupsPerDimension: number;
    maxComputeInvocationsPerWorkgroup: number;
    maxStorageBuffersPerShaderStage: number;
  };
  hasTimestampQuery: boolean;
}

export interface GpuContext {
  device: GPUDevice;
  info: DeviceInfo;
  /** Set once device.lost resolves; every later operation throws it. */
  lostError: DeviceLostError | null;
}

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
const INSTALL_HINT =
  'On Debian/Ubuntu install a Vulkan driver for the CPU fallback: `apt-get install -y chromium libvulkan1` ' +
  '(Dawn needs the system libvulkan1, which chromium does not pull in). In a browser, use a WebGPU-enabled ' +
  'Chrome/Edge (on Linux start it with --enable-unsafe-webgpu).';

const isNode = typeof process !== 'undefined' && !!process.versions?.node && typeof window === 'undefined';

let current: GpuContext | null = null;
let pending: Promise<GpuContext> | null = null;
let defaultOptions: InitOptions = {};
const resetHooks: Array<() => void> = [];

/** Called by the runtime so pools and pipeline caches drop state tied to an old device. */
export function onDeviceReset(hook: () => void): void {
  resetHooks.push(hook);
}

/** An environment variable in Node; undefined in a browser. */
export function envFlag(name: string): string | undefined {
  return isNode ? process.env[name] : undefined;
}

/** One Dawn instance per Vulkan driver choice (VK_ICD_FILENAMES when it was made), reused by every init and reinit. */
const dawnInstances = new Map<string, GPU>();

interface DawnModule {
  create: (o: string[]) => GPU;
  globals: Record<string, unknown>;
}

async function loadDawn(): Promise<DawnModule> {
  const name = 'webgpu';
  let mod: DawnModule;
  try {
    mod = await import(/* @vite-ignore */ name);
  } catch (e) {
    throw new NoAdapterError(
      `could not load the 'webgpu' package (Dawn, WebGPU for Node): ${(e as Error).message}. It is an optional peer dependency ` +
        '(browsers do not need it): in Node, run `npm install webgpu`.',
    );
  }
  // Dawn's classes (GPUBufferUsage, ...) must be global, as in a browser.
  for (const [k, v] of Object.entries(mod.globals)) {
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  return mod;
}

/**
 * Node: ask Dawn for a real adapter first; if there is none, point the Vulkan
 * loader at SwiftShader (it reads VK_ICD_FILENAMES when an instance is made)
 * and ask again.
 */
async function nodeAdapter(forceFallback: boolean, powerPreference: GPUPowerPreference): Promise<GPUAdapter | null> {
  const dawn = await loadDawn();
  const fs = await import(/* @vite-ignore */ 'node:fs' as string);
  const useSwiftShader = () => {
    if (process.env.VK_ICD_FILENAMES || !fs.existsSync(SWIFTSHADER_ICD)) return false;
    process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
    return true;
  };
  if (forceFallback) useSwiftShader();
  // Without XDG_RUNTIME_DIR, the Vulkan stack prints "error: XDG_RUNTIME_DIR is invalid or not set"
  // (twice) on every run, which reads as a failure; a private empty directory silences it.
  if (!process.env.XDG_RUNTIME_DIR) {
    const os = await import(/* @vite-ignore */ 'node:os' as string);
    const path = await import(/* @vite-ignore */ 'node:path' as string);
    try {
      process.env.XDG_RUNTIME_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'gradgpu-xdg-'));
    } catch {
      // (a read-only temp dir: the message stays, nothing else changes)
    }
  }
  // Kept for as long as the process runs: if an instance were garbage-collected, Dawn would tear down
  // under its devices and crash; and one per reinit() leaked about 14 MB each.
  const instance = () => {
    const key = process.env.VK_ICD_FILENAMES ?? '';
    let gpu = dawnInstances.get(key);
    if (!gpu) dawnInstances.set(key, (gpu = dawn.create([])));
    return gpu;
  };
  let adapter = await instance().requestAdapter({ powerPreference });
  if (!adapter && !forceFallback && useSwiftShader()) adapter = await instance().requestAdapter({ powerPreference });
  return adapter;
}

function describe(adapter: GPUAdapter | null, device: GPUDevice, backend: DeviceInfo['backend']): DeviceInfo {
  const ai = (adapter?.info ?? (device as unknown as { adapterInfo?: GPUAdapterInfo }).adapterInfo) as
    (GPUAdapterInfo & { isFallbackAdapter?: boolean }) | undefined;
  const vendor = ai?.vendor ?? '';
  const architecture = ai?.architecture ?? '';
  const description = ai?.description ?? '';
  const text = `${vendor} ${architecture} ${description}`.toLowerCase();
  const isFallback =
    !!ai?.isFallbackAdapter ||
    !!(adapter as unknown as { isFallbackAdapter?: boolean })?.isFallbackAdapter ||
    text.includes('swiftshader') ||
    text.includes('llvmpipe') ||
    text.includes('warp');
  const l = device.limits;
  return {
    vendor,
    architecture,
    description,
    isFallback,
    backend,
    limits: {
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    },
    hasTimestampQuery: device.features.has('timestamp-query'),
  };
}

async function create(opts: InitOptions): Promise<GpuContext> {
  if (opts.device) return watch({ device: opts.device, info: describe(null, opts.device, 'user'), lostError: null });
  const forceFallback = opts.forceFallback ?? ['1', 'true'].includes(envFlag('GRADGPU_FALLBACK') ?? '');
  const match = opts.adapterMatch ?? envFlag('GRADGPU_ADAPTER');
  const powerPreference = opts.powerPreference ?? 'high-performance';
  let adapter: GPUAdapter | null;
  let backend: DeviceInfo['backend'] = 'browser';
  const browserGpu = typeof navigator !== 'undefined' ? (navigator as Navigator & { gpu?: GPU }).gpu : undefined;
  if (browserGpu) {
    adapter = await browserGpu.requestAdapter({ powerPreference, forceFallbackAdapter: forceFallback });
    if (!adapter && !forceFallback) adapter = await browserGpu.requestAdapter({ forceFallbackAdapter: true });
  } else if (isNode) {
    backend = 'node-dawn';
    adapter = await nodeAdapter(forceFallback, powerPreference);
  } else {
    throw new NoAdapterError(`WebGPU is not available in this environment (navigator.gpu is missing). ${INSTALL_HINT}`);
  }
  if (!adapter) throw new NoAdapterError(`no WebGPU adapter was found. ${INSTALL_HINT}`);
  if (match) {
    const i = adapter.info;
    const text = `${i.vendor} ${i.architecture} ${i.description}`.toLowerCase();
    if (!text.includes(match.toLowerCase())) {
      throw new NoAdapterError(`adapter "${i.vendor} ${i.architecture} ${i.description}" does not match "${match}"`);
    }
  }
  // Ask for the adapter's own limits: the defaults cap storage bindings at 128 MiB.
  const want = [
    'maxStorageBufferBindingSize',
    'maxBufferSize',
    'maxComputeWorkgroupsPerDimension',
    'maxComputeInvocationsPerWorkgroup',
    'maxComputeWorkgroupSizeX',
    'maxComputeWorkgroupStorageSize',
    'maxStorageBuffersPerShaderStage',
  ] as const;
  const requiredLimits: Record<string, number> = {};
  for (const k of want) requiredLimits[k] = adapter.limits[k];
  const requiredFeatures: GPUFeatureName[] = adapter.features.has('timestamp-query') ? ['timestamp-query'] : [];
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  return watch({ device, info: describe(adapter, device, backend), lostError: null });
}

function watch(ctx: GpuContext): GpuContext {
  void ctx.device.lost.then((info) => {
    if (ctx.lostError) return; // replaced by reinit(), which said so
    ctx.lostError = new DeviceLostError(
      `the GPU device was lost (${info.reason}: ${info.message || 'no message'}). ` +
        'Arrays that lived on it are gone; values read with data() are safe. Call reinit() to continue.',
    );
  });
  return ctx;
}

/** Choose the device before first use. Later calls return the same context unless reinit() is used. */
export function init(opts: InitOptions = {}): Promise<GpuContext> {
  if (current) return Promise.resolve(current);
  if (!pending) {
    defaultOptions = opts;
    pending = create(opts).then(
      (ctx) => ((current = ctx), ctx),
      (e) => {
        pending = null;
        throw e;
      },
    );
  }
  return pending;
}

/** Drop the current device (lost or not) and acquire a new one. Existing GPU arrays become unusable. */
export async function reinit(opts?: InitOptions): Promise<GpuContext> {
  const old = current;
  current = null;
  pending = null;
  for (const h of resetHooks) h();
  if (old && !old.lostError) {
    old.lostError = new DeviceLostError('this array belongs to a GPU device that was replaced by reinit(); values read with data() before are safe');
  }
  // Ours, not the caller's: destroy it, or every reinit() keeps a whole device's memory (about 14 MB each).
  if (old && old.info.backend !== 'user') old.device.destroy();
  return init(opts ?? defaultOptions);
}

/** The live context, or null before init. Throws DeviceLostError when the device was lost. */
export function currentContext(): GpuContext | null {
  if (current?.lostError) throw current.lostError;
  return current;
}

/** The adapter's description and limits (initialises the device on first use). */
export async function deviceInfo(): Promise<DeviceInfo> {
  return (await init(defaultOptions)).info;
}
