// The kernels in each browser engine of $QWEN_WEB_BROWSERS (Chromium, Firefox ESR; see
// tests/support/browsers.ts), where the relaxed-SIMD build runs correctly:
// a vite dev server (cross-origin isolated: COOP + COEP) serves a page whose
// module Worker imports src/model/kernels.ts, lets it pick a build ('auto' must
// choose relaxed here: both engines compute the probe right), and runs matmul
// through the SIMD kernels and the scalar reference on inputs made in Node.
// Node checks the answers: relaxed vs scalar reference (same integers, only
// float rounding differs) and vs an f64 dequantize-then-dot.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKernels, type Kernels, type WeightLayout, WeightType } from '../../src/model/kernels.ts';
import { f16BitsToF32, f32ToF16Bits } from '../fixtures/quantize.ts';
import { Rng } from '../fixtures/random.ts';
import { attentionMismatch } from '../support/attention-reference.ts';
import { launchBrowser, testBrowsers, type BrowserName, type TestBrowser } from '../support/browsers.ts';
import { startVitePages } from '../support/vite-pages.ts';
import { layoutTableProblems } from '../support/weight-layouts.ts';
import type { ViteDevServer } from 'vite';

const EPS32 = 2 ** -24;

// The non-matmul kernels on one input, the same way in Node and in the page
// (its source is sent to the Worker as text): rmsnorm, RoPE, SiLU*up, KV store
// and attention. Returns all outputs concatenated.
function runOps(k: Kernels, input: Uint8Array): Uint8Array {
  const n = input.length / 4;  // floats: used as activations of 8 tokens x 4 heads x 32 dims = 1024
  const put = (u8: Uint8Array) => { const p = k.alloc(u8.length, 64); k.bytes().set(u8, p); return p; };
  const x = put(input), w = put(input.slice(0, 128)), out = k.alloc(n * 4);
  k.rmsnorm(out, x, w, 32, n / 32, 1e-6);
  const pos = k.alloc(8 * 4);
  for (let t = 0; t < 8; t++) k.i32()[pos / 4 + t] = 3 * t + 1000;
  const r = put(input);
  k.ropeNeox(r, 8, 4, 32, pos, 1e6);
  // up: the input's floats in reverse order (its bytes reversed would be floats of any size, NaN too)
  const g = put(input), u = put(new Uint8Array(new Float32Array(input.slice().buffer).reverse().buffer));
  k.siluMul(g, u, n);
  // 8 tokens, 4 query heads on 2 KV heads of 32 dims: K and V from the input, cache of 8 positions
  const kvDim = 64, ck = k.alloc(8 * kvDim * 2), cv = k.alloc(8 * kvDim * 2);
  k.kvStore(ck, cv, x, r, 8, 0, kvDim);
  const att = k.alloc(8 * 4 * 32 * 4);
  k.attention(att, g, ck, cv, 8, 0, 4, 2, 32);
  const result = new Uint8Array(n * 4 * 4);
  for (const [i, p] of [out, r, g, att].entries()) result.set(k.bytes().slice(p, p + n * 4), i * n * 4);
  return result;
}
const RUN_OPS_SOURCE = runOps.toString();

