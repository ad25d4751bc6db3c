#!/usr/bin/env node
// Builds the kernel modules from wasm/*.c:
//   wasm/build/qwen-simd128.wasm   emcc (clang) -msimd128, linked with wasm-ld
//   wasm/build/qwen-relaxed.wasm   @yowasp/clang (clang 22) -mrelaxed-simd, its own wasm-ld
//   wasm/build/qwen-relaxed64.wasm the same as wasm64 (memory64: 8-byte pointers, up to 16 GiB)
// No emscripten JS glue: the modules import `env.memory` (shared, max 4 GiB; 16 GiB for
// memory64) and export their functions, __stack_pointer and __heap_base.
//
//   node scripts/build-wasm.mjs            build into wasm/build/
//   node scripts/build-wasm.mjs --check    rebuild into a temp dir, exit 1 if the
//                                          committed files differ
//   node scripts/build-wasm.mjs --only simd128|relaxed|relaxed64
//
// Tools: EMCC (default `emcc` on PATH) and WASM_LD (default: `wasm-ld`,
// `wasm-ld-14`, or the wasm-ld next to emsdk's LLVM, in that order).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const wasmDir = join(root, 'wasm');
const committedDir = join(wasmDir, 'build');

// The SIMD builds differ in one file each: their dot-product kernels and layout table.
const COMMON_SOURCES = ['libc.c', 'quantize.c', 'weights.c', 'dot_ref.c', 'matmul.c', 'ops.c', 'attention.c', 'pool.c'];
const SOURCES = { simd128: [...COMMON_SOURCES, 'dot_simd128.c'], relaxed: [...COMMON_SOURCES, 'dot_relaxed.c'] };
const HEADERS = ['kernels.h', 'quants.h', 'dot_simd.h'];

// -ffp-contract=off: the compiler fuses no multiply-adds, so scalar and SIMD paths
// round identically; the only fused ones are the attention's explicit madd_f32x4
// (kernels.h) in the relaxed build. -ffreestanding: no libc, and memset/memcpy
// loops stay loops.
// Warnings are printed, not fatal: a newer compiler must still build.
const CFLAGS = ['-O3', '-msimd128', '-matomics', '-mbulk-memory', '-mmutable-globals', '-ffreestanding',
  '-fvisibility=hidden', '-ffp-contract=off', '-Wall', '-Wextra'];
const LDFLAGS = ['--no-entry', '--export-dynamic', '--shared-memory', '--import-memory',
  '--export=__stack_pointer', '--export=__heap_base', '--stack-first', '-z', 'stack-size=262144'];
// wasm32 addresses 4 GiB; memory64 up to the 16 GiB browsers allow a memory.
const MAX_MEMORY = { wasm32: '--max-memory=4294967296', wasm64: '--max-memory=17179869184' };

const OUTPUTS = { simd128: 'qwen-simd128.wasm', relaxed: 'qwen-relaxed.wasm', relaxed64: 'qwen-relaxed64.wasm' };

function run(cmd, args, opts = {}) {
  const env = { ...process.env };
  // Debian's emscripten needs its node modules on NODE_PATH.
  if (existsSync('/usr/share/nodejs')) env.NODE_PATH = [env.NODE_PATH, '/usr/share/nodejs'].filter(Boolean).join(':');
  const r = spawnSync(cmd, args, { encoding: 'utf8', env, ...opts });
  if (r.error) throw new Error(`cannot run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status}):\n${r.stdout}${r.stderr}`);
  if (r.stderr.trim() && !args.includes('--version')) process.stderr.write(r.stderr);
  return r.stdout.trim();
}

function works(cmd) {
  const r = spawnSync(cmd, ['--version'], { encoding: 'utf8' });
  return !r.error && r.status === 0;
}

function findWasmLd() {
  if (process.env.WASM_LD) return process.env.WASM_LD;
  for (const c of ['wasm-ld', 'wasm-ld-14']) if (works(c)) return c;
  const emConfig = spawnSync('em-config', ['LLVM_ROOT'], { encoding: 'utf8' });
  if (!emConfig.error && emConfig.status === 0) {
    const candidate = join(emConfig.stdout.trim(), 'wasm-ld');
    if (existsSync(candidate)) return candidate;
  }
  throw new Error('wasm-ld not found: set WASM_LD, install lld (wasm-ld), or use emsdk');
}

function buildSimd128(outFile) {
  const emcc = process.env.EMCC || 'emcc';
  const wasmLd = findWasmLd();
  const objDir = mkdtempSync(join(tmpdir(), 'qwen-wasm-obj-'));
  try {
    const objects = SOURCES.simd128.map((src) => {
      const obj = join(objDir, src.replace(/\.c$/, '.o'));
      run(emcc, [...CFLAGS, '-c', src, '-o', obj], { cwd: wasmDir });
      return obj;
    });
    run(wasmLd, [...LDFLAGS, MAX_MEMORY.wasm32, '-o', outFile, ...objects]);
  } finally {
    rmSync(objDir, { recursive: true, force: true });
  }
  return `${run(emcc, ['--version']).split('\n')[0]}; ${run(wasmLd, ['--version']).split('\n')[0]}`;
}

