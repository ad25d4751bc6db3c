// npm run bench -- [options]: one table comparing qwen-web with its peers on Qwen3-4B-shaped
// fixtures. Each row is one engine on one model file at one thread count: load time, prefill
// speed over the prompt, greedy decode speed, peak memory, and prompt/decode speed relative to
// llama.cpp native at the same thread count.
//
//   --models q4_0,q4_k_m     fixtures qwen3-4b-<type>; a name with a dash is a fixture name
//                            as is (e.g. small-q4_0)
//   --model a.gguf,b.gguf    GGUF files instead of fixtures
//   --engines native,wllama,qwen-node,qwen-browser (and qwen-browser64: its memory64 kernels)
//   --threads 1,2   --prompt 128   --decode 64
//   --depth 8000             decode measured with this many tokens in the context (reached
//                            untimed: llama.cpp evaluates filler, qwen-web copies the prompt's rows)
//   --kv-cache f16|q8_0      KV cache type of every engine that has one to choose
//   --repeat 5               timed rounds after one load; the table shows each engine's median
//                            and the median and range of its per-round ratios to native
//   --timeout 1800           seconds per load, round or unload
//   --json out.json          also write the rows as JSON
//   --verbose                echo engines' logs
//
// For each model and thread count, every engine is loaded, then the timed rounds go round the
// engines in turn (round r starts at the r-th engine), so that all engines' rounds see the same
// minutes of a shared machine whose speed drifts by 10-20 %. Node engines run in their own child
// process (peak = that process's maxRSS); browser engines in a fresh Chromium each (peak = the
// page renderer's VmHWM). A failing engine shows its error in the table and the rest still run.
import { spawn, type ChildProcess } from 'node:child_process';
import { statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { buildPrompt, buildTask, invalidUtf8TokenIds } from './engines/prompt.ts';
import { openQwenWebBrowser } from './engines/qwen-web-browser.ts';
import {
  median,
  medianOf,
  CHILD_ERROR_PREFIX,
  CHILD_REPLY_PREFIX,
  DEFAULT_ENGINES,
  ENGINE_NAMES,
  ENGINE_WHERE,
  isNotYetAvailable,
  NotYetAvailableError,
  type BenchResult,
  type ChildError,
  type EngineName,
  type EngineRunOptions,
  type EngineSession,
  type RoundRecord,
  type RoundSpeeds,
  type SessionEnd,
} from './engines/types.ts';
import { openWllama } from './engines/wllama.ts';
import { processCpuSeconds } from '../support/chromium.ts';
import { NodeFileSource } from '../../src/gguf/node-file-source.ts';
import { readGGUF } from '../../src/gguf/reader.ts';
import { buildCeilingModule, formatSpread, measureCeilings, type Ceilings } from './ceiling.ts';
import { withBenchBrowser } from './browser.ts';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CHILD_ENTRY = join(REPO_ROOT, 'tests', 'bench', 'engines', 'child.ts');

interface BenchSettings {
  models: Array<{ label: string; resolvePath: () => Promise<string> }>;
  engines: EngineName[];
  threads: number[];
  promptTokens: number;
  decodeSteps: number;
  depth: number;
  /** 'standard': the prompt and decode steps; 'rewrite' | 'free': see engines/prompt.ts buildTask. */
  task: 'standard' | 'rewrite' | 'free';
  kvCache: 'f16' | 'q8_0';
  repeats: number;
  timeoutMs: number;
  jsonPath?: string;
  verbose: boolean;
}

/** What one token costs a model: int8 multiply-adds of a prompt token (no logits) and weight
 * bytes a decode step reads (every matrix once, the output one included). */
interface ModelWork {
  promptMacs: number;
  decodeBytes: number;
}

/** The matrices' work, from the GGUF header (the token embedding is a lookup, not a product). */
async function modelWork(path: string): Promise<ModelWork> {
  const source = await NodeFileSource.open(path);
  try {
    const gguf = await readGGUF(source);
    const matrices = gguf.tensors.filter((t) => t.dims.length === 2 && t.name !== 'token_embd.weight');
    const output = gguf.tensors.find((t) => t.name === 'output.weight') ?? gguf.tensors.find((t) => t.name === 'token_embd.weight')!;
    const macs = (ts: typeof matrices) => ts.reduce((sum, t) => sum + t.nElements, 0);
    return {
      promptMacs: macs(matrices.filter((t) => t.name !== 'output.weight')),
      decodeBytes: matrices.filter((t) => t.name !== 'output.weight').reduce((sum, t) => sum + t.byteSize, 0) + output.byteSize,
    };
  } finally {
    await source.close();
  }
}

interface BenchRow {
  model: string;
  engine: EngineName;
  threads: number;
  result?: BenchResult;
  error?: string;
  notYetAvailable?: boolean;
  work?: ModelWork;
}

/** Engines whose speed the WebAssembly ceilings bound (they run in Chromium). */
const WASM_IN_CHROMIUM: ReadonlySet<EngineName> = new Set(['qwen-browser', 'qwen-browser-plain', 'qwen-browser64', 'wllama']);

/** "0.91": speed × work per token ÷ the ceiling at that thread count: its best round (a
 * register-only loop is only ever slowed by a shared machine, never sped up). */
function efficiency(row: BenchRow, ceilings: Ceilings | undefined, kind: 'prompt' | 'decode'): string {
  const result = row.result;
  if (!ceilings || !result || !row.work || !WASM_IN_CHROMIUM.has(row.engine) || (row.threads !== 1 && row.threads !== 2)) return '–';
  const threads = row.threads as 1 | 2;
  const achieved = kind === 'prompt'
    ? (result.promptTokensPerSecond * row.work.promptMacs) / 1e9 / Math.max(...ceilings.relaxed[threads])
    : (result.decodeTokensPerSecond * row.work.decodeBytes) / 1e9 / Math.max(...ceilings.stream[threads]);
  return achieved.toFixed(2);
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
      engines: { type: 'string', default: DEFAULT_ENGINES.join(',') },
      threads: { type: 'string', default: '1,2' },
      prompt: { type: 'string', default: '128' },
      decode: { type: 'string', default: '64' },
      depth: { type: 'string', default: '0' },
      task: { type: 'string', default: 'standard' },
      'kv-cache': { type: 'string', default: 'f16' },
      repeat: { type: 'string', default: '5' },
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
    depth: values.depth === '0' ? 0 : positiveInteger(values.depth, '--depth'),
    task: values.task === 'standard' || values.task === 'rewrite' || values.task === 'free' ? values.task : (() => { throw new Error(`--task wants standard, rewrite or free, got '${values.task}'`); })(),
    kvCache: values['kv-cache'] === 'q8_0' ? 'q8_0' : values['kv-cache'] === 'f16' ? 'f16' : (() => { throw new Error(`--kv-cache wants f16 or q8_0, got '${values['kv-cache']}'`); })(),
    repeats: positiveInteger(values.repeat, '--repeat'),
    timeoutMs: positiveInteger(values.timeout, '--timeout') * 1000,
    jsonPath: values.json,
    verbose: values.verbose,
  };
}

