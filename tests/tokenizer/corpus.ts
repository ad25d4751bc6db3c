// Deterministic corpus of tokenizer test strings (same seed, same strings, on every machine).
// It aims at the places where byte-level BPE tokenizers go wrong: the pre-tokenizer regex
// (contractions, letters vs digits vs punctuation, runs of whitespace and newlines), UTF-8
// handling (multi-byte characters, emoji sequences, code points of every plane), Unicode
// normalization, and special-token recognition.

export type CorpusKind =
  | 'edge'
  | 'english'
  | 'chinese'
  | 'code'
  | 'emoji'
  | 'whitespace'
  | 'numbers'
  | 'contractions'
  | 'scripts'
  | 'random'
  | 'special';

export interface CorpusEntry {
  kind: CorpusKind;
  text: string;
}

// mulberry32: tiny, seedable, good enough to pick words.
class Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }

  chance(p: number): boolean {
    return this.next() < p;
  }
}

const ENGLISH_WORDS = (
  'the of and to in is you that it he was for on are as with his they at be this have from or one had by ' +
  'word but not what all were we when your can said there use an each which she do how their if will up ' +
  'other about out many then them these so some her would make like him into time has look two more write ' +
  'go see number no way could people my than first water been call who oil its now find long down day did ' +
  'get come made may part tokenizer model browser quickly jumped lazy fox encyclopaedia antidisestablishment ' +
  'naïve café résumé coöperate façade über Zürich São Paulo Ångström jalapeño OpenAI GPT JSON WebAssembly ' +
  'iPhone McDonald O’Brien e-mail state-of-the-art well-known re-enter HTTP/2 U.S.A. Mr. Dr. etc.'
).split(' ');

const PUNCTUATION = ['.', ',', '!', '?', ';', ':', '...', '—', '–', '-', '"', '“', '”', '‘', '’', '(', ')', '[', ']', '…', '?!', '!!!'];

const CHINESE_PHRASES = (
  '我 你 他 她 我们 今天 天气 很好 我想 在 工作 学习 中文 人工智能 模型 浏览器 运行 速度 非常 快 ' +
  '北京 上海 深圳 大学 老师 学生 朋友 喜欢 吃饭 喝茶 看书 写代码 计算机 科学 技术 发展 问题 答案 ' +
  '因为 所以 但是 如果 虽然 然后 已经 可以 应该 必须 一个 两个 三百 第一 时间 地方 世界 中国 ' +
  '自然语言处理 深度学习 神经网络 龘 𠀀 𪚥 繁體中文 簡體 漢字'
).split(' ');

const CHINESE_PUNCTUATION = ['，', '。', '！', '？', '、', '：', '；', '“', '”', '《', '》', '（', '）', '～', '…', '——'];

const SCRIPT_WORDS: Record<string, string[]> = {
  arabic: 'مرحبا بالعالم كيف حالك اليوم اللغة العربية جميلة جدا ١٢٣ ٤٥٦ شكرا'.split(' '),
  devanagari: 'नमस्ते दुनिया आप कैसे हैं हिन्दी भाषा सुंदर है १२३ धन्यवाद क्षत्रिय'.split(' '),
  thai: 'สวัสดีชาวโลก ภาษาไทย ไม่มีช่องว่าง ระหว่างคำ ขอบคุณ ๑๒๓ กรุงเทพมหานคร'.split(' '),
  cyrillic: 'Привет мир как дела сегодня русский язык нещо на Български Україна ЁЖИК'.split(' '),
  japanese: 'こんにちは 世界 日本語 カタカナ ひらがな 東京 ありがとう ございます ｶﾀｶﾅ ＡＢＣ １２３'.split(' '),
  korean: '안녕하세요 세계 한국어 서울 감사합니다 대한민국 ㄱㄴㄷ 한글'.split(' '),
  greek: 'Γειά σου κόσμε ελληνικά ΑΘΗΝΑ αλφάβητο ς'.split(' '),
  hebrew: 'שלום עולם עברית תודה רבה ירושלים'.split(' '),
  other: 'ქართული Հայերեն தமிழ் বাংলা ગુજરાતી ಕನ್ನಡ മലയാളം සිංහල ລາວ ខ្មែរ ትግርኛ ᏣᎳᎩ'.split(' '),
};