// Runs in the page's Worker (plain JS, imports resolved by vite).
const WORKER_JS = `
import { createKernels } from '/src/model/kernels.ts';
const b64 = (u8) => { let s = ''; for (let i = 0; i < u8.length; i += 8192) s += String.fromCharCode(...u8.subarray(i, i + 8192)); return btoa(s); };
const unb64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
let kernels, kernels1, kernels64;
${RUN_OPS_SOURCE}
// Every case again through the memory64 module, with all its data past the first 4 GiB: the
// same matmuls, repacks and rows, the repacked and plain weights as one matmulMulti (its
// targets hold 8-byte pointers there), and the other kernels.
async function runMemory64(cases, threads, opsInput, outputs) {
  kernels64 ??= await createKernels({ threads, build: 'relaxed', memory64: true });
  const k = kernels64;
  k.alloc(2 ** 32 + 2 ** 20, 64);  // never touched: the pages stay unbacked
  const put = (u8) => { const p = k.alloc(u8.length, 64); k.bytes().set(u8, p); return p; };
  let lowest = Infinity;
  for (const [ci, c] of cases.entries()) {
    const w = put(unb64(c.weights)), src = put(unb64(c.x)), n = c.rows * c.nTokens, dst = k.alloc(n * 4);
    lowest = Math.min(lowest, w);
    k.matmul(dst, w, c.type, c.rows, c.cols, src, c.nTokens);
    const out = outputs[ci];
    out.simd64 = b64(k.bytes().slice(dst, dst + n * 4));
    if (c.type === 2 || c.type === 12 || c.type === 14) {
      const wp = put(unb64(c.weights));
      const type = k.repack(wp, c.type, c.rows, c.cols);
      const packed = k.alloc(n * 4), rows = k.alloc(c.rows * c.cols * 4), multiPlain = k.alloc(n * 4), multiPacked = k.alloc(n * 4);
      k.matmul(packed, wp, type, c.rows, c.cols, src, c.nTokens);
      for (let r = 0; r < c.rows; r++) k.getRow(rows + r * c.cols * 4, wp, type, c.cols, r);
      k.matmulMulti([{ dst: multiPlain, w, type: c.type, rows: c.rows }, { dst: multiPacked, w: wp, type, rows: c.rows }], c.cols, src, c.nTokens);
      Object.assign(out, { packed64: b64(k.bytes().slice(packed, packed + n * 4)),
        packedRows64: b64(k.bytes().slice(rows, rows + c.rows * c.cols * 4)),
        multi64: b64(k.bytes().slice(multiPlain, multiPlain + n * 4)) + ',' + b64(k.bytes().slice(multiPacked, multiPacked + n * 4)) });
    }
  }
  return { memory64: k.memory64, build: k.build, threads: k.threads, lowest, bufferBytes: k.memory.buffer.byteLength, ops: b64(runOps(k, opsInput)) };
}
self.onmessage = async (e) => {
  try {
    const { cases, expfInputs, threads } = e.data;
    kernels ??= await createKernels({ threads, build: 'auto' });
    kernels1 ??= await createKernels({ threads: 1, build: 'auto' });
    const k = kernels;
    const put = (u8) => { const p = k.alloc(u8.length, 64); k.bytes().set(u8, p); return p; };
    // the same case on one thread (its own memory)
    const simdOneThread = (c, n) => {
      const k1 = kernels1;
      const put1 = (u8) => { const p = k1.alloc(u8.length, 64); k1.bytes().set(u8, p); return p; };
      const w = put1(unb64(c.weights)), src = put1(unb64(c.x)), dst = k1.alloc(n * 4);
      k1.matmul(dst, w, c.type, c.rows, c.cols, src, c.nTokens);
      return b64(k1.bytes().slice(dst, dst + n * 4));
    };
    const outputs = [];
    for (const c of cases) {
      const w = put(unb64(c.weights)), src = put(unb64(c.x));
      const n = c.rows * c.nTokens;
      const simd = k.alloc(n * 4), ref = k.alloc(n * 4);
      k.matmul(simd, w, c.type, c.rows, c.cols, src, c.nTokens);
      k.matmulRef(ref, w, c.type, c.rows, c.cols, src, c.nTokens);
      const out = { simd: b64(k.bytes().slice(simd, simd + n * 4)), ref: b64(k.bytes().slice(ref, ref + n * 4)), simd1: simdOneThread(c, n) };
      // Each token on its own (a call of one token), where the call had a few: see 'alone' below.
      const alone = (wt, type) => {
        const one = k.alloc(n * 4);
        for (let t = 0; t < c.nTokens; t++) k.matmul(one + t * c.rows * 4, wt, type, c.rows, c.cols, src + t * c.cols * 4, 1);
        return b64(k.bytes().slice(one, one + n * 4));
      };
      if (c.nTokens > 1 && c.nTokens <= 8) out.alone = alone(w, c.type);
      if (c.type === 2 || c.type === 12 || c.type === 14) {
        // the same weights repacked: its matmul, every row through getRow, and the same on one thread
        const wp = put(unb64(c.weights));
        const type = k.repack(wp, c.type, c.rows, c.cols);
        const packed = k.alloc(n * 4), rows = k.alloc(c.rows * c.cols * 4);
        k.matmul(packed, wp, type, c.rows, c.cols, src, c.nTokens);
        for (let r = 0; r < c.rows; r++) k.getRow(rows + r * c.cols * 4, wp, type, c.cols, r);
        const k1 = kernels1;
        const w1 = k1.alloc(c.weights.length, 64), src1 = k1.alloc(c.cols * c.nTokens * 4), dst1 = k1.alloc(n * 4);
        k1.bytes().set(unb64(c.weights), w1);
        k1.bytes().set(unb64(c.x), src1);
        k1.matmul(dst1, w1, k1.repack(w1, c.type, c.rows, c.cols), c.rows, c.cols, src1, c.nTokens);
        Object.assign(out, { packedType: type, packed: b64(k.bytes().slice(packed, packed + n * 4)),
          packedRows: b64(k.bytes().slice(rows, rows + c.rows * c.cols * 4)), packed1: b64(k1.bytes().slice(dst1, dst1 + n * 4)) });
        if (c.nTokens > 1 && c.nTokens <= 8) out.packedAlone = alone(wp, type);
      }
      outputs.push(out);
    }
    const xs = unb64(expfInputs);
    const src = put(xs), dst = k.alloc(xs.length);
    k.expfVec(dst, src, xs.length / 4);
    self.postMessage({
      build: k.build, threads: k.threads, threads1: kernels1.threads, isolated: self.crossOriginIsolated, outputs,
      layouts: [...k.weightLayouts],
      expf: b64(k.bytes().slice(dst, dst + xs.length)),
      ops: b64(runOps(k, unb64(e.data.opsInput))),
      memory64: e.data.memory64 === false ? undefined : await runMemory64(cases, threads, unb64(e.data.opsInput), outputs),
    });
  } catch (err) {
    self.postMessage({ error: String(err && err.stack || err) });
  }
};
`;

