// Saved conversations: new, pick, rename (in place), delete (a second click confirms), export as
// Markdown or JSON. The root element owns the store; this list only asks for changes by event.
import { LitElement, css, html } from 'lit';
import { repeat } from 'lit/directives/repeat.js';
import type { Conversation } from './conversation-store.ts';
import { t, type Lang } from './i18n.ts';
import { baseStyles } from './styles.ts';

export type ConversationAction = 'new' | 'select' | 'rename' | 'delete' | 'export-markdown' | 'export-json';

export interface ConversationActionDetail {
  action: ConversationAction;
  id?: string;
  title?: string;
}

export class QwenConversationList extends LitElement {
  static override properties = {
    conversations: { attribute: false },
    currentId: { attribute: false },
    locale: { attribute: false },
    busy: { attribute: false },
    renamingId: { state: true },
    confirmingDeleteId: { state: true },
  };

  static override styles = [
    baseStyles,
    css`
      :host {
        display: flex;
        flex-direction: column;
        min-height: 0;
      }
      h2 {
        font-size: 0.8rem;
        text-transform: uppercase;
        letter-spacing: 0.05em;
        color: var(--qwen-muted);
        margin: 0.9rem 0.9rem 0.4rem;
      }
      .new {
        margin: 0.75rem 0.75rem 0;
      }
      ul {
        list-style: none;
        margin: 0;
        padding: 0 0.4rem 0.75rem;
        overflow-y: auto;
      }
      li {
        border-radius: 8px;
        padding: 0.2rem;
      }
      li.current {
        background: var(--qwen-surface-2);
      }
      .title {
        display: block;
        width: 100%;
        text-align: left;
        background: none;
        border: none;
        padding: 0.35rem 0.45rem;
        overflow: hidden;
        text-overflow: ellipsis;
        white-space: nowrap;
      }
      .actions {
        display: none;
        flex-wrap: wrap;
        gap: 0.1rem;
        padding: 0 0.25rem 0.2rem;
      }
      li.current .actions,
      li:focus-within .actions {
        display: flex;
      }
      .actions button {
        font-size: 0.72rem;
      }
      input {
        width: 100%;
      }
    `,
  ];

  declare conversations: Conversation[];
  declare currentId: string | undefined;
  declare locale: Lang;
  /** An answer is streaming: switching conversations waits. */
  declare busy: boolean;
  declare renamingId: string | undefined;
  declare confirmingDeleteId: string | undefined;

  constructor() {
    super();
    this.conversations = [];
    this.currentId = undefined;
    this.locale = 'en';
    this.busy = false;
    this.renamingId = undefined;
    this.confirmingDeleteId = undefined;
  }

  override render() {
    const l = this.locale;
    return html`<button type="button" class="primary new" ?disabled=${this.busy} @click=${() => this.emit({ action: 'new' })}>
        ${t(l, 'newChat')}
      </button>
      <h2 id="heading">${t(l, 'conversations')}</h2>
      <ul aria-labelledby="heading">
        ${repeat(this.conversations, (c) => c.id, (c) => this.renderItem(c))}
      </ul>`;
  }

  private renderItem(conversation: Conversation) {
    const l = this.locale;
    const current = conversation.id === this.currentId;
    const title = conversation.title || t(l, 'untitled');
    const confirming = this.confirmingDeleteId === conversation.id;
    return html`<li class=${current ? 'current' : ''} data-id=${conversation.id}>
      ${this.renamingId === conversation.id
        ? html`<label class="sr-only" for="rename-${conversation.id}">${t(l, 'renamePrompt')}</label>
            <input
              id="rename-${conversation.id}"
              class="rename-input"
              .value=${conversation.title}
              @keydown=${(e: KeyboardEvent) => this.onRenameKey(e, conversation.id)}
              @blur=${(e: FocusEvent) => this.finishRename(conversation.id, (e.target as HTMLInputElement).value)}
            />`
        : html`<button
            type="button"
            class="title"
            aria-current=${current ? 'true' : 'false'}
            ?disabled=${this.busy && !current}
            @click=${() => this.emit({ action: 'select', id: conversation.id })}
          >
            ${title}
          </button>`}
      <div class="actions">
        <button type="button" class="link rename" @click=${() => this.startRename(conversation.id)}>${t(l, 'rename')}</button>
        <button
          type="button"
          class="link danger delete"
          ?disabled=${this.busy && current}
          @click=${() => this.onDelete(conversation)}
          @blur=${() => confirming && (this.confirmingDeleteId = undefined)}
        >
          ${confirming ? t(l, 'confirmDelete', { name: title }) : t(l, 'delete')}
        </button>
        <button type="button" class="link export-md" @click=${() => this.emit({ action: 'export-markdown', id: conversation.id })}>
          ${t(l, 'exportMarkdown')}
        </button>
        <button type="button" class="link export-json" @click=${() => this.emit({ action: 'export-json', id: conversation.id })}>
          ${t(l, 'exportJson')}
        </button>
      </div>
    </li>`;
  }

  private async startRename(id: string): Promise<void> {
    this.renamingId = id;
    await this.updateComplete;
    const input = this.renderRoot.querySelector<HTMLInputElement>('.rename-input');
    input?.focus();
    input?.select();
  }

  private onRenameKey(event: KeyboardEvent, id: string): void {
    if (event.key === 'Enter') {
      event.preventDefault();
      this.finishRename(id, (event.target as HTMLInputElement).value);
    } else if (event.key === 'Escape') {
      event.stopPropagation();
      this.renamingId = undefined;
    }
  }

  private finishRename(id: string, value: string): void {
    if (this.renamingId !== id) return; // blur after Enter already finished it
    this.renamingId = undefined;
    const title = value.trim();
    if (title) this.emit({ action: 'rename', id, title });
  }

  private onDelete(conversation: Conversation): void {
    if (this.confirmingDeleteId !== conversation.id) {
      this.confirmingDeleteId = conversation.id;
      return;
    }
    this.confirmingDeleteId = undefined;
    this.emit({ action: 'delete', id: conversation.id });
  }

  private emit(detail: ConversationActionDetail): void {
    this.dispatchEvent(new CustomEvent<ConversationActionDetail>('conversation-action', { detail, bubbles: true, composed: true }));
  }
}

if (!customElements.get('qwen-conversation-list')) customElements.define('qwen-conversation-list', QwenConversationList);

declare global {
  interface HTMLElementTagNameMap {
    'qwen-conversation-list': QwenConversationList;
  }
}
