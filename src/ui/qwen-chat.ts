// <qwen-chat>: the whole chat app as one element, usable in any page.
//
//   <qwen-chat model="qwen3-0.6b-q4_k_m" theme="light" lang="zh" temperature="0.6"></qwen-chat>
//
// Attributes: model (catalogue id or GGUF URL, loaded when set), system-prompt, temperature,
// top-p, top-k, max-tokens, thinking, json (answers as JSON objects), preset (a task preset id),
// backend ('auto' | 'cpu' | 'webgpu'), theme ('dark' default | 'light'), lang ('en' default | 'zh').
// Properties: `engine`, an Engine of the page's own (then the element creates none); `tools`,
// functions the model may call. Events (CustomEvent, bubbling, composed): ready {info}, token
// {content, reasoning_content, messageId}, message {conversationId, message}, error {error: {name,
// code, message}}, tool-call {call, respond(result)} (the answer goes on once every call of it has
// its result). Methods: send(text), stop(), loadModel(spec | id | url). Attributes are defaults:
// what the user changes in the settings panel is kept (localStorage) and wins on the next visit.
//
// It holds the state (engine, model, conversations, settings) and hands pieces of it to small
// elements: conversation list, message list, composer, settings panel, model manager. Answers
// stream through a GenerationController; nothing here waits on the worker while input is handled.
import { LitElement, html, nothing, type PropertyValues } from 'lit';
import type { ChatMessageInput, Engine, LoadProgress, ModelInfo, ModelSpec, ToolDefinition } from '../engine/types.ts';
import { findCatalogueEntry, findCatalogueEntryByUrl, type CatalogueEntry } from '../storage/catalogue.ts';
import './composer.ts';
import type { QwenComposer } from './composer.ts';
import './conversation-list.ts';
import type { ConversationActionDetail } from './conversation-list.ts';
import { ConversationController } from './conversation-controller.ts';
import {
  newConversation,
  newId,
  titleFrom,
  type Conversation,
  type StoredMessage,
} from './conversation-store.ts';
import type { CreatedEngine } from './engine-factory.ts';
import type { SharedModel } from '../engine/tab-shared-engine.ts';
import { formatBytes, formatDuration } from '../format.ts';
import { importCode, isCodeUnavailable } from '../lazy-code.ts';
import { smallerModels } from './device.ts';
import { GenerationController } from './generation-controller.ts';
import { resolveLang, t, type Lang } from './i18n.ts';
import './message-list.ts';
import type { MessageActionDetail } from './message-view.ts';
import './model-manager.ts';
import type { LoadModelDetail } from './model-manager.ts';
import './settings-panel.ts';
import './welcome.ts';
import { ModelStore, type CachedModel } from '../storage/model-store.ts';
import type { BackendChoice as EngineBackendChoice } from '../engine/backend.ts';
import type { WebGpuSupport } from '../engine/webgpu-detect.ts';
import type { SettingsChange, WebGpuState } from './settings-panel.ts';
import { DEFAULT_SETTINGS, clampSetting, parseBackend, samplingOptions, type BackendChoice, type ChatSettings, type Theme } from './settings.ts';
import { expandSectionPrompt } from './presets.ts';
import { chatLayoutStyles } from './qwen-chat-styles.ts';
import { SettingsController } from './settings-controller.ts';
import { baseStyles, themeStyles } from './styles.ts';

/** How long "Undo" is offered after a destructive action. */
const UNDO_MS = 10_000;
/** Widths up to this are laid out for phones (keep in step with the container query below). */
const NARROW_PX = 760;

export interface ErrorDetail {
  error: { name: string; code?: string; message: string };
}

interface LoadState {
  name: string;
  progress?: LoadProgress;
}

type Panel = 'settings' | 'models';

export class QwenChat extends LitElement {
  static override properties = {
    model: { type: String },
    systemPrompt: { type: String, attribute: 'system-prompt' },
    temperature: { type: Number },
    topP: { type: Number, attribute: 'top-p' },
    topK: { type: Number, attribute: 'top-k' },
    maxTokens: { type: Number, attribute: 'max-tokens' },
    thinking: { type: Boolean },
    json: { type: Boolean },
    tools: { attribute: false },
    preset: { type: String },
    backend: { type: String },
    contextLength: { type: Number, attribute: 'context-length' },
    compactCache: { type: Boolean, attribute: 'compact-cache' },
    keepContexts: { attribute: false },
    theme: { type: String, reflect: true },
    locale: { attribute: 'lang', converter: { fromAttribute: (value: string | null) => resolveLang(value) } },
    engine: { attribute: false },
    modelInfo: { state: true },
    loadState: { state: true },
    errorText: { state: true },
    offerLocalFile: { state: true },
    offerReload: { state: true },
    offerModels: { state: true },
    refusedBytes: { state: true },
    notice: { state: true },
    undo: { state: true },
    storedModels: { state: true },
    keepOffer: { state: true },
    streamingId: { state: true },
    panel: { state: true },
    sidebarOpen: { state: true },
    webgpu: { state: true },
    storeRevision: { state: true },
  };

  static override styles = [themeStyles, baseStyles, chatLayoutStyles];