const PAGE_HTML = `<!doctype html><meta charset="utf-8"><title>kernels</title><link rel="icon" href="data:,">
<script type="module">
  import { hostKernelThreads } from '/src/model/kernel-threads.ts';
  const worker = new Worker('/__kernels-test/worker.js', { type: 'module' });
  // The page starts the worker's kernel threads, as the engine's page does (kernel-threads.ts).
  hostKernelThreads(worker);
  window.runInWorker = (request) => new Promise((resolve) => {
    worker.onmessage = (e) => resolve(e.data);
    worker.onerror = (e) => resolve({ error: 'worker error: ' + e.message });
    worker.postMessage(request);
  });
</script>`;

const TEST_PAGES = {
  '/__kernels-test/index.html': { type: 'text/html', body: PAGE_HTML },
  '/__kernels-test/worker.js': { type: 'text/javascript', body: WORKER_JS },
};

// ---------------------------------------------------------------------------
// inputs and from-spec references (as in tests/model/kernels.test.ts)

const INFO: Record<number, { elems: number; bytes: number; act: number }> = {
  [WeightType.F16]: { elems: 1, bytes: 2, act: 0 },
  [WeightType.Q4_0]: { elems: 32, bytes: 18, act: 32 },
  [WeightType.Q8_0]: { elems: 32, bytes: 34, act: 32 },
  [WeightType.Q4_K]: { elems: 256, bytes: 144, act: 256 },
  [WeightType.Q6_K]: { elems: 256, bytes: 210, act: 256 },
};

function half(b: Uint8Array, o: number): number {
  return f16BitsToF32(b[o]! | (b[o + 1]! << 8));
}

function setHalf(b: Uint8Array, o: number, v: number): void {
  const h = f32ToF16Bits(v);
  b[o] = h & 255;
  b[o + 1] = h >>> 8;
}

function randomWeights(type: WeightType, n: number, rng: Rng): Uint8Array {
  const info = INFO[type]!;
  const out = new Uint8Array((n / info.elems) * info.bytes);
  if (type === WeightType.F16) {
    for (let i = 0; i < n; i++) setHalf(out, 2 * i, rng.nextGaussian() * 0.5);
    return out;
  }
  rng.fillBytes(out);
  const sign = () => (rng.nextFloat() < 0.5 ? -1 : 1);
  for (let o = 0; o < out.length; o += info.bytes) {
    if (type === WeightType.Q4_0) setHalf(out, o, sign() * 0.05 * (0.25 + rng.nextFloat()));
    if (type === WeightType.Q8_0) setHalf(out, o, sign() * 0.004 * (0.25 + rng.nextFloat()));
    if (type === WeightType.Q4_K) {
      setHalf(out, o, 0.003 * (0.25 + rng.nextFloat()));
      setHalf(out, o + 2, 0.01 * (0.25 + rng.nextFloat()));
    }
    if (type === WeightType.Q6_K) setHalf(out, o + 208, sign() * 0.0005 * (0.25 + rng.nextFloat()));
  }
  return out;
}

function q4KScaleMin(s: Uint8Array, o: number, j: number): [number, number] {
  if (j < 4) return [s[o + j]! & 63, s[o + j + 4]! & 63];
  return [(s[o + j + 4]! & 15) | ((s[o + j - 4]! >> 6) << 4), (s[o + j + 4]! >> 4) | ((s[o + j]! >> 6) << 4)];
}

/** Decoded weights and, per element, the magnitude float rounding scales with. */
function decode(type: WeightType, b: Uint8Array, n: number): { w: Float64Array; mag: Float64Array } {
  const w = new Float64Array(n), mag = new Float64Array(n);
  const info = INFO[type]!;
  for (let i = 0; i < n; i++) {
    const blk = Math.floor(i / info.elems), o = blk * info.bytes, e = i % info.elems;
    let v: number, m = 0;
    if (type === WeightType.F16) v = half(b, 2 * i);
    else if (type === WeightType.Q4_0) v = half(b, o) * ((e < 16 ? b[o + 2 + e]! & 15 : b[o + 2 + e - 16]! >> 4) - 8);
    else if (type === WeightType.Q8_0) v = half(b, o) * ((b[o + 2 + e]! << 24) >> 24);
    else if (type === WeightType.Q4_K) {
      const j = e >> 5, byte = b[o + 16 + 32 * (j >> 1) + (e & 31)]!;
      const [sc, mn] = q4KScaleMin(b, o + 4, j);
      v = half(b, o) * sc * (j & 1 ? byte >> 4 : byte & 15) - half(b, o + 2) * mn;
      m = 2 * Math.abs(half(b, o + 2) * mn);
    } else {
      const h = e >> 7, k = (e >> 5) & 3, l = e & 31;
      const qlByte = b[o + 64 * h + 32 * (k & 1) + l]!;
      const q = ((k >= 2 ? qlByte >> 4 : qlByte & 15) | (((b[o + 128 + 32 * h + l]! >> (2 * k)) & 3) << 4)) - 32;
      v = half(b, o + 208) * ((b[o + 192 + (e >> 4)]! << 24) >> 24) * q;
    }
    w[i] = v;
    mag[i] = Math.abs(v) + m;
  }
  return { w, mag };
}

