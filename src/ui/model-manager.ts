// The model manager: the catalogue with sizes, a model by URL, a local file (picked or dropped,
// read in place), the downloaded models with their sizes (partial ones resume) and the storage
// used. Loading goes up as a 'load-model' event (the root element owns the engine); listing and
// deleting cached models talk to the ModelStore directly.
import { LitElement, css, html, nothing, type PropertyValues } from 'lit';
import type { ModelInfo, ModelSpec } from '../engine/types.ts';
import { CATALOGUE, type CatalogueEntry } from '../storage/catalogue.ts';
import { ModelStore, type CachedModel, type StoreUsage } from '../storage/model-store.ts';
import { formatBytes } from '../format.ts';
import { t, type Lang } from './i18n.ts';
import { detectDevice, probeRefusedBytes, tooLargeForDevice } from './device.ts';
import { baseStyles } from './styles.ts';

export interface LoadModelDetail {
  spec: ModelSpec;
  /** What to call it while it loads. */
  name: string;
  /** Set for catalogue models. */
  entry?: CatalogueEntry;
  /** The file's size, where known before loading. */
  sizeBytes?: number;
}

export class QwenModelManager extends LitElement {
  static override properties = {
    locale: { attribute: false },
    modelInfo: { attribute: false },
    loading: { attribute: false },
    /** Bumped by the root after a load or download ends, so the cached list is read again. */
    revision: { attribute: false },
    cached: { state: true },
    usage: { state: true },
    dragging: { state: true },
    storageError: { state: true },
    confirmingDeleteId: { state: true },
    probeRefusedBytes: { state: true },
    /** The smallest model file a load of which failed here for want of memory. */
    refusedBytes: { attribute: false },
  };

  static override styles = [
    baseStyles,
    css`
      :host {
        display: block;
      }
      section + section {
        margin-top: 1.2rem;
      }
      h3 {
        font-size: 0.8rem;
        text-transform: uppercase;
        letter-spacing: 0.05em;
        color: var(--qwen-muted);
        margin: 0 0 0.5rem;
      }
      ul {
        list-style: none;
        margin: 0;
        padding: 0;
        display: grid;
        gap: 0.4rem;
      }
      li {
        display: flex;
        align-items: center;
        gap: 0.5rem;
        padding: 0.45rem 0.55rem;
        border: 1px solid var(--qwen-border);
        border-radius: 8px;
        background: var(--qwen-bg);
      }
      .name {
        flex: 1;
        min-width: 0;
        overflow-wrap: anywhere;
      }
      .meta {
        display: block;
        font-size: 0.75rem;
        color: var(--qwen-muted);
      }
      form {
        display: flex;
        gap: 0.4rem;
      }
      form input {
        flex: 1;
        min-width: 0;
      }
      .drop {
        display: block;
        border: 2px dashed var(--qwen-border);
        border-radius: 8px;
        padding: 0.9rem;
        text-align: center;
      }
      .drop.dragging {
        border-color: var(--qwen-accent);
        background: var(--qwen-surface-2);
      }
      .drop input {
        margin-bottom: 0.4rem;
        max-width: 100%;
      }
      .error {
        color: var(--qwen-danger);
        font-size: 0.85rem;
      }
      .badge.does-not-fit {
        color: var(--qwen-danger);
        border-color: var(--qwen-danger);
      }
      .badge {
        font-size: 0.7rem;
        border: 1px solid var(--qwen-border);
        border-radius: 999px;
        padding: 0 0.4rem;
        margin-left: 0.3rem;
      }
    `,
  ];

  declare locale: Lang;
  declare modelInfo: ModelInfo | undefined;
  /** A load is running: load buttons wait. */
  declare loading: boolean;
  declare revision: number;
  declare cached: CachedModel[];
  declare usage: StoreUsage | undefined;
  declare dragging: boolean;
  declare storageError: string | undefined;
  /** The model whose Delete was clicked once. */
  declare confirmingDeleteId: string | undefined;
  declare refusedBytes: number | undefined;
  /** The smallest catalogue file whose memory a test allocation was refused (memory-probe-worker.ts). */
  declare probeRefusedBytes: number | undefined;
  private readonly device = detectDevice();
  private probed = false;

