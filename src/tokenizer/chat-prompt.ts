// A conversation as prompt tokens. Control tokens (<|im_start|>, <|im_end|>, <|endoftext|>, the
// FIM tokens…) come only from the chat template's own markup: what people and tools wrote
// (message contents, reasoning, tool calls, tool definitions) tokenizes as text even where it
// spells a control token, so a message cannot forge a turn of another role.
//
// How: every control-token text inside those strings gets an escape mark (a private-use character
// found nowhere in the conversation or the template) after its first character before rendering;
// the rendered prompt is tokenized with special-token parsing, which cannot match an escaped text;
// the marks are removed before BPE. Text without control-token spellings renders and tokenizes
// exactly as before.
//
// User-defined tokens (Qwen3's <think>, </think>, <tool_call>, <tool_response>…) are parsed in
// content as llama.cpp and Hugging Face do: they do not delimit turns, and the model's templates
// read them in contents (Qwen3's splits an assistant message at </think>, and takes a user message
// that starts with <tool_response> for a tool result), which escaping would change.
//
// Continuing the final (assistant) message: the conversation is rendered without a generation
// prompt and cut right after that message's text, so the prompt ends inside it (what
// transformers' continue_final_message does). A template that does not show the text as written
// cannot be continued: a typed error, not a prompt that silently lost part of the answer.
import { ChatTemplateError, type ChatMessage, type ChatTemplate, type RenderChatOptions } from './chat-template.ts';
import type { Tokenizer } from './tokenizer.ts';

export interface ChatPromptOptions extends RenderChatOptions {
  /** Let control-token text inside message contents act as control tokens (default false). */
  specialTokensInContent?: boolean;
  /** End the prompt inside the last message (an assistant's) instead of opening a new one. */
  continueFinalMessage?: boolean;
}

export class ChatPrompt {
  private readonly mark: string | undefined;
  private readonly escaped = new Map<ChatMessage, ChatMessage>();
  private readonly renderOptions: RenderChatOptions;
  private readonly continueFinal: boolean;

  /** `messages`: the whole conversation; tokens() takes any sub-list of these same objects. */
  constructor(
    private readonly tokenizer: Tokenizer,
    private readonly template: ChatTemplate,
    messages: readonly ChatMessage[],
    options: ChatPromptOptions = {},
  ) {
    const { specialTokensInContent, continueFinalMessage, ...renderOptions } = options;
    this.continueFinal = continueFinalMessage === true;
    this.renderOptions = this.continueFinal ? { ...renderOptions, addGenerationPrompt: false } : renderOptions;
    if (specialTokensInContent) return;
    const mark = tokenizer.escapeMarkFor(allStrings([template.source, messages, options.tools ?? []]));
    if (mark === undefined) throw new ChatTemplateError('refused', 'the conversation uses every private-use character; no escape mark is left');
    this.mark = mark;
    const escape = (value: unknown): unknown => mapStrings(value, (text) => tokenizer.escapeControlText(text, mark));
    for (const message of messages) this.escaped.set(message, escape(message) as ChatMessage);
    if (options.tools) this.renderOptions = { ...this.renderOptions, tools: escape(options.tools) as unknown[] };
  }

  /** The prompt tokens for `messages` (objects of the conversation this was made for). */
  tokens(messages: readonly ChatMessage[]): number[] {
    const shown = messages.map((m) => this.escaped.get(m) ?? m);
    let text = this.template.render(shown, this.renderOptions);
    if (this.continueFinal) text = cutAfterFinalMessage(text, shown[shown.length - 1]);
    return this.tokenizer.encode(text, { parseSpecial: true, addSpecial: true, escapeMark: this.mark });
  }

  /** Tokens of a message's own text, without the template's markup (an estimate for fitting). */
  textTokens(message: ChatMessage): number {
    return this.tokenizer.encode(message.content).length;
  }

  /** A number of tokens the message's own text can never go below, known without tokenizing. */
  minTextTokens(message: ChatMessage): number {
    return this.tokenizer.minTokens(message.content);
  }
}

/**
 * The rendered conversation up to the end of the final message's text (its last occurrence).
 * Templates may strip the whitespace around a message (Qwen3's drops leading newlines); then the
 * text is found without it, and whitespace that ended it is put back, so the prompt ends exactly
 * where the answer so far ends.
 */
function cutAfterFinalMessage(rendered: string, final: ChatMessage | undefined): string {
  if (final?.role !== 'assistant') throw new ChatTemplateError('refused', 'only an assistant message can be continued');
  const text = final.content;
  const core = text.trim();
  if (core === '') throw new ChatTemplateError('refused', 'the message to continue is empty: ask for a new answer instead');
  const exact = rendered.lastIndexOf(text);
  if (exact >= 0) return rendered.slice(0, exact + text.length);
  const at = rendered.lastIndexOf(core);
  if (at >= 0) return rendered.slice(0, at + core.length) + text.slice(text.trimEnd().length);
  throw new ChatTemplateError('refused', "the chat template does not show the final message's text as written, so it cannot be continued");
}

/** `value` with every string in it (keys excepted) replaced by `map(string)`; plain data only. */
function mapStrings(value: unknown, map: (text: string) => string): unknown {
  if (typeof value === 'string') return map(value);
  if (Array.isArray(value)) return value.map((item) => mapStrings(item, map));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, mapStrings(item, map)]));
  }
  return value;
}

function* allStrings(value: unknown): Generator<string> {
  if (typeof value === 'string') yield value;
  else if (Array.isArray(value)) for (const item of value) yield* allStrings(item);
  else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      yield key;
      yield* allStrings(item);
    }
  }
}