interface Case { type: WeightType; rows: number; cols: number; nTokens: number; raw: Uint8Array; x: Float32Array }

function makeCases(): Case[] {
  const rng = new Rng(4242);
  const cases: Case[] = [];
  const shapes: [WeightType, number][] = [
    [WeightType.F16, 45], [WeightType.Q4_0, 160], [WeightType.Q8_0, 160], [WeightType.Q4_K, 512], [WeightType.Q6_K, 512],
  ];
  for (const [type, cols] of shapes) {
    for (const [rows, nTokens] of [[37, 1], [67, 3], [13, 6], [11, 8], [19, 17]] as const) {
      const raw = randomWeights(type, rows * cols, rng);
      const x = new Float32Array(cols * nTokens).map(() => rng.nextGaussian());
      cases.push({ type, rows, cols, nTokens, raw, x });
    }
  }
  // Q4_0 prefill in groups of 4 tokens (relaxed build; the kernel takes 4 groups per pass):
  // one group; a group and a remainder; a pass of 4 groups, a lone group and 3 tokens; past
  // the 64-token chunk (4 passes, then 1 group and 2 tokens); 3 lone groups; rows not a
  // multiple of the 16-row chunks; 1, 3, 5 and 13 blocks per row.
  for (const [rows, cols, nTokens] of [[5, 32, 4], [37, 160, 5], [21, 416, 23], [19, 160, 70], [3, 96, 12]] as const) {
    const raw = randomWeights(WeightType.Q4_0, rows * cols, rng);
    const x = new Float32Array(cols * nTokens).map(() => rng.nextGaussian());
    cases.push({ type: WeightType.Q4_0, rows, cols, nTokens, raw, x });
  }
  // Q4_0 rows of whole 4-block groups, which repack turns into Q4_0x4: decode (1 to 3 tokens),
  // a draft's pass (4 to 8 tokens, row tiles of 4 and what is left),
  // past the 64-token chunk; 1, 4 and 20 groups per row.
  for (const [rows, cols, nTokens] of [[37, 128, 1], [21, 512, 2], [67, 640, 3], [5, 256, 4], [23, 512, 5], [13, 384, 8],
    [40, 2560, 7], [19, 384, 23], [9, 2560, 70]] as const) {
    const raw = randomWeights(WeightType.Q4_0, rows * cols, rng);
    const x = new Float32Array(cols * nTokens).map(() => rng.nextGaussian());
    cases.push({ type: WeightType.Q4_0, rows, cols, nTokens, raw, x });
  }
  // Q4_K on a model's width, prefill tiles of 4 tokens and one more
  {
    const rows = 9, cols = 2560, nTokens = 5;
    cases.push({ type: WeightType.Q4_K, rows, cols, nTokens, raw: randomWeights(WeightType.Q4_K, rows * cols, rng),
      x: new Float32Array(cols * nTokens).map(() => rng.nextGaussian()) });
  }
  // Integer extremes through the group kernel: every nibble 0 (q - 8 = -8) or 15, activations
  // at +-127 of one sign per token, so the sums reach their largest magnitudes.
  for (const nibbles of [0x00, 0xff]) {
    const rows = 6, cols = 512, nTokens = 9;
    const raw = new Uint8Array((rows * cols / 32) * 18);
    for (let o = 0; o < raw.length; o += 18) { setHalf(raw, o, 2 ** -6); raw.fill(nibbles, o + 2, o + 18); }
    const x = new Float32Array(cols * nTokens).map((_, i) => (Math.floor(i / cols) % 2 ? -1 : 1) * (i % 7 === 0 ? 3 : 3 - 3 / 255));
    cases.push({ type: WeightType.Q4_0, rows, cols, nTokens, raw, x });
  }
  // Q6_K (Q6_Kx on the relaxed build) on a model's width, a prefill tile of 8 tokens and one
  // more; then at its largest int16 pair sums: every quant 63, scales 127 and -128 (one
  // sub-block in three 127), activations at +-127 of one sign per token.
  {
    const rows = 7, cols = 2560, nTokens = 9;
    cases.push({ type: WeightType.Q6_K, rows, cols, nTokens, raw: randomWeights(WeightType.Q6_K, rows * cols, rng),
      x: new Float32Array(cols * nTokens).map(() => rng.nextGaussian()) });
  }
  {
    const rows = 5, cols = 512, nTokens = 9;
    const raw = new Uint8Array((rows * cols / 256) * 210);
    for (let o = 0; o < raw.length; o += 210) {
      raw.fill(0xff, o, o + 192);
      for (let j = 0; j < 16; j++) raw[o + 192 + j] = j % 3 === 0 ? 127 : 0x80;
      setHalf(raw, o + 208, 2 ** -10);
    }
    const x = new Float32Array(cols * nTokens).map((_, i) => (Math.floor(i / cols) % 2 ? -1 : 1) * 3);
    cases.push({ type: WeightType.Q6_K, rows, cols, nTokens, raw, x });
  }
  // Q4_K (both builds repack it into Q4_Kx) at the largest int16 pair sums of the relaxed build's
  // kernels (tiles of up to 4 tokens sum a whole super-block's pairs in int16): every nibble 15,
  // every 6-bit scale and min 63, activations at +-127 of one sign per token.
  {
    const rows = 5, cols = 512, nTokens = 5;
    const raw = new Uint8Array((rows * cols / 256) * 144).fill(0xff);
    for (let o = 0; o < raw.length; o += 144) { setHalf(raw, o, 2 ** -10); setHalf(raw, o + 2, 2 ** -12); }
    const x = new Float32Array(cols * nTokens).map((_, i) => (Math.floor(i / cols) % 2 ? -1 : 1) * 3);
    cases.push({ type: WeightType.Q4_K, rows, cols, nTokens, raw, x });
  }
  return cases;
}