const EMOJI = [
  '😀', '😂', '🥲', '🤖', '🚀', '🦙', '🔥', '✅', '❤️', '❤', '☺️', '✨', '🎉', '👍', '👋', '🙏', '💯', '🌍',
  '👨‍👩‍👧‍👦', '👩‍💻', '🧑🏽‍🚀', '🏳️‍🌈', '🏴‍☠️', '👁️‍🗨️', '❤️‍🔥', '🧔🏿‍♂️', '👩🏻‍🤝‍👨🏾', '😶‍🌫️',
  '👍🏻', '👍🏼', '👍🏽', '👍🏾', '👍🏿', '✋🏿', '🇯🇵', '🇺🇸', '🇩🇪', '🇨🇳', '🏴󠁧󠁢󠁳󠁣󠁴󠁿', '1️⃣', '#️⃣', '*️⃣', '©️', '™️',
];

const WHITESPACE = [' ', ' ', ' ', '  ', '   ', '\t', '\t\t', '\n', '\n\n', '\r\n', '\r\n\r\n', '\r', ' \n', '\n ', '\u000b', '\f', '\u00a0', '\u3000', '\u2003', '\u2009', '\u202f', '\u2028'];

const CONTRACTION_WORDS = ['don', 'we', 'they', 'I', 'you', 'it', 'she', 'can', 'won', 'should', 'y', 'rock', 'John', 'DON', 'WE', 'Xi'];
const CONTRACTION_SUFFIXES = ['s', 't', 're', 've', 'm', 'll', 'd'];

const CODE_TEMPLATES: ((r: Random, id: () => string) => string)[] = [
  (r, id) => `function ${id()}(${id()}, ${id()}) {\n  const ${id()} = ${r.int(0, 99999)};\n  return ${id()} + ${id()};\n}\n`,
  (r, id) => `def ${id()}(self, ${id()}: int = ${r.int(0, 100)}) -> list[str]:\n    """Docstring for ${id()}."""\n    return [x ** 2 for x in range(${r.int(1, 1000)}) if x % 3 == 0]\n`,
  (r, id) => `#include <stdio.h>\n\nint main(void) {\n\tint ${id()} = ${r.int(0, 255)};\n\tprintf("%d\\n", ${id()} << 2);\n\treturn 0;\n}\n`,
  (r, id) => `fn ${id()}<'a>(${id()}: &'a str) -> Result<Vec<u8>, Box<dyn Error>> {\n    let mut v = Vec::with_capacity(${r.int(1, 64)});\n    v.extend_from_slice(${id()}.as_bytes());\n    Ok(v)\n}\n`,
  (r, id) => `func (s *${id()}) ${id()}(ctx context.Context) error {\n\tif err := s.db.Ping(ctx); err != nil {\n\t\treturn fmt.Errorf("ping: %w", err)\n\t}\n\treturn nil\n}\n`,
  (r, id) => `<div class="${id()}" id='${id()}'>\n  <p>Hello &amp; welcome, ${id()}!</p>\n  <!-- comment ${r.int(0, 9)} -->\n</div>`,
  (r, id) => `{"${id()}": ${r.int(-1000, 1000)}, "${id()}": [true, false, null], "nested": {"${id()}": "${id()}\\u00e9\\n"}}`,
  (r, id) => `SELECT ${id()}, COUNT(*) AS n FROM ${id()} WHERE ${id()} >= ${r.int(0, 100)} AND name LIKE '%${id()}%' GROUP BY 1 ORDER BY n DESC;`,
  (r, id) => `#!/usr/bin/env bash\nset -euo pipefail\nfor f in ./${id()}/*.txt; do\n  echo "$f" | grep -E '^[a-z]+$' >> ${id()}.log 2>&1\ndone`,
  (r, id) => `const ${id()} = async (${id()}) => { await fetch(\`/api/\${${id()}}?q=\${encodeURIComponent(${id()})}\`); };`,
  (r, id) => `    if (${id()} != null && ${id()}.length > ${r.int(0, 9)}) {\r\n        ${id()}++;\r\n    }\r\n`,
  (r, id) => `x = [${r.int(0, 9)}, ${r.int(10, 99)}, ${r.int(100, 999)}]  # comment: ${id()}'s list\nprint(f"{x!r:>10}")`,
  (r, id) => `/* ${id()} */ a+=b*c-d/e%f^g|h&i; a===b!==c; a=>b; a??=b; x->y; ::${id()}::`,
  (r, id) => `class ${id()} extends ${id()} {\n    private readonly ${id()}: Map<string, number[]> = new Map();\n}\n`,
  (r, id) => `\`\`\`python\nimport numpy as np\n${id()} = np.zeros((${r.int(1, 9)}, ${r.int(1, 9)}))\n\`\`\``,
];

