// Math in model output: TeX between $…$, $$…$$, \(…\) or \[…\], rendered by KaTeX as MathML.
//
// MathML rather than KaTeX's HTML output: the HTML output places every glyph with inline style
// attributes, which the app's Content-Security-Policy (style-src 'self') refuses, and it needs
// KaTeX's CSS and 60 font files. MathML is drawn by the browser itself (Chromium, Firefox and
// Safari all do MathML Core), offline, with no styles or fonts of ours, and screen readers read
// it. The markup still goes through the page's sanitizer (markdown.ts allows the MathML
// elements KaTeX emits and nothing else).
//
// KaTeX runs with trust: false (no \href, \url, \includegraphics, \htmlClass…), bounded macro
// expansion (a self-expanding \def stops) and bounded sizes. A formula it cannot parse is shown
// as its source, delimiters and all, so nothing the model wrote is lost.
//
// The delimiters follow Pandoc's rules for $: an opening $ is not followed by a space, a closing
// $ not preceded by one nor followed by a digit, so "it costs $5 or $10" stays text. A formula
// still being written has no closing delimiter yet and shows as text until it has one.
import katex from 'katex';
import type { MarkedExtension, Tokens } from 'marked';

interface MathToken extends Tokens.Generic {
  type: 'math';
  raw: string;
  tex: string;
  display: boolean;
}

const KATEX_OPTIONS = {
  output: 'mathml',
  throwOnError: true,
  trust: false,
  strict: 'ignore',
  maxExpand: 500,
  maxSize: 20,
} as const;

/** Inline forms, tried in this order at a position where one may start. */
const INLINE_RULES: { pattern: RegExp; display: boolean }[] = [
  { pattern: /^\$\$(?!\$)((?:\\[\s\S]|[^\\$])+?)\$\$/, display: true },
  { pattern: /^\$(?![\s$])((?:\\[\s\S]|[^\\$\n])+?)(?<!\s)\$(?!\d)/, display: false },
  { pattern: /^\\\(((?:\\[\s\S]|[^\\])+?)\\\)/, display: false },
  { pattern: /^\\\[((?:\\[\s\S]|[^\\])+?)\\\]/, display: true },
];

/** A display formula alone in its block: $$ … $$ or \[ … \] starting a line. */
const BLOCK_RULES: RegExp[] = [
  /^ {0,3}\$\$((?:\\[\s\S]|[^\\$])+?)\$\$[ \t]*(?:\n+|$)/,
  /^ {0,3}\\\[((?:\\[\s\S]|[^\\])+?)\\\][ \t]*(?:\n+|$)/,
];

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

/** A formula as sanitizable MathML markup; its source in a code span when KaTeX cannot parse it. */
export function renderTex(tex: string, display: boolean, raw: string): string {
  try {
    const math = katex.renderToString(tex, { ...KATEX_OPTIONS, displayMode: display });
    // A span (it may sit inside a paragraph) shown as a block that scrolls when too wide.
    return display ? `<span class="math-display">${math}</span>` : math;
  } catch {
    return `<code class="math-source">${escapeHtml(raw)}</code>`;
  }
}

function mathToken(raw: string, tex: string, display: boolean): MathToken {
  return { type: 'math', raw, tex: tex.trim(), display };
}

/** The marked extension: block display math and the four inline forms. */
export function mathExtension(): MarkedExtension {
  return {
    extensions: [
      {
        name: 'math',
        level: 'block',
        start(src: string) {
          const match = /(^|\n) {0,3}(?:\$\$|\\\[)/.exec(src);
          return match ? match.index + match[1]!.length : undefined;
        },
        tokenizer(src: string): MathToken | undefined {
          for (const pattern of BLOCK_RULES) {
            const match = pattern.exec(src);
            if (match) return mathToken(match[0], match[1]!, true);
          }
          return undefined;
        },
        renderer: (token) => renderTex((token as MathToken).tex, true, (token as MathToken).raw.trim()) + '\n',
      },
      {
        name: 'math',
        level: 'inline',
        start: (src: string) => src.match(/\$|\\[([]/)?.index,
        tokenizer(src: string): MathToken | undefined {
          for (const { pattern, display } of INLINE_RULES) {
            const match = pattern.exec(src);
            if (match) return mathToken(match[0], match[1]!, display);
          }
          return undefined;
        },
        renderer: (token) => renderTex((token as MathToken).tex, (token as MathToken).display, (token as MathToken).raw),
      },
    ],
  };
}

/** The MathML elements KaTeX's MathML output uses (not annotation-xml: it can carry HTML). */
export const MATHML_TAGS = [
  'math', 'semantics', 'annotation', 'mrow', 'mi', 'mo', 'mn', 'ms', 'mtext', 'mspace', 'msup', 'msub',
  'msubsup', 'mover', 'munder', 'munderover', 'mfrac', 'msqrt', 'mroot', 'mtable', 'mtr', 'mtd',
  'mlabeledtr', 'mstyle', 'mpadded', 'mphantom', 'menclose',
];

/** Their presentation attributes. */
export const MATHML_ATTRIBUTES = [
  'xmlns', 'display', 'mathvariant', 'stretchy', 'fence', 'separator', 'lspace', 'rspace', 'accent',
  'accentunder', 'columnalign', 'rowalign', 'rowspacing', 'columnspacing', 'columnlines', 'rowlines',
  'width', 'height', 'depth', 'voffset', 'linethickness', 'encoding', 'scriptlevel', 'displaystyle',
  'minsize', 'maxsize', 'movablelimits', 'symmetric', 'notation', 'largeop', 'mathcolor',
  'mathbackground', 'frame', 'framespacing', 'side', 'equalrows', 'equalcolumns',
];