  /** Catalogue id or GGUF URL; loaded as soon as it is set. */
  declare model: string | undefined;
  declare systemPrompt: string;
  declare temperature: number;
  declare topP: number;
  declare topK: number;
  declare maxTokens: number;
  declare thinking: boolean;
  /** Answers are JSON objects (structured output). */
  declare json: boolean;
  /** The task preset in use (its id), while the system prompt and sampling are still its. */
  declare preset: string | undefined;
  /** Functions the model may call (OpenAI tools); each call fires 'tool-call' for the page to answer. */
  declare tools: ToolDefinition[];
  declare backend: BackendChoice;
  /** Tokens of context models load with (CPU engine); 0: the model's default. */
  declare contextLength: number;
  /** An 8-bit KV cache (CPU engine): half the memory per token of context. */
  declare compactCache: boolean;
  /** Keep conversations' caches across visits (applies from the next model load). */
  declare keepContexts: boolean;
  declare theme: Theme;
  /** UI language (the `lang` attribute). */
  declare locale: Lang;
  /** An Engine of the page's own; the element then creates none. */
  declare engine: Engine | undefined;

  declare modelInfo: ModelInfo | undefined;
  declare loadState: LoadState | undefined;
  declare errorText: string | undefined;
  /** The error banner offers to open a local GGUF file (a download could not reach its server). */
  declare offerLocalFile: boolean;
  /** The last error was part of the app's code failing to load: offer to reload the page. */
  declare offerReload: boolean;
  /** The error banner offers these smaller models (the device had too little memory for the one asked for). */
  declare offerModels: CatalogueEntry[];
  /** The smallest model file whose load failed here for want of memory (the model list marks those as large). */
  declare refusedBytes: number | undefined;
  declare notice: string | undefined;
  /** A destructive action just taken, with the way back (shown for a few seconds). */
  declare undo: { text: string; restore: () => void } | undefined;
  /** Models stored on this device (for the first screen). */
  declare storedModels: CachedModel[];
  /** A local file just loaded that could be kept in storage; `progress` while it is being kept. */
  declare keepOffer: { file: Blob & { name?: string }; name: string; progress?: { loaded: number; total: number } } | undefined;
  declare streamingId: string | undefined;
  declare panel: Panel | undefined;
  declare sidebarOpen: boolean;
  declare webgpu: WebGpuState;
  declare storeRevision: number;

  private readonly generation = new GenerationController(this);
  private readonly chats = new ConversationController(this);
  private created: CreatedEngine | undefined;
  private creating: Promise<Engine> | undefined;
  private loadController: AbortController | undefined;
  private lastLoad: LoadModelDetail | undefined;
  /** The engine's worker died under the model: load it again before the next answer. */
  private reloadOnSend = false;
  /** Whether this tab ran the engine the tabs share, when last heard. */
  private sharedRole: 'owner' | 'follower' | undefined;
  private undoTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly settingsCtl = new SettingsController(this);
  /** Esc stops an answer even when focus fell out of the element (to <body>, after a button went away). */
  private readonly onWindowKeyDown = (event: KeyboardEvent) => {
    if (event.key !== 'Escape' || event.defaultPrevented || !this.generation.running) return;
    const focused = document.activeElement;
    if (focused && focused !== document.body && focused !== this) return;
    event.preventDefault();
    this.stop();
  };

  constructor() {
    super();
    this.model = undefined;
    this.systemPrompt = DEFAULT_SETTINGS.systemPrompt;
    this.temperature = DEFAULT_SETTINGS.temperature;
    this.topP = DEFAULT_SETTINGS.topP;
    this.topK = DEFAULT_SETTINGS.topK;
    this.maxTokens = DEFAULT_SETTINGS.maxTokens;
    this.thinking = DEFAULT_SETTINGS.thinking;
    this.json = DEFAULT_SETTINGS.json;
    this.preset = undefined;
    this.tools = [];
    this.backend = DEFAULT_SETTINGS.backend;
    this.contextLength = DEFAULT_SETTINGS.contextLength;
    this.compactCache = DEFAULT_SETTINGS.compactCache;
    this.keepContexts = DEFAULT_SETTINGS.keepContexts;
    this.theme = 'dark';
    this.locale = 'en';
    this.engine = undefined;
    this.modelInfo = undefined;
    this.loadState = undefined;
    this.errorText = undefined;
    this.offerLocalFile = false;
    this.offerReload = false;
    this.offerModels = [];
    this.refusedBytes = undefined;
    this.notice = undefined;
    this.undo = undefined;
    this.storedModels = [];
    this.keepOffer = undefined;
    this.streamingId = undefined;
    this.panel = undefined;
    this.sidebarOpen = false;
    this.webgpu = { state: 'checking' };
    this.storeRevision = 0;
    this.addEventListener('keydown', (event) => this.onKeyDown(event));
  }

  /** The settings every request uses, from the attributes/properties. */
  get settings(): ChatSettings {
    return {
      systemPrompt: this.systemPrompt ?? '',
      temperature: this.temperature,
      topP: this.topP,
      topK: this.topK,
      maxTokens: this.maxTokens,
      thinking: this.thinking,
      json: this.json,
      backend: parseBackend(this.backend),
      contextLength: clampSetting('contextLength', this.contextLength),
      compactCache: this.compactCache,
      keepContexts: this.keepContexts,
      ...(this.preset ? { preset: this.preset } : {}),
    };
  }

  /** An answer is streaming. */
  get generating(): boolean {
    return this.generation.running;
  }

  /** The open conversation. */
  get conversation(): Conversation {
    return this.chats.current;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    void this.readStoredModels();
    window.addEventListener('keydown', this.onWindowKeyDown);
    // Once the page had its chance to pass an engine of its own.
    void this.updateComplete.then(() => this.joinOtherTab());
  }

