// One message: the user's text (plain, never parsed as Markdown) or the assistant's Markdown
// (sanitized, see markdown.ts), its reasoning in a collapsible block, the speed status from usage
// and the actions: copy, edit-and-resend (user), regenerate (last answer), continue (the last
// answer, when it stopped at the token limit). While an answer streams,
// its Markdown is rendered at most once per animation frame, and only the block being written
// (StreamingMarkdown); the engine waits for the page between tokens, so this is generation speed too.
import { LitElement, css, html, nothing, type PropertyValues } from 'lit';
import type { PromptProgress } from '../engine/types.ts';
import type { StoredMessage } from './conversation-store.ts';
import { formatNumber } from '../format.ts';
import { formatCount, t, type Lang } from './i18n.ts';
import { copyText, sectionHeadings, StreamingMarkdown } from './markdown.ts';
import { OUTLINE_PRESET } from './presets.ts';
import { baseStyles, markdownStyles } from './styles.ts';

export type MessageAction = 'edit' | 'regenerate' | 'continue' | 'expand';

/** A streaming render waits this many times its predecessor's cost after it (see scheduleRender). */
const RENDER_SPACING = 6;

export interface MessageActionDetail {
  action: MessageAction;
  id: string;
  /** The new text (edit), or the heading of the section to expand. */
  text?: string;
  /** The section to expand (1-based). */
  index?: number;
}

export class QwenMessage extends LitElement {
  static override properties = {
    message: { attribute: false },
    locale: { attribute: false },
    streaming: { type: Boolean, reflect: true },
    promptProgress: { attribute: false },
    canRegenerate: { attribute: false },
    busy: { attribute: false },
    editing: { state: true },
    copied: { state: true },
  };

  static override styles = [
    baseStyles,
    markdownStyles,
    css`
      :host {
        display: block;
      }
      article {
        padding: 0.75rem 0.9rem;
        border-radius: var(--qwen-radius);
        max-width: min(52rem, 100%);
      }
      article.user {
        background: var(--qwen-user-bg);
        margin-left: auto;
        width: fit-content;
      }
      article.assistant {
        background: var(--qwen-surface);
        border: 1px solid var(--qwen-border);
      }
      .role {
        font-size: 0.75rem;
        font-weight: 600;
        color: var(--qwen-muted);
        margin-bottom: 0.3rem;
      }
      .user-text {
        white-space: pre-wrap;
        overflow-wrap: anywhere;
      }
      .reading {
        display: flex;
        flex-wrap: wrap;
        gap: 0.3rem 0.6rem;
        align-items: center;
        color: var(--qwen-muted);
        font-size: 0.9em;
        margin-bottom: 0.4rem;
      }
      .reading progress {
        flex: 1 1 8rem;
        max-width: 16rem;
      }
      details.reasoning {
        margin-bottom: 0.5rem;
        color: var(--qwen-muted);
        font-size: 0.9em;
      }
      details.reasoning summary {
        cursor: pointer;
      }
      details.reasoning .reasoning-text {
        white-space: pre-wrap;
        border-left: 3px solid var(--qwen-border);
        padding-left: 0.6rem;
        margin-top: 0.3rem;
      }
      article.tool {
        padding: 0.2rem 0.9rem;
        font-size: 0.9em;
      }
      details.tool-call,
      details.tool-result {
        margin-top: 0.5rem;
        border: 1px solid var(--qwen-border);
        border-radius: 8px;
        padding: 0.35rem 0.6rem;
        background: var(--qwen-code-bg);
      }
      details.tool-call summary,
      details.tool-result summary {
        cursor: pointer;
        font-family: var(--qwen-mono);
        font-size: 0.85em;
      }
      details.tool-call pre,
      details.tool-result pre {
        margin: 0.4rem 0 0;
        overflow-x: auto;
        font-family: var(--qwen-mono);
        font-size: 0.85em;
        white-space: pre-wrap;
        overflow-wrap: anywhere;
      }
      .footer {
        display: flex;
        flex-wrap: wrap;
        align-items: center;
        gap: 0.25rem 0.5rem;
        margin-top: 0.45rem;
        font-size: 0.75rem;
        color: var(--qwen-muted);
      }
      .status {
        margin-right: auto;
      }
      .error {
        color: var(--qwen-danger);
        margin-top: 0.4rem;
        white-space: pre-wrap;
      }
      .cursor::after {
        content: '▍';
        animation: blink 1s steps(2) infinite;
        color: var(--qwen-accent);
      }
      @keyframes blink {
        50% {
          opacity: 0;
        }
      }
      textarea {
        width: 100%;
        min-height: 5rem;
        resize: vertical;
      }
      .edit-actions {
        display: flex;
        gap: 0.5rem;
        justify-content: flex-end;
        margin-top: 0.4rem;
      }
    `,
  ];

