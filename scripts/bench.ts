// npm run bench -- [options]: one table comparing qwen-web with its peers on Qwen3-4B-shaped
// fixtures. Each row is one engine on one model file at one thread count: load time, prefill
// speed over the prompt, greedy decode speed, peak memory, and prompt/decode speed relative to
// llama.cpp native at the same thread count.
//
//   --models q4_0,q4_k_m     fixtures qwen3-4b-<type>; a name with a dash is a fixture name
//                            as is (e.g. small-q4_0)
//   --model a.gguf,b.gguf    GGUF files instead of fixtures
//   --engines native,wllama,qwen-node,qwen-browser
//   --threads 1,2   --prompt 128   --decode 64
//   --repeat 3               timed rounds after one load; each engine's best round is shown
//   --timeout 1800           seconds per run
//   --json out.json          also write the rows as JSON
//   --verbose                echo engines' logs
//
// Node engines run in their own child process (peak = that process's maxRSS); browser engines
// in a fresh Chromium each (peak = the page renderer's VmHWM). A failing engine shows its
// error in the table and the rest still run.
import { spawn, type ChildProcess } from 'node:child_process';
import { statSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildPrompt, invalidUtf8TokenIds } from './bench/prompt.ts';
import { runQwenWebBrowser } from './bench/qwen-web-browser.ts';
import {
  CHILD_ERROR_PREFIX,
  CHILD_RESULT_PREFIX,
  ENGINE_NAMES,
  ENGINE_WHERE,
  isNotYetAvailable,
  NotYetAvailableError,
  type BenchResult,
  type ChildError,
  type EngineName,
  type EngineRunOptions,
} from './bench/types.ts';
import { runWllama } from './bench/wllama.ts';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CHILD_ENTRY = join(REPO_ROOT, 'scripts', 'bench', 'child.ts');

interface BenchSettings {
  models: Array<{ label: string; resolvePath: () => Promise<string> }>;
  engines: EngineName[];
  threads: number[];
  promptTokens: number;
  decodeSteps: number;
  repeats: number;
  timeoutMs: number;
  jsonPath?: string;
  verbose: boolean;
}

interface BenchRow {
  model: string;
  engine: EngineName;
  threads: number;
  result?: BenchResult;
  error?: string;
  notYetAvailable?: boolean;
}

function splitList(value: string): string[] {
  return value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

function positiveInteger(value: string, flag: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number <= 0) throw new Error(`${flag} wants a positive integer, got '${value}'`);
  return number;
}