  override disconnectedCallback(): void {
    super.disconnectedCallback();
    window.removeEventListener('keydown', this.onWindowKeyDown);
    // A move in the page reconnects at once; only an element that stays out frees its worker.
    setTimeout(() => {
      if (!this.isConnected) this.disposeEngine();
    });
  }

  protected override willUpdate(changed: PropertyValues<this>): void {
    if (changed.has('engine') && this.engine) {
      this.modelInfo = this.engine.info();
      if (this.modelInfo) this.emit('ready', { info: this.modelInfo });
    }
    if (changed.has('model') && this.model) {
      this.loadModel(this.model).catch(() => undefined); // shown and emitted by loadModel
    }
  }

  // ---- public API --------------------------------------------------------------------------

  /** Loads a model: a ModelSpec, a catalogue id or a GGUF URL. Emits 'ready' (or 'error'). */
  async loadModel(model: ModelSpec | string): Promise<ModelInfo> {
    return this.load(this.resolveModel(model));
  }

  /** Sends a user message and streams the answer; resolves when the answer is complete. */
  async send(text: string): Promise<void> {
    const content = text.trim();
    if (!content || this.generation.running) return;
    // A page's engine set just now has not been looked at yet (that happens on the next update).
    this.modelInfo ??= this.activeEngine()?.info();
    if (!this.modelInfo && this.reloadOnSend && this.lastLoad) {
      // The engine was restarted after its worker died: bring the model back first.
      try {
        await this.load(this.lastLoad);
      } catch {
        return; // shown by load()
      }
    }
    if (!this.activeEngine() || !this.modelInfo) {
      this.showError(t(this.locale, 'composerNoModel'));
      return;
    }
    await this.chats.ready();
    const user: StoredMessage = { id: newId(), role: 'user', content, createdAt: Date.now() };
    const title = this.conversation.messages.length === 0 ? titleFrom(content) : this.conversation.title;
    this.chats.setMessages([...this.conversation.messages, user], { title });
    await this.answer();
  }

  /** Stops the streaming answer (Esc does the same). */
  stop(): void {
    this.generation.stop();
  }

  // ---- rendering ---------------------------------------------------------------------------

  override render() {
    const l = this.locale;
    const firstScreen = !this.modelInfo && !this.loadState && !this.reloadOnSend && this.conversation.messages.length === 0;
    return html`<div class="app">
      ${this.sidebarOpen ? html`<div class="backdrop" @click=${() => this.closeSidebar()}></div>` : nothing}
      <nav class="sidebar ${this.sidebarOpen ? 'open' : ''}" aria-label=${t(l, 'conversations')}>
        <button type="button" class="link close-sidebar" aria-label=${t(l, 'closeSidebar')} @click=${() => this.closeSidebar()}>✕</button>
        <qwen-conversation-list
          .conversations=${this.chats.list}
          .currentId=${this.conversation.id}
          .locale=${l}
          .busy=${this.generation.running}
          @conversation-action=${this.onConversationAction}
        ></qwen-conversation-list>
      </nav>
      <section class="chat" aria-label=${t(l, 'appTitle')}>
        <header>
          <button type="button" class="link menu" aria-label=${t(l, 'conversations')} @click=${() => (this.sidebarOpen = !this.sidebarOpen)}>☰</button>
          <span class="model-status" role="status">${this.modelStatus()}</span>
          <button type="button" class="open-models" aria-expanded=${this.panel === 'models' ? 'true' : 'false'} @click=${() => this.togglePanel('models')}>
            ${t(l, 'models')}
          </button>
          <button type="button" class="open-settings" aria-expanded=${this.panel === 'settings' ? 'true' : 'false'} @click=${() => this.togglePanel('settings')}>
            ${t(l, 'settings')}
          </button>
          <button type="button" class="clear" ?disabled=${this.generation.running || this.conversation.messages.length === 0} @click=${this.clear}>
            ${t(l, 'clear')}
          </button>
        </header>
        ${this.renderBanners()} ${this.renderProgress()}
        ${firstScreen
          ? html`<qwen-welcome
              .locale=${l}
              .stored=${this.storedModels}
              @load-model=${(e: CustomEvent<LoadModelDetail>) => void this.load(e.detail).catch(() => undefined)}
              @open-file=${this.openLocalFile}
              @open-models=${() => this.togglePanel('models')}
            ></qwen-welcome>`
          : nothing}
        <qwen-message-list
          ?hidden=${firstScreen}
          .messages=${this.conversation.messages}
          .locale=${l}
          .streamingId=${this.streamingId}
          .promptProgress=${this.generation.promptProgress}
          @message-action=${this.onMessageAction}
        ></qwen-message-list>
        <qwen-composer
          .locale=${l}
          .generating=${this.generation.running}
          .disabled=${!this.modelInfo && !this.reloadOnSend}
          .presets=${this.settingsCtl.presets(l)}
          .activePreset=${this.preset}
          @send=${(e: CustomEvent<{ text: string }>) => void this.send(e.detail.text)}
          @stop=${() => this.stop()}
          @preset=${(e: CustomEvent<{ id: string }>) => this.settingsCtl.applyPreset(e.detail.id)}
        ></qwen-composer>
      </section>
      ${this.panel ? this.renderPanel(this.panel) : nothing}
    </div>`;
  }

  private modelStatus(): string {
    const l = this.locale;
    if (this.loadState) return t(l, 'loading', { name: this.loadState.name });
    const info = this.modelInfo;
    if (!info) return t(l, 'noModel');
    return t(l, 'loaded', { name: info.name, quant: info.quant, backend: info.backend });
  }

