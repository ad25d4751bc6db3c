// Opens the bytes of a ModelSpec for the CPU engine: a file path (Node), a Blob, a URL (through
// the IndexedDB model store in a browser, plain range reads otherwise), or a cached model.
import { BlobSource, type ByteSource } from '../gguf/byte-source.ts';
import { ModelStore } from '../storage/model-store.ts';
import { UrlSource } from '../storage/url-source.ts';
import { StorageError } from '../storage/errors.ts';
import { EngineError } from './errors.ts';
import type { LoadProgress, ModelSpec } from './types.ts';

export interface OpenedSource {
  source: ByteSource;
  name: string;
  close(): Promise<void>;
}

// Kept in a variable so bundlers leave it alone: browser bundles must never pull in node:fs.
const NODE_FILE_SOURCE = '../gguf/node-file-source.ts';

export async function openModelSource(
  spec: ModelSpec,
  signal: AbortSignal | undefined,
  onProgress: ((progress: LoadProgress) => void) | undefined,
): Promise<OpenedSource> {
  if (typeof spec !== 'object' || spec === null) throw new EngineError('bad-request', `the model spec must be an object such as { kind: 'url', url }, got ${String(spec)}`);
  switch (spec.kind) {
    case 'path': {
      if (typeof process === 'undefined' || !process.versions?.node) {
        throw new EngineError('unsupported', 'a file path can only be loaded in Node; in a browser pass a Blob or a URL');
      }
      const { NodeFileSource } = (await import(/* @vite-ignore */ NODE_FILE_SOURCE)) as typeof import('../gguf/node-file-source.ts');
      const source = await NodeFileSource.open(spec.path);
      return { source, name: baseName(spec.path), close: () => source.close() };
    }
    case 'blob': {
      const name = spec.name ?? (spec.blob as Partial<File>).name ?? 'model.gguf';
      return { source: new BlobSource(spec.blob), name, close: async () => {} };
    }
    case 'url': {
      if (spec.cache !== false && typeof indexedDB !== 'undefined') {
        // Browser: keep a copy in IndexedDB (resuming a partial download), then read from there.
        const store = ModelStore.open();
        try {
          const model = await store.download(spec.url, {
            signal,
            onProgress: onProgress && ((p) => onProgress({ phase: 'download', ...p })),
          });
          return { source: await store.openSource(model.id), name: model.name, close: async () => {} };
        } catch (error) {
          // Storage that keeps no data (WebKit's private windows): read the model from its URL,
          // as with cache: false (the store left no record behind).
          if (!(error instanceof StorageError && error.code === 'unsupported')) throw error;
        }
      }
      const source = await UrlSource.open(spec.url, { signal });
      return { source, name: baseName(new URL(spec.url, globalThis.location?.href).pathname), close: async () => {} };
    }
    case 'cached': {
      if (typeof indexedDB === 'undefined') throw new EngineError('unsupported', 'cached models live in IndexedDB, which is not available here');
      const store = ModelStore.open();
      const source = await store.openSource(spec.id);
      const model = await store.get(spec.id);
      return { source, name: model?.name ?? spec.id, close: async () => {} };
    }
    case 'mlc':
      throw new EngineError('unsupported', `'${spec.modelId}' is a web-llm model: it runs on the WebGPU engine only`);
    default:
      throw new EngineError('bad-request', `unknown model kind ${JSON.stringify((spec as { kind?: unknown }).kind)}`);
  }
}

function baseName(path: string): string {
  const parts = path.split(/[\\/]/).filter(Boolean);
  return decodeURIComponent(parts[parts.length - 1] ?? path);
}