const b64 = (u8: Uint8Array) => Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength).toString('base64');
const f32FromB64 = (s: string) => {
  const buf = Buffer.from(s, 'base64');
  return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
};

// ---------------------------------------------------------------------------

interface WorkerReply {
  error?: string;
  ops: string;
  build: string;
  threads: number;
  threads1: number;
  isolated: boolean;
  layouts: [WeightType, WeightLayout][];
  outputs: {
    simd: string; ref: string; simd1: string; packedType?: number; packed?: string; packedRows?: string; packed1?: string;
    alone?: string; packedAlone?: string;
    simd64: string; packed64?: string; packedRows64?: string; multi64?: string;
  }[];
  expf: string;
  memory64?: { memory64: boolean; build: string; threads: number; lowest: number; bufferBytes: number; ops: string };
}

let server: ViteDevServer;
let pagesUrl: string;
let browser: TestBrowser;
let reply: WorkerReply;
let cases: Case[];
let expfInputs: Float32Array;
let opsInput: Float32Array;
let nodeKernels: Kernels;

beforeAll(async () => {
  const pages = await startVitePages(TEST_PAGES);
  server = pages.server;
  pagesUrl = pages.url;
  cases = makeCases();
  const rng = new Rng(99);
  expfInputs = new Float32Array(4001).map(() => -104 + rng.nextFloat() * 193);
  opsInput = new Float32Array(1024).map(() => rng.nextGaussian() * 2);
  nodeKernels = await createKernels({ threads: 1, build: 'simd128' });
}, 120_000);

afterAll(async () => {
  nodeKernels?.dispose();
  await server?.close();
});

/** Runs every case in the browser's worker (with 2 threads, and 1), in a fresh browser. */
async function runInBrowser(name: BrowserName, memory64 = true): Promise<void> {
  browser = await launchBrowser(name);
  const page = await browser.newPage();
  await page.goto(`${pagesUrl}/__kernels-test/index.html`);
  await page.waitForFunction(() => typeof (window as unknown as { runInWorker?: unknown }).runInWorker === 'function');
  const request = {
    threads: 2,
    cases: cases.map((c) => ({ type: c.type, rows: c.rows, cols: c.cols, nTokens: c.nTokens, weights: b64(c.raw), x: b64(new Uint8Array(c.x.buffer)) })),
    expfInputs: b64(new Uint8Array(expfInputs.buffer)),
    opsInput: b64(new Uint8Array(opsInput.buffer)),
    memory64,
  };
  reply = await page.evaluate(
    (req) => (window as unknown as { runInWorker(r: unknown): Promise<unknown> }).runInWorker(req),
    request,
  ) as WorkerReply;
}

