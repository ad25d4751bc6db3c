// Task presets: a system prompt and the sampling that suits the task (writing wants variety,
// code and translation want precision), one click beside the composer. The built-in ones speak
// English and Chinese; a user saves their own from the settings panel (kept per origin).
import type { Lang } from './i18n.ts';

export interface Preset {
  id: string;
  label: string;
  systemPrompt: string;
  temperature: number;
  topP: number;
  /** The user's own (deletable). */
  custom?: boolean;
}

interface BuiltIn {
  id: string;
  label: Record<Lang, string>;
  systemPrompt: Record<Lang, string>;
  temperature: number;
  topP: number;
}

/** The preset whose answers offer "Expand section N" under each heading. */
export const OUTLINE_PRESET = 'outline';

const BUILT_IN: BuiltIn[] = [
  {
    id: 'write', temperature: 0.8, topP: 0.9,
    label: { en: 'Write', zh: '写作' },
    systemPrompt: {
      en: "You are a skilled writer. Write clear, vivid, well-structured prose in the user's language, with Markdown headings and lists where they help the reader.",
      zh: '你是一位优秀的写作者。请用用户使用的语言写出清晰、生动、结构严谨的文字，在有助于阅读时使用 Markdown 标题和列表。',
    },
  },
  {
    id: 'polish', temperature: 0.5, topP: 0.8,
    label: { en: 'Polish', zh: '润色' },
    systemPrompt: {
      en: "Rewrite the user's text to read clearer and more fluently. Keep its meaning, facts, tone and language. Reply with the revised text only.",
      zh: '请润色用户的文字，使其更清晰、更流畅。保持原意、事实、语气和语言不变。只回复修改后的文字。',
    },
  },
  {
    id: 'translate', temperature: 0.3, topP: 0.8,
    label: { en: 'Translate', zh: '翻译' },
    systemPrompt: {
      en: "Translate the user's text: into English if it is not English, otherwise into Simplified Chinese, unless the user names another language. Keep the formatting. Reply with the translation only.",
      zh: '请翻译用户的文字：非中文译为简体中文，中文译为英文，除非用户指定了其他语言。保留原有格式。只回复译文。',
    },
  },
  {
    id: 'summarise', temperature: 0.4, topP: 0.8,
    label: { en: 'Summarise', zh: '总结' },
    systemPrompt: {
      en: "Summarise the user's text: one sentence with the gist, then the key points as a short list.",
      zh: '请总结用户的文字：先用一句话概括要点，再用简短的列表列出关键信息。',
    },
  },
  {
    id: 'code', temperature: 0.3, topP: 0.8,
    label: { en: 'Code', zh: '编程' },
    systemPrompt: {
      en: 'You are an expert programmer. Answer with correct, idiomatic code in fenced blocks that name their language, and explain it briefly.',
      zh: '你是一位资深程序员。请给出正确、地道的代码，放在标明语言的代码块中，并简要说明。',
    },
  },
  {
    id: OUTLINE_PRESET, temperature: 0.6, topP: 0.8,
    label: { en: 'Outline', zh: '大纲' },
    systemPrompt: {
      en: "Write an outline for the user's topic: a title, then 4 to 7 sections as Markdown '## ' headings, each with 2 to 4 bullet points. Do not write the sections out.",
      zh: '请为用户的主题写一份大纲：一个标题，然后用 Markdown 的“## ”标题列出 4 到 7 节，每节 2 到 4 个要点。不要展开各节的正文。',
    },
  },
];

/** The built-in presets in `lang`. */
export function builtInPresets(lang: Lang): Preset[] {
  return BUILT_IN.map((p) => ({ id: p.id, label: p.label[lang], systemPrompt: p.systemPrompt[lang], temperature: p.temperature, topP: p.topP }));
}

/** The follow-up prompt of "Expand section N". */
export function expandSectionPrompt(lang: Lang, index: number, heading: string): string {
  return lang === 'zh'
    ? `请将第 ${index} 节（“${heading}”）展开为完整的正文，保持大纲的风格和语言。`
    : `Expand section ${index} ("${heading}") of the outline into full prose, in the same style and language.`;
}

/** A custom preset as the user saved it, or undefined for anything else found in storage. */
export function parseCustomPreset(value: unknown): Preset | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const p = value as Record<string, unknown>;
  if (typeof p.id !== 'string' || typeof p.label !== 'string' || typeof p.systemPrompt !== 'string') return undefined;
  if (typeof p.temperature !== 'number' || typeof p.topP !== 'number') return undefined;
  return { id: p.id, label: p.label.slice(0, 40), systemPrompt: p.systemPrompt, temperature: p.temperature, topP: p.topP, custom: true };
}
