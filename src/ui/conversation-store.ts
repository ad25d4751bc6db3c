// Conversations in IndexedDB (idb-keyval, a database of our own so it never shares a version
// number with the model store's), plus export as Markdown or JSON.
//
// Several tabs may hold the same conversation. Each saved conversation carries a revision; a save
// reads the stored copy and writes in one transaction, and when the stored revision is not the one
// the tab started from, the two are merged instead of one overwriting the other: every message of
// either side is kept (the newer copy of a message both have), except messages either side removed
// on purpose (a regenerated answer, a cleared chat), which are remembered by id.
import { createStore, del, get, promisifyRequest, values, type UseStore } from 'idb-keyval';
import type { CompletionUsage, FinishReason, ToolCall } from '../engine/types.ts';

export interface StoredMessage {
  id: string;
  /** 'tool': a function's result the page gave for one of the answer's tool calls. */
  role: 'user' | 'assistant' | 'tool';
  content: string;
  /** The functions an assistant turn called. */
  toolCalls?: ToolCall[];
  /** A tool turn: the call it answers, and the function's name. */
  toolCallId?: string;
  toolName?: string;
  /** The task preset an answer was written under (an outline's offers "Expand section"). */
  preset?: string;
  /** Thinking text of an assistant turn. */
  reasoning?: string;
  usage?: CompletionUsage;
  finishReason?: FinishReason;
  /** The error that ended this turn, shown under it. */
  error?: string;
  /** The model that wrote an assistant turn. */
  model?: string;
  createdAt: number;
  /** Last change of its text (an edit, the end of streaming); createdAt when unset. */
  updatedAt?: number;
}

export interface Conversation {
  id: string;
  title: string;
  createdAt: number;
  updatedAt: number;
  messages: StoredMessage[];
  /** The stored revision this copy was read as or saved to (0: never saved). */
  revision?: number;
  /**
   * Messages removed on purpose (id → when), so a merge with an older copy does not bring them
   * back. A copy of the message changed after its removal (an Undo brings it back) outlives it.
   */
  removed?: Record<string, number>;
  /** Before `removed`: ids removed, with no time (read as removed at the conversation's updatedAt). */
  removedIds?: string[];
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

  /**
   * Saves `conversation`, merged with the stored copy if another tab saved it since this copy's
   * revision, and returns what was stored (with its new revision).
   */
  save(conversation: Conversation): Promise<Conversation> {
    return this.store('readwrite', (store) => {
      let saved: Conversation | undefined;
      const read = store.get(conversation.id) as IDBRequest<Conversation | undefined>;
      read.onsuccess = () => {
        const stored = read.result;
        const base = stored && stored.revision !== (conversation.revision ?? 0) ? mergeConversations(stored, conversation) : conversation;
        saved = { ...base, revision: (stored?.revision ?? 0) + 1 };
        store.put(saved, conversation.id);
      };
      return promisifyRequest(store.transaction).then(() => saved!);
    });
  }

  delete(id: string): Promise<void> {
    return del(id, this.store);
  }
}

/**
 * Two copies of one conversation as one: all messages of both but those removed (by either) after
 * their last change, the newer copy of a message both hold (ours on a tie). Our order is kept; a
 * message only the stored copy has goes right after the message it followed there (its turn stays
 * together).
 */
export function mergeConversations(stored: Conversation, ours: Conversation): Conversation {
  const removals = removalsOf(stored);
  for (const [id, at] of Object.entries(removalsOf(ours))) removals[id] = Math.max(at, removals[id] ?? at);
  const storedById = new Map(stored.messages.map((m) => [m.id, m]));
  const oursById = new Map(ours.messages.map((m) => [m.id, m]));
  // A removal stands unless a copy changed after it (a message brought back); then it is dropped.
  const removed = new Set<string>();
  for (const id of Object.keys(removals)) {
    const copies = [storedById.get(id), oursById.get(id)].filter((m) => m !== undefined);
    if (copies.every((m) => changedAt(m) <= removals[id])) removed.add(id);
    else delete removals[id];
  }
  // Stored-only messages, by the id of the nearest earlier stored message we also hold.
  const after = new Map<string | undefined, StoredMessage[]>();
  let anchor: string | undefined;
  for (const message of stored.messages) {
    if (oursById.has(message.id)) anchor = message.id;
    else if (!removed.has(message.id)) after.set(anchor, [...(after.get(anchor) ?? []), message]);
  }
  const messages = [...(after.get(undefined) ?? [])];
  for (const message of ours.messages) {
    if (!removed.has(message.id)) {
      const theirs = storedById.get(message.id);
      messages.push(theirs && changedAt(theirs) > changedAt(message) ? theirs : message);
    }
    messages.push(...(after.get(message.id) ?? []));
  }
  const { removedIds: _legacy, ...rest } = ours;
  return {
    ...rest,
    title: ours.title || stored.title,
    createdAt: Math.min(stored.createdAt, ours.createdAt),
    updatedAt: Math.max(stored.updatedAt, ours.updatedAt),
    messages,
    removed: removals,
  };
}

/** When a message's text last changed. */
export function changedAt(message: StoredMessage): number {
  return message.updatedAt ?? message.createdAt;
}

/** A conversation's removals, id → when; ids stored before removal times count from its updatedAt. */
export function removalsOf(conversation: Conversation): Record<string, number> {
  const removals: Record<string, number> = {};
  for (const id of conversation.removedIds ?? []) removals[id] = conversation.updatedAt;
  return Object.assign(removals, conversation.removed);
}

export function newId(): string {
  return crypto.randomUUID();
}

export function newConversation(title: string): Conversation {
  const now = Date.now();
  return { id: newId(), title, createdAt: now, updatedAt: now, messages: [], revision: 0 };
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
    if (message.role === 'tool') {
      parts.push(`## Tool result (${message.toolName ?? message.toolCallId ?? 'tool'})`, '', '```json', message.content, '```', '');
      continue;
    }
    parts.push(message.role === 'user' ? '## User' : `## Assistant${message.model ? ` (${message.model})` : ''}`, '');
    if (message.reasoning) parts.push('<details><summary>Reasoning</summary>', '', message.reasoning, '', '</details>', '');
    parts.push(message.content, '');
    for (const call of message.toolCalls ?? []) parts.push(`Called \`${call.function.name}\`:`, '', '```json', call.function.arguments, '```', '');
  }
  return parts.join('\n');
}

export function conversationToJson(conversation: Conversation, systemPrompt?: string): string {
  const { revision: _revision, removed: _removed, removedIds: _removedIds, ...kept } = conversation;
  return JSON.stringify({ ...kept, systemPrompt: systemPrompt || undefined }, null, 2);
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
