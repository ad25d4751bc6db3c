// WebGPU feature detection, usable on a page and in a worker. Kept apart from backend.ts so the
// web-llm worker can use it without pulling in the engine factories.
//
// lib.dom of our TypeScript has no WebGPU types (and @webgpu/types is not a dependency), so the
// few members read here are declared locally.

interface GpuAdapterInfoLike {
  vendor?: string;
  architecture?: string;
  description?: string;
  /** Chrome ≥ 136 reports it here. */
  isFallbackAdapter?: boolean;
}

export interface GpuAdapterLike {
  readonly features: { has(feature: string): boolean };
  readonly limits: { readonly maxBufferSize: number; readonly maxStorageBufferBindingSize: number };
  readonly info?: GpuAdapterInfoLike;
  /** The older place of the flag (deprecated in Chrome). */
  readonly isFallbackAdapter?: boolean;
}

export interface GpuLike {
  requestAdapter(options?: { powerPreference?: 'low-power' | 'high-performance' }): Promise<GpuAdapterLike | null>;
}

export type WebGpuUnavailableCode = 'no-api' | 'adapter-failed' | 'no-adapter' | 'not-probed';

export interface WebGpuAdapterSummary {
  vendor: string;
  architecture: string;
  description: string;
  /** A software implementation (e.g. SwiftShader): works, but slower than our CPU engine. */
  isFallbackAdapter: boolean;
}

export interface WebGpuSupport {
  /** An adapter was obtained. */
  available: boolean;
  /** Why not, when not available (English, with details). */
  reason?: string;
  /** The same, as a code a UI can put in its own words. */
  reasonCode?: WebGpuUnavailableCode;
  adapter?: WebGpuAdapterSummary;
  /** The adapter offers 'shader-f16' (web-llm's q4f16 builds need it). */
  shaderF16: boolean;
  /** Adapter limits, bytes (0 when no adapter). */
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
}

/** navigator.gpu of this page or worker, if any. */
export function gpuOfThisContext(): GpuLike | undefined {
  const nav = (globalThis as { navigator?: { gpu?: GpuLike } }).navigator;
  return nav?.gpu ?? undefined;
}

/** The same adapter web-llm asks for (it requests 'high-performance'). */
export function requestWebLlmAdapter(gpu: GpuLike): Promise<GpuAdapterLike | null> {
  return gpu.requestAdapter({ powerPreference: 'high-performance' });
}

export function summarizeAdapter(adapter: GpuAdapterLike): WebGpuAdapterSummary {
  const info = adapter.info ?? {};
  return {
    vendor: info.vendor ?? '',
    architecture: info.architecture ?? '',
    description: info.description ?? '',
    isFallbackAdapter: info.isFallbackAdapter ?? adapter.isFallbackAdapter ?? false,
  };
}

function unavailable(reasonCode: WebGpuUnavailableCode, reason: string): WebGpuSupport {
  return { available: false, reason, reasonCode, shaderF16: false, maxBufferSize: 0, maxStorageBufferBindingSize: 0 };
}

/**
 * What WebGPU this context offers. Never throws; a browser that never answers requestAdapter()
 * counts as unavailable after `timeoutMs`.
 */
export async function detectWebGPU(options: { timeoutMs?: number } = {}): Promise<WebGpuSupport> {
  const gpu = gpuOfThisContext();
  if (!gpu) {
    return unavailable('no-api', 'this browser has no WebGPU (navigator.gpu is missing; it also needs a secure context)');
  }
  const timeoutMs = options.timeoutMs ?? 5000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let adapter: GpuAdapterLike | null;
  try {
    adapter = await Promise.race([
      requestWebLlmAdapter(gpu),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`requestAdapter() gave no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } catch (error) {
    return unavailable('adapter-failed', `requesting a WebGPU adapter failed: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    clearTimeout(timer);
  }
  if (!adapter) {
    return unavailable('no-adapter', 'no WebGPU adapter: no usable GPU, or WebGPU is switched off in this browser');
  }
  return {
    available: true,
    adapter: summarizeAdapter(adapter),
    shaderF16: adapter.features.has('shader-f16'),
    maxBufferSize: adapter.limits.maxBufferSize,
    maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
  };
}