function readUsage(): string {
  return 'usage: npm run bench -- [--models q4_0,q4_k_m | --model a.gguf] [--engines native,wllama,qwen-node,qwen-browser]\n' +
    '                          [--threads 1,2] [--prompt 128] [--decode 64] [--depth 0] [--task standard|rewrite|free] [--kv-cache f16] [--repeat 5] [--timeout 1800] [--json out.json] [--verbose]\n';
}

async function fixturePath(name: string): Promise<string> {
  // Imported on demand: the generator is only needed when a fixture is asked for.
  const { ensureFixture } = await import('../fixtures/fixtures.ts');
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

/** Opens a Node engine in its own child process (engines/child.ts has the line protocol). */
async function openInChild(
  engine: EngineName,
  options: EngineRunOptions,
  timeoutMs: number,
  verbose: boolean,
): Promise<EngineSession> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD_ENTRY, engine], {
    cwd: REPO_ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  runningChildren.add(child);
  const exited = new Promise<string>((resolveExit) => {
    child.on('error', (error) => resolveExit(`cannot run: ${error.message}`));
    child.on('close', (code, signal) => {
      runningChildren.delete(child);
      resolveExit(signal ? `signal ${signal}` : `code ${code}`);
    });
  });
  const stderrTail: string[] = [];
  child.stderr.setEncoding('utf8').on('data', (text: string) => {
    if (verbose) process.stderr.write(text);
    stderrTail.push(...text.split('\n').filter((line) => line.trim() !== ''));
    stderrTail.splice(0, Math.max(0, stderrTail.length - 8));
  });
  child.stdin.on('error', () => {}); // a child that has exited: the reply loop reports why
  const stdoutLines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();

  const request = async <T>(command: string): Promise<T> => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    try {
      child.stdin.write(`${command}\n`);
      for (;;) {
        const next = await stdoutLines.next();
        if (next.done) {
          const why = await exited;
          throw new Error(timedOut ? `timed out after ${timeoutMs / 1000} s` : `child exited (${why}): ${stderrTail.slice(-3).join(' | ')}`);
        }
        const line: string = next.value;
        if (line.startsWith(CHILD_REPLY_PREFIX)) return JSON.parse(line.slice(CHILD_REPLY_PREFIX.length)) as T;
        if (line.startsWith(CHILD_ERROR_PREFIX)) {
          const report = JSON.parse(line.slice(CHILD_ERROR_PREFIX.length)) as ChildError;
          throw report.notYetAvailable ? new NotYetAvailableError(report.message) : new Error(report.message);
        }
      }
    } finally {
      clearTimeout(timer);
    }
  };

  try {
    const loaded = await request<{ loadSeconds: number; maxRounds?: number }>(JSON.stringify(options));
    return {
      ...loaded,
      round: () => request<RoundSpeeds>('round'),
      cpuSeconds: () => (child.pid === undefined ? Promise.resolve(0) : processCpuSeconds(child.pid)),
      async close() {
        try {
          return await request<SessionEnd>('close');
        } finally {
          child.kill('SIGKILL');
        }
      },
    };
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
}