const IDENTIFIER_PARTS = ['foo', 'bar', 'baz', 'tmp', 'count', 'user', 'Id', 'HTTP', 'parse', 'Token', 'i', 'x2', '_private', '__init__', 'kMax', 'snake_case', 'camelCase', 'ÄÖÜ', 'données'];

// Code points that became letters or digits in Unicode 16.0/17.0. llama.cpp's tables predate
// them (it calls them unassigned) while recent JS engines call them \p{L} / \p{N}, so a random
// draw avoids them: the comparison is about tokenization, not about Unicode versions.
const RECENT_LETTERS_AND_DIGITS: readonly [number, number][] = [
  [0x088f, 0x088f], [0x0c5c, 0x0c5c], [0x0cdc, 0x0cdc], [0x1c89, 0x1c8a], [0xa7cb, 0xa7dc], [0xa7f1, 0xa7f1],
  [0x105c0, 0x105f3], [0x10940, 0x10959], [0x10d40, 0x10d85], [0x10ec2, 0x10ec7], [0x11380, 0x113d3],
  [0x116d0, 0x116e3], [0x11bc0, 0x11bf9], [0x11db0, 0x11de9], [0x13460, 0x143fa], [0x16100, 0x16139],
  [0x16d40, 0x16d79], [0x16ea0, 0x16ed3], [0x16ff2, 0x16ff6], [0x187f8, 0x187ff], [0x18cff, 0x18d1e],
  [0x18d80, 0x18df2], [0x1ccf0, 0x1ccf9], [0x1e5d0, 0x1e5fa], [0x1e6c0, 0x1e6ff], [0x2b73a, 0x2b73f],
  [0x2cea2, 0x2cead], [0x323b0, 0x33479],
];

// U+0085 and U+FEFF are whitespace for one tokenizer and not for another (JavaScript's \s,
// used by the HF port we test against, says the opposite of Unicode's White_Space); they are
// tested on their own instead.
function isDrawable(cp: number): boolean {
  if (cp >= 0xd800 && cp <= 0xdfff) return false; // surrogates are not characters
  if (cp === 0x85 || cp === 0xfeff) return false;
  return !RECENT_LETTERS_AND_DIGITS.some(([lo, hi]) => cp >= lo && cp <= hi);
}

