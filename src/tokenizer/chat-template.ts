// Chat prompts are rendered from the model's own Jinja template (GGUF `tokenizer.chat_template`),
// exactly as Hugging Face transformers renders it, so the model sees the format it was trained on.
import { Template } from '@huggingface/jinja';

export type ChatRole = 'system' | 'user' | 'assistant' | 'tool';

export interface ChatToolCall {
  type?: 'function';
  function: { name: string; arguments: string | Record<string, unknown> };
}

export interface ChatMessage {
  role: ChatRole;
  content: string;
  /** Hidden reasoning of an earlier assistant turn (Qwen3 thinking models). */
  reasoning_content?: string;
  tool_calls?: ChatToolCall[];
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

export class ChatTemplateError extends Error {
  override readonly name = 'ChatTemplateError';
}

const compiled = new Map<string, Template>();

function compile(source: string): Template {
  let template = compiled.get(source);
  if (!template) {
    try {
      template = new Template(source);
    } catch (cause) {
      throw new ChatTemplateError(`the model's chat template does not parse: ${String(cause)}`, { cause });
    }
    compiled.set(source, template);
  }
  return template;
}

/** Renders a conversation into the prompt text (special tokens still as text). */
export function renderChat(
  template: string | undefined,
  messages: readonly ChatMessage[],
  options: RenderChatOptions = {},
): string {
  if (messages.length === 0) throw new ChatTemplateError('a conversation needs at least one message');
  const context: Record<string, unknown> = {
    messages,
    add_generation_prompt: options.addGenerationPrompt ?? true,
    bos_token: options.bosToken ?? '',
    eos_token: options.eosToken ?? '',
  };
  if (options.enableThinking !== undefined) context.enable_thinking = options.enableThinking;
  if (options.tools) context.tools = options.tools;
  try {
    return compile(template ?? CHATML_TEMPLATE).render(context);
  } catch (cause) {
    if (cause instanceof ChatTemplateError) throw cause;
    throw new ChatTemplateError(`rendering the chat template failed: ${String(cause)}`, { cause });
  }
}