function openEngine(engine: EngineName, options: EngineRunOptions, settings: BenchSettings): Promise<EngineSession> {
  const pageLog = settings.verbose ? (line: string) => log(`  page: ${line}`) : undefined;
  switch (engine) {
    case 'native':
    case 'qwen-node':
      return openInChild(engine, options, settings.timeoutMs, settings.verbose);
    case 'wllama':
      return openWllama({ ...options, timeoutMs: settings.timeoutMs, log: pageLog });
    case 'qwen-browser':
    case 'qwen-browser-plain':
    case 'qwen-browser64':
    case 'qwen-firefox':
    case 'qwen-webkit':
      return openQwenWebBrowser({ ...options, addressing: engine === 'qwen-browser64' ? 'memory64' : 'wasm32',
        speculative: engine !== 'qwen-browser-plain', timeoutMs: settings.timeoutMs, log: pageLog,
        browser: engine === 'qwen-firefox' ? 'firefox' : engine === 'qwen-webkit' ? 'webkit' : 'chromium' });
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Every engine on one model at one thread count: all loaded, then `repeats` rounds taken in
 * turn (round r starts at engine r), then all closed.
 */
async function runEngines(model: string, options: EngineRunOptions, settings: BenchSettings): Promise<BenchRow[]> {
  const cells = settings.engines.map((engine) => ({
    row: { model, engine, threads: options.threads } as BenchRow,
    session: undefined as EngineSession | undefined,
    rounds: [] as RoundRecord[],
    // CPU this engine used while the others ran their rounds, and those rounds' wall time
    idleCpu: 0,
    othersSeconds: 0,
  }));
  const fail = (cell: (typeof cells)[number], error: unknown) => {
    cell.row.notYetAvailable = isNotYetAvailable(error);
    cell.row.error = errorMessage(error);
    log(`  ${cell.row.engine}: ${cell.row.notYetAvailable ? 'not yet available' : `failed: ${cell.row.error}`}`);
  };
  const where = `${model} · ${options.threads} thread(s)`;

  for (const cell of cells) {
    log(`${where} · ${cell.row.engine}: loading …`);
    try {
      cell.session = await openEngine(cell.row.engine, options, settings);
      log(`  loaded in ${formatNumber(cell.session.loadSeconds)} s`);
    } catch (error) {
      fail(cell, error);
    }
  }
  for (let round = 0; round < settings.repeats; round++) {
    const live = cells.filter((cell) => cell.session !== undefined && cell.row.error === undefined);
    for (let i = 0; i < live.length; i++) {
      const cell = live[(i + round) % live.length]!;
      if (cell.rounds.length >= (cell.session!.maxRounds ?? Infinity)) continue;
      const others = live.filter((other) => other !== cell);
      try {
        const loadAverage = loadavg()[0]!;
        const cpuBefore = await Promise.all(others.map((other) => other.session!.cpuSeconds()));
        const started = performance.now();
        const speeds = await cell.session!.round();
        const seconds = (performance.now() - started) / 1000;
        const cpuAfter = await Promise.all(others.map((other) => other.session!.cpuSeconds()));
        others.forEach((other, j) => {
          other.idleCpu += cpuAfter[j]! - cpuBefore[j]!;
          other.othersSeconds += seconds;
        });
        cell.rounds.push({ ...speeds, loadAverage });
        log(`${where} · round ${round + 1} · ${cell.row.engine}: prompt ${formatNumber(speeds.promptTokensPerSecond)} tok/s, decode ${formatNumber(speeds.decodeTokensPerSecond)} tok/s`);
      } catch (error) {
        fail(cell, error);
      }
    }
  }
  for (const cell of cells) {
    if (cell.session === undefined) continue;
    try {
      const end = await cell.session.close();
      if (cell.row.error === undefined) {
        cell.row.result = {
          loadSeconds: cell.session.loadSeconds, ...medianOf(cell.rounds), ...end, rounds: cell.rounds,
          idleCpuShare: cell.othersSeconds > 0 ? cell.idleCpu / cell.othersSeconds : undefined,
        };
      }
    } catch (error) {
      if (cell.row.error === undefined) fail(cell, error);
    }
  }
  return cells.map((cell) => cell.row);
}

// ---------------------------------------------------------------------------------------------
// The table

function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return '–';
  if (value >= 100) return value.toFixed(0);
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/** Per-round ratios of `result` to native's round of the same turn (the rounds ran in turn). */
function roundRatios(result: BenchResult | undefined, native: BenchResult | undefined, key: keyof RoundSpeeds): number[] {
  if (!result || !native) return [];
  return result.rounds.slice(0, native.rounds.length).map((round, i) => round[key] / native.rounds[i]![key]);
}

/** "0.57× (0.52–0.61)": the median of the per-round ratios and their range. */
function formatRatios(ratios: number[]): string {
  if (ratios.length === 0) return '–';
  const range = ratios.length > 1 ? ` (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})` : '';
  return `${median(ratios).toFixed(2)}×${range}`;
}

function renderTable(rows: BenchRow[], ceilings: Ceilings | undefined): string {
  const header = ['model', 'engine', 'where', 'threads', 'load s', 'prompt tok/s', 'decode tok/s', 'peak MiB', 'idle CPU', 'prompt vs native', 'decode vs native',
    'prompt eff', 'decode eff', 'note'];
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
      result?.idleCpuShare !== undefined && Number.isFinite(result.idleCpuShare) ? `${(result.idleCpuShare * 100).toFixed(0)} %` : '–',
      row.engine === 'native' ? (native ? '1' : '–') : formatRatios(roundRatios(result, native, 'promptTokensPerSecond')),
      row.engine === 'native' ? (native ? '1' : '–') : formatRatios(roundRatios(result, native, 'decodeTokensPerSecond')),
      efficiency(row, ceilings, 'prompt'),
      efficiency(row, ceilings, 'decode'),
      note.replace(/\s+/g, ' ').slice(0, 160),
    ];
  });
  const numeric = new Set([3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  const widths = header.map((title, column) => Math.max(title.length, ...body.map((cells) => cells[column].length)));
  const line = (cells: string[]): string =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : numeric.has(column) ? cell.padStart(widths[column]) : cell.padEnd(widths[column])))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((width, column) => '-'.repeat(column === widths.length - 1 ? 4 : width)).join('  '), ...body.map(line)].join('\n');
}

