// Chat settings: what the settings panel edits and what every request carries.
import type { ChatCompletionRequest, ModelInfo } from '../engine/types.ts';

export type BackendChoice = 'auto' | 'cpu' | 'webgpu';
export type Theme = 'dark' | 'light';

export interface ChatSettings {
  systemPrompt: string;
  temperature: number;
  topP: number;
  topK: number;
  maxTokens: number;
  /** Ask a hybrid model to think first (only sent when the model supports it). */
  thinking: boolean;
  /** Answers are JSON objects (structured output). */
  json: boolean;
  backend: BackendChoice;
  /** Tokens of context to load models with; 0 = the model's default (see ModelInfo.maxContextLength). */
  contextLength: number;
  /** Keep the context in an 8-bit (q8_0) cache: half the memory, so about twice the context fits. */
  compactCache: boolean;
  /** Save each conversation's KV cache (OPFS) so it continues after a reload without reading it again. */
  keepContexts: boolean;
  /** The task preset the system prompt and sampling came from, if they are still its. */
  preset?: string;
}

/** Qwen3's recommended non-thinking sampling (temperature 0.7, top-p 0.8, top-k 20). */
export const DEFAULT_SETTINGS: ChatSettings = {
  systemPrompt: '',
  temperature: 0.7,
  topP: 0.8,
  topK: 20,
  maxTokens: 1024,
  thinking: false,
  json: false,
  backend: 'auto',
  contextLength: 0,
  compactCache: false,
  keepContexts: true,
};

/** Context sizes the settings offer beside "the model's default", up to what the model allows. */
export const CONTEXT_CHOICES = [2048, 4096, 8192, 16384, 32768] as const;

/** Where each number may go; a value outside is clamped, a non-number falls back to the default. */
export const SETTING_LIMITS = {
  temperature: { min: 0, max: 2, step: 0.05 },
  topP: { min: 0, max: 1, step: 0.05 },
  topK: { min: 0, max: 200, step: 1 },
  maxTokens: { min: 1, max: 32768, step: 1 },
  contextLength: { min: 0, max: 262144, step: 1 },
} as const;

export function clampSetting(name: keyof typeof SETTING_LIMITS, value: unknown): number {
  const { min, max } = SETTING_LIMITS[name];
  const number = typeof value === 'number' ? value : Number(value);
  if (!Number.isFinite(number)) return DEFAULT_SETTINGS[name];
  const clamped = Math.min(max, Math.max(min, number));
  return name === 'topK' || name === 'maxTokens' || name === 'contextLength' ? Math.round(clamped) : clamped;
}

export function parseBackend(value: unknown): BackendChoice {
  return value === 'cpu' || value === 'webgpu' ? value : 'auto';
}

/** The sampling part of a request. */
export function samplingOptions(settings: ChatSettings, model: ModelInfo | undefined): Partial<ChatCompletionRequest> {
  const options: Partial<ChatCompletionRequest> = {
    temperature: clampSetting('temperature', settings.temperature),
    top_p: clampSetting('topP', settings.topP),
    top_k: clampSetting('topK', settings.topK),
    max_tokens: clampSetting('maxTokens', settings.maxTokens),
  };
  if (model?.supportsThinking) options.enable_thinking = settings.thinking;
  if (settings.json) options.response_format = { type: 'json_object' };
  return options;
}
