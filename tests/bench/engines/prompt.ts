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

// The tasks of `--task rewrite|free`: a passage of about 600 tokens (the lighthouse passage and two
// more paragraphs), and its words with typos (every 7th word of 5+ letters has two inner letters
// swapped).
const MORE =
  'The village itself changed slowly. The harbour wall was rebuilt in stone after the great storm, ' +
  'the fish market moved into a long shed with a tin roof, and a bus began to run twice a day to ' +
  'the market town beyond the hills. The old keeper walked along the wall each morning with his ' +
  'dog, a patient grey animal that waited at every bollard while he talked to the fishermen about ' +
  'the tides, the price of diesel, and the gulls that stole bait from the open crates. In the ' +
  'afternoons he repaired nets for anyone who asked, working on the bench outside his door with a ' +
  'wooden needle and a ball of green twine, and he never took money for it. ' +
  'When he died, the logbook went to the small museum by the church, where it lies open in a glass ' +
  'case beside a brass telescope and a photograph of the lighthouse in winter. Visitors lean over ' +
  'the glass to read the careful handwriting: the date, the hour, the direction of the wind, the ' +
  'height of the sea, and then the ships, one to a line, each with a word or two about how it ' +
  'moved through the water. Some entries end with a small drawing of a sail or a flag. The last ' +
  'page is half empty, and on it he wrote only that the light had been steady all night and that ' +
  'the morning was clear. ';

function withTypos(text: string): string {
  let count = 0;
  return text.replace(/[A-Za-z]{5,}/g, (word) => {
    if (++count % 7 !== 0) return word;
    const i = Math.floor(word.length / 2) - 1;
    return word.slice(0, i) + word[i + 1] + word[i] + word.slice(i + 2);
  });
}

export interface BenchTask {
  prompt: BenchPrompt;
  /** The answer the replaying engines are given (the passage, cut to a whole number of tokens). */
  answerTokens: number[];
}

/**
 * `rewrite`: the instruction to fix the typos of the 600-token passage, followed by it; the answer
 * is the passage without typos. `free`: a one-line request for a story; the same answer, which then
 * repeats nothing of its prompt.
 */
export function taskTexts(task: 'rewrite' | 'free'): { prompt: string; answer: string } {
  const passage = PASSAGE + MORE;
  const prompt = task === 'rewrite'
    ? `Fix the typos in this passage and write it out in full:\n\n${withTypos(passage)}\n\n`
    : 'Write a short story about a lighthouse keeper and his logbook.\n\n';
  return { prompt, answer: passage };
}

/** The task's prompt and answer in the tokens of the model at `modelPath`, the answer cut to `answerLength` tokens. */
export async function buildTask(modelPath: string, task: 'rewrite' | 'free', answerLength: number): Promise<BenchTask> {
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath, vocabOnly: true });
  try {
    const texts = taskTexts(task);
    const tokenize = (text: string) => Array.from(model.tokenize(text, false), Number);
    const answer = tokenize(texts.answer);
    if (answer.length < answerLength) throw new Error(`the task's passage has ${answer.length} tokens, fewer than --decode ${answerLength - 1} + 1`);
    return { prompt: { text: texts.prompt, tokens: tokenize(texts.prompt) }, answerTokens: answer.slice(0, answerLength) };
  } finally {
    await model.dispose();
    await llama.dispose();
  }
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
