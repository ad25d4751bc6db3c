// Which catalogue model suits this device, and how fast to expect it: what a first visit shows.
//
// The inputs are what a page can learn: navigator.deviceMemory (Chromium only, rounded and capped
// at 8 GB), the cores, cross-origin isolation (threads need it), relaxed SIMD (the faster kernel
// build) and whether this is a phone. The speeds are measured decode rates of this project's CPU
// engine (2 threads, relaxed SIMD, README "Speed"), scaled by threads and kernel build; they are
// shown as a range, never as a promise.
import { CATALOGUE, type CatalogueEntry } from '../storage/catalogue.ts';

export interface DeviceProfile {
  /** GB of memory the browser admits to (navigator.deviceMemory), when it says. */
  memoryGB?: number;
  cores: number;
  /** crossOriginIsolated: the kernels can use threads. */
  isolated: boolean;
  relaxedSimd: boolean;
  mobile: boolean;
}

export interface Recommendation {
  entry: CatalogueEntry;
  /** Tokens per second to expect while it writes, a low and a high estimate. */
  tokensPerSecond: [number, number];
  /** Threads the engine will use. */
  threads: number;
}

/** Decode tokens/s of each model size with 2 threads and relaxed SIMD on the reference machine. */
const REFERENCE_DECODE: Record<CatalogueEntry['params'], number> = { '4B': 9, '1.7B': 20, '0.6B': 50 };
/** WebAssembly memory a model takes: its file with KV cache and buffers (×1.2). */
const modelMemoryBytes = (entry: CatalogueEntry) => entry.sizeBytes * 1.2;
/** Memory a model needs: what it takes, plus the browser and the system (1.5 GB). */
const memoryNeededGB = (entry: CatalogueEntry) => modelMemoryBytes(entry) / 1e9 + 1.5;
/** Below this many tokens a second a smaller model serves better. */
const MIN_USEFUL_RATE = 3;

/** What this browser says about the device (relaxed SIMD from validating a one-instruction module). */
export function detectDevice(): DeviceProfile {
  const nav = globalThis.navigator as (Navigator & { deviceMemory?: number; userAgentData?: { mobile?: boolean } }) | undefined;
  return {
    memoryGB: typeof nav?.deviceMemory === 'number' ? nav.deviceMemory : undefined,
    cores: nav?.hardwareConcurrency ?? 1,
    isolated: globalThis.crossOriginIsolated === true,
    relaxedSimd: supportsRelaxedSimd(),
    mobile: nav?.userAgentData?.mobile ?? /Android|iPhone|iPad|Mobile/i.test(nav?.userAgent ?? ''),
  };
}

/** A module whose function runs i8x16.relaxed_swizzle: valid only where relaxed SIMD exists. */
const RELAXED_SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // type: () -> v128
  0x03, 0x02, 0x01, 0x00, // one function of that type
  0x0a, 0x2b, 0x01, 0x29, 0x00, // code: one body of 41 bytes, no locals
  0xfd, 0x0c, ...new Array<number>(16).fill(0), // v128.const 0
  0xfd, 0x0c, ...new Array<number>(16).fill(0), // v128.const 0
  0xfd, 0x80, 0x02, // i8x16.relaxed_swizzle
  0x0b, // end
]);

export function supportsRelaxedSimd(): boolean {
  try {
    return typeof WebAssembly === 'object' && WebAssembly.validate(RELAXED_SIMD_PROBE);
  } catch {
    return false;
  }
}

/** The decode rate range of `entry` on `device`. */
export function expectedRate(entry: CatalogueEntry, device: DeviceProfile): { tokensPerSecond: [number, number]; threads: number } {
  const threads = device.isolated ? Math.max(1, Math.min(device.cores, 8)) : 1;
  // Threads help sub-linearly (memory bandwidth); the SIMD128 build is slower than relaxed SIMD.
  const rate = REFERENCE_DECODE[entry.params] * (threads / 2) ** 0.7 * (device.relaxedSimd ? 1 : 0.7) * (device.mobile ? 0.5 : 1);
  return { tokensPerSecond: [rate * 0.6, rate * 1.2], threads };
}

