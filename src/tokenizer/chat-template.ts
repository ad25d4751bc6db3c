// Chat prompts are rendered from the model's own Jinja template (GGUF `tokenizer.chat_template`),
// exactly as Hugging Face transformers renders it, so the model sees the format it was trained on.
// The template comes with the model file, so it is treated as an untrusted program: it is parsed
// once with a size cap and every render runs under a budget (template-sandbox.ts).
import { Template } from '@huggingface/jinja';
import { inputChars, limitsFor, renderBounded, TemplateBudgetError, TemplateRaisedError } from './template-sandbox.ts';

export type ChatRole = 'system' | 'user' | 'assistant' | 'tool';

export interface ChatToolCall {
  id?: string;
  type?: 'function';
  function: { name: string; arguments: string | Record<string, unknown> };
}

export interface ChatMessage {
  role: ChatRole;
  content: string;
  /** Hidden reasoning of an earlier assistant turn (Qwen3 thinking models). */
  reasoning_content?: string;
  tool_calls?: ChatToolCall[];
  /** A tool result: the call it answers (some templates show it). */
  tool_call_id?: string;
}

export interface RenderChatOptions {
  /** Append the assistant header so the model answers next. Default true. */
  addGenerationPrompt?: boolean;
  /** Hybrid Qwen3 templates: false inserts an empty think block. Undefined leaves it to the template. */
  enableThinking?: boolean;
  /** Tool (function) definitions in OpenAI form, passed through to the template. */
  tools?: unknown[];
  bosToken?: string;
  eosToken?: string;
}

/** Used when a GGUF carries no template: plain ChatML, which Qwen models speak. */
export const CHATML_TEMPLATE =
  "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}{%- endfor %}" +
  "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

/** Longest template source accepted (the official Qwen3 templates are 4–5 KB). */
export const MAX_TEMPLATE_CHARS = 256 * 1024;

export type ChatTemplateErrorCode =
  /** The template does not parse, is too long, fails while rendering, or renders nothing. */
  | 'bad-template'
  /** Rendering needed more steps, memory or time than the conversation justifies. */
  | 'template-too-costly'
  /** The template itself refused the conversation (raise_exception), e.g. no user message. */
  | 'refused';

export class ChatTemplateError extends Error {
  override readonly name = 'ChatTemplateError';

  constructor(
    readonly code: ChatTemplateErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A parsed chat template, rendered under a budget. */
export class ChatTemplate {
  private constructor(
    readonly source: string,
    private readonly template: Template,
  ) {}

  /** Parses `source` (the model's template; undefined gives ChatML). */
  static parse(source: string | undefined): ChatTemplate {
    const text = source ?? CHATML_TEMPLATE;
    if (text.length > MAX_TEMPLATE_CHARS) {
      throw new ChatTemplateError('bad-template', `the chat template is ${text.length} characters long, more than the ${MAX_TEMPLATE_CHARS} accepted`);
    }
    try {
      return new ChatTemplate(text, new Template(text));
    } catch (cause) {
      throw new ChatTemplateError('bad-template', `the chat template does not parse: ${describe(cause)}`, { cause });
    }
  }

  /** Renders a conversation into the prompt text (special tokens still as text). */
  render(messages: readonly ChatMessage[], options: RenderChatOptions = {}): string {
    if (messages.length === 0) throw new ChatTemplateError('refused', 'a conversation needs at least one message');
    const context: Record<string, unknown> = {
      messages,
      add_generation_prompt: options.addGenerationPrompt ?? true,
      bos_token: options.bosToken ?? '',
      eos_token: options.eosToken ?? '',
    };
    if (options.enableThinking !== undefined) context.enable_thinking = options.enableThinking;
    if (options.tools) context.tools = options.tools;
    const limits = limitsFor(inputChars(context), messages.length + (options.tools?.length ?? 0));
    let text: string;
    try {
      text = renderBounded(this.template.parsed, context, limits);
    } catch (cause) {
      if (cause instanceof TemplateBudgetError) throw new ChatTemplateError('template-too-costly', cause.message, { cause });
      if (cause instanceof TemplateRaisedError) throw new ChatTemplateError('refused', `the chat template refused the conversation: ${cause.message}`, { cause });
      // Anything else (a type error in the template, a stack overflow) is the template's fault.
      throw new ChatTemplateError('bad-template', `rendering the chat template failed: ${describe(cause)}`, { cause });
    }
    if (typeof text !== 'string' || text.length === 0) throw new ChatTemplateError('bad-template', 'the chat template renders an empty prompt');
    return text;
  }
}

const parsed = new Map<string, ChatTemplate>();
const PARSED_KEPT = 8;

/** Renders with the template parsed once per source (a few sources are kept). */
export function renderChat(
  template: string | undefined,
  messages: readonly ChatMessage[],
  options: RenderChatOptions = {},
): string {
  const key = template ?? CHATML_TEMPLATE;
  let compiled = parsed.get(key);
  if (!compiled) {
    compiled = ChatTemplate.parse(template);
    if (parsed.size >= PARSED_KEPT) parsed.clear();
    parsed.set(key, compiled);
  }
  return compiled.render(messages, options);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