// Planes weighted towards where text lives: ASCII and Latin, the rest of the BMP, the SMP
// (emoji, historic scripts, math), CJK extensions, and the odd private-use or tag character.
const RANDOM_RANGES: readonly [number, number, number][] = [
  // [first, last, weight]
  [0x20, 0x7e, 3],
  [0xa0, 0x24f, 2],
  [0x250, 0x2fff, 4],
  [0x3000, 0x9fff, 3],
  [0xa000, 0xfffd, 3],
  [0x10000, 0x1ffff, 3],
  [0x20000, 0x3134f, 1],
  [0xe0000, 0xe01ef, 0.3],
  [0xf0000, 0xf00ff, 0.2],
];

function randomCodePoint(r: Random): number {
  const total = RANDOM_RANGES.reduce((sum, [, , w]) => sum + w, 0);
  for (;;) {
    let x = r.next() * total;
    let range = RANDOM_RANGES[0];
    for (const candidate of RANDOM_RANGES) {
      range = candidate;
      x -= candidate[2];
      if (x < 0) break;
    }
    const cp = r.int(range[0], range[1]);
    if (isDrawable(cp)) return cp;
  }
}

function capitalize(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1);
}

function randomCase(r: Random, text: string): string {
  return Array.from(text, (c) => (r.chance(0.5) ? c.toUpperCase() : c.toLowerCase())).join('');
}

function englishSentence(r: Random): string {
  const n = r.int(3, 18);
  const words: string[] = [];
  for (let i = 0; i < n; i++) {
    let word = r.pick(ENGLISH_WORDS);
    if (i === 0) word = capitalize(word);
    if (r.chance(0.05)) word = word.toUpperCase();
    if (r.chance(0.08)) word += `'${r.pick(CONTRACTION_SUFFIXES)}`;
    if (r.chance(0.1)) word += r.pick(PUNCTUATION);
    words.push(word);
  }
  return words.join(' ') + r.pick(['.', '!', '?', '', '...', '."', '?)']);
}

function chineseSentence(r: Random): string {
  let text = '';
  const n = r.int(3, 25);
  for (let i = 0; i < n; i++) {
    text += r.pick(CHINESE_PHRASES);
    if (r.chance(0.15)) text += r.pick(CHINESE_PUNCTUATION);
    if (r.chance(0.05)) text += r.pick(['apple', '1314151', ' GPU ', 'AI', '2024年', ' ', '3.14']);
  }
  return text + r.pick(['。', '！', '？', '', '…']);
}

