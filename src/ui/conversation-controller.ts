// The conversations of <qwen-chat>, as a Lit reactive controller: the list, the open one, saving.
//
// Nothing the user wrote is lost to storage: a save that fails (storage full, IndexedDB gone)
// keeps the conversation in memory, says so (`saveError`), and is tried again every few seconds,
// whenever anything else is saved, and when the page is hidden, until it succeeds; while it waits
// the page asks before being closed. Other tabs of the app see a saved conversation at once (a
// BroadcastChannel message, then a read of the store), and two tabs writing one conversation merge
// (see ConversationStore.save) instead of overwriting each other's turns.
import type { ReactiveController, ReactiveControllerHost } from 'lit';
import {
  ConversationStore, changedAt, conversationToJson, conversationToMarkdown, downloadText, fileNameFor, mergeConversations, newConversation,
  removalsOf, type Conversation, type StoredMessage,
} from './conversation-store.ts';

const CHANNEL = 'qwen-web-conversations';
const RETRY_MS = 5_000;

type ChannelMessage = { type: 'saved' | 'deleted'; id: string; revision?: number };

export interface ConversationHost extends ReactiveControllerHost {
  /** An answer is streaming into the open conversation (it is not replaced from outside meanwhile). */
  readonly generating: boolean;
}

export class ConversationController implements ReactiveController {
  /** Every conversation, most recently changed first. */
  list: Conversation[] = [];
  /** The open conversation (possibly never saved yet). */
  current: Conversation = newConversation('');
  /** Why the last save failed; undefined once every conversation is stored. */
  saveError: unknown;
  /** Storage could not be opened at all (private mode…): the chat works, nothing is kept. */
  unavailable: unknown;

  private store: ConversationStore | undefined;
  private loaded: Promise<void> | undefined;
  private channel: BroadcastChannel | undefined;
  /** Conversations whose latest copy is not stored yet, by id. */
  private readonly unsaved = new Map<string, Conversation>();
  private saving: Promise<void> = Promise.resolve();
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly onHidden = () => {
    if (document.visibilityState === 'hidden') void this.flush();
  };
  private readonly onBeforeUnload = (event: BeforeUnloadEvent) => {
    if (this.unsaved.size === 0) return;
    event.preventDefault();
    event.returnValue = '';
  };

  constructor(private readonly host: ConversationHost) {
    host.addController(this);
  }

  /** Saves a conversation to a file (Markdown or JSON), with the system prompt it ran under. */
  download(conversation: Conversation, format: 'markdown' | 'json', systemPrompt: string): void {
    if (format === 'markdown') downloadText(fileNameFor(conversation.title, 'md'), conversationToMarkdown(conversation, systemPrompt), 'text/markdown');
    else downloadText(fileNameFor(conversation.title, 'json'), conversationToJson(conversation, systemPrompt), 'application/json');
  }

  hostConnected(): void {
    this.loaded ??= this.open();
    if (typeof BroadcastChannel === 'function' && !this.channel) {
      this.channel = new BroadcastChannel(CHANNEL);
      this.channel.onmessage = (event: MessageEvent<ChannelMessage>) => void this.onRemoteChange(event.data);
    }
    document.addEventListener('visibilitychange', this.onHidden);
    window.addEventListener('beforeunload', this.onBeforeUnload);
  }

  hostDisconnected(): void {
    this.channel?.close();
    this.channel = undefined;
    document.removeEventListener('visibilitychange', this.onHidden);
    window.removeEventListener('beforeunload', this.onBeforeUnload);
  }

  /** Resolves once the saved conversations are read (or found unavailable). */
  ready(): Promise<void> {
    return (this.loaded ??= this.open());
  }

  get hasUnsaved(): boolean {
    return this.unsaved.size > 0;
  }

  private async open(): Promise<void> {
    try {
      this.store = ConversationStore.open();
      const saved = await this.store.list();
      this.list = saved;
      // Reopen the latest conversation unless one was started meanwhile.
      if (saved[0] && this.current.messages.length === 0) this.current = saved[0];
    } catch (error) {
      this.store = undefined;
      this.unavailable = error;
    }
    this.host.requestUpdate();
  }

  /** Opens `conversation` (a new one, or one of the list). */
  select(conversation: Conversation): void {
    this.current = conversation;
    this.host.requestUpdate();
  }

  /** Replaces the open conversation's messages; messages it no longer has are remembered as removed. */
  setMessages(messages: StoredMessage[], changes: Partial<Pick<Conversation, 'title'>> = {}): void {
    const now = Date.now();
    const kept = new Set(messages.map((m) => m.id));
    const removals = removalsOf(this.current);
    for (const message of this.current.messages) {
      if (!kept.has(message.id)) removals[message.id] = Math.max(now, changedAt(message));
    }
    const { removedIds: _legacy, ...current } = this.current;
    this.current = { ...current, ...changes, messages, updatedAt: now, removed: removals };
    this.host.requestUpdate();
  }