  private store: ModelStore | undefined;

  constructor() {
    super();
    this.locale = 'en';
    this.modelInfo = undefined;
    this.loading = false;
    this.revision = 0;
    this.cached = [];
    this.usage = undefined;
    this.dragging = false;
    this.storageError = undefined;
    this.confirmingDeleteId = undefined;
    this.probeRefusedBytes = undefined;
  }

  override connectedCallback(): void {
    super.connectedCallback();
    void this.refresh();
    // Once per element, and not while a model loads (the probe would compete for its memory).
    if (!this.probed && !this.loading) {
      this.probed = true;
      void probeRefusedBytes().then((bytes) => (this.probeRefusedBytes = bytes));
    }
  }

  protected override updated(changed: PropertyValues<this>): void {
    if (changed.has('revision') && changed.get('revision') !== undefined) void this.refresh();
  }

  /** Reads the cached models and the storage usage again. */
  async refresh(): Promise<void> {
    try {
      this.store ??= ModelStore.open();
      const [cached, usage] = await Promise.all([this.store.list(), this.store.usage()]);
      this.cached = cached;
      this.usage = usage;
      this.storageError = undefined;
    } catch (error) {
      this.storageError = error instanceof Error ? error.message : String(error);
    }
  }

  override render() {
    const l = this.locale;
    return html`${this.storageError ? html`<p class="error" role="alert">${this.storageError}</p>` : nothing}
      <section>
        <h3 id="catalogue-heading">${t(l, 'catalogue')}</h3>
        <ul aria-labelledby="catalogue-heading" class="catalogue">
          ${CATALOGUE.map((entry) => this.renderEntry(entry))}
        </ul>
      </section>
      <section>
        <h3>${t(l, 'loadByUrl')}</h3>
        <form @submit=${this.onUrlSubmit}>
          <label class="sr-only" for="model-url">${t(l, 'modelUrl')}</label>
          <input id="model-url" type="url" placeholder="https://…/model.gguf" required />
          <button type="submit" class="load-url" ?disabled=${this.loading}>${t(l, 'loadModel')}</button>
        </form>
      </section>
      <section>
        <h3>${t(l, 'localFile')}</h3>
        <label
          class="drop ${this.dragging ? 'dragging' : ''}"
          @dragover=${this.onDragOver}
          @dragleave=${() => (this.dragging = false)}
          @drop=${this.onDrop}
        >
          <input id="model-file" type="file" accept=".gguf" aria-label=${t(l, 'localFile')} ?disabled=${this.loading} @change=${this.onFilePicked} />
          <span class="muted">${t(l, 'dropHere')}</span>
        </label>
      </section>
      <section>
        <h3 id="cached-heading">${t(l, 'cached')}</h3>
        ${this.cached.length === 0
          ? html`<p class="muted">${t(l, 'noCached')}</p>`
          : html`<ul aria-labelledby="cached-heading" class="cached">${this.cached.map((model) => this.renderCached(model))}</ul>`}
        ${this.usage
          ? html`<p class="muted usage">
              ${t(l, 'storageUsage', { usage: formatBytes(this.usage.usage), quota: formatBytes(this.usage.quota) })}
              ${this.usage.persisted ? html`<span class="badge">${t(l, 'persisted')}</span>` : nothing}
            </p>`
          : nothing}
      </section>`;
  }

  private renderEntry(entry: CatalogueEntry) {
    const l = this.locale;
    const cached = this.cached.find((model) => model.url === entry.url);
    const label = cached?.complete ? t(l, 'loadModel') : cached ? t(l, 'resume') : t(l, 'download');
    return html`<li data-id=${entry.id}>
      <span class="name"
        >${entry.name}${entry.thinking ? html`<span class="badge">${t(l, 'thinkingModel')}</span>` : nothing}${
          tooLargeForDevice(entry, this.device, minDefined(this.refusedBytes, this.probeRefusedBytes)) ? html`<span class="badge does-not-fit">${t(l, 'doesNotFit')}</span>` : nothing}
        <span class="meta">${entry.params} · ${entry.quant} · ${formatBytes(entry.sizeBytes)}${cached && !cached.complete
            ? ` · ${t(l, 'incomplete')} ${formatBytes(cached.storedBytes)}`
            : ''}</span></span
      >
      <button
        type="button"
        class="load"
        ?disabled=${this.loading}
        @click=${() => this.emit({ spec: { kind: 'url', url: entry.url }, name: entry.name, entry, sizeBytes: entry.sizeBytes })}
      >
        ${label}
      </button>
    </li>`;
  }