  declare message: StoredMessage;
  declare locale: Lang;
  /** This answer is being written now. */
  declare streaming: boolean;
  /** This answer's prompt is being read (before its first token): how far. */
  declare promptProgress: PromptProgress | undefined;
  declare canRegenerate: boolean;
  /** Some answer is streaming: edit and regenerate wait. */
  declare busy: boolean;
  declare editing: boolean;
  declare copied: boolean;

  /** The Markdown container's children are ours (not Lit's): rendered when the text changes. */
  private markdown: StreamingMarkdown | undefined;
  private renderedFor: { content: string; locale: Lang; streaming: boolean } | undefined;
  private frame: number | undefined;
  private wait: ReturnType<typeof setTimeout> | undefined;
  /** When the last streaming render ended and what it cost (ms): the next one waits in proportion. */
  private lastRender = { endedAt: 0, cost: 0 };

  constructor() {
    super();
    this.locale = 'en';
    this.streaming = false;
    this.canRegenerate = false;
    this.busy = false;
    this.editing = false;
    this.copied = false;
  }

  protected override updated(changed: PropertyValues<this>): void {
    if (this.message?.role !== 'assistant') return;
    if (changed.has('locale')) this.markdown = undefined; // copy-button labels changed: render anew
    if (this.streaming) this.scheduleRender();
    else {
      this.cancelRender();
      this.renderMarkdown();
    }
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    this.cancelRender();
  }

  /**
   * Many deltas may arrive within one frame: the text is rendered once, at a frame. A live block
   * so large that rendering it is slow (one paragraph of many kilobytes) is rendered less often:
   * the next render waits RENDER_SPACING times what the last one cost, so rendering keeps to a
   * bounded share of the main thread (and of the time between tokens).
   */
  private scheduleRender(): void {
    if (this.frame !== undefined || this.wait !== undefined) return;
    const render = () => {
      this.frame = undefined;
      const started = performance.now();
      this.renderMarkdown();
      this.lastRender = { endedAt: performance.now(), cost: performance.now() - started };
    };
    const delay = this.lastRender.endedAt + RENDER_SPACING * this.lastRender.cost - performance.now();
    if (delay <= 0) {
      this.frame = requestAnimationFrame(render);
      return;
    }
    this.wait = setTimeout(() => {
      this.wait = undefined;
      this.frame = requestAnimationFrame(render);
    }, delay);
  }

  private cancelRender(): void {
    if (this.frame !== undefined) cancelAnimationFrame(this.frame);
    clearTimeout(this.wait);
    this.frame = undefined;
    this.wait = undefined;
    this.lastRender = { endedAt: 0, cost: 0 };
  }

  private renderMarkdown(): void {
    const container = this.renderRoot.querySelector<HTMLElement>('.markdown');
    if (!container || this.message.role !== 'assistant') return;
    const { content } = this.message;
    const streaming = this.streaming;
    const done = this.renderedFor;
    if (done && done.content === content && done.locale === this.locale && done.streaming === streaming && this.markdown) return;
    this.markdown ??= new StreamingMarkdown(container, { copy: t(this.locale, 'copyCode'), copied: t(this.locale, 'copied') });
    if (streaming) this.markdown.update(content);
    else this.markdown.finish(content);
    this.renderedFor = { content, locale: this.locale, streaming };
  }

  override render() {
    const message = this.message;
    if (!message) return nothing;
    const isUser = message.role === 'user';
    if (message.role === 'tool') return this.renderToolResult();
    const who = t(this.locale, isUser ? 'you' : 'assistant');
    return html`<article class=${message.role} aria-label=${who}>
      <div class="role">${who}</div>
      ${isUser ? this.renderUser() : this.renderAssistant()}
      ${message.error ? html`<div class="error" role="alert">${message.error}</div>` : nothing}
      ${this.editing ? nothing : this.renderFooter()}
    </article>`;
  }

  private renderUser() {
    if (!this.editing) return html`<div class="user-text">${this.message.content}</div>`;
    return html`<label class="sr-only" for="edit">${t(this.locale, 'edit')}</label>
      <textarea id="edit" .value=${this.message.content} @keydown=${this.onEditKey}></textarea>
      <div class="edit-actions">
        <button type="button" @click=${() => (this.editing = false)}>${t(this.locale, 'cancel')}</button>
        <button type="button" class="primary save" ?disabled=${this.busy} @click=${this.saveEdit}>
          ${t(this.locale, 'saveAndResend')}
        </button>
      </div>`;
  }

  private renderAssistant() {
    const message = this.message;
    const reasoning = message.reasoning
      ? html`<details class="reasoning" ?open=${this.streaming && !message.content}>
          <summary>${this.streaming && !message.content ? t(this.locale, 'thinking') : t(this.locale, 'reasoning')}</summary>
          <div class="reasoning-text">${message.reasoning}</div>
        </details>`
      : nothing;
    // Calls are shown as written (arguments are JSON text from the model: shown as text, never markup).
    const calls = (message.toolCalls ?? []).map((call) => html`<details class="tool-call">
      <summary>${t(this.locale, 'toolCall', { name: call.function.name })}</summary>
      <pre><code>${prettyJson(call.function.arguments)}</code></pre>
    </details>`);
    // The container's children are rendered by StreamingMarkdown, outside Lit's template.
    return html`${this.renderReading()}${reasoning}
      <div class="markdown content ${this.streaming ? 'cursor' : ''}"></div>
      ${calls}`;
  }