  /**
   * Brings back messages removed from the open conversation (an Undo), before those it has now.
   * Each counts as changed now, after its removal, so no copy that still holds the removal (in
   * storage or another tab) takes it away again in a merge.
   */
  restoreMessages(messages: StoredMessage[]): void {
    const now = Date.now();
    const removals = removalsOf(this.current);
    const restored = messages.map((m) => ({ ...m, updatedAt: Math.max(now, (removals[m.id] ?? 0) + 1) }));
    for (const message of messages) delete removals[message.id];
    const back = new Set(messages.map((m) => m.id));
    const { removedIds: _legacy, ...current } = this.current;
    this.current = {
      ...current,
      messages: [...restored, ...current.messages.filter((m) => !back.has(m.id))],
      updatedAt: now,
      removed: removals,
    };
    this.host.requestUpdate();
  }

  /** Replaces one message of conversation `id` if it is the open one (a streaming answer). */
  replaceMessage(id: string, message: StoredMessage): void {
    if (this.current.id !== id) return;
    this.current = { ...this.current, messages: this.current.messages.map((m) => (m.id === message.id ? message : m)) };
    this.host.requestUpdate();
  }

  /** Saves a conversation (the open one by default); failures are kept for a retry, never thrown. */
  save(conversation: Conversation = this.current): Promise<void> {
    this.unsaved.set(conversation.id, conversation);
    this.list = [conversation, ...this.list.filter((c) => c.id !== conversation.id)].sort((a, b) => b.updatedAt - a.updatedAt);
    this.host.requestUpdate();
    return this.flush();
  }

  /** Renames a conversation and saves it. */
  rename(id: string, title: string): Promise<void> {
    if (this.current.id === id) {
      this.current = { ...this.current, title };
      return this.save(this.current);
    }
    const target = this.list.find((c) => c.id === id);
    return target ? this.save({ ...target, title }) : Promise.resolve();
  }

  /** Forgets a conversation (in this tab at once, in storage and other tabs when stored). */
  async delete(id: string): Promise<void> {
    this.unsaved.delete(id);
    this.list = this.list.filter((c) => c.id !== id);
    if (this.current.id === id) this.current = this.list[0] ?? newConversation('');
    this.host.requestUpdate();
    try {
      await this.store?.delete(id);
      this.channel?.postMessage({ type: 'deleted', id } satisfies ChannelMessage);
    } catch (error) {
      this.saveError = error;
      this.host.requestUpdate();
    }
  }

  /** Writes every unsaved conversation, one save at a time; schedules a retry if any fails. */
  flush(): Promise<void> {
    this.saving = this.saving.then(() => this.writeUnsaved());
    return this.saving;
  }

  private async writeUnsaved(): Promise<void> {
    await this.ready();
    const store = this.store;
    if (!store) return;
    clearTimeout(this.retryTimer);
    for (const [id, conversation] of [...this.unsaved]) {
      try {
        const stored = await store.save(conversation);
        // Only forget it if nothing newer was queued while it was being written.
        if (this.unsaved.get(id) === conversation) this.unsaved.delete(id);
        this.adopt(stored);
        this.channel?.postMessage({ type: 'saved', id, revision: stored.revision } satisfies ChannelMessage);
      } catch (error) {
        this.saveError = error;
        this.retryTimer = setTimeout(() => void this.flush(), RETRY_MS);
        this.host.requestUpdate();
        return;
      }
    }
    this.saveError = undefined;
    this.host.requestUpdate();
  }

  /** What the store now holds (perhaps merged with another tab's turns) becomes our copy too. */
  private adopt(stored: Conversation): void {
    const mine = stored.id === this.current.id ? this.current : this.list.find((c) => c.id === stored.id);
    const merged = mine ? { ...mergeConversations(stored, mine), revision: stored.revision } : stored;
    if (stored.id === this.current.id) this.current = merged;
    const pending = this.unsaved.get(stored.id);
    if (pending) this.unsaved.set(stored.id, { ...pending, revision: stored.revision });
    this.list = [merged, ...this.list.filter((c) => c.id !== stored.id)].sort((a, b) => b.updatedAt - a.updatedAt);
  }

  /** Another tab saved or deleted a conversation. */
  private async onRemoteChange(message: ChannelMessage): Promise<void> {
    const store = this.store;
    if (!store) return;
    if (message.type === 'deleted') {
      this.list = this.list.filter((c) => c.id !== message.id);
      this.host.requestUpdate();
      return;
    }
    const stored = await store.get(message.id);
    if (!stored) return;
    if (this.unsaved.has(stored.id)) {
      void this.flush(); // ours is newer in parts: the save merges both
      return;
    }
    if (stored.id === this.current.id && this.host.generating) {
      // The answer being written ends with a save, which merges the other tab's turns.
      return;
    }
    this.adopt(stored);
    this.host.requestUpdate();
  }
}
