// The message box: Enter sends, Shift+Enter adds a line, Esc stops a running answer. While an
// answer streams the box stays editable (the next question can be typed), only sending waits.
// Above it, the task presets (Write, Polish, Translate, …): one click sets the system prompt and
// sampling for the task (the root applies it); the active one is marked.
import { LitElement, css, html } from 'lit';
import { t, type Lang } from './i18n.ts';
import { baseStyles } from './styles.ts';

export class QwenComposer extends LitElement {
  static override properties = {
    locale: { attribute: false },
    generating: { type: Boolean },
    disabled: { type: Boolean },
    presets: { attribute: false },
    activePreset: { attribute: false },
  };

  static override styles = [
    baseStyles,
    css`
      .presets {
        display: flex;
        flex-wrap: wrap;
        gap: 0.35rem;
        padding: 0.5rem 0.75rem 0;
        border-top: 1px solid var(--qwen-border);
        background: var(--qwen-surface);
      }
      .presets button {
        font-size: 0.8rem;
        padding: 0.15rem 0.6rem;
        border-radius: 999px;
      }
      .presets button[aria-pressed='true'] {
        background: var(--qwen-accent);
        border-color: var(--qwen-accent);
        color: var(--qwen-accent-text, #fff);
      }
      .presets + form {
        border-top: none;
      }
      form {
        display: flex;
        gap: 0.5rem;
        align-items: flex-end;
        padding: 0.75rem;
        border-top: 1px solid var(--qwen-border);
        background: var(--qwen-surface);
      }
      textarea {
        flex: 1;
        resize: none;
        min-height: 2.6rem;
        max-height: 12rem;
        line-height: 1.4;
        padding: 0.55rem 0.7rem;
      }
      form button {
        min-height: 2.6rem;
        min-width: 4.5rem;
      }
    `,
  ];

  declare locale: Lang;
  /** An answer is streaming: the Stop button shows and Enter does not send. */
  declare generating: boolean;
  /** No model is loaded. */
  declare disabled: boolean;
  /** Task presets to offer (id and label). */
  declare presets: { id: string; label: string }[];
  declare activePreset: string | undefined;

  constructor() {
    super();
    this.locale = 'en';
    this.generating = false;
    this.disabled = false;
    this.presets = [];
    this.activePreset = undefined;
  }

  override focus(): void {
    this.textarea?.focus();
  }

  private get textarea(): HTMLTextAreaElement | null {
    return this.renderRoot.querySelector('textarea');
  }

  override render() {
    const placeholder = t(this.locale, this.disabled ? 'composerNoModel' : 'composerPlaceholder');
    const presets = this.presets.length > 0
      ? html`<div class="presets" role="group" aria-label=${t(this.locale, 'presets')}>
          ${this.presets.map((p) => html`<button
            type="button"
            class="preset"
            data-preset=${p.id}
            aria-pressed=${p.id === this.activePreset ? 'true' : 'false'}
            @click=${() => this.dispatchEvent(new CustomEvent('preset', { detail: { id: p.id }, bubbles: true, composed: true }))}
          >${p.label}</button>`)}
        </div>`
      : null;
    return html`${presets}<form @submit=${this.onSubmit}>
      <label class="sr-only" for="input">${t(this.locale, 'composerLabel')}</label>
      <textarea
        id="input"
        rows="1"
        placeholder=${placeholder}
        @keydown=${this.onKeyDown}
        @input=${this.autosize}
      ></textarea>
      ${this.generating
        ? html`<button type="button" class="stop" @click=${this.stop}>${t(this.locale, 'stop')}</button>`
        : html`<button type="submit" class="primary send" ?disabled=${this.disabled}>${t(this.locale, 'send')}</button>`}
    </form>`;
  }

  private onKeyDown(event: KeyboardEvent): void {
    if (event.key === 'Escape') {
      if (this.generating) {
        event.preventDefault();
        this.stop();
      }
      return;
    }
    // isComposing: Enter that picks a candidate in an input method (pinyin) must not send.
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      this.send();
    }
  }

  private onSubmit(event: Event): void {
    event.preventDefault();
    this.send();
  }

  private send(): void {
    const textarea = this.textarea;
    if (!textarea || this.generating || this.disabled) return;
    const text = textarea.value.trim();
    if (!text) return;
    textarea.value = '';
    this.autosize();
    this.dispatchEvent(new CustomEvent('send', { detail: { text }, bubbles: true, composed: true }));
  }

  private stop(): void {
    this.dispatchEvent(new CustomEvent('stop', { bubbles: true, composed: true }));
  }

  private autosize(): void {
    const textarea = this.textarea;
    if (!textarea) return;
    textarea.style.height = 'auto';
    textarea.style.height = `${textarea.scrollHeight + 2}px`;
  }
}

if (!customElements.get('qwen-composer')) customElements.define('qwen-composer', QwenComposer);

declare global {
  interface HTMLElementTagNameMap {
    'qwen-composer': QwenComposer;
  }
}
