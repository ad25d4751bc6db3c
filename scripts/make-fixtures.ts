// Generates fixture GGUFs: `npm run fixtures -- [--force] [names...]`.
// Without names: every tiny and small fixture. The full-size qwen3-4b-* files and the F32 twins
// (`<name>-dequant`) only when named.
// --force regenerates files that are already current. --list prints the known names.
import { rm, stat } from 'node:fs/promises';
import { ensureFixture, fixturePath } from '../tests/fixtures/fixtures.ts';
import { DEQUANTIZED_NAMES, FIXTURE_NAMES, parseFixtureName } from '../tests/fixtures/models.ts';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const force = args.includes('--force');
  if (args.includes('--list')) {
    for (const name of [...FIXTURE_NAMES, ...DEQUANTIZED_NAMES]) console.log(name);
    return;
  }
  const named = args.filter((a) => !a.startsWith('--'));
  const names = named.length > 0 ? named : FIXTURE_NAMES.filter((n) => !n.startsWith('qwen3-4b-'));
  for (const name of names) parseFixtureName(name); // fail on a typo before any work

  for (const name of names) {
    if (force) await rm(fixturePath(name), { force: true });
    const started = performance.now();
    const path = await ensureFixture(name);
    const seconds = (performance.now() - started) / 1000;
    const { size } = await stat(path);
    console.log(`${name.padEnd(16)} ${(size / 2 ** 20).toFixed(1).padStart(8)} MiB  ${seconds.toFixed(1).padStart(6)} s  ${path}`);
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