// Not in WebKit: these cases are the relaxed build's and the threads' (WebKit has neither: its
// SIMD128 build is checked against Node's below).
describe.each(testBrowsers().filter((name) => name !== 'webkit'))('kernels in %s', (browserName) => {
  beforeAll(() => runInBrowser(browserName), 300_000);
  afterAll(async () => {
    await browser?.close();
  });

  it('runs cross-origin isolated with threads and picks the relaxed build after its probe', () => {
    expect(reply.error).toBeUndefined();
    expect(reply.isolated).toBe(true);
    expect(reply.threads).toBe(2);
    expect(reply.threads1).toBe(1);
    expect(reply.build).toBe('relaxed');
    expect(browser.consoleErrors).toEqual([]);
  });

  it("reads the relaxed build's layout table; the two builds together read every WeightType", () => {
    expect(layoutTableProblems(reply.layouts)).toEqual([]);
    const read = new Set([...reply.layouts.map(([type]) => type), ...nodeKernels.weightLayouts.keys()]);
    expect([...read].sort((a, b) => a - b)).toEqual(Object.values(WeightType).sort((a, b) => a - b));
  });

  it('relaxed matmul agrees with the scalar reference and with f64', () => {
    expect(reply.error).toBeUndefined();
    let packedCases = 0;
    cases.forEach((c, ci) => {
      const o = reply.outputs[ci]!;
      const ref = f32FromB64(o.ref);
      const variants: [string, Float32Array][] = [['relaxed', f32FromB64(o.simd)]];
      if (o.packedType !== undefined && o.packedType !== c.type) variants.push([`relaxed, repacked (type ${o.packedType})`, f32FromB64(o.packed!)]);
      packedCases += variants.length - 1;
      const { w, mag } = decode(c.type, c.raw, c.rows * c.cols);
      const block = INFO[c.type]!.act;
      // float accumulation bound, as in tests/model/kernels.test.ts: (blocks + 8) roundings, twice
      const ACCUMULATION = 2 * ((block ? c.cols / INFO[c.type]!.elems : c.cols) + 8) * EPS32;
      for (let t = 0; t < c.nTokens; t++) {
        const halfStep = new Float64Array(c.cols);
        if (block) {
          for (let b0 = 0; b0 < c.cols; b0 += block) {
            let amax = 0;
            for (let i = 0; i < block; i++) amax = Math.max(amax, Math.abs(c.x[t * c.cols + b0 + i]!));
            // |x - d*round(x/d)| <= d/2 = amax/254; blocks of 32 store d in f16, off by <= 2^-11 * d per unit of q (|q| <= 127)
            halfStep.fill((amax / 254) * 1.001 + (block === 32 ? amax * 2 ** -11 : 0), b0, b0 + block);
          }
        }
        for (let r = 0; r < c.rows; r++) {
          let want = 0, size = 0, quantization = 0;
          for (let i = 0; i < c.cols; i++) {
            // F16 weights see activations rounded to f16, as llama.cpp converts them
            const xi = c.type === WeightType.F16 ? f16BitsToF32(f32ToF16Bits(c.x[t * c.cols + i]!)) : c.x[t * c.cols + i]!;
            want += w[r * c.cols + i]! * xi;
            size += mag[r * c.cols + i]! * (Math.abs(xi) + halfStep[i]!);
            quantization += Math.abs(w[r * c.cols + i]!) * halfStep[i]!;
          }
          const rf = ref[t * c.rows + r]!;
          for (const [name, simd] of variants) {
            const g = simd[t * c.rows + r]!;
            const where = `type ${c.type} ${c.rows}x${c.cols} token ${t} row ${r}`;
            if (!(Math.abs(g - rf) <= ACCUMULATION * size + 1e-30)) throw new Error(`${where}: ${name} ${g} vs reference ${rf}`);
            if (!(Math.abs(g - want) <= quantization + ACCUMULATION * size + 1e-30)) throw new Error(`${where}: ${name} ${g} vs f64 ${want}`);
          }
        }
      }
    });
    // the nine Q4_0 cases of whole 4-block groups and the two extremes; the seven Q6_K and the
    // seven Q4_K cases
    expect(packedCases).toBe(25);
  });

  it('repack turns Q4_0 into Q4_0x4 where rows hold whole 4-block groups, Q4_K into Q4_Kx and Q6_K into Q6_Kx; rows decode to the same weights', () => {
    expect(reply.error).toBeUndefined();
    cases.forEach((c, ci) => {
      if (c.type !== WeightType.Q4_0 && c.type !== WeightType.Q4_K && c.type !== WeightType.Q6_K) return;
      const o = reply.outputs[ci]!;
      const packed = c.type === WeightType.Q4_0 && c.cols % 128 === 0 ? WeightType.Q4_0x4 : c.type === WeightType.Q6_K ? WeightType.Q6_Kx : c.type === WeightType.Q4_K ? WeightType.Q4_Kx : c.type;
      expect(o.packedType, `${c.rows}x${c.cols}`).toBe(packed);
      const rows = f32FromB64(o.packedRows!);
      const src = nodeKernels.alloc(c.raw.length, 64), dst = nodeKernels.alloc(c.cols * 4);
      nodeKernels.bytes().set(c.raw, src);
      for (let r = 0; r < c.rows; r++) {
        nodeKernels.getRow(dst, src, c.type, c.cols, r);
        expect(rows.subarray(r * c.cols, (r + 1) * c.cols), `${c.rows}x${c.cols} row ${r}`).toEqual(nodeKernels.f32().slice(dst / 4, dst / 4 + c.cols));
      }
    });
  });

  it('relaxed matmul gives identical bits on 1 and 2 threads', () => {
    expect(reply.error).toBeUndefined();
    cases.forEach((c, ci) => {
      const o = reply.outputs[ci]!;
      expect(f32FromB64(o.simd), `type ${c.type} ${c.rows}x${c.cols} x ${c.nTokens} tokens`).toEqual(f32FromB64(o.simd1));
      if (o.packed) expect(f32FromB64(o.packed), `repacked ${c.rows}x${c.cols} x ${c.nTokens} tokens`).toEqual(f32FromB64(o.packed1!));
    });
  });

  it('up to 8 tokens in a call, each token gets the bits it gets alone (every type and layout): what speculative decoding relies on', () => {
    expect(reply.error).toBeUndefined();
    let checked = 0;
    cases.forEach((c, ci) => {
      const o = reply.outputs[ci]!;
      if (c.nTokens < 2 || c.nTokens > 8) return;
      expect(o.simd, `type ${c.type} ${c.rows}x${c.cols} x ${c.nTokens} tokens`).toBe(o.alone);
      if (o.packed) expect(o.packed, `repacked type ${c.type} ${c.rows}x${c.cols} x ${c.nTokens} tokens`).toBe(o.packedAlone);
      checked++;
    });
    expect(checked).toBeGreaterThanOrEqual(15);
  });

  it('Q4_0 prefill: tokens in groups of 4 equal the scalar reference bit for bit', () => {
    // The group kernel (from 9 tokens on) rounds as the reference does: per block (d_w * d_x) *
    // isum, added in block order (lanes are tokens, not partial sums). Tokens past the last full
    // group of 4 go through the per-token kernel, whose lanes hold partial sums: only checked above.
    expect(reply.error).toBeUndefined();
    let checked = 0;
    cases.forEach((c, ci) => {
      if (c.type !== WeightType.Q4_0 || c.nTokens <= 8) return;
      const o = reply.outputs[ci]!;
      const ref = f32FromB64(o.ref);
      const grouped = 4 * Math.floor(c.nTokens / 4) * c.rows;
      for (const [name, out] of [['Q4_0', o.simd], ['Q4_0x4', o.packed!]] as const) {
        expect(f32FromB64(out).subarray(0, grouped), `${name} ${c.rows}x${c.cols} x ${c.nTokens} tokens`).toEqual(ref.subarray(0, grouped));
      }
      checked += grouped;
    });
    expect(checked).toBeGreaterThan(0);
  });

  it('relaxed expf (clang 22) returns the same bits as the SIMD128 build (clang 14) in Node', () => {
    const got = f32FromB64(reply.expf);
    const src = nodeKernels.alloc(expfInputs.length * 4), dst = nodeKernels.alloc(expfInputs.length * 4);
    nodeKernels.f32().set(expfInputs, src / 4);
    nodeKernels.expfVec(dst, src, expfInputs.length);
    expect(got).toEqual(nodeKernels.f32().slice(dst / 4, dst / 4 + expfInputs.length));
  });

  it('relaxed-build rmsnorm, RoPE, SiLU and KV store return the same bits as the SIMD128 build; its attention is within rounding of f64', () => {
    // Same C source, no reassociation and no contraction into fused multiply-adds
    // (-ffp-contract=off): identical results, but for the attention's explicit multiply-adds,
    // fused in the relaxed build (relaxed_madd) and not in SIMD128.
    const got = f32FromB64(reply.ops);
    const want = new Float32Array(runOps(nodeKernels, new Uint8Array(opsInput.buffer)).buffer);
    const n = opsInput.length;
    expect(got.subarray(0, 3 * n)).toEqual(want.subarray(0, 3 * n));
    // runOps' attention: q = the SiLU output (rounded to f16 in place), K = the input, V = the RoPE output
    const cached = (f: Float32Array) => Float64Array.from(f.subarray(0, 8 * 64), (x) => f16BitsToF32(f32ToF16Bits(x)));
    const shape = { nTokens: 8, startPos: 0, nHeads: 4, nKvHeads: 2, headDim: 32 };
    expect(attentionMismatch(got.subarray(3 * n), got.subarray(2 * n, 3 * n), cached(opsInput), cached(got.subarray(n, 2 * n)), shape)).toBeUndefined();
    expect(attentionMismatch(want.subarray(3 * n), want.subarray(2 * n, 3 * n), cached(opsInput), cached(want.subarray(n, 2 * n)), shape)).toBeUndefined();
  });

  it('the memory64 build, with its data past 4 GiB, gives the bits of the wasm32 relaxed build in every kernel', () => {
    // The same C source and compiler; only the pointers are 8 bytes wide.
    expect(reply.error).toBeUndefined();
    const m = reply.memory64!;
    expect([m.memory64, m.build, m.threads]).toEqual([true, 'relaxed', 2]);
    expect(m.lowest).toBeGreaterThan(2 ** 32);
    expect(m.bufferBytes).toBeGreaterThan(2 ** 32);
    let multi = 0;
    cases.forEach((c, ci) => {
      const o = reply.outputs[ci]!;
      const where = `type ${c.type} ${c.rows}x${c.cols} x ${c.nTokens} tokens`;
      expect(f32FromB64(o.simd64), where).toEqual(f32FromB64(o.simd));
      if (!o.packed) return;
      expect(f32FromB64(o.packed64!), `repacked ${where}`).toEqual(f32FromB64(o.packed));
      expect(f32FromB64(o.packedRows64!), `rows ${where}`).toEqual(f32FromB64(o.packedRows!));
      const [plain, packed] = o.multi64!.split(',') as [string, string];
      expect(f32FromB64(plain), `matmulMulti ${where}`).toEqual(f32FromB64(o.simd));
      expect(f32FromB64(packed), `matmulMulti repacked ${where}`).toEqual(f32FromB64(o.packed));
      multi++;
    });
    expect(multi).toBeGreaterThan(10);
    expect(f32FromB64(m.ops)).toEqual(f32FromB64(reply.ops));
  });
});

