// The small built-in list of models the app offers. Every entry is one GGUF file on Hugging Face,
// downloaded through its `resolve/main` URL (which redirects to the CDN and answers byte ranges).
//
// Provenance of the file names and sizes (checked 2026-11-29 through public search snapshots of
// Hugging Face pages, not against the live site, which this build machine cannot reach):
//  - unsloth/Qwen3-4B-Instruct-2507-GGUF: the Q4_K_M and Q4_0 file names follow unsloth's naming
//    (`<model>-<QUANT>.gguf`), seen for this repo in GGUF metadata snapshots ("quantized_by:
//    Unsloth", imatrix file `Qwen3-4B-Instruct-2507-GGUF/imatrix_unsloth.gguf`). Sizes are those of
//    llama.cpp's Q4_K_M/Q4_0 of Qwen3-4B (≈2.50 GB / ≈2.38 GB); our own generated 4B fixtures of the
//    same tensor shapes are 2 497 280 224 and 2 369 546 464 bytes.
//  - The official Qwen/Qwen3-1.7B-GGUF and Qwen/Qwen3-0.6B-GGUF repos publish Q8_0 only (as far as
//    the snapshots show), so the Q4_K_M files come from unsloth/Qwen3-1.7B-GGUF and
//    unsloth/Qwen3-0.6B-GGUF (the 0.6B repo's Q4_K_S sibling was seen; Q4_K_M is assumed by the same
//    naming). Their sizes (≈1.11 GB, ≈397 MB) are estimates from the parameter counts, unverified.
// `sizeBytes` is for display and for the storage-space check before a download starts; the
// download itself trusts only what the server says (Content-Length / Content-Range).
//
// `mlcModelId` names web-llm's prebuilt model (prebuiltAppConfig in @mlc-ai/web-llm 0.2.86) for the
// WebGPU backend. web-llm ships Qwen3-4B (the hybrid thinking model), not the 2507 Instruct
// release, so on WebGPU the 4B entries run Qwen3-4B with thinking switched off by the caller.

export type CatalogueParams = '4B' | '1.7B' | '0.6B';
export type CatalogueQuant = 'Q4_K_M' | 'Q4_0' | 'Q8_0';

export interface CatalogueEntry {
  /** Stable id used in URLs, settings and the `model` attribute (e.g. 'qwen3-4b-instruct-2507-q4_k_m'). */
  id: string;
  /** Human-readable name. */
  name: string;
  params: CatalogueParams;
  quant: CatalogueQuant;
  /** https://huggingface.co/<repo>/resolve/main/<file> */
  url: string;
  /** Approximate file size in bytes, for display and the free-space check. */
  sizeBytes: number;
  /** True for models that think (<think>…</think>) before answering. */
  thinking: boolean;
  /** web-llm prebuilt model id for the WebGPU backend. */
  mlcModelId?: string;
  /** Hugging Face repository, "<owner>/<name>". */
  repo: string;
  /** File name inside the repository. */
  file: string;
}

function hf(repo: string, file: string): { repo: string; file: string; url: string } {
  return { repo, file, url: `https://huggingface.co/${repo}/resolve/main/${file}` };
}

export const CATALOGUE: readonly CatalogueEntry[] = [
  {
    id: 'qwen3-4b-instruct-2507-q4_k_m',
    name: 'Qwen3 4B Instruct 2507 (Q4_K_M)',
    params: '4B',
    quant: 'Q4_K_M',
    ...hf('unsloth/Qwen3-4B-Instruct-2507-GGUF', 'Qwen3-4B-Instruct-2507-Q4_K_M.gguf'),
    sizeBytes: 2_500_000_000,
    thinking: false,
    mlcModelId: 'Qwen3-4B-q4f16_1-MLC',
  },
  {
    id: 'qwen3-4b-instruct-2507-q4_0',
    name: 'Qwen3 4B Instruct 2507 (Q4_0)',
    params: '4B',
    quant: 'Q4_0',
    ...hf('unsloth/Qwen3-4B-Instruct-2507-GGUF', 'Qwen3-4B-Instruct-2507-Q4_0.gguf'),
    sizeBytes: 2_370_000_000,
    thinking: false,
    mlcModelId: 'Qwen3-4B-q4f16_1-MLC',
  },
  {
    id: 'qwen3-1.7b-q4_k_m',
    name: 'Qwen3 1.7B (Q4_K_M)',
    params: '1.7B',
    quant: 'Q4_K_M',
    ...hf('unsloth/Qwen3-1.7B-GGUF', 'Qwen3-1.7B-Q4_K_M.gguf'),
    sizeBytes: 1_110_000_000,
    thinking: true,
    mlcModelId: 'Qwen3-1.7B-q4f16_1-MLC',
  },
  {
    id: 'qwen3-0.6b-q4_k_m',
    name: 'Qwen3 0.6B (Q4_K_M)',
    params: '0.6B',
    quant: 'Q4_K_M',
    ...hf('unsloth/Qwen3-0.6B-GGUF', 'Qwen3-0.6B-Q4_K_M.gguf'),
    sizeBytes: 397_000_000,
    thinking: true,
    mlcModelId: 'Qwen3-0.6B-q4f16_1-MLC',
  },
];

export const DEFAULT_MODEL_ID = 'qwen3-4b-instruct-2507-q4_k_m';

/** The entry with this id, or undefined. */
export function findCatalogueEntry(id: string): CatalogueEntry | undefined {
  return CATALOGUE.find((entry) => entry.id === id);
}

/** The entry whose download URL is `url`, or undefined (a model named by URL may still be one of ours). */
export function findCatalogueEntryByUrl(url: string): CatalogueEntry | undefined {
  return CATALOGUE.find((entry) => entry.url === url);
}
