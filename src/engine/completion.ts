// A whole ChatCompletion from the chunk stream both engines produce: non-streaming requests are
// the stream, collected. The last chunk carries finish_reason and usage.
import { EngineError } from './errors.ts';
import { addToolCallDelta } from './tool-calls.ts';
import type { ChatCompletion, ChatCompletionChunk, ChatCompletionTokenLogprob, NormalizedRequest, ToolCall } from './types.ts';

export async function collectCompletion(chunks: AsyncIterable<ChatCompletionChunk>): Promise<ChatCompletion> {
  let content = '';
  let reasoning = '';
  let logprobs: ChatCompletionTokenLogprob[] | undefined;
  const calls: ToolCall[] = [];
  let last: ChatCompletionChunk | undefined;
  for await (const chunk of chunks) {
    last = chunk;
    const choice = chunk.choices[0];
    content += choice?.delta.content ?? '';
    reasoning += choice?.delta.reasoning_content ?? '';
    const tokens = choice?.logprobs?.content;
    if (tokens) (logprobs ??= []).push(...tokens);
    for (const delta of choice?.delta.tool_calls ?? []) addToolCallDelta(calls, delta);
  }
  if (!last?.usage) throw new EngineError('internal', 'the engine ended its answer without a final chunk');
  const message: ChatCompletion['choices'][0]['message'] = { role: 'assistant', content };
  if (reasoning) message.reasoning_content = reasoning;
  if (calls.length > 0) message.tool_calls = calls;
  const choice: ChatCompletion['choices'][0] = { index: 0, message, finish_reason: last.choices[0]?.finish_reason ?? 'abort' };
  if (logprobs) choice.logprobs = { content: logprobs };
  return { id: last.id, object: 'chat.completion', created: last.created, model: last.model, choices: [choice], usage: last.usage };
}

/**
 * Hands each progress-only chunk (`prompt_progress`) to the request's `onProgress`, and passes it on
 * only if the request asked for them (`return_progress`).
 */
export async function* reportPromptProgress(
  chunks: AsyncIterable<ChatCompletionChunk>,
  request: Pick<NormalizedRequest, 'return_progress' | 'onProgress'>,
): AsyncGenerator<ChatCompletionChunk> {
  for await (const chunk of chunks) {
    if (chunk.prompt_progress) {
      request.onProgress?.(chunk.prompt_progress);
      if (!request.return_progress) continue;
    }
    yield chunk;
  }
}
