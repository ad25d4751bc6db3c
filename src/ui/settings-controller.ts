// Settings as the user keeps them: what the settings panel changes is saved per origin
// (localStorage) and wins over the page's attributes on the next visit (the user chose it), and
// task presets (built-in, and the user's own saved from the panel) set the system prompt and
// sampling in one step. Changing those by hand leaves the preset.
import type { ReactiveController, ReactiveControllerHost } from 'lit';
import type { Lang } from './i18n.ts';
import { resolveLang } from './i18n.ts';
import { builtInPresets, parseCustomPreset, type Preset } from './presets.ts';
import type { SettingsChange } from './settings-panel.ts';
import { clampSetting, parseBackend, type ChatSettings, type Theme } from './settings.ts';

/** Where settings changed in the panel are kept (per origin, like any page setting). */
const SETTINGS_KEY = 'qwen-web:settings';
/** The user's own presets. */
const PRESETS_KEY = 'qwen-web:presets';

/** The element's properties the settings are. */
export interface SettingsHost extends ReactiveControllerHost, Omit<ChatSettings, 'preset'> {
  theme: Theme;
  preset: string | undefined;
  locale: Lang;
  setAttribute(name: string, value: string): void;
  /** The backend changed: the engine must change with it. */
  backendChanged(): void;
  /** The context size changed: the model must load again with it. */
  contextChanged(): void;
}

function readJson(key: string): unknown {
  try {
    return JSON.parse(localStorage.getItem(key) ?? 'null') as unknown;
  } catch {
    return null; // no storage here, or not ours
  }
}

function writeJson(key: string, value: unknown): void {
  try {
    localStorage.setItem(key, JSON.stringify(value));
  } catch {
    // Not kept (storage off or full): the change still applies to this page.
  }
}

export class SettingsController implements ReactiveController {
  private restored = false;
  private custom: Preset[] = [];

  constructor(private readonly host: SettingsHost) {
    host.addController(this);
  }

  hostConnected(): void {
    if (this.restored) return;
    this.restored = true;
    const saved = readJson(SETTINGS_KEY);
    if (saved && typeof saved === 'object') this.apply(saved as SettingsChange);
    const presets = readJson(PRESETS_KEY);
    if (Array.isArray(presets)) this.custom = presets.map(parseCustomPreset).filter((p): p is Preset => p !== undefined);
  }

  /** The presets to offer: the built-in ones in the page's language, then the user's. */
  presets(lang: Lang): Preset[] {
    return [...builtInPresets(lang), ...this.custom];
  }

  /** A change from the panel (or a preset): applied and kept. */
  change(change: SettingsChange): void {
    const byHand = change.preset === undefined &&
      (change.systemPrompt !== undefined || change.temperature !== undefined || change.topP !== undefined);
    const full: SettingsChange = byHand && this.host.preset !== undefined ? { ...change, preset: null } : change;
    const saved = readJson(SETTINGS_KEY);
    writeJson(SETTINGS_KEY, { ...(saved && typeof saved === 'object' ? saved : {}), ...full });
    this.apply(full);
  }

  applyPreset(id: string): void {
    const preset = this.presets(this.host.locale).find((p) => p.id === id);
    if (!preset) return;
    this.change({ systemPrompt: preset.systemPrompt, temperature: preset.temperature, topP: preset.topP, preset: preset.id });
  }

  /** Keeps the current system prompt and sampling as a preset named `label`, and selects it. */
  savePreset(label: string): void {
    const name = label.trim().slice(0, 40);
    if (!name) return;
    const preset: Preset = {
      id: `custom-${Date.now().toString(36)}`, label: name, systemPrompt: this.host.systemPrompt,
      temperature: this.host.temperature, topP: this.host.topP, custom: true,
    };
    this.custom = [...this.custom, preset];
    writeJson(PRESETS_KEY, this.custom);
    this.change({ preset: preset.id });
    this.host.requestUpdate();
  }

  deletePreset(id: string): void {
    this.custom = this.custom.filter((p) => p.id !== id);
    writeJson(PRESETS_KEY, this.custom);
    if (this.host.preset === id) this.change({ preset: null });
    this.host.requestUpdate();
  }

  private apply(change: SettingsChange): void {
    const host = this.host;
    if (change.systemPrompt !== undefined) host.systemPrompt = String(change.systemPrompt);
    if (change.temperature !== undefined) host.temperature = clampSetting('temperature', change.temperature);
    if (change.topP !== undefined) host.topP = clampSetting('topP', change.topP);
    if (change.topK !== undefined) host.topK = clampSetting('topK', change.topK);
    if (change.maxTokens !== undefined) host.maxTokens = clampSetting('maxTokens', change.maxTokens);
    if (change.thinking !== undefined) host.thinking = change.thinking === true;
    if (change.json !== undefined) host.json = change.json === true;
    if (change.preset !== undefined) host.preset = typeof change.preset === 'string' ? change.preset : undefined;
    if (change.theme !== undefined) host.theme = change.theme === 'light' ? 'light' : 'dark';
    if (change.lang !== undefined) host.setAttribute('lang', resolveLang(change.lang));
    if (change.backend !== undefined && parseBackend(change.backend) !== host.backend) {
      host.backend = parseBackend(change.backend);
      host.backendChanged();
    }
    if (change.contextLength !== undefined && clampSetting('contextLength', change.contextLength) !== host.contextLength) {
      host.contextLength = clampSetting('contextLength', change.contextLength);
      host.contextChanged();
    }
    if (change.keepContexts !== undefined) host.keepContexts = change.keepContexts !== false;
    if (change.compactCache !== undefined && (change.compactCache === true) !== host.compactCache) {
      host.compactCache = change.compactCache === true;
      host.contextChanged();
    }
  }
}
