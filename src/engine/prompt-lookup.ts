// Prompt-lookup decoding (Saxena 2023; llama.cpp's "lookup" example): the next tokens are guessed
// from the text so far, with no second model. When the last few tokens appeared earlier in the
// prompt or the answer, the tokens that followed them there are the draft. The engine runs the
// sampled token and the draft through the model in one pass and keeps the draft tokens the
// sampler picks anyway (cpu-engine.ts): rewriting, quoting and editing code repeat long runs of
// the prompt, and then several tokens come out of one pass.
//
// While the answer copies a stretch of the context, the lookup follows where it copies from: an
// occurrence there wins over a later or longer one elsewhere, and after an edit (a word replaced,
// a typo fixed) one token found just past that place is enough to pick the copy up again, where a
// 2-token suffix holding the edited word would match nothing.
//
// How long a draft is depends on the mode:
// - 'always' (speculative: 'prompt-lookup'): every guess is drafted; the length doubles while whole
//   drafts are taken and halves when the first draft token is refused.
// - 'when-it-pays' (the default): a draft token costs part of a decode step whether or not it is
//   kept, so a draft of k tokens is made only when the tokens it is expected to save outweigh that:
//   with p the rate at which guessed tokens turn out right and r the cost of a drafted token in
//   decode steps, the i-th draft token saves a step with probability p^i and costs r, so the draft
//   is as long as p^i > r. p is learnt from the drafts and from the guesses not drafted (the token
//   that came next shows whether a guess was right), recent ones counting most; r from the timed
//   passes. Free writing, whose guesses are seldom right, then drafts little or nothing.

/** The most tokens one pass checks (the kernels give each of up to 8 tokens its lone bits). */
export const MAX_DRAFT_TOKENS = 7;
const MIN_NGRAM = 2;
const MAX_NGRAM = 4;
/** How far before and after the copy position an occurrence counts as continuing the copy (an
 * edit replaces a few tokens), and how many tokens after the last kept guess the copy is followed. */
const COPY_BEHIND = 2;
const COPY_AHEAD = 8;
const COPY_MEMORY = 16;
/** Weight kept by the earlier guesses' outcomes at each new one (about the last 10 count). */
const OUTCOME_DECAY = 0.9;
/** A drafted token's cost in decode steps until passes are timed (docs/perf-log.md, prompt lookup). */
const INITIAL_TOKEN_COST = 0.7;
/** Weight of a new timing in the running averages of pass costs. */
const TIMING_WEIGHT = 0.2;

export type LookupMode = 'always' | 'when-it-pays';

/** `average` moved toward `value` by TIMING_WEIGHT; the first value (average 0) as it is. */
function runningAverage(average: number, value: number): number {
  return average ? average + TIMING_WEIGHT * (value - average) : value;
}

export class PromptLookup {
  /** 'always': the adaptive draft length. */
  private limit = 2;
  /** Decayed counts of guessed tokens that were right, and of guessed tokens checked (prior 1 in 2). */
  private right = 1;
  private checked = 2;
  /** Running averages: ms of a one-token pass (a decode step), and ms each draft token adds to a pass. */
  private stepMs = 0;
  private draftTokenMs = 0;
  /** The first token of the last guess not drafted: the next token shows whether it was right. */
  private undrafted: number | undefined;
  /** The copy being followed: how far behind the text's end its source runs (tokens.length minus
   * the index of the token it goes on with), and the text's length when a guess from it last came true. */
  private copyLag: number | undefined;
  private copyConfirmed = 0;
  /** The last guess: its lag, and the text's length when it was made. */
  private guessLag: number | undefined;
  private guessedAt = 0;

  constructor(readonly mode: LookupMode = 'always') {}

