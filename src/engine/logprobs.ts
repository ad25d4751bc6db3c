// Log-probabilities of generated tokens as OpenAI returns them: under the model's own
// distribution (the softmax of the raw logits, before temperature, penalties or truncation), for
// the token chosen and the most likely alternatives. Only computed when a request asks.
import type { Tokenizer } from '../tokenizer/tokenizer.ts';
import { topCandidates } from './sampler.ts';
import type { ChatCompletionTokenLogprob, TokenLogprob } from './types.ts';

/** log(sum(exp(logits))), in f64, shifted by the maximum so nothing overflows. */
export function logSumExp(logits: Float32Array): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);
  return max + Math.log(sum);
}

export class LogprobReporter {
  private readonly decoder = new TextDecoder();

  constructor(
    private readonly tokenizer: Tokenizer,
    /** Alternatives per position (0–20). */
    private readonly top: number,
  ) {}

  /** `token`'s entry at the position whose logits these are. */
  entry(logits: Float32Array, token: number): ChatCompletionTokenLogprob {
    const logZ = logSumExp(logits);
    const alternatives = this.top > 0 ? topCandidates(logits, this.top).map((id) => this.describe(id, logits[id]! - logZ)) : [];
    return { ...this.describe(token, logits[token]! - logZ), top_logprobs: alternatives };
  }

  private describe(id: number, logprob: number): TokenLogprob {
    const bytes = this.tokenizer.tokenToBytes(id);
    // A token may hold part of a character: its text then shows U+FFFD there, its bytes are exact.
    return { token: this.decoder.decode(bytes), logprob, bytes: Array.from(bytes) };
  }
}
