// Model output → safe DOM. Model text is untrusted: it may hold HTML, script, event handlers and
// javascript: links (a prompt injection only has to ask for them). Three layers:
//  1. marked renders Markdown. Raw HTML in the text is shown as text, not parsed (an answer that
//     mentions <div> means the words; and hostile markup never reaches an HTML parser, where even
//     inert parsing reports CSP violations). Images become plain links (no request to a URL the
//     model chose); task checkboxes become text.
//  2. highlight.js colours fenced code; its output is escaped text in <span class="hljs-…">.
//     TeX between math delimiters becomes MathML through KaTeX (math.ts).
//  3. DOMPurify, with an allowlist of formatting tags and a handful of attributes, removes
//     anything else marked might let through (script, iframe, object, svg, style, forms, on*
//     handlers, style attributes, every URL that is not http(s)/mailto); links get target=_blank
//     and rel=noopener.
// The result is a DocumentFragment (no second parse of an HTML string), then copy buttons, made
// here after sanitizing, are added to code blocks. Text Markdown cannot render (marked recursing
// past the stack on thousands of nested quotes) is shown as plain text instead: never a blank answer.
//
// While an answer streams, StreamingMarkdown renders only what changed: every block before the
// last one is finished (what follows cannot change it) and keeps its DOM; only the last block is
// rendered again, without highlighting (an open code fence would be re-highlighted per token).
import DOMPurify from 'dompurify';
import hljs from 'highlight.js/lib/core';
import bash from 'highlight.js/lib/languages/bash';
import c from 'highlight.js/lib/languages/c';
import cpp from 'highlight.js/lib/languages/cpp';
import css from 'highlight.js/lib/languages/css';
import go from 'highlight.js/lib/languages/go';
import java from 'highlight.js/lib/languages/java';
import javascript from 'highlight.js/lib/languages/javascript';
import json from 'highlight.js/lib/languages/json';
import markdown from 'highlight.js/lib/languages/markdown';
import python from 'highlight.js/lib/languages/python';
import rust from 'highlight.js/lib/languages/rust';
import sql from 'highlight.js/lib/languages/sql';
import typescript from 'highlight.js/lib/languages/typescript';
import xml from 'highlight.js/lib/languages/xml';
import yaml from 'highlight.js/lib/languages/yaml';
import { Marked, type Tokens } from 'marked';
import { MATHML_ATTRIBUTES, MATHML_TAGS, mathExtension } from './math.ts';

// A handful of common languages (with their usual aliases: js, ts, py, sh, html, …) keeps the
// bundle small; anything else is shown as escaped plain text.
const LANGUAGES = { bash, c, cpp, css, go, java, javascript, json, markdown, python, rust, sql, typescript, xml, yaml };
for (const [name, language] of Object.entries(LANGUAGES)) hljs.registerLanguage(name, language);

const ALLOWED_TAGS = [
  'a', 'abbr', 'b', 'blockquote', 'br', 'code', 'dd', 'del', 'details', 'div', 'dl', 'dt', 'em',
  'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'hr', 'i', 'ins', 'kbd', 'li', 'mark', 'ol', 'p', 'pre', 'q',
  's', 'samp', 'small', 'span', 'strong', 'sub', 'summary', 'sup', 'table', 'tbody', 'td', 'tfoot',
  'th', 'thead', 'tr', 'u', 'ul', 'var',
];
const ALLOWED_ATTR = ['href', 'title', 'class', 'align', 'start', 'colspan', 'rowspan'];
/** Only absolute http(s) and mailto URLs survive: no javascript:, data:, vbscript:, relative paths. */
const ALLOWED_URI = /^(?:https?:\/\/|mailto:)/i;
/** Class names highlight.js emits (hljs-keyword, "hljs-title function_"), our language tag, and
 * math's (katex, math-display, math-source). */
