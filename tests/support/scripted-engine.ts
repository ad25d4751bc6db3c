// A stand-in Engine for browser tests of the chat UI where the engine is not under test: it answers
// each request with the next queued answer, streamed a few characters per chunk (a macrotask
// between chunks, as the worker engine yields between tokens), so the page renders half-written
// text exactly as it would from a model. Loaded by test pages from the vite dev server.
import type { ChatCompletionChunk, ChatCompletionRequest, Engine, ModelInfo, ToolCall } from '../../src/engine/types.ts';

export interface ScriptedAnswer {
  text: string;
  reasoning?: string;
  /** Calls the answer makes after its text (finish_reason 'tool_calls'). */
  toolCalls?: ToolCall[];
  /** A prompt this long is read first, 64 tokens per step (progress chunks with return_progress). */
  promptTokens?: number;
}

export interface ScriptedEngine extends Engine {
  /** Answers for the next requests, in order. */
  answers: (string | ScriptedAnswer)[];
  /** Characters per chunk (default 3). */
  chunkChars: number;
  /** Milliseconds between chunks (default 0: one macrotask). */
  delayMs: number;
  /** Every request it was given, in order. */
  requests: ChatCompletionRequest[];
}

const INFO: ModelInfo = { backend: 'cpu', name: 'scripted', quant: 'none', contextLength: 4096, maxContextLength: 4096, memoryBytes: 0, supportsThinking: false, loadMs: 0 };

export function createScriptedEngine(): ScriptedEngine {
  let stopped = false;
  const chunk = (delta: ChatCompletionChunk['choices'][0]['delta'], finish: ChatCompletionChunk['choices'][0]['finish_reason'], n = 0): ChatCompletionChunk => ({
    id: 'c', object: 'chat.completion.chunk', created: 0, model: 'scripted',
    choices: [{ index: 0, delta, finish_reason: finish }],
    ...(finish ? { usage: { prompt_tokens: 1, completion_tokens: n, total_tokens: n + 1, extra: { cached_prompt_tokens: 0, prefilled_tokens: 1, dropped_messages: 0, time_to_first_token_s: 0.01, prefill_tokens_per_s: 100, decode_tokens_per_s: 100 } } } : {}),
  });
  const engine: ScriptedEngine = {
    backend: 'cpu',
    answers: [],
    chunkChars: 3,
    delayMs: 0,
    requests: [],
    info: () => INFO,
    load: async () => INFO,
    interrupt() {
      stopped = true;
    },
    unload: async () => {},
    chat: {
      completions: {
        create: (async (request: ChatCompletionRequest) => {
          stopped = false;
          engine.requests.push(request);
          const next = engine.answers.shift() ?? '';
          const { text, reasoning = '', toolCalls = [], promptTokens = 0 } = typeof next === 'string' ? { text: next } : next;
          const step = engine.chunkChars;
          async function* stream(): AsyncGenerator<ChatCompletionChunk> {
            let n = 0;
            for (let read = 0; read < promptTokens; ) {
              await new Promise((resolve) => setTimeout(resolve, engine.delayMs));
              if (stopped) {
                yield chunk({}, 'abort', 0);
                return;
              }
              read = Math.min(promptTokens, read + 64);
              if (request.return_progress) yield { ...chunk({}, null), prompt_progress: { total: promptTokens, cache: 0, processed: read, time_ms: 0 } };
            }
            for (const [field, value] of [['reasoning_content', reasoning], ['content', text]] as const) {
              for (let i = 0; i < value.length; i += step, n++) {
                if (stopped) {
                  yield chunk({}, 'abort', n);
                  return;
                }
                yield chunk({ [field]: value.slice(i, i + step) }, null);
                await new Promise((resolve) => setTimeout(resolve, engine.delayMs));
              }
            }
            if (toolCalls.length > 0) {
              yield chunk({ tool_calls: toolCalls.map((call, index) => ({ index, ...call })) }, null);
              yield chunk({}, 'tool_calls', n);
              return;
            }
            yield chunk({}, 'stop', n);
          }
          return stream();
        }) as unknown as Engine['chat']['completions']['create'],
      },
    },
  };
  return engine;
}
