// Entry point of a bench child process: `node --import tsx scripts/bench/child.ts <engine>`
// with the EngineRunOptions as JSON on stdin. One engine per process, so that the peak RSS
// reported (process.resourceUsage().maxRSS at the end) is that engine's alone.
// Prints exactly one line starting with CHILD_RESULT_PREFIX or CHILD_ERROR_PREFIX on stdout.
import { runNative } from './native.ts';
import { runQwenWebNode } from './qwen-web-node.ts';
import {
  CHILD_ERROR_PREFIX,
  CHILD_RESULT_PREFIX,
  isNotYetAvailable,
  type BenchResult,
  type ChildError,
  type EngineRunOptions,
} from './types.ts';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function main(): Promise<void> {
  const engine = process.argv[2];
  const options = JSON.parse(await readStdin()) as EngineRunOptions;
  let result: BenchResult;
  if (engine === 'native') {
    result = await runNative(options);
  } else if (engine === 'qwen-node') {
    result = await runQwenWebNode(options);
  } else {
    throw new Error(`engine '${engine}' does not run in a Node child`);
  }
  result = { ...result, peakBytes: process.resourceUsage().maxRSS * 1024 };
  process.stdout.write(`${CHILD_RESULT_PREFIX}${JSON.stringify(result)}\n`);
}

main().then(
  // Native handles can keep the event loop alive: leave as soon as the line is out.
  () => process.exit(0),
  (error: unknown) => {
    const report: ChildError = {
      message: error instanceof Error ? error.message : String(error),
      notYetAvailable: isNotYetAvailable(error),
    };
    if (error instanceof Error && error.stack && !report.notYetAvailable) process.stderr.write(`${error.stack}\n`);
    process.stdout.write(`${CHILD_ERROR_PREFIX}${JSON.stringify(report)}\n`);
    process.exit(1);
  },
);
