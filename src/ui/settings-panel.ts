// The settings panel: system prompt, sampling, thinking (hybrid models only), backend with what
// this browser offers, threads in use, cross-origin isolation, theme and language. Every change
// goes up as one 'settings-change' event; the root element applies it.
import { LitElement, css, html, nothing } from 'lit';
import type { ModelInfo } from '../engine/types.ts';
import { formatCount, t, type Lang } from './i18n.ts';
import { CONTEXT_CHOICES, SETTING_LIMITS, clampSetting, parseBackend, type ChatSettings, type Theme } from './settings.ts';
import type { Preset } from './presets.ts';
import { baseStyles } from './styles.ts';

/** A change to the settings; `preset: null` leaves the preset. */
export type SettingsChange = Partial<Omit<ChatSettings, 'preset'>> & { theme?: Theme; lang?: Lang; preset?: string | null };

/** What the root found out about WebGPU: still checking, or the answer with the reason if not. */
export type WebGpuState = { state: 'checking' } | { state: 'done'; available: boolean; detail?: string };

export class QwenSettingsPanel extends LitElement {
  static override properties = {
    settings: { attribute: false },
    locale: { attribute: false },
    theme: { attribute: false },
    modelInfo: { attribute: false },
    webgpu: { attribute: false },
    customPresets: { attribute: false },
  };

  static override styles = [
    baseStyles,
    css`
      :host {
        display: block;
      }
      form {
        display: grid;
        gap: 0.8rem;
      }
      label,
      .field-label {
        display: block;
        font-size: 0.8rem;
        color: var(--qwen-muted);
        margin-bottom: 0.2rem;
      }
      textarea {
        width: 100%;
        min-height: 5rem;
        resize: vertical;
      }
      .presets-mine {
        display: flex;
        flex-wrap: wrap;
        gap: 0.35rem;
        align-items: center;
      }
      .save-preset {
        display: flex;
        gap: 0.4rem;
      }
      .save-preset input {
        flex: 1;
      }
      .row {
        display: grid;
        grid-template-columns: 1fr 1fr;
        gap: 0.6rem;
      }
      input[type='number'],
      select {
        width: 100%;
      }
      .check {
        display: flex;
        gap: 0.5rem;
        align-items: center;
        color: var(--qwen-text);
        font-size: 0.9rem;
      }
      dl {
        display: grid;
        grid-template-columns: auto 1fr;
        gap: 0.25rem 0.75rem;
        margin: 0;
        font-size: 0.85rem;
      }
      dt {
        color: var(--qwen-muted);
      }
      dd {
        margin: 0;
      }
      .hint {
        margin: 0.3rem 0 0;
        font-size: 0.8rem;
        color: var(--qwen-muted);
      }
    `,
  ];

  declare settings: ChatSettings;
  declare locale: Lang;
  declare theme: Theme;
  declare modelInfo: ModelInfo | undefined;
  declare webgpu: WebGpuState;
  /** The user's own task presets (deletable here). */
  declare customPresets: Preset[];

  constructor() {
    super();
    this.locale = 'en';
    this.theme = 'dark';
    this.modelInfo = undefined;
    this.webgpu = { state: 'checking' };
    this.customPresets = [];
  }

