// Prompt-lookup decoding (Saxena 2023; llama.cpp's "lookup" example): the next tokens are guessed
// from the text so far, with no second model. When the last few tokens appeared earlier in the
// prompt or the answer, the tokens that followed them there are the draft. The engine runs the
// sampled token and the draft through the model in one pass and keeps the draft tokens the
// sampler picks anyway (cpu-engine.ts): rewriting, quoting and editing code repeat long runs of
// the prompt, and then several tokens come out of one pass.
//
// The draft length adapts: it doubles while whole drafts are taken and halves when the first
// draft token is refused, so text that does not repeat its context costs little.

/** The most tokens one pass checks (the kernels give each of up to 8 tokens its lone bits). */
export const MAX_DRAFT_TOKENS = 7;
const MIN_NGRAM = 2;
const MAX_NGRAM = 4;

export class PromptLookup {
  private limit = 2;

  /**
   * Up to `room` (and the adaptive limit) tokens that followed the latest earlier occurrence of the
   * longest suffix of `tokens` (4 down to 2 tokens) in `tokens`; [] when there is none.
   */
  draft(tokens: readonly number[], room: number): number[] {
    const max = Math.min(room, this.limit);
    if (max <= 0) return [];
    const n = tokens.length;
    for (let size = Math.min(MAX_NGRAM, n - 1); size >= MIN_NGRAM; size--) {
      // An occurrence ending at `end` (exclusive) is followed by tokens[end]: end < n.
      for (let end = n - 1; end >= size; end--) {
        let i = 1;
        while (i <= size && tokens[end - i] === tokens[n - i]) i++;
        if (i > size) return tokens.slice(end, Math.min(end + max, n));
      }
    }
    return [];
  }

  /** How the last draft fared: `accepted` of its `drafted` tokens were what the sampler picked. */
  record(drafted: number, accepted: number): void {
    if (accepted === drafted) this.limit = Math.min(this.limit * 2, MAX_DRAFT_TOKENS);
    else if (accepted === 0) this.limit = Math.max(1, this.limit >> 1);
  }
}
