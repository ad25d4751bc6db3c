// Fitting a conversation into the KV cache: when the prompt plus room for the answer is longer
// than the context, whole turns (a user message with the replies that follow it) are dropped from
// the start of the conversation. Leading system messages are never dropped; neither is the
// newest turn: if that alone cannot fit, the caller gets a typed error, not a truncated prompt.
import type { ChatMessage } from './types.ts';
import { EngineError } from './errors.ts';

export interface FittedPrompt {
  tokens: number[];
  /** Messages left out from the start of the conversation (after the system messages). */
  droppedMessages: number;
}

/** Splits messages after the leading system ones into turns, each starting at a user message. */
function splitTurns(messages: readonly ChatMessage[]): { system: ChatMessage[]; turns: ChatMessage[][] } {
  let firstOther = 0;
  while (firstOther < messages.length && messages[firstOther].role === 'system') firstOther++;
  const turns: ChatMessage[][] = [];
  for (const message of messages.slice(firstOther)) {
    if (message.role === 'user' || turns.length === 0) turns.push([message]);
    else turns[turns.length - 1].push(message);
  }
  return { system: messages.slice(0, firstOther), turns };
}

/**
 * The prompt tokens of the longest suffix of turns for which `tokenize(messages)` plus
 * `answerRoom` fits in `contextLength`.
 */
export function fitConversation(
  messages: readonly ChatMessage[],
  tokenize: (messages: ChatMessage[]) => number[],
  contextLength: number,
  answerRoom: number,
): FittedPrompt {
  const { system, turns } = splitTurns(messages);
  let droppedMessages = 0;
  for (let first = 0; ; first++) {
    const kept = turns.slice(first);
    const tokens = tokenize([...system, ...kept.flat()]);
    if (tokens.length + answerRoom <= contextLength) return { tokens, droppedMessages };
    if (kept.length <= 1) {
      throw new EngineError('context-overflow',
        `the prompt needs ${tokens.length} tokens${first > 0 ? ` even after dropping ${droppedMessages} earlier messages` : ''}, ` +
          `and with room for a ${answerRoom}-token answer that exceeds the ${contextLength}-token context: ` +
          'shorten the message or the system prompt, or load the model with a longer context');
    }
    droppedMessages += turns[first].length;
  }
}