// WebKit has no relaxed SIMD and, without SharedArrayBuffer, one thread: its build is SIMD128,
// the one Node runs here, so every kernel must give Node's bits exactly (same module, another JIT).
describe.each(testBrowsers().filter((name) => name === 'webkit'))('kernels in %s', (browserName) => {
  beforeAll(() => runInBrowser(browserName, false), 300_000);
  afterAll(async () => {
    await browser?.close();
  });

  it("picks the SIMD128 build after its probe (the relaxed one does not validate), on one thread", () => {
    expect(reply.error).toBeUndefined();
    expect(reply.isolated).toBe(true);
    expect([reply.build, reply.threads, reply.threads1]).toEqual(['simd128', 1, 1]);
    expect(layoutTableProblems(reply.layouts)).toEqual([]);
    expect(reply.layouts).toEqual([...nodeKernels.weightLayouts]);
    expect(browser.consoleErrors).toEqual([]);
  });

  it("gives Node's SIMD128 bits for every matmul, repacked layout and row, the reference and every other kernel", () => {
    expect(reply.error).toBeUndefined();
    const k = nodeKernels;
    const put = (u8: Uint8Array) => { const p = k.alloc(u8.length, 64); k.bytes().set(u8, p); return p; };
    const out = (p: number, floats: number) => k.f32().slice(p / 4, p / 4 + floats);
    let repacked = 0;
    cases.forEach((c, ci) => {
      const o = reply.outputs[ci]!;
      const where = `type ${c.type} ${c.rows}x${c.cols} x ${c.nTokens} tokens`;
      const n = c.rows * c.nTokens;
      const w = put(c.raw), src = put(new Uint8Array(c.x.buffer)), simd = k.alloc(n * 4), ref = k.alloc(n * 4);
      k.matmul(simd, w, c.type, c.rows, c.cols, src, c.nTokens);
      k.matmulRef(ref, w, c.type, c.rows, c.cols, src, c.nTokens);
      expect(f32FromB64(o.simd), where).toEqual(out(simd, n));
      expect(f32FromB64(o.simd1), `one thread, ${where}`).toEqual(out(simd, n));
      expect(f32FromB64(o.ref), `reference, ${where}`).toEqual(out(ref, n));
      if (o.packedType === undefined) return;
      const wp = put(c.raw);
      const type = k.repack(wp, c.type, c.rows, c.cols);
      expect(o.packedType, where).toBe(type);
      const packed = k.alloc(n * 4), rows = k.alloc(c.rows * c.cols * 4);
      k.matmul(packed, wp, type, c.rows, c.cols, src, c.nTokens);
      for (let r = 0; r < c.rows; r++) k.getRow(rows + r * c.cols * 4, wp, type, c.cols, r);
      expect(f32FromB64(o.packed!), `repacked, ${where}`).toEqual(out(packed, n));
      expect(f32FromB64(o.packedRows!), `rows, ${where}`).toEqual(out(rows, c.rows * c.cols));
      if (type !== c.type) repacked++;
    });
    // Q4_0 → Q4_0x4 (whole 4-block groups) and Q4_K → Q4_Kx: the SIMD128 build's layouts
    expect(repacked).toBeGreaterThan(10);
    const xs = k.alloc(expfInputs.length * 4), ys = k.alloc(expfInputs.length * 4);
    k.f32().set(expfInputs, xs / 4);
    k.expfVec(ys, xs, expfInputs.length);
    expect(f32FromB64(reply.expf)).toEqual(out(ys, expfInputs.length));
    expect(f32FromB64(reply.ops)).toEqual(new Float32Array(runOps(k, new Uint8Array(opsInput.buffer)).buffer));
  });
});
