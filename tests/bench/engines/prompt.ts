// The benchmark's prompt: an English passage cut to exactly N tokens of the model's own
// tokenizer (llama.cpp's, through node-llama-cpp, which is what wllama runs too), so that the
// engines that take token ids and those that take text prefill the same tokens.
import { getLlama, LlamaLogLevel, type Token } from 'node-llama-cpp';
import { readGGUF } from '../../../src/gguf/reader.ts';
import { readTokenizerData } from '../../../src/gguf/metadata.ts';
import { NodeFileSource } from '../../../src/gguf/node-file-source.ts';
import { byteLevelToBytes } from '../../../src/tokenizer/byte-level.ts';
import { TokenType } from '../../../src/tokenizer/token-types.ts';

const PASSAGE =
  'The lighthouse keeper climbed the spiral stairs every evening at dusk, counting the steps as ' +
  'his father had taught him. At the top he trimmed the wick, polished the great lens until it ' +
  'shone like still water, and watched the first ships turn toward the harbour. Storms came often ' +
  'in the autumn, rolling in from the west with a sound like distant drums, and on those nights ' +
  'he did not sleep at all. He kept a logbook of every vessel that passed: fishing boats with ' +
  'patched red sails, slow cargo steamers riding low in the water, and once, a tall ship with ' +
  'three masts that seemed to have sailed out of another century. Years later, when the light ' +
  'was automated and the keepers were sent ashore, he carried the logbook with him to a small ' +
  'house in the village. Children would knock on his door to ask about the storms, and he would ' +
  'open the book at random and read them the weather, the wind, and the names of ships long gone. ';

export interface BenchPrompt {
  text: string;
  tokens: number[];
}

/** A prompt of exactly `count` tokens for the model at `modelPath`. */
export async function buildPrompt(modelPath: string, count: number): Promise<BenchPrompt> {
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath, vocabOnly: true });
  try {
    let passage = PASSAGE;
    while (model.tokenize(passage, false).length < count + 8) passage += PASSAGE;
    const all = Array.from(model.tokenize(passage, false), Number);
    // Cutting the ids and detokenizing may merge differently when re-encoded: try nearby cuts.
    for (let delta = 0; delta <= 8; delta++) {
      for (const cut of delta === 0 ? [count] : [count + delta, count - delta]) {
        if (cut <= 0) continue;
        const text = model.detokenize(all.slice(0, cut) as Token[], false);
        const tokens = Array.from(model.tokenize(text, false), Number);
        if (tokens.length === count) return { text, tokens };
      }
    }
    throw new Error(`could not cut the passage to exactly ${count} tokens`);
  } finally {
    await model.dispose();
    await llama.dispose();
  }
}

/**
 * Normal tokens whose bytes are not valid UTF-8 by themselves (pieces of multi-byte
 * characters). Concatenating valid UTF-8 stays valid, so banning these keeps any generated
 * text decodable.
 */
export async function invalidUtf8TokenIds(modelPath: string): Promise<number[]> {
  const source = await NodeFileSource.open(modelPath);
  try {
    const { tokens, tokenTypes } = readTokenizerData(await readGGUF(source));
    const decoder = new TextDecoder('utf-8', { fatal: true });
    const banned: number[] = [];
    tokens.forEach((token, id) => {
      if (tokenTypes[id] !== TokenType.NORMAL) return;
      const bytes = byteLevelToBytes(token);
      if (bytes === null) return;
      try {
        decoder.decode(bytes);
      } catch {
        banned.push(id);
      }
    });
    return banned;
  } finally {
    await source.close();
  }
}