/** Each engine's rounds against native's rounds of the same turn, and the load average before each round. */
function renderRoundRatios(rows: BenchRow[]): string[] {
  const lines: string[] = [];
  const list = (values: number[]) => values.map((v) => v.toFixed(2)).join(' ');
  for (const row of rows) {
    const native = rows.find((other) => other.engine === 'native' && other.model === row.model && other.threads === row.threads)?.result;
    if (row.engine === 'native' || !row.result || !native || row.result.rounds.length < 2) continue;
    lines.push(`${row.model} · ${row.threads} thread(s) · ${row.engine}: prompt ${list(roundRatios(row.result, native, 'promptTokensPerSecond'))}` +
      ` | decode ${list(roundRatios(row.result, native, 'decodeTokensPerSecond'))}` +
      ` | load average ${row.result.rounds.map((r) => r.loadAverage.toFixed(1)).join(' ')}`);
  }
  return lines.length === 0 ? [] : ['', "round by round, ÷ native's round of the same turn:", ...lines];
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const settings = parseSettings(process.argv.slice(2));
  stopOnSignal('SIGINT');
  stopOnSignal('SIGTERM');
  const rows: BenchRow[] = [];
  const modelInfo: string[] = [];
  // The WebAssembly ceilings (npm run bench:ceiling), measured once first when an engine runs in Chromium.
  let ceilings: Ceilings | undefined;
  if (settings.engines.some((engine) => WASM_IN_CHROMIUM.has(engine))) {
    log('measuring the WebAssembly ceilings in Chromium …');
    const wasm = await buildCeilingModule();
    ceilings = await withBenchBrowser({}, (browser) => measureCeilings(browser, wasm, 3));
  }

  for (const model of settings.models) {
    let modelPath: string;
    let options: Omit<EngineRunOptions, 'threads'>;
    let work: ModelWork;
    try {
      modelPath = await model.resolvePath();
      work = await modelWork(modelPath);
      const task = settings.task === 'standard' ? undefined : await buildTask(modelPath, settings.task, settings.decodeSteps + 1);
      const prompt = task?.prompt ?? await buildPrompt(modelPath, settings.promptTokens);
      options = {
        modelPath,
        promptTokens: prompt.tokens,
        promptText: prompt.text,
        ...(task ? { answerTokens: task.answerTokens } : {}),
        decodeSteps: settings.decodeSteps,
        depth: settings.depth,
        kvCache: settings.kvCache,
        bannedTokens: await invalidUtf8TokenIds(modelPath),
      };
      modelInfo.push(`${model.label}: ${modelPath} (${(statSync(modelPath).size / 1e9).toFixed(2)} GB)`);
    } catch (error) {
      const message = errorMessage(error);
      log(`${model.label}: cannot prepare: ${message}`);
      for (const threads of settings.threads) {
        for (const engine of settings.engines) rows.push({ model: model.label, engine, threads, error: `model: ${message}` });
      }
      continue;
    }
    for (const threads of settings.threads) {
      rows.push(...(await runEngines(model.label, { ...options, threads }, settings)).map((row) => ({ ...row, work })));
    }
  }

  const cpu = cpus();
  process.stdout.write(
    [
      '',
      `qwen-web benchmark — ${new Date().toISOString()}`,
      `machine: ${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`,
      (settings.task === 'standard' ? `prompt ${settings.promptTokens} tokens, decode ${settings.decodeSteps} greedy steps`
        : `task ${settings.task}: the prompt ${settings.task === 'rewrite' ? 'asks to fix the typos of a 600-token passage' : 'asks for a story'}; decode ${settings.decodeSteps} steps ` +
          '(qwen-browser and qwen-browser-plain replay the passage as their answer, with and without prompt-lookup decoding; the others decode greedily)') +
        `${settings.depth > settings.promptTokens ? ` from depth ${settings.depth} (reached untimed)` : ''}, ${settings.kvCache} KV cache, ${settings.repeats} rounds after one load, the engines' rounds taken in turn (wllama: one round); ` +
        `tok/s = median of the rounds; vs native = median (range) of the per-round ratios to native's round of the same turn; ` +
        `idle CPU = CPU the engine used while the others ran their rounds, share of one core; peak = child maxRSS (Node) or renderer VmHWM (Chromium)`,
      ...modelInfo,
      ...(ceilings ? [
        `ceilings in Chromium (npm run bench:ceiling), median (range) of 3 rounds, 1 | 2 threads: relaxed int8 dot ${formatSpread(ceilings.relaxed[1])} | ` +
          `${formatSpread(ceilings.relaxed[2])} GMAC/s, streaming read ${formatSpread(ceilings.stream[1])} | ${formatSpread(ceilings.stream[2])} GB/s; ` +
          'prompt eff = prompt tok/s × the matrices\' multiply-adds per token ÷ the relaxed dot ceiling (best round), decode eff = decode tok/s × the weight bytes a step reads ÷ the streaming ceiling (best round)',
      ] : []),
      '',
      renderTable(rows, ceilings),
      ...renderRoundRatios(rows),
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
