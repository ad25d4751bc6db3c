// Tokenizer speed: encode ~100 KB of mixed text (prose in several scripts, code, emoji,
// numbers, special-token strings) from the test corpus. Run: npm run bench:tokenizer
import { Tokenizer } from '../../src/tokenizer/tokenizer.ts';
import { loadQwen3Vocab } from '../fixtures/qwen3-vocab.ts';
import { generateTokenizerCorpus } from '../tokenizer/corpus.ts';

const TARGET_BYTES = 100 * 1024;

function mixedText(): string {
  const corpus = generateTokenizerCorpus();
  const encoder = new TextEncoder();
  const parts: string[] = [];
  let bytes = 0;
  for (let i = 0; bytes < TARGET_BYTES; i++) {
    const { text } = corpus[(i * 7919) % corpus.length]; // stride through all kinds
    parts.push(text);
    bytes += encoder.encode(text).length + 1;
  }
  return parts.join('\n');
}

// Wall time, and this process's CPU time (user + system): the CPU figure is steadier on a busy
// machine.
function time<T>(run: () => T): [T, number, number] {
  const cpu = process.cpuUsage();
  const start = performance.now();
  const result = run();
  const wall = performance.now() - start;
  const used = process.cpuUsage(cpu);
  return [result, wall, (used.user + used.system) / 1000];
}

const ms = (wall: number, cpu: number): string => `${wall.toFixed(1)} ms (CPU ${cpu.toFixed(1)} ms)`;

const vocab = loadQwen3Vocab();
const text = mixedText();
const [tokenizer, buildMs, buildCpu] = time(() => Tokenizer.fromData(vocab));
const second = Tokenizer.fromData(vocab);
// first call: nothing compiled yet, word cache empty (the first prompt after loading a model)
const [ids, coldMs, coldCpu] = time(() => tokenizer.encode(text, { parseSpecial: true }));
// compiled code, empty word cache
const [, freshMs, freshCpu] = time(() => second.encode(text, { parseSpecial: true }));
let warm = [Infinity, Infinity];
for (let run = 0; run < 5; run++) {
  const [, wall, cpu] = time(() => tokenizer.encode(text, { parseSpecial: true }));
  if (wall < warm[0]) warm = [wall, cpu];
}
const [, decodeMs, decodeCpu] = time(() => tokenizer.decode(ids, { renderSpecial: true }));
const [, streamMs, streamCpu] = time(() => {
  const stream = tokenizer.createStreamDecoder({ renderSpecial: true });
  let out = '';
  for (const id of ids) out += stream.push(id);
  return out + stream.flush();
});

const kb = new TextEncoder().encode(text).length / 1024;
console.log(`text: ${kb.toFixed(1)} KB, ${text.length} UTF-16 units -> ${ids.length} tokens`);
console.log(`Tokenizer.fromData (${vocab.tokens.length} tokens, ${vocab.merges.length} merges): ${ms(buildMs, buildCpu)}`);
console.log(`encode, first call (cold JIT, empty word cache): ${ms(coldMs, coldCpu)}`);
console.log(`encode, empty word cache:                        ${ms(freshMs, freshCpu)}`);
console.log(`encode, cached words (best of 5):                ${ms(warm[0], warm[1])}`);
console.log(`decode: ${ms(decodeMs, decodeCpu)}; streaming, token by token: ${ms(streamMs, streamCpu)}`);