  private renderBanners() {
    const l = this.locale;
    const saveError = this.chats.saveError;
    return html`${this.chats.unavailable
      ? html`<div class="banner notice" role="status"><span>${t(l, 'storageUnavailable', { reason: describeError(this.chats.unavailable, l) })}</span></div>`
      : nothing}
    ${saveError
      ? html`<div class="banner error save-error" role="alert">
          <span>${t(l, 'saveFailed', { reason: describeError(saveError, l) })}</span>
        </div>`
      : nothing}
    ${this.keepOffer ? this.renderKeepOffer() : nothing}
    ${this.undo
      ? html`<div class="banner undo" role="status">
          <span>${this.undo.text}</span>
          <button type="button" class="link undo-action" @click=${this.applyUndo}>${t(l, 'undo')}</button>
        </div>`
      : nothing}
    ${this.errorText
      ? html`<div class="banner error" role="alert">
          <span>${t(l, 'error')}: ${this.errorText}</span>
          ${this.offerLocalFile
            ? html`<button type="button" class="link open-local" @click=${this.openLocalFile}>${t(l, 'openLocalInstead')}</button>`
            : nothing}
          ${this.offerReload
            ? html`<button type="button" class="link reload-page" @click=${() => location.reload()}>${t(l, 'reloadPage')}</button>`
            : nothing}
          ${this.offerModels.map((entry) => html`<button type="button" class="link try-model" data-id=${entry.id}
              @click=${() => void this.load({ spec: { kind: 'url', url: entry.url }, name: entry.name, entry, sizeBytes: entry.sizeBytes }).catch(() => undefined)}>
              ${t(l, 'tryModel', { name: entry.name, size: formatBytes(entry.sizeBytes) })}</button>`)}
          <button type="button" class="link dismiss" @click=${() => (this.errorText = undefined)}>${t(l, 'dismiss')}</button>
        </div>`
      : nothing}
    ${this.notice
      ? html`<div class="banner notice" role="status">
          <span>${this.notice}</span>
          <button type="button" class="link" @click=${() => (this.notice = undefined)}>${t(l, 'dismiss')}</button>
        </div>`
      : nothing}`;
  }

  private renderKeepOffer() {
    const l = this.locale;
    const offer = this.keepOffer!;
    const p = offer.progress;
    return html`<div class="banner keep-offer" role="status">
      <span>${p
        ? t(l, 'keeping', { name: offer.name, loaded: formatBytes(p.loaded), total: formatBytes(p.total) })
        : t(l, 'keepOffer', { name: offer.name, size: formatBytes(offer.file.size) })}</span>
      ${p
        ? nothing
        : html`<button type="button" class="link keep" @click=${this.keepLocalFile}>${t(l, 'keep')}</button>
            <button type="button" class="link" @click=${() => (this.keepOffer = undefined)}>${t(l, 'dismiss')}</button>`}
    </div>`;
  }

  private renderProgress() {
    const state = this.loadState;
    if (!state) return nothing;
    const l = this.locale;
    const p = state.progress;
    let line = t(l, 'loading', { name: state.name });
    if (p?.retry) {
      const r = p.retry;
      const key = r.offline ? 'retryOffline' : r.code === 'stalled' ? 'retryStalled' : 'retryNetwork';
      line = `${t(l, 'downloading', { name: state.name })}: ${t(l, key, { seconds: Math.ceil(r.inSeconds), attempt: r.attempt, attempts: r.attempts })}`;
    } else if (p?.phase === 'download') {
      line = `${t(l, 'downloading', { name: state.name })}: ${t(l, 'progressDownload', {
        loaded: formatBytes(p.loadedBytes),
        total: formatBytes(p.totalBytes),
        rate: formatBytes(p.bytesPerSecond ?? 0),
        eta: formatDuration(p.etaSeconds),
      })}`;
    } else if (p?.phase === 'load') {
      line = t(l, 'progressLoad', { loaded: formatBytes(p.loadedBytes), total: formatBytes(p.totalBytes) });
    } else if (p?.text) {
      line = p.text;
    }
    const fraction = p && p.totalBytes > 0 ? p.loadedBytes / p.totalBytes : undefined;
    return html`<div class="progress">
      <div class="progress-row">
        <progress
          aria-label=${t(l, 'loading', { name: state.name })}
          max="1"
          .value=${fraction ?? 0}
          ?indeterminate=${fraction === undefined}
        ></progress>
        <button type="button" class="link cancel-load" @click=${() => this.loadController?.abort()}>${t(l, 'cancelDownload')}</button>
      </div>
      <div class="progress-text">${line}</div>
    </div>`;
  }