/**
 * The largest model that fits the device's memory (as far as it is known) and still writes at a
 * useful speed; Q4_K_M is preferred to Q4_0 (better quality for its size).
 */
export function recommendModel(device: DeviceProfile, catalogue: readonly CatalogueEntry[] = CATALOGUE): Recommendation {
  const candidates = catalogue.filter((e) => e.quant === 'Q4_K_M').sort((a, b) => b.sizeBytes - a.sizeBytes);
  // Unknown memory: desktops are taken to have room for the 4B model, phones not.
  const memoryGB = device.memoryGB ?? (device.mobile ? 3 : 16);
  for (const entry of candidates) {
    const fits = memoryNeededGB(entry) <= memoryGB;
    const rate = expectedRate(entry, device);
    if (fits && rate.tokensPerSecond[0] >= MIN_USEFUL_RATE) return { entry, ...rate };
  }
  const smallest = candidates[candidates.length - 1]!;
  return { entry: smallest, ...expectedRate(smallest, device) };
}

/**
 * True when `entry` is known not to fit this device: a model as large was refused memory here
 * (`refusedBytes`, the smallest such file), or the memory the browser admits to is less than it needs.
 */
export function tooLargeForDevice(entry: CatalogueEntry, device: Pick<DeviceProfile, 'memoryGB'>, refusedBytes?: number): boolean {
  if (refusedBytes !== undefined && entry.sizeBytes >= refusedBytes) return true;
  return device.memoryGB !== undefined && memoryNeededGB(entry) > device.memoryGB;
}

/** The catalogue's Q4_K_M models smaller than a file of `sizeBytes` (all of them when unknown), largest first. */
export function smallerModels(sizeBytes: number | undefined, catalogue: readonly CatalogueEntry[] = CATALOGUE): CatalogueEntry[] {
  return catalogue.filter((e) => e.quant === 'Q4_K_M' && (sizeBytes === undefined || e.sizeBytes < sizeBytes * 0.9))
    .sort((a, b) => b.sizeBytes - a.sizeBytes);
}

const WASM_PAGE = 65536;
/** A wasm32 memory holds at most 4 GiB: larger needs are memory64's, which this probe does not try. */
const MAX_PROBE_PAGES = 65536;

/**
 * Whether this browser gives WebAssembly a memory of `bytes` now: a real allocation, in a worker
 * that is terminated at once (false when it cannot be tried, e.g. no Worker).
 */
export function canAllocateWasmMemory(bytes: number, timeoutMs = 10_000): Promise<boolean> {
  const pages = Math.min(MAX_PROBE_PAGES, Math.ceil(bytes / WASM_PAGE));
  return new Promise((resolve) => {
    let worker: Worker;
    try {
      worker = new Worker(new URL('./memory-probe-worker.ts', import.meta.url), { type: 'module', name: 'memory-probe' });
    } catch {
      resolve(false);
      return;
    }
    const finish = (fits: boolean) => {
      clearTimeout(timer);
      worker.terminate();
      resolve(fits);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    worker.onmessage = (e: MessageEvent<boolean>) => finish(e.data === true);
    worker.onerror = () => finish(false);
    worker.postMessage(pages);
  });
}

/**
 * The smallest catalogue file whose memory this browser refuses now (undefined when it gives
 * enough for all): tried largest first, one allocation at a time, stopping at the first that fits.
 */
export async function probeRefusedBytes(catalogue: readonly CatalogueEntry[] = CATALOGUE): Promise<number | undefined> {
  let refused: number | undefined;
  for (const entry of [...catalogue].sort((a, b) => b.sizeBytes - a.sizeBytes)) {
    if (await canAllocateWasmMemory(modelMemoryBytes(entry))) break;
    refused = entry.sizeBytes;
  }
  return refused;
}
