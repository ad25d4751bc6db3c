// The UI bench page's module (ui.html, for tests/bench/ui.ts): a <qwen-chat> whose engine is a
// scripted one (tests/support/scripted-engine.ts), answering with the text the bench gives.
//   bench.streamHead({ head, tail }): sends a message; the answer streams `head` in
//     2,000-character pieces and the promise resolves once it has (the stream then pauses);
//   bench.streamTail(): streams `tail` four characters at a time (about a token), a macrotask
//     between chunks, and resolves when <qwen-chat> reports the finished message.
import '../../../src/ui/qwen-chat.ts';
import type { ChatCompletionChunk, Engine } from '../../../src/engine/types.ts';
import { createScriptedEngine } from '../../support/scripted-engine.ts';

export interface StreamRequest {
  head: string;
  tail: string;
}

const chat = document.querySelector('qwen-chat')!;
const engine = createScriptedEngine();
chat.engine = engine;

const chunk = (content: string, finish: ChatCompletionChunk['choices'][0]['finish_reason']): ChatCompletionChunk => ({
  id: 'c', object: 'chat.completion.chunk', created: 0, model: 'bench',
  choices: [{ index: 0, delta: content ? { content } : {}, finish_reason: finish }],
  usage: finish ? { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2, extra: { cached_prompt_tokens: 0, prefilled_tokens: 1, dropped_messages: 0, time_to_first_token_s: 0, prefill_tokens_per_s: 0, decode_tokens_per_s: 0 } } : undefined,
});
const macrotask = () => new Promise((resolve) => setTimeout(resolve));

let releaseTail: () => void = () => {};
let done: Promise<unknown> = Promise.resolve();

function streamHead({ head, tail }: StreamRequest): Promise<void> {
  const gate = new Promise<void>((resolve) => (releaseTail = resolve));
  return new Promise<void>((atTail) => {
    engine.chat.completions.create = (async () => (async function* () {
      for (let i = 0; i < head.length; i += 2000) { yield chunk(head.slice(i, i + 2000), null); await macrotask(); }
      atTail();
      await gate;
      for (let i = 0; i < tail.length; i += 4) { yield chunk(tail.slice(i, i + 4), null); await macrotask(); }
      yield chunk('', 'stop');
    })()) as unknown as Engine['chat']['completions']['create'];
    done = new Promise((resolve) => chat.addEventListener('message', resolve, { once: true }));
    void chat.send('benchmark');
  });
}

async function streamTail(): Promise<void> {
  releaseTail();
  await done;
}

Object.assign(window, { bench: { streamHead, streamTail } });