  private renderPanel(panel: Panel) {
    const l = this.locale;
    const title = t(l, panel === 'settings' ? 'settings' : 'models');
    return html`<aside class="panel ${panel}" role="dialog" aria-label=${title}>
      <div class="panel-head">
        <h2>${title}</h2>
        <button type="button" class="link close-panel" @click=${() => this.closePanel()}>${t(l, 'close')}</button>
      </div>
      ${panel === 'settings'
        ? html`<qwen-settings-panel
            .settings=${this.settings}
            .locale=${l}
            .theme=${this.theme}
            .modelInfo=${this.modelInfo}
            .webgpu=${this.webgpu}
            .customPresets=${this.settingsCtl.presets(l).filter((p) => p.custom)}
            @settings-change=${this.onSettingsChange}
            @preset-save=${(e: CustomEvent<{ label: string }>) => this.settingsCtl.savePreset(e.detail.label)}
            @preset-delete=${(e: CustomEvent<{ id: string }>) => this.settingsCtl.deletePreset(e.detail.id)}
          ></qwen-settings-panel>`
        : html`<qwen-model-manager
            .locale=${l}
            .modelInfo=${this.modelInfo}
            .loading=${this.loadState !== undefined}
            .revision=${this.storeRevision}
            .refusedBytes=${this.refusedBytes}
            @load-model=${(e: CustomEvent<LoadModelDetail>) => void this.load(e.detail).catch(() => undefined)}
            @storage-freed=${() => void this.chats.flush()}
          ></qwen-model-manager>`}
    </aside>`;
  }

  // ---- models ------------------------------------------------------------------------------

  private activeEngine(): Engine | undefined {
    return this.engine ?? this.created?.engine;
  }

  private async ensureEngine(): Promise<Engine> {
    const own = this.activeEngine();
    if (own) return own;
    this.creating ??= (async () => {
      const { createChatEngine } = await engineFactory();
      this.created = await createChatEngine(parseBackend(this.backend), (_reason, choice) => {
        this.notice = t(this.locale, 'fallback', { reason: backendReasonText(choice, this.locale) });
      });
      this.created.onModelChange?.((model) => this.sharedModelChanged(model));
      return this.created.engine;
    })().finally(() => (this.creating = undefined));
    return this.creating;
  }

  /** Another tab of the origin already runs the model: use it here at once instead of loading a copy. */
  private async joinOtherTab(): Promise<void> {
    if (this.engine || this.created || this.creating || this.loadController || this.modelInfo) return;
    try {
      const { otherTabRunsEngine } = await engineFactory();
      if (await otherTabRunsEngine()) await this.ensureEngine();
    } catch {
      // Nothing to join, or the engine's code did not come: a load says so when the person asks for one.
    }
  }

  /** Any tab changed the model every tab shares (loaded, unloaded, or took it over from a closed tab). */
  private sharedModelChanged(model: SharedModel | undefined): void {
    const role = this.created?.role?.();
    const tookOver = role === 'owner' && this.sharedRole === 'follower';
    this.sharedRole = role;
    if (tookOver) this.notice = t(this.locale, 'engineTakenOver');
    if (this.loadController) return; // this tab's own load reports its result
    const had = this.modelInfo;
    this.modelInfo = model?.info;
    if (model) {
      this.lastLoad = this.resolveModel(model.spec);
      this.reloadOnSend = false;
      if (had?.name !== model.info.name || had.contextLength !== model.info.contextLength) this.emit('ready', { info: model.info });
    } else if (had) {
      this.reloadOnSend = this.lastLoad !== undefined;
    }
  }

  private disposeEngine(): void {
    this.generation.stop();
    this.loadController?.abort();
    this.created?.dispose();
    this.created = undefined;
    if (!this.engine) this.modelInfo = undefined;
  }

  private resolveModel(model: ModelSpec | string): LoadModelDetail {
    if (typeof model !== 'string') {
      const name = model.kind === 'url' ? model.url.split('/').pop() ?? model.url
        : model.kind === 'blob' ? model.name ?? 'model.gguf'
        : model.kind === 'cached' ? model.id
        : model.kind === 'mlc' ? model.modelId
        : model.path;
      const entry = model.kind === 'url' ? findCatalogueEntryByUrl(model.url) : undefined;
      return { spec: model, name: entry?.name ?? name, entry };
    }
    const entry: CatalogueEntry | undefined = findCatalogueEntry(model);
    if (entry) return { spec: { kind: 'url', url: entry.url }, name: entry.name, entry };
    const url = new URL(model, location.href).href;
    return { spec: { kind: 'url', url }, name: decodeURIComponent(url.split('/').pop() || url) };
  }

  private async load(request: LoadModelDetail): Promise<ModelInfo> {
    this.loadController?.abort();
    const controller = new AbortController();
    this.loadController = controller;
    this.loadState = { name: request.name };
    this.errorText = undefined;
    this.lastLoad = request;
    this.keepOffer = undefined;
    // On a narrow screen the panel covers the chat, where progress and errors show: make way.
    if (this.panel && this.narrow()) this.closePanel();
    try {
      // The engine picks the backend per model (a catalogue URL runs its web-llm build on WebGPU).
      const engine = await this.ensureEngine();
      this.modelInfo = undefined;
      const contextLength = clampSetting('contextLength', this.contextLength);
      const info = await engine.load(request.spec, {
        ...(contextLength > 0 ? { contextLength } : {}),
        ...(this.compactCache ? { kvCache: 'q8_0' as const } : {}),
        promptCache: this.keepContexts,
        signal: controller.signal,
        onProgress: (progress) => {
          if (this.loadController === controller) this.loadState = { name: request.name, progress };
        },
      });
      if (this.loadController !== controller) return info; // a newer load took over
      this.modelInfo = info;
      this.reloadOnSend = false;
      if (request.spec.kind === 'blob') this.keepOffer = { file: request.spec.blob, name: request.name };
      this.emit('ready', { info });
      return info;
    } catch (error) {
      if (this.loadController === controller && !controller.signal.aborted) {
        this.reportError(error);
        // A download that cannot reach its server: a file already on the device is the way out.
        const detail = (error as { detail?: unknown }).detail;
        this.offerLocalFile = detail === 'network' || detail === 'stalled';
        // Too large for this device's memory: the smaller catalogue models are the way out.
        if (detail === 'model-too-large') {
          const size = request.sizeBytes ?? request.entry?.sizeBytes ?? this.loadState?.progress?.totalBytes;
          if (size !== undefined) this.refusedBytes = Math.min(this.refusedBytes ?? Infinity, size);
          this.offerModels = smallerModels(size);
        }
        // Part of the app's code did not come: a reload fetches it again (so may a new try).
        this.offerReload = isCodeUnavailable(error);
      }
      throw error;
    } finally {
      if (this.loadController === controller) {
        this.loadController = undefined;
        this.loadState = undefined;
      }
      this.storeRevision++;
    }
  }