const ALLOWED_CLASS = /^(?:hljs(?:-[\w-]+)?|language-[\w+#.-]+|[a-z]+_+|katex|math-display|math-source)$/;

/** Attributes whose values are not URLs: DOMPurify checks every other value against ALLOWED_URI
 * (and would drop align="center", start="3" or display="block"). */
const PLAIN_VALUE_ATTR = ['align', 'start', 'colspan', 'rowspan', ...MATHML_ATTRIBUTES];

const PURIFY_CONFIG = {
  ALLOWED_TAGS: [...ALLOWED_TAGS, ...MATHML_TAGS],
  ALLOWED_ATTR: [...ALLOWED_ATTR, ...MATHML_ATTRIBUTES],
  ADD_URI_SAFE_ATTR: PLAIN_VALUE_ATTR,
  ALLOWED_URI_REGEXP: ALLOWED_URI,
  ALLOW_DATA_ATTR: false,
  ALLOW_ARIA_ATTR: false,
};

const purify = DOMPurify(window);
purify.addHook('uponSanitizeAttribute', (_node, data) => {
  if (data.attrName === 'class') {
    data.attrValue = data.attrValue
      .split(/\s+/)
      .filter((name) => ALLOWED_CLASS.test(name))
      .join(' ');
    if (data.attrValue === '') data.keepAttr = false;
  }
});
purify.addHook('afterSanitizeAttributes', (node) => {
  if (node.nodeName === 'A' && node.hasAttribute('href')) {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer nofollow');
  }
});

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

/** Set while rendering the live block of a streaming answer: code is shown without colours. */
let plainCode = false;

function highlight(code: string, lang: string | undefined): { html: string; language: string | undefined } {
  const name = lang?.trim().split(/\s+/)[0]?.toLowerCase();
  if (name && !plainCode && hljs.getLanguage(name)) {
    return { html: hljs.highlight(code, { language: name, ignoreIllegals: true }).value, language: name };
  }
  return { html: escapeHtml(code), language: undefined };
}

const marked = new Marked(mathExtension(), {
  gfm: true,
  async: false,
  renderer: {
    code({ text, lang }: Tokens.Code): string {
      const { html, language } = highlight(text, lang);
      const languageClass = language ? ` language-${language}` : '';
      return `<pre><code class="hljs${languageClass}">${html}</code></pre>\n`;
    },
    image({ href, text }: Tokens.Image): string {
      // A plain link: an <img> would fetch a URL of the model's choosing (a way to leak the chat).
      return `<a href="${escapeHtml(href)}">${escapeHtml(text || href)}</a>`;
    },
    html({ text }: Tokens.HTML | Tokens.Tag): string {
      return escapeHtml(text);
    },
    checkbox({ checked }: Tokens.Checkbox): string {
      return checked ? '☑ ' : '☐ ';
    },
  },
});

export interface CodeCopyLabels {
  copy: string;
  copied: string;
}

/**
 * Model-output Markdown as a sanitized DocumentFragment with a copy button on every code block.
 * The buttons are created after sanitizing, so model output can never make one.
 */
export function renderMarkdown(text: string, labels: CodeCopyLabels, options: { highlight?: boolean } = {}): DocumentFragment {
  let fragment: DocumentFragment;
  plainCode = options.highlight === false;
  try {
    const html = marked.parse(text) as string;
    fragment = purify.sanitize(html, { ...PURIFY_CONFIG, RETURN_DOM_FRAGMENT: true });
  } catch {
    return plainText(text);
  } finally {
    plainCode = false;
  }
  for (const pre of fragment.querySelectorAll('pre')) {
    const code = pre.querySelector('code');
    if (!code) continue;
    const wrapper = document.createElement('div');
    wrapper.className = 'code-block';
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'copy-code';
    button.textContent = labels.copy;
    button.addEventListener('click', () => {
      void copyText(code.textContent ?? '').then((ok) => {
        if (!ok) return;
        button.textContent = labels.copied;
        setTimeout(() => (button.textContent = labels.copy), 1500);
      });
    });
    pre.replaceWith(wrapper);
    wrapper.append(button, pre);
  }
  return fragment;
}

/** The text as it is, in a block that keeps its lines: the fallback when Markdown fails. */
function plainText(text: string): DocumentFragment {
  const fragment = document.createDocumentFragment();
  const block = document.createElement('div');
  block.className = 'plain-text';
  block.textContent = text;
  fragment.append(block);
  return fragment;
}

/**
 * The longest start of `text` (lexed as `tokens`) made of blocks nothing that follows can change:
 * blocks before a blank line whose next block has a whole first line, except a list followed by
 * something that may continue it (another item, an indented line). '' when there is none. (A
 * paragraph can still become a setext heading or a table, and a list grow, until a blank line
 * ends it; reference definitions further on are left to the final render.)
 */
function finishedPart(tokens: readonly { type: string; raw: string }[], text: string): string {
  if (tokens.map((t) => t.raw).join('') !== text) return ''; // not read as the whole text reads: wait
  let length = 0;
  let finished = 0;
  for (let i = 0; i < tokens.length - 1; i++) {
    length += tokens[i].raw.length;
    if (tokens[i].type !== 'space' || i === 0) continue;
    const next = tokens[i + 1];
    if (!text.slice(length).includes('\n')) break; // the next block's first line is still being written
    if (tokens[i - 1].type === 'list' && (next.type === 'list' || /^[ \t]/.test(next.raw))) continue;
    finished = length;
  }
  return text.slice(0, finished);
}

/**
 * Markdown shown in `container` while it grows: update(text) renders each finished block once
 * and re-renders only the block still being written. finish(text) renders the whole text the
 * ordinary way (highlighted; reference links resolved across blocks).
 */
export class StreamingMarkdown {
  /** The text of the finished blocks, whose nodes are in `container` before `live`. */
  private finishedText = '';
  private live: Node[] = [];

  constructor(
    private readonly container: HTMLElement,
    private readonly labels: CodeCopyLabels,
  ) {}

  update(text: string): void {
    if (!text.startsWith(this.finishedText)) this.reset();
    const tail = text.slice(this.finishedText.length);
    let tokens: { type: string; raw: string }[];
    try {
      tokens = marked.lexer(tail);
    } catch {
      this.reset();
      this.showLive(plainText(text));
      return;
    }
    const finished = finishedPart(tokens, tail);
    if (finished) {
      this.removeLive();
      this.container.append(renderMarkdown(finished, this.labels));
      this.finishedText += finished;
    }
    this.showLive(renderMarkdown(text.slice(this.finishedText.length), this.labels, { highlight: false }));
  }

  finish(text: string): void {
    this.reset();
    this.container.append(renderMarkdown(text, this.labels));
  }

  private reset(): void {
    this.container.replaceChildren();
    this.finishedText = '';
    this.live = [];
  }

  private removeLive(): void {
    for (const node of this.live) node.parentNode?.removeChild(node);
    this.live = [];
  }

  private showLive(fragment: DocumentFragment): void {
    this.removeLive();
    this.live = [...fragment.childNodes];
    this.container.append(fragment);
  }
}

/**
 * The section headings of an outline: its '## ' headings (or '### ' when it has none), as plain
 * text, in order. Read from the Markdown tokens, so '#' lines inside code are not headings.
 */
export function sectionHeadings(text: string): string[] {
  let tokens: { type: string; depth?: number; text?: string }[];
  try {
    tokens = marked.lexer(text) as { type: string; depth?: number; text?: string }[];
  } catch {
    return [];
  }
  const headings = tokens.filter((token) => token.type === 'heading');
  for (const depth of [2, 3]) {
    const found = headings.filter((h) => h.depth === depth).map((h) => (h.text ?? '').replace(/[*_`~]/g, '').trim()).filter(Boolean);
    if (found.length > 0) return found;
  }
  return [];
}

/** Copies text to the clipboard; false when the browser refuses (no permission, no focus). */
export async function copyText(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}
