// The conversation's messages, newest at the bottom. The view follows the end while the answer
// grows, however it grows (a ResizeObserver sees the Markdown rendered at animation frames, after
// this element's own update), until the reader scrolls up; then a "Jump to latest" button takes
// them back and following resumes (it resumes too when they scroll back to the end, or send).
// Screen readers hear the streaming answer through a polite live region that holds the newest
// piece of its plain text, a sentence (or about a line) at a time: the visible Markdown changes
// block by block and would be re-announced whole, and a region holding the whole answer would be
// laid out again at every token.
import { LitElement, css, html, nothing, type PropertyValues } from 'lit';
import { repeat } from 'lit/directives/repeat.js';
import type { PromptProgress } from '../engine/types.ts';
import type { StoredMessage } from './conversation-store.ts';
import { t, type Lang } from './i18n.ts';
import './message-view.ts';
import { baseStyles } from './styles.ts';

export class QwenMessageList extends LitElement {
  static override properties = {
    messages: { attribute: false },
    locale: { attribute: false },
    streamingId: { attribute: false },
    promptProgress: { attribute: false },
    following: { state: true },
  };

  static override styles = [
    baseStyles,
    css`
      :host {
        display: block;
        overflow-y: auto;
        min-height: 0;
        /* Room for the scrollbar from the start: one that comes as an answer grows would resize
           the list inside the observer's callback, which WebKit reports to the page as an error
           ("ResizeObserver loop completed with undelivered notifications"). */
        scrollbar-gutter: stable;
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
      .jump {
        position: sticky;
        bottom: 0.75rem;
        display: block;
        margin: 0 auto;
        box-shadow: 0 2px 8px rgb(0 0 0 / 25%);
      }
    `,
  ];

  declare messages: StoredMessage[];
  declare locale: Lang;
  /** The id of the answer being written, if any. */
  declare streamingId: string | undefined;
  /** The streaming answer's prompt is being read: how far. */
  declare promptProgress: PromptProgress | undefined;

  /** The view stays at the end as content grows; off once the reader scrolls up. */
  declare following: boolean;
  /** scrollTop after our last look at it: a smaller one means the reader scrolled up. */
  private lastScrollTop = 0;
  /** The answer being announced, how much of it was, and the piece in the live region now. */
  private announced = { id: '', length: 0, piece: '' };
  private readonly resizes = new ResizeObserver(() => this.follow());

  constructor() {
    super();
    this.messages = [];
    this.locale = 'en';
    this.streamingId = undefined;
    this.following = true;
    this.addEventListener('scroll', () => {
      const atEnd = this.scrollHeight - this.scrollTop - this.clientHeight < 48;
      if (atEnd) this.following = true;
      else if (this.scrollTop < this.lastScrollTop - 1) this.following = false;
      this.lastScrollTop = this.scrollTop;
    });
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.resizes.disconnect();
  }

  protected override firstUpdated(): void {
    const list = this.renderRoot.querySelector('.list');
    if (list) this.resizes.observe(list);
  }

  /** Scrolls to the end if following (and not there yet: no scroll, no scroll event, for nothing). */
  private follow(): void {
    if (!this.following) return;
    const end = this.scrollHeight - this.clientHeight;
    if (this.scrollTop < end - 1) this.scrollTop = end;
    this.lastScrollTop = this.scrollTop;
  }

  /** Back to the newest message, following again. */
  jumpToLatest(): void {
    this.following = true;
    this.follow();
  }

  override render() {
    let lastAssistant = -1;
    this.messages.forEach((m, index) => m.role === 'assistant' && (lastAssistant = index));
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
            .promptProgress=${message.id === this.streamingId ? this.promptProgress : undefined}
          ></qwen-message>`,
        )}
      </div>
      ${!this.following && this.messages.length > 0
        ? html`<button type="button" class="jump" @click=${() => this.jumpToLatest()}>${t(this.locale, 'jumpToLatest')} ↓</button>`
        : nothing}
      <div class="sr-only live" aria-live="polite" aria-atomic="false">${this.announced.piece}</div>`;
  }

  protected override willUpdate(changed: PropertyValues<this>): void {
    // A new conversation or a sent message scrolls to the end even if the reader had scrolled up.
    const previous = changed.get('messages') as StoredMessage[] | undefined;
    if (changed.has('messages') && (!previous || this.messages.length !== previous.length)) this.following = true;
    this.announce(changed.get('streamingId') as string | undefined);
  }

  /** Moves the next whole piece of the streaming answer (or, once it ended, the rest) into the live region. */
  private announce(previousStreamingId: string | undefined): void {
    const id = this.streamingId ?? previousStreamingId;
    const message = id === undefined ? undefined : this.messages.find((m) => m.id === id);
    if (!message) return;
    if (this.announced.id !== message.id) this.announced = { id: message.id, length: 0, piece: '' };
    const pending = message.content.slice(this.announced.length);
    const ended = this.streamingId === undefined;
    const cut = ended ? pending.length : pieceEnd(pending);
    if (cut > 0) this.announced = { id: message.id, length: this.announced.length + cut, piece: pending.slice(0, cut) };
  }

  protected override updated(): void {
    this.follow();
  }
}

/** Where the next piece to announce ends: after the last sentence end or line, or a word once 60 characters wait. */
function pieceEnd(text: string): number {
  let end = 0;
  for (const match of text.matchAll(/[.!?。！？…](?=\s)|\n/g)) end = match.index + match[0].length;
  if (end === 0 && text.length >= 60) end = text.lastIndexOf(' ') + 1;
  return end;
}

if (!customElements.get('qwen-message-list')) customElements.define('qwen-message-list', QwenMessageList);

declare global {
  interface HTMLElementTagNameMap {
    'qwen-message-list': QwenMessageList;
  }
}