  // ---- conversations -----------------------------------------------------------------------

  /** Offers to take back a destructive action for a few seconds. */
  private offerUndo(text: string, restore: () => void): void {
    clearTimeout(this.undoTimer);
    this.undo = { text, restore };
    this.undoTimer = setTimeout(() => (this.undo = undefined), UNDO_MS);
  }

  private applyUndo(): void {
    const undo = this.undo;
    clearTimeout(this.undoTimer);
    this.undo = undefined;
    undo?.restore();
    this.focusComposer();
  }

  /**
   * Streams an answer to the conversation as it stands (its last message is the user's), or with
   * `continuing`, the rest of its last answer (cut at the token limit), appended to it.
   */
  private async answer(continuing = false): Promise<void> {
    const engine = this.activeEngine();
    const info = this.modelInfo;
    if (!engine || !info) return;
    const conversationId = this.conversation.id;
    const before = this.conversation.messages;
    const cut = continuing ? before[before.length - 1] : undefined;
    if (continuing && cut?.role !== 'assistant') return;
    // The answer streams into `message`: a new one, or the cut one, whose text it extends.
    const history = cut ? before.slice(0, -1) : before;
    const kept = cut?.content ?? '';
    let message: StoredMessage = cut
      ? { ...cut, finishReason: undefined, error: undefined }
      : { id: newId(), role: 'assistant', content: '', createdAt: Date.now(), model: info.name, ...(this.preset ? { preset: this.preset } : {}) };
    this.chats.setMessages([...history, message]);
    this.streamingId = message.id;
    void this.chats.save();
    const settings = this.settings;
    const messages = [
      ...(settings.systemPrompt.trim() ? [{ role: 'system' as const, content: settings.systemPrompt }] : []),
      ...(cut ? [...history, cut] : history)
        .filter((m) => m.role !== 'assistant' || m.content || m.toolCalls?.length)
        .map(toRequestMessage),
    ];
    // JSON answers and tool calls do not mix: with JSON on, the tools are shown but not called.
    const tools = this.tools.length > 0 ? { tools: this.tools, ...(settings.json ? { tool_choice: 'none' as const } : {}) } : {};
    const request = { messages, ...samplingOptions(settings, info), ...tools, ...(cut ? { continue_final_message: true } : {}) };
    try {
      const result = await this.generation.generate(engine, request, (delta) => {
        message = {
          ...message,
          content: message.content + (delta.content ?? ''),
          reasoning: delta.reasoning_content ? (message.reasoning ?? '') + delta.reasoning_content : message.reasoning,
        };
        this.chats.replaceMessage(conversationId, message);
        this.emit('token', { content: delta.content, reasoning_content: delta.reasoning_content, messageId: message.id });
      });
      message = {
        ...message,
        content: kept + result.content,
        reasoning: (cut?.reasoning ?? '') + result.reasoning || undefined,
        usage: result.usage,
        finishReason: result.finishReason ?? undefined,
        updatedAt: Date.now(),
        ...(result.toolCalls.length > 0 ? { toolCalls: result.toolCalls } : {}),
      };
      this.chats.replaceMessage(conversationId, message);
      this.emit('message', { conversationId, message });
      this.askForToolResults(conversationId, message);
    } catch (error) {
      const { code, detail } = error as { code?: unknown; detail?: unknown };
      if (code === 'worker-failed' && detail === 'owner-closed') {
        // The tab that ran the shared engine closed: the answer ends here, its text kept; the next
        // tab in line (maybe this one) loads the model again by itself.
        message = { ...message, finishReason: 'abort', error: t(this.locale, 'ownerTabClosed'), updatedAt: Date.now() };
        this.modelInfo = undefined;
        this.reloadOnSend = this.lastLoad !== undefined;
      } else if (code === 'worker-failed') {
        // The engine's worker died or hung: the answer ends here, its text kept; the model loads
        // again (in a fresh worker) with the next message.
        message = { ...message, finishReason: 'abort', error: t(this.locale, 'engineStopped'), updatedAt: Date.now() };
        this.modelInfo = undefined;
        this.reloadOnSend = this.lastLoad !== undefined;
        this.notice = t(this.locale, 'engineRestarted', { reason: describeError(error, this.locale) });
        this.reportError(error, false);
      } else {
        message = { ...message, error: describeError(error, this.locale), updatedAt: Date.now() };
        this.reportError(error, false);
      }
      this.chats.replaceMessage(conversationId, message);
    } finally {
      this.streamingId = undefined;
      const open = this.chats.current;
      if (open.id === conversationId) await this.chats.save({ ...open, updatedAt: Date.now() });
    }
  }