export function generateTokenizerCorpus(seed = 20_241_129): CorpusEntry[] {
  const r = new Random(seed);
  const corpus: CorpusEntry[] = [];
  const add = (kind: CorpusKind, text: string): void => {
    corpus.push({ kind, text });
  };

  // Hand-picked edge cases.
  for (const text of [
    '', ' ', '  ', '\n', '\r\n', '\t', 'a', "'", "''", "'s", "'S", "'ll", "'LL", "'Ll", "'lL", "'x", "s'", 'x\'', '0', '00', '000',
    ' a', 'a ', '  a', 'a  ', ' \n ', '\n\n\n', ' \r\n\r\n \n', 'a\nb', 'a\r\nb', 'a\rb', '\u00e9', 'e\u0301',
    'Hello world', ' Hello world', 'Hello  world', 'Hello\tworld', 'hello\n\nworld\n', '!!!', ' !!!', '!!! ', '?!\n\n',
    '...\n', '  \t  x', 'x  \t  ', '\u3000\u3000全角', '\u00a0\u00a0nbsp', 'a\u2028b\u2029c',
    '\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️ (multiple emojis concatenated) ✅ 🦙🦙 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ ------======= нещо на Български \'\'\'\'\'\'```````""""......!!!!!!?????? I\'ve been \'told he\'s there, \'RE you sure? \'M not sure I\'ll make it, \'D you like some tea? We\'Ve a\'lL',
    'a'.repeat(1000),
    'ab'.repeat(700),
    '😀'.repeat(200),
    ' '.repeat(300) + 'x',
    '\n'.repeat(100),
    '1234567890'.repeat(60),
    '\u0000\u0001\u001f\u007f',
    '\ufffd\ufffd',
    'x\u200bzero\u200cwidth\u200djoiner\u2060',
    'A\u030a \u212b \u00c5', // three spellings of Å: NFC folds the first two
    '\u1e9b\u0323', // NFC leaves this one as two characters
    '\ud55c\u1112\u1161\u11ab', // precomposed and conjoining-jamo Hangul
  ]) {
    add('edge', text);
  }

  for (let i = 0; i < 320; i++) {
    const sentences = r.int(1, 4);
    const parts: string[] = [];
    for (let s = 0; s < sentences; s++) parts.push(englishSentence(r));
    add('english', parts.join(r.pick([' ', '  ', '\n', '\n\n', ' '])));
  }

  for (let i = 0; i < 220; i++) add('chinese', chineseSentence(r));

  const identifier = (): string => {
    let id = r.pick(IDENTIFIER_PARTS);
    if (r.chance(0.4)) id += capitalize(r.pick(IDENTIFIER_PARTS));
    if (r.chance(0.2)) id += String(r.int(0, 99));
    return id;
  };
  for (let i = 0; i < 320; i++) {
    let code = r.pick(CODE_TEMPLATES)(r, identifier);
    if (r.chance(0.3)) code = code.replace(/ {4}/g, '\t');
    if (r.chance(0.2)) code = code.replace(/\n/g, '\r\n');
    if (r.chance(0.2)) code = '    '.repeat(r.int(1, 3)) + code;
    add('code', code);
  }

  for (let i = 0; i < 220; i++) {
    let text = '';
    const n = r.int(1, 12);
    for (let k = 0; k < n; k++) {
      text += r.pick(EMOJI);
      if (r.chance(0.3)) text += r.pick([' ', '', '\n', ' and ', '!', '。', 'ok']);
      if (r.chance(0.1)) text += r.pick(ENGLISH_WORDS);
    }
    add('emoji', text);
  }

  for (let i = 0; i < 220; i++) {
    let text = '';
    const n = r.int(1, 14);
    for (let k = 0; k < n; k++) {
      const piece = r.next();
      if (piece < 0.45) text += r.pick(WHITESPACE);
      else if (piece < 0.75) text += r.pick(ENGLISH_WORDS);
      else if (piece < 0.9) text += r.pick(PUNCTUATION);
      else text += String(r.int(0, 999));
    }
    add('whitespace', text);
  }

  for (let i = 0; i < 160; i++) {
    const digits = (n: number): string => Array.from({ length: n }, () => String(r.int(0, 9))).join('');
    const forms = [
      () => digits(r.int(1, 60)),
      () => `${digits(r.int(1, 4))},${digits(3)},${digits(3)}.${digits(2)}`,
      () => `${r.pick(['-', '+', ''])}${digits(r.int(1, 6))}.${digits(r.int(1, 8))}e${r.pick(['-', '+', ''])}${digits(2)}`,
      () => `0x${r.int(0, 0xffffff).toString(16)}${r.pick(['', 'ULL', 'n'])}`,
      () => `+1 (${digits(3)}) ${digits(3)}-${digits(4)}`,
      () => `${r.pick(ENGLISH_WORDS)}${digits(r.int(1, 5))}${r.pick(ENGLISH_WORDS)}`,
      () => `v${r.int(0, 20)}.${r.int(0, 99)}.${r.int(0, 999)}-rc.${r.int(1, 9)}`,
      () => `${r.int(1, 28)}/${r.int(1, 12)}/${r.int(1900, 2100)} ${r.int(0, 23)}:${digits(2)}`,
      () => `${digits(r.int(1, 3))}%, ${digits(r.int(1, 3))}½ ² ³ ⅔ Ⅻ ① ٣ ३ ๓ ${digits(2)}`,
      () => `${digits(r.int(10, 30))} ${digits(r.int(10, 30))}\n${digits(5)}`,
    ];
    add('numbers', r.pick(forms)());
  }

  for (let i = 0; i < 160; i++) {
    const n = r.int(1, 6);
    const parts: string[] = [];
    for (let k = 0; k < n; k++) {
      let word = r.pick(CONTRACTION_WORDS);
      const m = r.int(1, 3);
      for (let j = 0; j < m; j++) word += `${r.pick(["'", "'", "'", '’'])}${r.pick(CONTRACTION_SUFFIXES)}`;
      if (r.chance(0.5)) word = randomCase(r, word);
      if (r.chance(0.2)) word += r.pick(["'", "''", "'x", "'ve'", "'S'", '?']);
      parts.push(word);
    }
    add('contractions', parts.join(r.pick([' ', ' ', '\n', ', ', "'"])));
  }

  const scripts = Object.keys(SCRIPT_WORDS);
  for (let i = 0; i < 320; i++) {
    const n = r.int(2, 14);
    const words: string[] = [];
    const main = r.pick(scripts);
    for (let k = 0; k < n; k++) {
      const script = r.chance(0.75) ? main : r.pick(scripts);
      let word = r.pick(SCRIPT_WORDS[script]);
      if (r.chance(0.1)) word = r.pick(ENGLISH_WORDS);
      if (r.chance(0.1)) word += r.pick(PUNCTUATION);
      if (r.chance(0.05)) word += String(r.int(0, 9999));
      words.push(word);
    }
    add('scripts', words.join(r.pick([' ', ' ', '', '\n', '، ', '। '])));
  }

  for (let i = 0; i < 340; i++) {
    const n = r.int(1, 40);
    let text = '';
    for (let k = 0; k < n; k++) {
      text += String.fromCodePoint(randomCodePoint(r));
      // combining marks after a base letter: forms that NFC composes (and some it cannot)
      if (r.chance(0.08)) text += String.fromCodePoint(r.int(0x300, 0x36f));
      if (r.chance(0.05)) text += r.pick([' ', '\n', "'s", 'a', '1']);
    }
    add('random', text);
  }

  const SPECIAL = [
    '<|im_start|>', '<|im_end|>', '<|endoftext|>', '<think>', '</think>', '<tool_call>', '</tool_call>',
    '<tool_response>', '</tool_response>', '<|fim_prefix|>', '<|fim_middle|>', '<|fim_suffix|>', '<|fim_pad|>',
    '<|repo_name|>', '<|file_sep|>', '<|vision_start|>', '<|image_pad|>', '<|object_ref_start|>', '<|box_end|>',
  ];
  const NEAR_SPECIAL = [
    '<|im_start', 'im_start|>', '<|im_start |>', '<|IM_START|>', '<<|im_end|>>', '<|<|im_end|>|>', '<thinking>',
    '< think>', '</think', '<|endoftext|', '|>', '<|', '[PAD151700]', '[PAD151669]', '<|im_sep|>', '<tool_call >',
  ];
  for (let i = 0; i < 240; i++) {
    const n = r.int(1, 8);
    let text = '';
    for (let k = 0; k < n; k++) {
      const piece = r.next();
      if (piece < 0.4) text += r.pick(SPECIAL);
      else if (piece < 0.55) text += r.pick(NEAR_SPECIAL);
      else if (piece < 0.75) text += r.pick(ENGLISH_WORDS);
      else if (piece < 0.9) text += r.pick(WHITESPACE);
      else text += r.pick(CHINESE_PHRASES);
    }
    add('special', text);
  }
  // Chat-formatted conversations, as the chat template renders them.
  for (let i = 0; i < 40; i++) {
    const think = r.chance(0.5) ? `<think>\n${englishSentence(r)}\n</think>\n\n` : '';
    add(
      'special',
      `<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n${englishSentence(r)}<|im_end|>\n` +
        `<|im_start|>assistant\n${think}${chineseSentence(r)}<|im_end|>\n`,
    );
  }

  return corpus;
}
