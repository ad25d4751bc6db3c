// A first page: opens a GGUF in place (Blob slices, never the whole file), shows its model
// config and tensors, and tokenizes text with the file's own tokenizer.
import { BlobSource } from '../gguf/byte-source.ts';
import { GGML_TYPE_INFO } from '../gguf/ggml-types.ts';
import { readModelConfig, readTokenizerData } from '../gguf/metadata.ts';
import { readGGUF } from '../gguf/reader.ts';
import { Tokenizer } from '../tokenizer/tokenizer.ts';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = $('status');
let tokenizer: Tokenizer | undefined;

function row(cells: string[], header = false): HTMLTableRowElement {
  const tr = document.createElement('tr');
  for (const text of cells) {
    const cell = document.createElement(header ? 'th' : 'td');
    cell.textContent = text;
    tr.append(cell);
  }
  return tr;
}

function showTokens(): void {
  const out = $('ids');
  out.replaceChildren();
  if (!tokenizer) return;
  const ids = tokenizer.encode($<HTMLTextAreaElement>('text').value, {
    parseSpecial: $<HTMLInputElement>('special').checked,
  });
  out.append(`${ids.length} tokens: `);
  for (const id of ids) {
    const piece = document.createElement('span');
    piece.className = 'piece';
    piece.title = String(id);
    piece.textContent = tokenizer.decode([id], { renderSpecial: true });
    out.append(piece);
  }
}

async function open(file: File): Promise<void> {
  status.className = '';
  status.textContent = `Reading ${file.name}…`;
  const started = performance.now();
  try {
    const gguf = await readGGUF(new BlobSource(file));
    const ms = performance.now() - started;
    const config = $('config');
    config.replaceChildren(row(['field', 'value'], true));
    try {
      for (const [key, value] of Object.entries(readModelConfig(gguf))) config.append(row([key, String(value)]));
    } catch (error) {
      config.append(row(['model', (error as Error).message]));
    }
    const tensors = $('tensors');
    tensors.replaceChildren(row(['name', 'shape', 'type', 'bytes'], true));
    for (const t of gguf.tensors) {
      tensors.append(row([t.name, t.dims.join(' × '), GGML_TYPE_INFO[t.type]?.name ?? String(t.type), t.byteSize.toLocaleString()]));
    }
    tokenizer = Tokenizer.fromData(readTokenizerData(gguf));
    showTokens();
    $('model').hidden = false;
    status.textContent = `GGUF v${gguf.version}: ${gguf.metadata.size} metadata keys, ${gguf.tensors.length} tensors, read in ${ms.toFixed(0)} ms.`;
  } catch (error) {
    $('model').hidden = true;
    status.className = 'error';
    status.textContent = (error as Error).message;
  }
}

$<HTMLInputElement>('file').addEventListener('change', (event) => {
  const file = (event.target as HTMLInputElement).files?.[0];
  if (file) void open(file);
});
$('text').addEventListener('input', showTokens);
$('special').addEventListener('change', showTokens);
