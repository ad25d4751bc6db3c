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
import { ChatTemplateError, type ChatMessage, type ChatTemplate, type RenderChatOptions } from './chat-template.ts';
import type { Tokenizer } from './tokenizer.ts';

export interface ChatPromptOptions extends RenderChatOptions {
  /** Let control-token text inside message contents act as control tokens (default false). */
  specialTokensInContent?: boolean;
}

export class ChatPrompt {
  private readonly mark: string | undefined;
  private readonly escaped = new Map<ChatMessage, ChatMessage>();
  private readonly renderOptions: RenderChatOptions;

  /** `messages`: the whole conversation; tokens() takes any sub-list of these same objects. */
  constructor(
    private readonly tokenizer: Tokenizer,
    private readonly template: ChatTemplate,
    messages: readonly ChatMessage[],
    options: ChatPromptOptions = {},
  ) {
    const { specialTokensInContent, ...renderOptions } = options;
    this.renderOptions = renderOptions;
    if (specialTokensInContent) return;
    const mark = tokenizer.escapeMarkFor(allStrings([template.source, messages, options.tools ?? []]));
    if (mark === undefined) throw new ChatTemplateError('refused', 'the conversation uses every private-use character; no escape mark is left');
    this.mark = mark;
    const escape = (value: unknown): unknown => mapStrings(value, (text) => tokenizer.escapeControlText(text, mark));
    for (const message of messages) this.escaped.set(message, escape(message) as ChatMessage);
    if (options.tools) this.renderOptions = { ...renderOptions, tools: escape(options.tools) as unknown[] };
  }

  /** The prompt tokens for `messages` (objects of the conversation this was made for). */
  tokens(messages: readonly ChatMessage[]): number[] {
    const text = this.template.render(messages.map((m) => this.escaped.get(m) ?? m), this.renderOptions);
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
