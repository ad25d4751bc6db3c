// Fitting a conversation into the KV cache: when the prompt plus room for the answer is longer
// than the context, whole turns (a user message with the replies that follow it) are dropped from
// the start of the conversation. Leading system messages are never dropped; neither is the
// newest turn: if that alone cannot fit, the caller gets a typed error, not a truncated prompt.
//
// The cut is searched, not walked: each message's own text is measured at most once (and not at
// all where a bound on its length already rules its turn out), the measurements estimate where
// the cut falls, and each estimate is checked by rendering the kept turns for real. Estimates that
// stop halving the range give way to bisection, so even a template whose output the estimate
// misjudges costs O(log turns) renders, never one per dropped turn.
import type { ChatMessage } from './types.ts';
import { EngineError } from './errors.ts';

export interface FittedPrompt {
  tokens: number[];
  /** Messages left out from the start of the conversation (after the system messages). */
  droppedMessages: number;
}

/** What fitting needs from the prompt builder (src/tokenizer/chat-prompt.ts ChatPrompt). */
export interface PromptMeasure {
  /** The real prompt tokens of these messages, rendered by the template. */
  tokens(messages: ChatMessage[]): number[];
  /** Tokens of one message's own text (no markup). */
  textTokens(message: ChatMessage): number;
  /** A floor under textTokens(), known without tokenizing. */
  minTextTokens(message: ChatMessage): number;
}

/** Template markup per message before any real render calibrates it (ChatML: 5 tokens). */
const DEFAULT_MARKUP_TOKENS = 5;

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
 * The prompt tokens of the longest suffix of turns whose prompt plus `answerRoom` fits in
 * `contextLength` (assuming, as every sane template gives, that dropping turns never lengthens it).
 */
export function fitConversation(
  messages: readonly ChatMessage[],
  prompt: PromptMeasure,
  contextLength: number,
  answerRoom: number,
): FittedPrompt {
  const { system, turns } = splitTurns(messages);
  const budget = contextLength - answerRoom;
  const count = turns.length;
  const sum = (list: readonly ChatMessage[], f: (m: ChatMessage) => number) => list.reduce((s, m) => s + f(m), 0);
  const messagesIn = (list: readonly ChatMessage[][]) => list.reduce((n, turn) => n + turn.length, 0);
  const overflow = (tokens: number | undefined, dropped: number) => new EngineError('context-overflow',
    `the prompt needs ${tokens ?? `more than ${budget}`} tokens${dropped > 0 ? ` even after dropping ${dropped} earlier messages` : ''}, ` +
      `and with room for a ${answerRoom}-token answer that exceeds the ${contextLength}-token context: ` +
      'shorten the message or the system prompt, or load the model with a longer context');

  if (count === 0) {
    const tokens = prompt.tokens([...system]);
    if (tokens.length <= budget) return { tokens, droppedMessages: 0 };
    throw overflow(tokens.length, 0);
  }

  // Turns before `floor` cannot fit even by the length bound: never measured, never rendered.
  let floor = count;
  let bound = sum(system, (m) => prompt.minTextTokens(m));
  while (floor > 0) {
    const next = bound + sum(turns[floor - 1], (m) => prompt.minTextTokens(m));
    if (next > budget) break;
    bound = next;
    floor--;
  }
  if (floor === count) throw overflow(undefined, messagesIn(turns.slice(0, -1)));

  // The estimate: each turn's measured text plus markup per message, calibrated on real renders.
  const turnText: number[] = [];
  const textOf = (t: number) => (turnText[t] ??= sum(turns[t], (m) => prompt.textTokens(m)));
  const systemText = sum(system, (m) => prompt.textTokens(m));
  let markup = DEFAULT_MARKUP_TOKENS;
  /** The smallest first turn in [low, high] the estimate says fits (turns left of it stay unmeasured). */
  const estimateFirst = (low: number, high: number): number => {
    let total = systemText + markup * system.length;
    for (let t = count - 1; t >= high; t--) total += textOf(t) + markup * turns[t].length;
    let first = high;
    while (first > low) {
      const next = total + textOf(first - 1) + markup * turns[first - 1].length;
      if (next > budget) break;
      total = next;
      first--;
    }
    return first;
  };

  // `tooMany`: the largest first turn known not to fit; `fits`: the smallest known to fit.
  let tooMany = floor - 1;
  let fits = count; // none yet: keeping no turn is never the answer
  let best: number[] | undefined;
  let lastTokens = 0;
  let stalled = 0;
  while (fits - tooMany > 1) {
    const width = fits - tooMany;
    const probe = stalled >= 2 ? (tooMany + fits) >> 1 : estimateFirst(tooMany + 1, fits - 1);
    const kept = turns.slice(probe);
    const tokens = prompt.tokens([...system, ...kept.flat()]);
    lastTokens = tokens.length;
    if (tokens.length <= budget) {
      fits = probe;
      best = tokens;
    } else {
      tooMany = probe;
    }
    stalled = (fits - tooMany) * 2 > width ? stalled + 1 : 0;
    if (fits - tooMany > 1) {
      let text = systemText;
      for (let t = probe; t < count; t++) text += textOf(t);
      markup = Math.max(0, (tokens.length - text) / (system.length + messagesIn(kept)));
    }
  }
  if (!best) throw overflow(lastTokens, messagesIn(turns.slice(0, -1)));
  return { tokens: best, droppedMessages: messagesIn(turns.slice(0, fits)) };
}