/** The relaxed build with @yowasp/clang, for wasm32 or (memory64) wasm64. */
async function buildRelaxed(outFile, target = 'wasm32') {
  const { runClang, runLLVM } = await import('@yowasp/clang');
  const files = {};
  for (const f of [...SOURCES.relaxed, ...HEADERS]) files[f] = readFileSync(join(wasmDir, f));
  let stderr = '';
  const options = {
    stderr: (bytes) => { if (bytes) stderr += new TextDecoder().decode(bytes); },
    fetchProgress: () => {},
  };
  await runLLVM(null, {}, { fetchProgress: () => {} });  // load the toolchain quietly
  let tree;
  try {
    tree = await runClang(['clang', `--target=${target}`, '-mrelaxed-simd', ...CFLAGS, '-c', ...SOURCES.relaxed], files, options);
  } catch (e) {
    throw new Error(`@yowasp/clang failed: ${e.message}\n${stderr}`);
  }
  const objects = SOURCES.relaxed.map((s) => s.replace(/\.c$/, '.o'));
  const objFiles = Object.fromEntries(objects.map((o) => [o, tree[o]]));
  let linked;
  try {
    const addressing = target === 'wasm64' ? ['-mwasm64'] : [];
    linked = await runLLVM(['wasm-ld', ...addressing, ...LDFLAGS, MAX_MEMORY[target], '-o', 'out.wasm', ...objects], objFiles, options);
  } catch (e) {
    throw new Error(`@yowasp/clang wasm-ld failed: ${e.message}\n${stderr}`);
  }
  if (stderr.trim()) process.stderr.write(stderr);
  writeFileSync(outFile, linked['out.wasm']);
  const pkg = JSON.parse(readFileSync(join(root, 'node_modules/@yowasp/clang/package.json'), 'utf8'));
  return `@yowasp/clang ${pkg.version}`;
}

async function buildAll(outDir, only) {
  mkdirSync(outDir, { recursive: true });
  const tools = {};
  if (!only || only === 'simd128') tools.simd128 = buildSimd128(join(outDir, OUTPUTS.simd128));
  if (!only || only === 'relaxed') tools.relaxed = await buildRelaxed(join(outDir, OUTPUTS.relaxed));
  if (!only || only === 'relaxed64') tools.relaxed64 = await buildRelaxed(join(outDir, OUTPUTS.relaxed64), 'wasm64');
  return tools;
}

function firstDifference(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}

async function main() {
  const args = process.argv.slice(2);
  const check = args.includes('--check');
  const onlyIndex = args.indexOf('--only');
  const only = onlyIndex >= 0 ? args[onlyIndex + 1] : undefined;
  if (only && !(only in OUTPUTS)) throw new Error(`--only takes ${Object.keys(OUTPUTS).join(', ')}, not ${only}`);

  if (!check) {
    const tools = await buildAll(committedDir, only);
    for (const [name, tool] of Object.entries(tools)) {
      const size = readFileSync(join(committedDir, OUTPUTS[name])).length;
      console.log(`wasm/build/${OUTPUTS[name]}: ${size} bytes (${tool})`);
    }
    return;
  }

  const tmp = mkdtempSync(join(tmpdir(), 'qwen-wasm-check-'));
  try {
    const tools = await buildAll(tmp, only);
    const problems = [];
    for (const name of Object.keys(tools)) {
      const file = OUTPUTS[name];
      const committedPath = join(committedDir, file);
      if (!existsSync(committedPath)) {
        problems.push(`wasm/build/${file} is missing: run npm run build:wasm and commit it`);
        continue;
      }
      const fresh = readFileSync(join(tmp, file));
      const committed = readFileSync(committedPath);
      if (Buffer.compare(fresh, committed) !== 0) {
        problems.push(`wasm/build/${file} differs from a fresh build (committed ${committed.length} bytes, ` +
          `rebuilt ${fresh.length} bytes, first difference at byte ${firstDifference(fresh, committed)}; ` +
          `toolchain: ${tools[name]}). Rebuild with npm run build:wasm and commit the result, ` +
          `or build with the toolchain the committed file came from.`);
      }
    }
    if (problems.length) {
      for (const p of problems) console.error(`build-wasm --check: ${p}`);
      process.exitCode = 1;
    } else {
      console.log(`build-wasm --check: ${Object.keys(tools).map((n) => OUTPUTS[n]).join(', ')} match a fresh build`);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  // Leftover sources not in SOURCES would silently not be built.
  const built = new Set([...SOURCES.simd128, ...SOURCES.relaxed]);
  const strays = readdirSync(wasmDir).filter((f) => f.endsWith('.c') && !built.has(f));
  if (strays.length) {
    console.error(`build-wasm --check: wasm/ has C files that are not built: ${strays.join(', ')}`);
    process.exitCode = 1;
  }
}

main().catch((e) => {
  console.error(`build-wasm: ${e.message}`);
  process.exit(1);
});