  private renderCached(model: CachedModel) {
    const l = this.locale;
    const size = model.complete
      ? formatBytes(model.totalBytes)
      : `${formatBytes(model.storedBytes)} / ${formatBytes(model.totalBytes)} · ${t(l, 'incomplete')}`;
    // A partial download resumes through its URL; a complete one loads from storage.
    const spec: ModelSpec | undefined = model.complete
      ? { kind: 'cached', id: model.id }
      : model.url
        ? { kind: 'url', url: model.url }
        : undefined;
    // A download checked against a hash its server named is "verified"; without one, only its size was.
    const check = model.complete ? html`<span class="badge ${model.hashVerified ? 'verified' : 'not-verified'}">${t(l, model.hashVerified ? 'verified' : 'notVerified')}</span>` : nothing;
    return html`<li data-id=${model.id}>
      <span class="name">${model.name}${check}<span class="meta">${size}</span></span>
      ${spec
        ? html`<button type="button" class="load" ?disabled=${this.loading} @click=${() => this.emit({ spec, name: model.name, sizeBytes: model.totalBytes })}>
            ${model.complete ? t(l, 'loadModel') : t(l, 'resume')}
          </button>`
        : nothing}
      <button type="button" class="danger delete" ?disabled=${this.loading} @click=${() => this.deleteModel(model)}
        @blur=${() => this.confirmingDeleteId === model.id && (this.confirmingDeleteId = undefined)}>
        ${this.confirmingDeleteId === model.id ? t(l, 'confirmDeleteModel', { size: formatBytes(model.storedBytes) }) : t(l, 'delete')}
      </button>
    </li>`;
  }

  /** The first click asks (a model is gigabytes, downloaded once); the second deletes. */
  private async deleteModel(model: CachedModel): Promise<void> {
    if (this.confirmingDeleteId !== model.id) {
      this.confirmingDeleteId = model.id;
      return;
    }
    this.confirmingDeleteId = undefined;
    try {
      await this.store?.delete(model.id);
      this.dispatchEvent(new CustomEvent('storage-freed', { bubbles: true, composed: true }));
    } catch (error) {
      this.storageError = error instanceof Error ? error.message : String(error);
    }
    await this.refresh();
  }

  private onUrlSubmit(event: SubmitEvent): void {
    event.preventDefault();
    const input = this.renderRoot.querySelector<HTMLInputElement>('#model-url');
    const url = input?.value.trim();
    if (!url) return;
    const name = decodeURIComponent(new URL(url, location.href).pathname.split('/').pop() || url);
    this.emit({ spec: { kind: 'url', url }, name });
  }

  private onFilePicked(event: Event): void {
    const input = event.target as HTMLInputElement;
    const file = input.files?.[0];
    if (file) this.emit({ spec: { kind: 'blob', blob: file, name: file.name }, name: file.name, sizeBytes: file.size });
    input.value = '';
  }

  private onDragOver(event: DragEvent): void {
    if (!event.dataTransfer?.types.includes('Files')) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = 'copy';
    this.dragging = true;
  }

  private onDrop(event: DragEvent): void {
    event.preventDefault();
    this.dragging = false;
    const file = event.dataTransfer?.files[0];
    if (file && !this.loading) this.emit({ spec: { kind: 'blob', blob: file, name: file.name }, name: file.name, sizeBytes: file.size });
  }

  private emit(detail: LoadModelDetail): void {
    this.dispatchEvent(new CustomEvent<LoadModelDetail>('load-model', { detail, bubbles: true, composed: true }));
  }
}

function minDefined(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.min(a, b);
}

if (!customElements.get('qwen-model-manager')) customElements.define('qwen-model-manager', QwenModelManager);

declare global {
  interface HTMLElementTagNameMap {
    'qwen-model-manager': QwenModelManager;
  }
}
