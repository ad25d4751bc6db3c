// `npm run build:lib`: qwen-web as an npm-style package in dist-lib/ (or `--out-dir DIR`).
//
// tsc emits JavaScript and declarations module for module (tsconfig.lib.json), keeping the
// repository's layout so every `new URL('…', import.meta.url)` still points where it did. This
// script then makes those URLs resolve in the output: worker entry points written as `.ts`
// become `.js` (tsc rewrites import specifiers, not URL strings), and the files other URLs name
// (the wasm kernels) are copied beside the emitted modules. A consumer's bundler follows the
// URLs from there and emits the workers and wasm itself. Vite's library mode is not used: it
// inlines every asset as a data: URL, which the app's CSP (connect-src) would refuse to fetch.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function parseOutDir(argv: string[]): string {
  const index = argv.indexOf('--out-dir');
  if (index === -1) return join(ROOT, 'dist-lib');
  const value = argv[index + 1];
  if (!value) throw new Error('--out-dir needs a directory');
  return resolve(value);
}

function jsFiles(dir: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...jsFiles(path));
    else if (entry.name.endsWith('.js')) files.push(path);
  }
  return files;
}

// `new URL('./x', import.meta.url)` with a relative literal: what bundlers follow.
const URL_PATTERN = /new URL\((['"])(\.{1,2}\/[^'"]+)\1,\s*import\.meta\.url\)/g;

/** Rewrites and checks the relative URLs of one emitted module; returns the assets copied. */
function fixModuleUrls(outDir: string, file: string): string[] {
  const copied: string[] = [];
  const code = readFileSync(file, 'utf8');
  const fixed = code.replace(URL_PATTERN, (whole, quote: string, spec: string) => {
    let target = spec;
    if (spec.endsWith('.ts')) {
      target = `${spec.slice(0, -3)}.js`;
      if (!existsSync(resolve(dirname(file), target))) {
        throw new Error(`${relative(outDir, file)}: ${spec} names a module tsc did not emit (add it to tsconfig.lib.json)`);
      }
    } else {
      const emitted = resolve(dirname(file), spec);
      const source = resolve(ROOT, relative(outDir, emitted));
      if (!existsSync(source)) throw new Error(`${relative(outDir, file)}: ${spec} does not exist in the repository`);
      mkdirSync(dirname(emitted), { recursive: true });
      copyFileSync(source, emitted);
      copied.push(relative(outDir, emitted));
    }
    return whole.replace(`${quote}${spec}${quote}`, `${quote}${target}${quote}`);
  });
  if (fixed !== code) writeFileSync(file, fixed);
  return copied;
}

const outDir = parseOutDir(process.argv.slice(2));
rmSync(outDir, { recursive: true, force: true });
const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.lib.json'), '--outDir', outDir], {
  stdio: 'inherit',
  cwd: ROOT,
});
if (tsc.status !== 0) process.exit(tsc.status ?? 1);

const assets = new Set<string>();
for (const file of jsFiles(outDir)) for (const asset of fixModuleUrls(outDir, file)) assets.add(asset);
if (!existsSync(join(outDir, 'src/lib.js'))) throw new Error('src/lib.js was not emitted');
console.log(`build-lib: ${relative(ROOT, outDir) || outDir}: ${jsFiles(outDir).length} modules, assets: ${[...assets].sort().join(', ')}`);