  /**
   * The page answers each tool call of an answer through the 'tool-call' event's respond(); once
   * every call has its result, the answer goes on from them.
   */
  private askForToolResults(conversationId: string, message: StoredMessage): void {
    const calls = message.toolCalls ?? [];
    let waiting = calls.length;
    for (const call of calls) {
      let answered = false;
      const respond = (result: unknown): void => {
        if (answered) return;
        answered = true;
        const open = this.chats.current;
        if (open.id !== conversationId) return; // the user moved on
        const content = typeof result === 'string' ? result : JSON.stringify(result ?? null);
        const tool: StoredMessage = { id: newId(), role: 'tool', content, toolCallId: call.id, toolName: call.function.name, createdAt: Date.now() };
        this.chats.setMessages([...open.messages, tool]);
        if (--waiting === 0 && !this.generation.running) void this.answer();
      };
      this.emit('tool-call', { conversationId, messageId: message.id, call, respond });
    }
  }

  private onMessageAction(event: CustomEvent<MessageActionDetail>): void {
    if (this.generation.running) return;
    const { action, id, text } = event.detail;
    if (action === 'expand' && text && event.detail.index) {
      // A section of an outline, written out: in the Write preset (the outline's says not to).
      this.settingsCtl.applyPreset('write');
      void this.send(expandSectionPrompt(this.locale, event.detail.index, text));
      return;
    }
    const messages = this.conversation.messages;
    const index = messages.findIndex((m) => m.id === id);
    if (index < 0) return;
    if (action === 'regenerate') {
      // Drop this answer (and anything after it) and answer the same question again.
      this.chats.setMessages(messages.slice(0, index));
    } else if (action === 'continue') {
      // Only the last answer goes on (the button shows on it alone).
      if (index !== messages.length - 1) return;
      this.focusComposer();
      void this.answer(true);
      return;
    } else if (action === 'edit' && text) {
      this.chats.setMessages([...messages.slice(0, index), { ...messages[index], content: text, updatedAt: Date.now() }]);
    } else {
      return;
    }
    // The button that was clicked is gone: keep focus here so Esc and typing still reach the chat.
    this.focusComposer();
    void this.answer();
  }

  private clear(): void {
    if (this.generation.running) return;
    const before = this.chats.current;
    this.chats.setMessages([]);
    void this.chats.save();
    this.offerUndo(t(this.locale, 'chatCleared'), () => {
      if (this.chats.current.id !== before.id) return;
      this.chats.restoreMessages(before.messages);
      void this.chats.save();
    });
  }

  private async onConversationAction(event: CustomEvent<ConversationActionDetail>): Promise<void> {
    const { action, id, title } = event.detail;
    const target = this.chats.list.find((c) => c.id === id);
    switch (action) {
      case 'new':
        if (this.generation.running) return;
        if (this.conversation.messages.length > 0) this.chats.select(newConversation(''));
        this.sidebarOpen = false;
        this.focusComposer();
        return;
      case 'select':
        if (!target || this.generation.running) return;
        this.chats.select(target);
        this.sidebarOpen = false;
        return;
      case 'rename':
        if (!target || !title) return;
        await this.chats.rename(target.id, title);
        return;
      case 'delete':
        if (!target) return;
        if (this.generation.running && this.conversation.id === target.id) return;
        await this.chats.delete(target.id);
        return;
      case 'export-markdown':
      case 'export-json':
        if (target) this.chats.download(target, action === 'export-markdown' ? 'markdown' : 'json', this.systemPrompt);
        return;
    }
  }

  // ---- settings and panels -----------------------------------------------------------------

  private onSettingsChange(event: CustomEvent<SettingsChange>): void {
    this.settingsCtl.change(event.detail);
  }

  /** A new backend takes a new engine: drop ours and load the same model again on the new one. */
  backendChanged(): void {
    if (this.engine || !this.created) return; // the page's own engine is the page's business
    this.disposeEngine();
    if (this.lastLoad) this.load(this.lastLoad).catch(() => undefined);
  }

  /** A new context size or cache: the last model loads again with it (the KV cache is made at load). */
  contextChanged(): void {
    if (this.lastLoad) this.load(this.lastLoad).catch(() => undefined);
  }

  private togglePanel(panel: Panel): void {
    if (this.panel === panel) {
      this.closePanel();
      return;
    }
    this.panel = panel;
    if (panel === 'settings' && this.webgpu.state === 'checking') void this.detectWebGpu();
    void this.updateComplete.then(() => this.renderRoot.querySelector<HTMLElement>('.close-panel')?.focus());
  }

  private closePanel(): void {
    this.panel = undefined;
    this.focusComposer();
  }

  private closeSidebar(): void {
    this.sidebarOpen = false;
    void this.updateComplete.then(() => this.renderRoot.querySelector<HTMLElement>('button.menu')?.focus());
  }

  /** The phone layout (see the container query in the styles): panels cover the chat. */
  private narrow(): boolean {
    return this.getBoundingClientRect().width <= NARROW_PX;
  }

  private async readStoredModels(): Promise<void> {
    try {
      this.storedModels = await ModelStore.open().list();
    } catch {
      this.storedModels = []; // no IndexedDB: nothing stored to offer
    }
  }