  override render() {
    const l = this.locale;
    const s = this.settings;
    if (!s) return nothing;
    const isolated = globalThis.crossOriginIsolated === true;
    return html`<form @submit=${(e: Event) => e.preventDefault()}>
      <div>
        <label for="system-prompt">${t(l, 'systemPrompt')}</label>
        <textarea
          id="system-prompt"
          .value=${s.systemPrompt}
          @change=${(e: Event) => this.emit({ systemPrompt: (e.target as HTMLTextAreaElement).value })}
        ></textarea>
      </div>
      <div class="row">
        ${this.numberField('temperature', 'temperature', s.temperature)} ${this.numberField('topP', 'topP', s.topP)}
        ${this.numberField('topK', 'topK', s.topK)} ${this.numberField('maxTokens', 'maxTokens', s.maxTokens)}
      </div>
      <label class="check"
        ><input
          type="checkbox"
          id="json"
          .checked=${s.json}
          @change=${(e: Event) => this.emit({ json: (e.target as HTMLInputElement).checked })}
        />${t(l, 'answerJson')}</label
      >
      <div>
        <label for="preset-name">${t(l, 'savePreset')}</label>
        <div class="save-preset">
          <input id="preset-name" type="text" maxlength="40" placeholder=${t(l, 'presetName')} @keydown=${this.onPresetKey} />
          <button type="button" class="save-preset-button" @click=${this.savePreset}>${t(l, 'savePreset')}</button>
        </div>
      </div>
      ${this.customPresets.length > 0
        ? html`<div>
            <span class="field-label">${t(l, 'myPresets')}</span>
            <div class="presets-mine">
              ${this.customPresets.map((p) => html`<span class="preset-mine">${p.label}
                <button type="button" class="link delete-preset" aria-label=${`${t(l, 'deletePreset')}: ${p.label}`}
                  @click=${() => this.dispatchEvent(new CustomEvent('preset-delete', { detail: { id: p.id }, bubbles: true, composed: true }))}>✕</button></span>`)}
            </div>
          </div>`
        : nothing}
      ${this.modelInfo?.supportsThinking
        ? html`<label class="check"
            ><input
              type="checkbox"
              id="thinking"
              .checked=${s.thinking}
              @change=${(e: Event) => this.emit({ thinking: (e.target as HTMLInputElement).checked })}
            />${t(l, 'enableThinking')}</label
          >`
        : nothing}
      <div>
        <label for="backend">${t(l, 'backend')}</label>
        <select id="backend" @change=${(e: Event) => this.emit({ backend: parseBackend((e.target as HTMLSelectElement).value) })}>
          ${(['auto', 'cpu', 'webgpu'] as const).map(
            (value) =>
              html`<option value=${value} ?selected=${s.backend === value}>
                ${t(l, value === 'auto' ? 'backendAuto' : value === 'cpu' ? 'backendCpu' : 'backendWebgpu')}
              </option>`,
          )}
        </select>
      </div>
      ${this.renderContext()}
      <dl>
        <dt>WebGPU</dt>
        <dd class="webgpu-state">${this.webgpuText()}</dd>
        <dt>${t(l, 'backendInUse')}</dt>
        <dd class="backend-in-use">${this.modelInfo ? `${this.modelInfo.backend}${this.modelInfo.build ? ` (${this.modelInfo.build})` : ''}` : '—'}</dd>
        <dt>${t(l, 'threads')}</dt>
        <dd class="threads">${this.modelInfo?.threads ?? '—'}</dd>
        <dt>${t(l, 'isolation')}</dt>
        <dd class="isolated">${t(l, isolated ? 'yes' : 'no')}</dd>
        <dt>${t(l, 'addressing')}</dt>
        <dd class="addressing">${this.modelInfo?.addressing ?? '—'}</dd>
      </dl>
      <div class="row">
        <div>
          <label for="theme">${t(l, 'theme')}</label>
          <select id="theme" @change=${(e: Event) => this.emit({ theme: (e.target as HTMLSelectElement).value === 'light' ? 'light' : 'dark' })}>
            <option value="dark" ?selected=${this.theme !== 'light'}>${t(l, 'dark')}</option>
            <option value="light" ?selected=${this.theme === 'light'}>${t(l, 'light')}</option>
          </select>
        </div>
        <div>
          <label for="lang">${t(l, 'language')}</label>
          <select id="lang" @change=${(e: Event) => this.emit({ lang: (e.target as HTMLSelectElement).value === 'zh' ? 'zh' : 'en' })}>
            <option value="en" ?selected=${l === 'en'}>English</option>
            <option value="zh" ?selected=${l === 'zh'}>简体中文</option>
          </select>
        </div>
      </div>
    </form>`;
  }

