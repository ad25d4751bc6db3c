// Entry point of a bench child process: `node --import tsx tests/bench/engines/child.ts <engine>`.
// One engine per process, so that the peak RSS reported (process.resourceUsage().maxRSS at the
// end) is that engine's alone. Commands arrive as lines on stdin: the EngineRunOptions as JSON
// (load; reply { loadSeconds, maxRounds }), then `round` (reply RoundSpeeds) any number of
// times, then `close` (reply SessionEnd, then exit). Each reply is one stdout line starting
// with CHILD_REPLY_PREFIX, or CHILD_ERROR_PREFIX after which the child exits.
import { createInterface } from 'node:readline';
import { openNative } from './native.ts';
import { openQwenWebNode } from './qwen-web-node.ts';
import {
  CHILD_ERROR_PREFIX,
  CHILD_REPLY_PREFIX,
  isNotYetAvailable,
  type ChildError,
  type EngineRunOptions,
  type ChildEngineSession,
} from './types.ts';

function reply(value: unknown): void {
  process.stdout.write(`${CHILD_REPLY_PREFIX}${JSON.stringify(value)}\n`);
}

async function main(): Promise<void> {
  const engine = process.argv[2];
  const open = engine === 'native' ? openNative : engine === 'qwen-node' ? openQwenWebNode : undefined;
  if (!open) throw new Error(`engine '${engine}' does not run in a Node child`);
  let session: ChildEngineSession | undefined;
  for await (const line of createInterface({ input: process.stdin })) {
    if (session === undefined) {
      session = await open(JSON.parse(line) as EngineRunOptions);
      reply({ loadSeconds: session.loadSeconds, maxRounds: session.maxRounds });
    } else if (line === 'round') {
      reply(await session.round());
    } else if (line === 'close') {
      const end = await session.close();
      reply({ ...end, peakBytes: process.resourceUsage().maxRSS * 1024 });
      return;
    } else {
      throw new Error(`unknown command '${line}'`);
    }
  }
  throw new Error('stdin ended before close');
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