  /**
   * Up to `room` tokens (and as many as the mode allows) that followed an earlier occurrence of
   * the end of `tokens` (lookup, below); [] when there is none or, in 'when-it-pays', when
   * drafting would cost more than it is expected to save.
   * `tokens` is the context so far: each call's last token is the one sampled since the last call.
   */
  draft(tokens: readonly number[], room: number): number[] {
    if (this.undrafted !== undefined) {
      const right = tokens[tokens.length - 1] === this.undrafted;
      this.outcome(right);
      if (right) this.followCopy(1);
      this.undrafted = undefined;
    }
    const guess = this.lookup(tokens, Math.min(room, MAX_DRAFT_TOKENS));
    if (guess.length === 0) return [];
    const length = Math.min(guess.length, this.mode === 'always' ? this.limit : this.worthwhileLength());
    if (length === 0) this.undrafted = guess[0];
    return guess.slice(0, length);
  }

  /** How the last draft fared: `accepted` of its `drafted` tokens were what the sampler picked. */
  record(drafted: number, accepted: number): void {
    if (accepted === drafted) this.limit = Math.min(this.limit * 2, MAX_DRAFT_TOKENS);
    else if (accepted === 0) this.limit = Math.max(1, this.limit >> 1);
    // Tokens are checked in order until one is refused: `accepted` right, then one wrong if any.
    for (let i = 0; i < accepted; i++) this.outcome(true);
    if (accepted < drafted) this.outcome(false);
    if (accepted > 0) this.followCopy(accepted);
  }

  /** The last guess's first `right` tokens came true: the answer copies from where it came from. */
  private followCopy(right: number): void {
    if (this.guessLag === undefined) return;
    this.copyLag = this.guessLag;
    this.copyConfirmed = this.guessedAt + right;
  }

  /** A pass of `tokens` tokens (the sampled one and its draft) took `ms`. */
  timePass(tokens: number, ms: number): void {
    if (!(ms > 0)) return;
    if (tokens === 1) this.stepMs = runningAverage(this.stepMs, ms);
    else if (this.stepMs) this.draftTokenMs = runningAverage(this.draftTokenMs, Math.max(0, ms - this.stepMs) / (tokens - 1));
  }

  /**
   * An earlier continuation of the text's end, at most `max` tokens: where the copy being followed
   * goes on, the longest suffix (4 tokens down to 1) found there; else the latest occurrence of
   * the longest suffix of 4 down to 2 tokens anywhere.
   */
  private lookup(tokens: readonly number[], max: number): number[] {
    if (max <= 0) return [];
    const n = tokens.length;
    // Where the copy followed would continue now (if the answer has copied recently), and the
    // places around it, nearest first.
    const near: number[] = [];
    if (this.copyLag !== undefined && n - this.copyConfirmed <= COPY_MEMORY) {
      const copyAt = n - this.copyLag;
      for (let d = 0; d <= COPY_AHEAD; d++) {
        near.push(copyAt + d);
        if (d > 0 && d <= COPY_BEHIND) near.push(copyAt - d);
      }
    }
    const matches = (end: number, size: number) => {
      let i = 1;
      while (i <= size && tokens[end - i] === tokens[n - i]) i++;
      return i > size;
    };
    const from = (end: number) => {
      this.guessLag = n - end;
      this.guessedAt = n;
      return tokens.slice(end, Math.min(end + max, n));
    };
    // An occurrence ending at `end` (exclusive) is followed by tokens[end]: end < n.
    for (let size = Math.min(MAX_NGRAM, n - 1); size >= 1; size--) {
      for (const end of near) if (end >= size && end < n && matches(end, size)) return from(end);
    }
    for (let size = Math.min(MAX_NGRAM, n - 1); size >= MIN_NGRAM; size--) {
      for (let end = n - 1; end >= size; end--) if (matches(end, size)) return from(end);
    }
    return [];
  }

  private outcome(right: boolean): void {
    this.right = this.right * OUTCOME_DECAY + (right ? 1 : 0);
    this.checked = this.checked * OUTCOME_DECAY + 1;
  }

  /** The number of draft tokens i for which p^i exceeds a draft token's cost in decode steps. */
  private worthwhileLength(): number {
    const p = this.right / this.checked;
    const cost = this.stepMs && this.draftTokenMs ? this.draftTokenMs / this.stepMs : INITIAL_TOKEN_COST;
    let length = 0;
    for (let saved = p; length < MAX_DRAFT_TOKENS && saved > cost; saved *= p) length++;
    return length;
  }
}