  /**
   * Context size (CPU engine): the model's default, or a size up to the most that fits (known once
   * a model is loaded). Changing it loads the model again.
   */
  private renderContext() {
    const l = this.locale;
    const info = this.modelInfo;
    if (info?.backend === 'webgpu') return nothing;
    const chosen = this.settings.contextLength;
    const choices: number[] = CONTEXT_CHOICES.filter((n) => !info || n <= info.maxContextLength);
    if (chosen > 0 && !choices.includes(chosen)) choices.push(chosen);
    choices.sort((a, b) => a - b);
    return html`<div>
      <label for="context-length">${t(l, 'contextLength')}</label>
      <select id="context-length" @change=${(e: Event) => this.emit({ contextLength: Number((e.target as HTMLSelectElement).value) })}>
        <option value="0" ?selected=${chosen === 0}>${t(l, 'contextDefault')}</option>
        ${choices.map((n) => html`<option value=${n} ?selected=${chosen === n}>${t(l, 'contextTokens', { count: formatCount(l, n) })}</option>`)}
      </select>
      <label class="check"
        ><input
          type="checkbox"
          id="compact-cache"
          .checked=${this.settings.compactCache}
          @change=${(e: Event) => this.emit({ compactCache: (e.target as HTMLInputElement).checked })}
        />${t(l, 'compactCache')}</label
      >
      <label class="check"
        ><input
          type="checkbox"
          id="keep-contexts"
          .checked=${this.settings.keepContexts}
          @change=${(e: Event) => this.emit({ keepContexts: (e.target as HTMLInputElement).checked })}
        />${t(l, 'keepContexts')}</label
      >
      ${info
        ? html`<p class="hint context-in-use">${t(l, 'contextInUse', { count: formatCount(l, info.contextLength), max: formatCount(l, info.maxContextLength) })}
            ${info.addressing === 'memory64' ? t(l, 'contextMemory64') : nothing}</p>`
        : nothing}
    </div>`;
  }

  private numberField(name: keyof typeof SETTING_LIMITS, label: 'temperature' | 'topP' | 'topK' | 'maxTokens', value: number) {
    const limits = SETTING_LIMITS[name];
    const id = name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    return html`<div>
      <label for=${id}>${t(this.locale, label)}</label>
      <input
        id=${id}
        type="number"
        min=${limits.min}
        max=${limits.max}
        step=${limits.step}
        .value=${String(value)}
        @change=${(e: Event) => {
          const input = e.target as HTMLInputElement;
          if (input.value.trim() === '') return;
          const clamped = clampSetting(name, input.value);
          input.value = String(clamped);
          this.emit({ [name]: clamped });
        }}
      />
    </div>`;
  }

  private webgpuText(): string {
    const l = this.locale;
    if (this.webgpu.state === 'checking') return t(l, 'checking');
    const word = t(l, this.webgpu.available ? 'available' : 'unavailable');
    return this.webgpu.detail ? `${word} (${this.webgpu.detail})` : word;
  }

  private readonly onPresetKey = (event: KeyboardEvent) => {
    if (event.key === 'Enter') {
      event.preventDefault();
      this.savePreset();
    }
  };

  private readonly savePreset = () => {
    const input = this.renderRoot.querySelector<HTMLInputElement>('#preset-name');
    const label = input?.value.trim();
    if (!input || !label) return;
    input.value = '';
    this.dispatchEvent(new CustomEvent('preset-save', { detail: { label }, bubbles: true, composed: true }));
  };

  private emit(change: SettingsChange): void {
    this.dispatchEvent(new CustomEvent<SettingsChange>('settings-change', { detail: change, bubbles: true, composed: true }));
  }
}

if (!customElements.get('qwen-settings-panel')) customElements.define('qwen-settings-panel', QwenSettingsPanel);

declare global {
  interface HTMLElementTagNameMap {
    'qwen-settings-panel': QwenSettingsPanel;
  }
}
