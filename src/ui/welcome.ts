// What an empty chat without a model shows: what this is, the model recommended for this device
// (its size, that it downloads once and stays here, the speed to expect), one button to start,
// and a way to open a GGUF file instead. A model already stored here is offered first.
import { LitElement, css, html, nothing } from 'lit';
import type { CachedModel } from '../storage/model-store.ts';
import { detectDevice, recommendModel, type DeviceProfile, type Recommendation } from './device.ts';
import { formatBytes, formatNumber } from '../format.ts';
import { t, type Lang } from './i18n.ts';
import type { LoadModelDetail } from './model-manager.ts';
import { baseStyles } from './styles.ts';

export class QwenWelcome extends LitElement {
  static override properties = {
    locale: { attribute: false },
    /** Complete models stored on this device. */
    stored: { attribute: false },
    device: { attribute: false },
  };

  static override styles = [
    baseStyles,
    css`
      :host {
        display: block;
        overflow-y: auto;
        padding: 1.5rem 1rem;
      }
      .card {
        max-width: 34rem;
        margin: 0 auto;
        display: grid;
        gap: 0.9rem;
      }
      h2 {
        margin: 0;
        font-size: 1.3rem;
      }
      p {
        margin: 0;
      }
      .model {
        border: 1px solid var(--qwen-border);
        border-radius: var(--qwen-radius);
        background: var(--qwen-surface);
        padding: 0.9rem;
        display: grid;
        gap: 0.5rem;
      }
      .model-name {
        font-weight: 600;
      }
      .start {
        justify-self: start;
        font-size: 1rem;
        padding: 0.5rem 1rem;
      }
      .others {
        display: flex;
        flex-wrap: wrap;
        gap: 0.5rem 1rem;
      }
    `,
  ];

  declare locale: Lang;
  declare stored: CachedModel[];
  declare device: DeviceProfile;

  constructor() {
    super();
    this.locale = 'en';
    this.stored = [];
    this.device = detectDevice();
  }

  /** The recommendation shown (for tests and the embedding page). */
  get recommendation(): Recommendation {
    return recommendModel(this.device);
  }

  override render() {
    const l = this.locale;
    const stored = this.stored.find((m) => m.complete);
    const { entry, tokensPerSecond, threads } = this.recommendation;
    const [low, high] = tokensPerSecond.map((rate) => formatNumber(rate));
    return html`<div class="card">
      <h2>${t(l, 'welcomeTitle')}</h2>
      <p class="muted">${t(l, 'welcomeBody')}</p>
      ${stored
        ? html`<div class="model stored">
            <span class="model-name">${stored.name}</span>
            <span class="muted">${t(l, 'welcomeStored', { size: formatBytes(stored.totalBytes) })}</span>
            <button type="button" class="primary start" @click=${() => this.load({ spec: { kind: 'cached', id: stored.id }, name: stored.name })}>
              ${t(l, 'welcomeLoadStored')}
            </button>
          </div>`
        : nothing}
      <div class="model recommended" data-id=${entry.id}>
        <span class="muted">${t(l, 'welcomeRecommended')}</span>
        <span class="model-name">${entry.name}</span>
        <span class="size">${t(l, 'welcomeDownloadOnce', { size: formatBytes(entry.sizeBytes) })}</span>
        <span class="speed muted">${t(l, 'welcomeSpeed', { low, high, threads: threads === 1 ? t(l, 'threadOne') : t(l, 'threadMany', { n: threads }) })}</span>
        <button type="button" class="${stored ? '' : 'primary'} start download" @click=${() => this.load({ spec: { kind: 'url', url: entry.url }, name: entry.name, entry })}>
          ${t(l, 'welcomeStart')}
        </button>
      </div>
      <div class="others">
        <button type="button" class="link open-file" @click=${() => this.emit('open-file')}>${t(l, 'welcomeOpenFile')}</button>
        <button type="button" class="link other-models" @click=${() => this.emit('open-models')}>${t(l, 'welcomeOtherModels')}</button>
      </div>
    </div>`;
  }

  private load(detail: LoadModelDetail): void {
    this.dispatchEvent(new CustomEvent<LoadModelDetail>('load-model', { detail, bubbles: true, composed: true }));
  }

  private emit(type: 'open-file' | 'open-models'): void {
    this.dispatchEvent(new CustomEvent(type, { bubbles: true, composed: true }));
  }
}

if (!customElements.get('qwen-welcome')) customElements.define('qwen-welcome', QwenWelcome);

declare global {
  interface HTMLElementTagNameMap {
    'qwen-welcome': QwenWelcome;
  }
}