function parseSettings(argv: string[]): BenchSettings {
  const { values } = parseArgs({
    args: argv,
    options: {
      models: { type: 'string', default: 'q4_0,q4_k_m' },
      model: { type: 'string' },
      engines: { type: 'string', default: ENGINE_NAMES.join(',') },
      threads: { type: 'string', default: '1,2' },
      prompt: { type: 'string', default: '128' },
      decode: { type: 'string', default: '64' },
      repeat: { type: 'string', default: '3' },
      timeout: { type: 'string', default: '1800' },
      json: { type: 'string' },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(readUsage());
    process.exit(0);
  }
  const engines = splitList(values.engines).map((name) => {
    if (!(ENGINE_NAMES as readonly string[]).includes(name)) {
      throw new Error(`unknown engine '${name}' (known: ${ENGINE_NAMES.join(', ')})`);
    }
    return name as EngineName;
  });
  const models =
    values.model !== undefined
      ? splitList(values.model).map((path) => ({ label: basename(path), resolvePath: async () => resolve(path) }))
      : splitList(values.models).map((name) => {
          const fixture = name.includes('-') ? name : `qwen3-4b-${name}`;
          return { label: fixture, resolvePath: () => fixturePath(fixture) };
        });
  return {
    models,
    engines,
    threads: splitList(values.threads).map((value) => positiveInteger(value, '--threads')),
    promptTokens: positiveInteger(values.prompt, '--prompt'),
    decodeSteps: positiveInteger(values.decode, '--decode'),
    repeats: positiveInteger(values.repeat, '--repeat'),
    timeoutMs: positiveInteger(values.timeout, '--timeout') * 1000,
    jsonPath: values.json,
    verbose: values.verbose,
  };
}

function readUsage(): string {
  return 'usage: npm run bench -- [--models q4_0,q4_k_m | --model a.gguf] [--engines native,wllama,qwen-node,qwen-browser]\n' +
    '                          [--threads 1,2] [--prompt 128] [--decode 64] [--repeat 3] [--timeout 1800] [--json out.json] [--verbose]\n';
}

async function fixturePath(name: string): Promise<string> {
  // Imported on demand: the generator is only needed when a fixture is asked for.
  const { ensureFixture } = await import('../tests/fixtures/fixtures.ts');
  log(`fixture ${name}: making sure it exists (the 4B ones take about a minute the first time)`);
  return ensureFixture(name);
}

function log(line: string): void {
  process.stderr.write(`[bench] ${line}\n`);
}

// Children running now, so that Ctrl-C / SIGTERM ends them too (Playwright closes Chromium
// itself on those signals).
const runningChildren = new Set<ChildProcess>();

function stopOnSignal(signal: NodeJS.Signals): void {
  process.on(signal, () => {
    for (const child of runningChildren) child.kill('SIGKILL');
    process.stderr.write(`bench: ${signal}, stopped\n`);
    process.exit(130);
  });
}

/** Runs a Node engine in a child process and reads back its one result line. */
function runInChild(
  engine: EngineName,
  options: EngineRunOptions,
  timeoutMs: number,
  verbose: boolean,
): Promise<BenchResult> {
  return new Promise((resolveRun, rejectRun) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD_ENTRY, engine], {
      cwd: REPO_ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    runningChildren.add(child);
    let stdout = '';
    const stderrTail: string[] = [];
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      stdout += text;
    });
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      if (verbose) process.stderr.write(text);
      stderrTail.push(...text.split('\n').filter((line) => line.trim() !== ''));
      stderrTail.splice(0, Math.max(0, stderrTail.length - 8));
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      rejectRun(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      runningChildren.delete(child);
      const lines = stdout.split('\n');
      const resultLine = lines.find((line) => line.startsWith(CHILD_RESULT_PREFIX));
      const errorLine = lines.find((line) => line.startsWith(CHILD_ERROR_PREFIX));
      if (resultLine) {
        resolveRun(JSON.parse(resultLine.slice(CHILD_RESULT_PREFIX.length)) as BenchResult);
      } else if (errorLine) {
        const report = JSON.parse(errorLine.slice(CHILD_ERROR_PREFIX.length)) as ChildError;
        rejectRun(report.notYetAvailable ? new NotYetAvailableError(report.message) : new Error(report.message));
      } else if (signal === 'SIGKILL') {
        rejectRun(new Error(`timed out after ${timeoutMs / 1000} s`));
      } else {
        const why = signal ? `signal ${signal}` : `code ${code}`;
        rejectRun(new Error(`child exited (${why}): ${stderrTail.slice(-3).join(' | ')}`));
      }
    });
    child.stdin.end(JSON.stringify(options));
  });
}

async function runEngine(engine: EngineName, options: EngineRunOptions, settings: BenchSettings): Promise<BenchResult> {
  const pageLog = settings.verbose ? (line: string) => log(`  page: ${line}`) : undefined;
  switch (engine) {
    case 'native':
    case 'qwen-node':
      return runInChild(engine, options, settings.timeoutMs, settings.verbose);
    case 'wllama':
      return runWllama({ ...options, timeoutMs: settings.timeoutMs, log: pageLog });
    case 'qwen-browser':
      return runQwenWebBrowser({ ...options, timeoutMs: settings.timeoutMs, log: pageLog });
  }
}

// ---------------------------------------------------------------------------------------------
// The table

function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return '–';
  if (value >= 100) return value.toFixed(0);
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

function formatRatio(value: number | undefined, native: number | undefined): string {
  if (value === undefined || native === undefined || native <= 0) return '–';
  return `${(value / native).toFixed(2)}×`;
}