  /** Copies the local file just loaded into storage, so it loads next time without the picker. */
  private async keepLocalFile(): Promise<void> {
    const offer = this.keepOffer;
    if (!offer) return;
    this.keepOffer = { ...offer, progress: { loaded: 0, total: offer.file.size } };
    try {
      await ModelStore.open().importFile(offer.file, {
        name: offer.name,
        onProgress: (p) => {
          if (this.keepOffer?.file === offer.file) this.keepOffer = { ...offer, progress: { loaded: p.loadedBytes, total: p.totalBytes } };
        },
      });
      this.notice = t(this.locale, 'kept', { name: offer.name });
      this.storeRevision++;
      void this.readStoredModels();
    } catch (error) {
      this.reportError(error);
    } finally {
      if (this.keepOffer?.file === offer.file) this.keepOffer = undefined;
    }
  }

  private async detectWebGpu(): Promise<void> {
    try {
      const support = await (await engineFactory()).detectWebGpu();
      this.webgpu = { state: 'done', available: support.available, detail: support.available ? support.adapter?.description || support.adapter?.vendor || undefined : webGpuReasonText(support, this.locale) };
    } catch (error) {
      this.webgpu = { state: 'done', available: false, detail: describeError(error, this.locale) };
    }
  }

  private focusComposer(): void {
    void this.updateComplete.then(() => this.renderRoot.querySelector<QwenComposer>('qwen-composer')?.focus());
  }

  private onKeyDown(event: KeyboardEvent): void {
    if (event.key !== 'Escape' || event.defaultPrevented) return;
    if (this.generation.running) {
      event.preventDefault();
      this.stop();
    } else if (this.sidebarOpen) {
      event.preventDefault();
      this.closeSidebar();
    } else if (this.panel) {
      event.preventDefault();
      this.closePanel();
    }
  }

  // ---- errors and events -------------------------------------------------------------------

  private showError(text: string): void {
    this.errorText = text;
    this.offerLocalFile = false;
    this.offerReload = false;
    this.offerModels = [];
  }

  /** Opens the model manager with its file picker in view (and focused). */
  private async openLocalFile(): Promise<void> {
    this.errorText = undefined;
    this.panel = 'models';
    await this.updateComplete;
    const manager = this.renderRoot.querySelector('qwen-model-manager');
    await manager?.updateComplete;
    const input = manager?.shadowRoot?.querySelector<HTMLInputElement>('#model-file');
    input?.scrollIntoView({ block: 'center' });
    input?.focus();
  }

  private reportError(error: unknown, banner = true): void {
    if (banner) this.showError(describeError(error, this.locale));
    const e = error instanceof Error ? error : new Error(String(error));
    const code = (e as { code?: unknown }).code;
    this.emit('error', { error: { name: e.name, code: typeof code === 'string' ? code : undefined, message: e.message } });
  }

  private emit(type: 'ready' | 'token' | 'message' | 'error' | 'tool-call', detail: unknown): void {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
  }
}

/**
 * An error as one line for people: its message, with the code when it has one. Browser errors
 * whose message is empty or says nothing (IndexedDB's QuotaExceededError) get words of our own.
 */
/** A stored message as the engine takes it. */
function toRequestMessage(m: StoredMessage): ChatMessageInput {
  if (m.role === 'tool') return { role: 'tool', content: m.content, ...(m.toolCallId ? { tool_call_id: m.toolCallId } : {}) };
  if (m.role === 'user') return { role: 'user', content: m.content };
  const message: ChatMessageInput = { role: 'assistant', content: m.content };
  if (m.reasoning) message.reasoning_content = m.reasoning;
  if (m.toolCalls?.length) message.tool_calls = m.toolCalls;
  return message;
}

export function describeError(error: unknown, lang: Lang): string {
  const { name, message, code } = (error ?? {}) as { name?: unknown; message?: unknown; code?: unknown };
  if (name === 'QuotaExceededError') return t(lang, 'storageFull');
  const text = typeof message === 'string' && message ? message : typeof name === 'string' && name ? name : String(error);
  return typeof code === 'string' ? `${text} (${code})` : text;
}

/** The engine's code, loaded with the first model (it is most of the app's bytes). */
function engineFactory(): Promise<typeof import('./engine-factory.ts')> {
  return importCode('The engine', () => import('./engine-factory.ts'));
}

/** Why the engine runs on the CPU, in the UI's language. */
function backendReasonText(choice: EngineBackendChoice, lang: Lang): string {
  switch (choice.code) {
    case 'no-mlc-build': return t(lang, 'backendNoMlc');
    case 'webgpu-unavailable': return webGpuReasonText({ reasonCode: choice.detail as WebGpuSupport['reasonCode'], reason: choice.reason }, lang);
    case 'no-shader-f16': return t(lang, 'backendNoF16');
    case 'software-adapter': return t(lang, 'backendSoftware');
    case 'webgpu-failed': return t(lang, 'backendWebgpuFailed', { error: choice.detail ?? '' });
    case 'gpu-lost': return t(lang, 'backendGpuLost', { error: choice.detail ?? '' });
    default: return choice.reason;
  }
}

/** Why WebGPU is not available, in the UI's language. */
function webGpuReasonText(support: Pick<WebGpuSupport, 'reasonCode' | 'reason'>, lang: Lang): string {
  switch (support.reasonCode) {
    case 'no-api': return t(lang, 'webgpuNoApi');
    case 'no-adapter': return t(lang, 'webgpuNoAdapter');
    case 'adapter-failed': return t(lang, 'webgpuAdapterFailed');
    default: return support.reason ?? t(lang, 'unavailable');
  }
}

if (!customElements.get('qwen-chat')) customElements.define('qwen-chat', QwenChat);

declare global {
  interface HTMLElementTagNameMap {
    'qwen-chat': QwenChat;
  }
}
