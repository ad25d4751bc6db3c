// Conversations in IndexedDB (idb-keyval, a database of our own so it never shares a version
// number with the model store's), plus export as Markdown or JSON.
import { createStore, del, get, set, values, type UseStore } from 'idb-keyval';
import type { CompletionUsage, FinishReason } from '../engine/types.ts';

export interface StoredMessage {
  id: string;
  role: 'user' | 'assistant';
  content: string;
  /** Thinking text of an assistant turn. */
  reasoning?: string;
  usage?: CompletionUsage;
  finishReason?: FinishReason;
  /** The error that ended this turn, shown under it. */
  error?: string;
  /** The model that wrote an assistant turn. */
  model?: string;
  createdAt: number;
}

export interface Conversation {
  id: string;
  title: string;
  createdAt: number;
  updatedAt: number;
  messages: StoredMessage[];
}

export const CONVERSATION_DB = 'qwen-web-chat';

export class ConversationStore {
  private constructor(private readonly store: UseStore) {}

  static open(dbName = CONVERSATION_DB): ConversationStore {
    return new ConversationStore(createStore(dbName, 'conversations'));
  }

  /** Every conversation, most recently changed first. */
  async list(): Promise<Conversation[]> {
    const all = await values<Conversation>(this.store);
    return all.sort((a, b) => b.updatedAt - a.updatedAt);
  }

  get(id: string): Promise<Conversation | undefined> {
    return get<Conversation>(id, this.store);
  }

  save(conversation: Conversation): Promise<void> {
    return set(conversation.id, conversation, this.store);
  }

  delete(id: string): Promise<void> {
    return del(id, this.store);
  }
}

export function newId(): string {
  return crypto.randomUUID();
}

export function newConversation(title: string): Conversation {
  const now = Date.now();
  return { id: newId(), title, createdAt: now, updatedAt: now, messages: [] };
}

/** A title from the first user message: its first line, cut at 48 characters. */
export function titleFrom(text: string): string {
  const line = text.trim().split('\n')[0]?.trim() ?? '';
  return line.length > 48 ? `${line.slice(0, 47)}…` : line;
}

/** The conversation as a Markdown document (the model's text is kept as written). */
export function conversationToMarkdown(conversation: Conversation, systemPrompt?: string): string {
  const parts = [`# ${conversation.title}`, ''];
  if (systemPrompt) parts.push('## System', '', systemPrompt, '');
  for (const message of conversation.messages) {
    parts.push(message.role === 'user' ? '## User' : `## Assistant${message.model ? ` (${message.model})` : ''}`, '');
    if (message.reasoning) parts.push('<details><summary>Reasoning</summary>', '', message.reasoning, '', '</details>', '');
    parts.push(message.content, '');
  }
  return parts.join('\n');
}

export function conversationToJson(conversation: Conversation, systemPrompt?: string): string {
  return JSON.stringify({ ...conversation, systemPrompt: systemPrompt || undefined }, null, 2);
}

/** A file name from a title: letters, digits (any script), dashes. */
export function fileNameFor(title: string, extension: string): string {
  const base = title.replace(/[^\p{L}\p{N}]+/gu, '-').replace(/^-+|-+$/g, '').slice(0, 60) || 'conversation';
  return `${base}.${extension}`;
}

/** Saves text as a file through a Blob URL and a temporary link. */
export function downloadText(fileName: string, text: string, type: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = document.createElement('a');
  link.href = url;
  link.download = fileName;
  link.style.display = 'none';
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