function renderTable(rows: BenchRow[]): string {
  const header = ['model', 'engine', 'where', 'threads', 'load s', 'prompt tok/s', 'decode tok/s', 'peak MiB', 'prompt vs native', 'decode vs native', 'note'];
  const body = rows.map((row) => {
    const native = rows.find((other) => other.engine === 'native' && other.model === row.model && other.threads === row.threads)?.result;
    const result = row.result;
    const note = row.notYetAvailable ? 'not yet available' : row.error !== undefined ? `error: ${row.error}` : (result?.note ?? '');
    return [
      row.model,
      row.engine,
      ENGINE_WHERE[row.engine],
      String(row.threads),
      result ? formatNumber(result.loadSeconds) : '–',
      result ? formatNumber(result.promptTokensPerSecond) : '–',
      result ? formatNumber(result.decodeTokensPerSecond) : '–',
      result && result.peakBytes > 0 ? (result.peakBytes / 2 ** 20).toFixed(0) : '–',
      formatRatio(result?.promptTokensPerSecond, native?.promptTokensPerSecond),
      formatRatio(result?.decodeTokensPerSecond, native?.decodeTokensPerSecond),
      note.replace(/\s+/g, ' ').slice(0, 160),
    ];
  });
  const numeric = new Set([3, 4, 5, 6, 7, 8, 9]);
  const widths = header.map((title, column) => Math.max(title.length, ...body.map((cells) => cells[column].length)));
  const line = (cells: string[]): string =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : numeric.has(column) ? cell.padStart(widths[column]) : cell.padEnd(widths[column])))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((width, column) => '-'.repeat(column === widths.length - 1 ? 4 : width)).join('  '), ...body.map(line)].join('\n');
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const settings = parseSettings(process.argv.slice(2));
  stopOnSignal('SIGINT');
  stopOnSignal('SIGTERM');
  const rows: BenchRow[] = [];
  const modelInfo: string[] = [];

  for (const model of settings.models) {
    let modelPath: string;
    let options: Omit<EngineRunOptions, 'threads'>;
    try {
      modelPath = await model.resolvePath();
      const prompt = await buildPrompt(modelPath, settings.promptTokens);
      options = {
        modelPath,
        promptTokens: prompt.tokens,
        promptText: prompt.text,
        decodeSteps: settings.decodeSteps,
        repeats: settings.repeats,
        bannedTokens: await invalidUtf8TokenIds(modelPath),
      };
      modelInfo.push(`${model.label}: ${modelPath} (${(statSync(modelPath).size / 1e9).toFixed(2)} GB)`);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      log(`${model.label}: cannot prepare: ${message}`);
      for (const threads of settings.threads) {
        for (const engine of settings.engines) rows.push({ model: model.label, engine, threads, error: `model: ${message}` });
      }
      continue;
    }
    for (const threads of settings.threads) {
      for (const engine of settings.engines) {
        const row: BenchRow = { model: model.label, engine, threads };
        log(`${model.label} · ${engine} · ${threads} thread(s) …`);
        const started = performance.now();
        try {
          row.result = await runEngine(engine, { ...options, threads }, settings);
          const r = row.result;
          log(
            `  load ${formatNumber(r.loadSeconds)} s, prompt ${formatNumber(r.promptTokensPerSecond)} tok/s, ` +
              `decode ${formatNumber(r.decodeTokensPerSecond)} tok/s, peak ${(r.peakBytes / 2 ** 20).toFixed(0)} MiB` +
              ` (${((performance.now() - started) / 1000).toFixed(0)} s)`,
          );
        } catch (error) {
          row.notYetAvailable = isNotYetAvailable(error);
          row.error = error instanceof Error ? error.message : String(error);
          log(`  ${row.notYetAvailable ? 'not yet available' : `failed: ${row.error}`}`);
        }
        rows.push(row);
      }
    }
  }

  const cpu = cpus();
  process.stdout.write(
    [
      '',
      `qwen-web benchmark — ${new Date().toISOString()}`,
      `machine: ${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`,
      `prompt ${settings.promptTokens} tokens, decode ${settings.decodeSteps} greedy steps, best of ${settings.repeats} rounds after one load (wllama: one round); peak = child maxRSS (Node) or renderer VmHWM (Chromium)`,
      ...modelInfo,
      '',
      renderTable(rows),
      '',
    ].join('\n'),
  );
  if (settings.jsonPath) {
    writeFileSync(settings.jsonPath, JSON.stringify({ settings: { ...settings, models: settings.models.map((m) => m.label) }, rows }, null, 2));
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
