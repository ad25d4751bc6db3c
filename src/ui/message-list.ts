// The conversation's messages, newest at the bottom, kept scrolled to the end while an answer
// streams (unless the reader scrolled up). Screen readers hear the streaming answer through a
// polite live region holding its plain text; the visible Markdown is re-rendered on every delta
// and would be re-announced whole.
import { LitElement, css, html, nothing, type PropertyValues } from 'lit';
import { repeat } from 'lit/directives/repeat.js';
import type { StoredMessage } from './conversation-store.ts';
import { t, type Lang } from './i18n.ts';
import './message-view.ts';
import { baseStyles } from './styles.ts';

export class QwenMessageList extends LitElement {
  static override properties = {
    messages: { attribute: false },
    locale: { attribute: false },
    streamingId: { attribute: false },
  };

  static override styles = [
    baseStyles,
    css`
      :host {
        display: block;
        overflow-y: auto;
        min-height: 0;
      }
      .list {
        display: flex;
        flex-direction: column;
        gap: 0.9rem;
        padding: 1rem;
        max-width: 56rem;
        margin: 0 auto;
      }
      .empty {
        text-align: center;
        padding: 3rem 1rem;
      }
    `,
  ];

  declare messages: StoredMessage[];
  declare locale: Lang;
  /** The id of the answer being written, if any. */
  declare streamingId: string | undefined;

  private stickToBottom = true;

  constructor() {
    super();
    this.messages = [];
    this.locale = 'en';
    this.streamingId = undefined;
    this.addEventListener('scroll', () => {
      this.stickToBottom = this.scrollHeight - this.scrollTop - this.clientHeight < 48;
    });
  }

  override render() {
    let lastAssistant = -1;
    this.messages.forEach((m, index) => m.role === 'assistant' && (lastAssistant = index));
    const streaming = this.messages.find((m) => m.id === this.streamingId);
    const busy = this.streamingId !== undefined;
    return html`<div class="list" role="list" aria-label=${t(this.locale, 'messages')} aria-busy=${busy ? 'true' : 'false'}>
        ${this.messages.length === 0 ? html`<p class="empty muted">${t(this.locale, 'appTitle')}</p>` : nothing}
        ${repeat(
          this.messages,
          (message) => message.id,
          (message, index) => html`<qwen-message
            role="listitem"
            .message=${message}
            .locale=${this.locale}
            .busy=${busy}
            .canRegenerate=${index === lastAssistant}
            ?streaming=${message.id === this.streamingId}
          ></qwen-message>`,
        )}
      </div>
      <div class="sr-only live" aria-live="polite" aria-atomic="false">${streaming?.content ?? ''}</div>`;
  }

  protected override willUpdate(changed: PropertyValues<this>): void {
    // A new conversation or a sent message scrolls to the end even if the reader had scrolled up.
    const previous = changed.get('messages') as StoredMessage[] | undefined;
    if (changed.has('messages') && (!previous || this.messages.length !== previous.length)) this.stickToBottom = true;
  }

  protected override updated(): void {
    if (this.stickToBottom) this.scrollTop = this.scrollHeight;
  }
}

if (!customElements.get('qwen-message-list')) customElements.define('qwen-message-list', QwenMessageList);

declare global {
  interface HTMLElementTagNameMap {
    'qwen-message-list': QwenMessageList;
  }
}