  /** "Reading 1,200 / 4,000 tokens" with a bar, while a long prompt is read (Stop works meanwhile). */
  private renderReading() {
    const progress = this.promptProgress;
    if (!this.streaming || !progress || this.message.content) return nothing;
    return html`<div class="reading" role="status">
      <span>${t(this.locale, 'readingPrompt', { done: formatCount(this.locale, progress.processed), total: formatCount(this.locale, progress.total) })}</span>
      <progress max=${progress.total - progress.cache} .value=${progress.processed - progress.cache}></progress>
    </div>`;
  }

  private renderToolResult() {
    const message = this.message;
    const name = message.toolName ?? message.toolCallId ?? 'tool';
    return html`<article class="tool" aria-label=${t(this.locale, 'toolResult', { name })}>
      <details class="tool-result">
        <summary>${t(this.locale, 'toolResult', { name })}</summary>
        <pre><code>${prettyJson(message.content)}</code></pre>
      </details>
    </article>`;
  }

  private renderFooter() {
    const message = this.message;
    if (this.streaming) return nothing;
    const isUser = message.role === 'user';
    return html`<div class="footer">
      ${isUser ? nothing : html`<span class="status">${this.statusText()}</span>`}
      <button type="button" class="link copy" @click=${this.copy}>${t(this.locale, this.copied ? 'copied' : 'copy')}</button>
      ${isUser
        ? html`<button type="button" class="link edit" ?disabled=${this.busy} @click=${this.startEdit}>${t(this.locale, 'edit')}</button>`
        : nothing}
      ${!isUser && this.canRegenerate && message.finishReason === 'length' && !message.error
        ? html`<button type="button" class="link continue" ?disabled=${this.busy} @click=${() => this.emit({ action: 'continue', id: message.id })}>
            ${t(this.locale, 'continue')}
          </button>`
        : nothing}
      ${!isUser && message.preset === OUTLINE_PRESET && !message.error
        ? sectionHeadings(message.content).map((heading, i) => html`<button
            type="button"
            class="link expand"
            title=${heading}
            ?disabled=${this.busy}
            @click=${() => this.emit({ action: 'expand', id: message.id, text: heading, index: i + 1 })}
          >${t(this.locale, 'expandSection', { n: i + 1 })}</button>`)
        : nothing}
      ${!isUser && this.canRegenerate
        ? html`<button type="button" class="link regenerate" ?disabled=${this.busy} @click=${() => this.emit({ action: 'regenerate', id: message.id })}>
            ${t(this.locale, 'regenerate')}
          </button>`
        : nothing}
    </div>`;
  }

  /** "42 tokens · 31.2 tok/s · first token 0.21 s", plus why it ended early. */
  private statusText(): string {
    const { usage, finishReason } = this.message;
    const parts: string[] = [];
    if (usage) {
      parts.push(
        t(this.locale, 'status', {
          tokens: usage.completion_tokens,
          rate: formatNumber(usage.extra.decode_tokens_per_s),
          ttft: formatNumber(usage.extra.time_to_first_token_s),
        }),
      );
      if (usage.extra.dropped_messages > 0) parts.push(t(this.locale, 'droppedMessages', { count: usage.extra.dropped_messages }));
    }
    if (finishReason === 'abort') parts.push(t(this.locale, 'stopped'));
    if (finishReason === 'length') parts.push(t(this.locale, 'truncated'));
    return parts.join(' · ');
  }

  private async copy(): Promise<void> {
    if (!(await copyText(this.message.content))) return;
    this.copied = true;
    setTimeout(() => (this.copied = false), 1500);
  }

  private async startEdit(): Promise<void> {
    this.editing = true;
    await this.updateComplete;
    const textarea = this.renderRoot.querySelector<HTMLTextAreaElement>('textarea');
    textarea?.focus();
  }

  private onEditKey(event: KeyboardEvent): void {
    if (event.key === 'Escape') {
      event.stopPropagation();
      this.editing = false;
    } else if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      this.saveEdit();
    }
  }

  private saveEdit(): void {
    const text = this.renderRoot.querySelector<HTMLTextAreaElement>('textarea')?.value.trim();
    if (!text || this.busy) return;
    this.editing = false;
    this.emit({ action: 'edit', id: this.message.id, text });
  }

  private emit(detail: MessageActionDetail): void {
    this.dispatchEvent(new CustomEvent<MessageActionDetail>('message-action', { detail, bubbles: true, composed: true }));
  }
}

if (!customElements.get('qwen-message')) customElements.define('qwen-message', QwenMessage);

declare global {
  interface HTMLElementTagNameMap {
    'qwen-message': QwenMessage;
  }
}

/** JSON text indented for reading; other text as it is. */
function prettyJson(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}
