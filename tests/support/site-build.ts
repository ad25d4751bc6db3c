// Builds the static site (`vite build` with the repository's vite.config.ts) into a temp
// directory for tests that exercise what a static host would serve.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build, type Plugin } from 'vite';

export interface PrecacheManifest {
  version: string;
  /** Cached at install. */
  files: string[];
  /** Cached at first use. */
  lazy: string[];
}

export interface SiteBuild {
  /** Absolute path of the built site. */
  dir: string;
  /** The service worker's precache list, read back from the built sw.js. */
  precache(): Promise<PrecacheManifest>;
  remove(): Promise<void>;
}

export interface BuildSiteOptions {
  /**
   * A build that differs from another (a new deployment): adds a file `build-marker.txt` with
   * this text, and sets `data-build` on the app page's root (so the app's chunk changes too).
   */
  marker?: string;
}

export async function buildSite(options: BuildSiteOptions = {}): Promise<SiteBuild> {
  const dir = await mkdtemp(join(tmpdir(), 'qwen-web-site-'));
  // vitest sets NODE_ENV=test, which would give a development build (Lit's dev mode and all).
  const nodeEnv = process.env.NODE_ENV;
  process.env.NODE_ENV = 'production';
  try {
    await build({
      configFile: 'vite.config.ts',
      mode: 'production',
      logLevel: 'warn',
      build: { outDir: dir, emptyOutDir: true },
      plugins: options.marker === undefined ? [] : [markerPlugin(options.marker)],
    });
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  } finally {
    process.env.NODE_ENV = nodeEnv;
  }
  return {
    dir,
    async precache() {
      const code = await readFile(join(dir, 'sw.js'), 'utf8');
      const match = /(\{"version":"[0-9a-f]+","files":\[[^\]]*\],"lazy":\[[^\]]*\]\})/.exec(code);
      if (!match) throw new Error('sw.js carries no precache manifest');
      return JSON.parse(match[1]!) as PrecacheManifest;
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

function markerPlugin(text: string): Plugin {
  return {
    name: 'test-build-marker',
    transform(code, id) {
      if (!id.endsWith('/src/app.ts')) return undefined;
      return `${code}\ndocument.documentElement.dataset.build = ${JSON.stringify(text)};\n`;
    },
    generateBundle() {
      this.emitFile({ type: 'asset', fileName: 'build-marker.txt', source: text });
    },
  };
}
