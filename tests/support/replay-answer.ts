// Prompt lookup replaying a known answer, as the engine's passes would run it: the shared loop of
// the model worker's 'replay' request (real passes in a browser) and `npm run bench:lookup`
// (passes charged by a cost model). The random-weight fixtures cannot copy a passage, so the
// benches give them the answer instead of sampling one.
import type { PromptLookup } from '../../src/engine/prompt-lookup.ts';

export interface ReplayCounts {
  passes: number;
  drafted: number;
  accepted: number;
}

/**
 * Each pass puts answer[i] and a draft in the cache (`runPass`, which returns its time in ms),
 * for the logits that pick answer[i + 1]; the draft is kept up to the first token the answer does
 * not have, and `refused(answered)` is told how many answer tokens stand when a draft was cut.
 * `room(i)`: the most draft tokens the pass after answer[i] may hold. `context` (the prompt) grows
 * by the answer. No lookup: one token a pass.
 */
export function replayAnswer(
  lookup: PromptLookup | undefined,
  context: number[],
  answer: readonly number[],
  room: (i: number) => number,
  runPass: (token: number, draft: readonly number[]) => number,
  refused?: (answered: number) => void,
): ReplayCounts {
  let passes = 0, drafted = 0, accepted = 0;
  for (let i = 0; i < answer.length - 1;) {
    context.push(answer[i]!);
    const draft = lookup?.draft(context, room(i)) ?? [];
    const ms = runPass(answer[i]!, draft);
    lookup?.timePass(1 + draft.length, ms);
    let kept = 0;
    while (kept < draft.length && draft[kept] === answer[i + 1 + kept]) kept++;
    lookup?.record(draft.length, kept);
    context.push(...draft.slice(0, kept));
    passes++;
    drafted += draft.length;
    accepted += kept;
    i += 1 + kept;
    if (kept < draft.length) refused?.(i);
  }
  return { passes, drafted, accepted };
}
