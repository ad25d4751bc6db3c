// Shared styles. Colours are CSS custom properties set on <qwen-chat> (dark by default, light with
// theme="light"); they inherit through every shadow root below it, and a page can override any
// of them on the element itself (`qwen-chat { --qwen-accent: teal }`), since page rules beat :host.
import { css } from 'lit';

export const themeStyles = css`
  :host {
    --qwen-bg: #15171c;
    --qwen-surface: #1d2027;
    --qwen-surface-2: #262a33;
    --qwen-border: #343a46;
    --qwen-text: #e6e8ee;
    --qwen-muted: #9aa3b2;
    --qwen-accent: #7aa2ff;
    --qwen-accent-text: #0d1020;
    --qwen-danger: #ff7b7b;
    --qwen-user-bg: #2a3350;
    --qwen-code-bg: #0f1115;
    --qwen-focus: #a9c1ff;
    --qwen-hl-keyword: #c792ea;
    --qwen-hl-string: #c3e88d;
    --qwen-hl-number: #f78c6c;
    --qwen-hl-comment: #6c7a89;
    --qwen-hl-title: #82aaff;
    --qwen-hl-type: #ffcb6b;
    --qwen-font: system-ui, -apple-system, 'Segoe UI', 'PingFang SC', 'Microsoft YaHei', sans-serif;
    --qwen-mono: ui-monospace, 'SFMono-Regular', Menlo, Consolas, monospace;
    --qwen-radius: 10px;
    color-scheme: dark;
  }
  :host([theme='light']) {
    --qwen-bg: #f7f8fa;
    --qwen-surface: #ffffff;
    --qwen-surface-2: #eef0f4;
    --qwen-border: #d5d9e0;
    --qwen-text: #1b1f27;
    --qwen-muted: #5b6472;
    --qwen-accent: #2f5bd3;
    --qwen-accent-text: #ffffff;
    --qwen-danger: #c62828;
    --qwen-user-bg: #e3eaff;
    --qwen-code-bg: #f3f4f7;
    --qwen-focus: #2f5bd3;
    --qwen-hl-keyword: #8e24aa;
    --qwen-hl-string: #2e7d32;
    --qwen-hl-number: #d84315;
    --qwen-hl-comment: #78828f;
    --qwen-hl-title: #1e55c8;
    --qwen-hl-type: #a0620a;
    color-scheme: light;
  }
`;

/** Buttons, inputs and helpers every part uses. */
export const baseStyles = css`
  :host {
    font-family: var(--qwen-font);
    color: var(--qwen-text);
  }
  * {
    box-sizing: border-box;
  }
  button {
    font: inherit;
    font-size: 0.875rem;
    color: var(--qwen-text);
    background: var(--qwen-surface-2);
    border: 1px solid var(--qwen-border);
    border-radius: 6px;
    padding: 0.3rem 0.7rem;
    cursor: pointer;
  }
  button:hover:not(:disabled) {
    border-color: var(--qwen-accent);
  }
  button:disabled {
    opacity: 0.5;
    cursor: default;
  }
  button.primary {
    background: var(--qwen-accent);
    color: var(--qwen-accent-text);
    border-color: var(--qwen-accent);
  }
  button.danger {
    color: var(--qwen-danger);
  }
  button.link {
    background: none;
    border: none;
    padding: 0.15rem 0.35rem;
    color: var(--qwen-muted);
  }
  button.link:hover:not(:disabled) {
    color: var(--qwen-text);
  }
  input,
  textarea,
  select {
    font: inherit;
    color: var(--qwen-text);
    background: var(--qwen-bg);
    border: 1px solid var(--qwen-border);
    border-radius: 6px;
    padding: 0.35rem 0.5rem;
  }
  :focus-visible {
    outline: 2px solid var(--qwen-focus);
    outline-offset: 2px;
  }
  .muted {
    color: var(--qwen-muted);
  }
  .sr-only {
    position: absolute;
    width: 1px;
    height: 1px;
    padding: 0;
    margin: -1px;
    overflow: hidden;
    clip: rect(0 0 0 0);
    white-space: nowrap;
    border: 0;
  }
`;

/** Rendered Markdown and highlight.js classes (our own colours, no stock theme). */
export const markdownStyles = css`
  .markdown .plain-text {
    white-space: pre-wrap;
    overflow-wrap: anywhere;
  }
  .markdown {
    line-height: 1.55;
    overflow-wrap: anywhere;
  }
  .markdown > :first-child {
    margin-top: 0;
  }
  .markdown > :last-child {
    margin-bottom: 0;
  }
  .markdown a {
    color: var(--qwen-accent);
  }
  .markdown table {
    border-collapse: collapse;
  }
  .markdown th,
  .markdown td {
    border: 1px solid var(--qwen-border);
    padding: 0.25rem 0.5rem;
  }
  .markdown blockquote {
    margin: 0.5rem 0;
    padding-left: 0.8rem;
    border-left: 3px solid var(--qwen-border);
    color: var(--qwen-muted);
  }
  .markdown code {
    font-family: var(--qwen-mono);
    font-size: 0.875em;
    background: var(--qwen-code-bg);
    border-radius: 4px;
    padding: 0.1em 0.3em;
  }
  /* Math (MathML from KaTeX, drawn by the browser): display formulas centred, scrolling
     sideways when wider than the answer; a formula that did not parse shows as code. */
  .markdown math {
    font-size: 1.1em;
  }
  .markdown .math-display {
    display: block;
    margin: 0.6rem 0;
    overflow-x: auto;
    overflow-y: hidden;
  }
  .code-block {
    position: relative;
    margin: 0.6rem 0;
  }
  .code-block pre {
    margin: 0;
    background: var(--qwen-code-bg);
    border: 1px solid var(--qwen-border);
    border-radius: 8px;
    padding: 0.75rem;
    overflow-x: auto;
  }
  .code-block pre code {
    background: none;
    padding: 0;
  }
  .copy-code {
    position: absolute;
    top: 0.35rem;
    right: 0.35rem;
    font-size: 0.75rem;
    padding: 0.1rem 0.45rem;
    opacity: 0.85;
  }
  .hljs-keyword,
  .hljs-selector-tag,
  .hljs-built_in,
  .hljs-literal {
    color: var(--qwen-hl-keyword);
  }
  .hljs-string,
  .hljs-regexp,
  .hljs-attr,
  .hljs-symbol {
    color: var(--qwen-hl-string);
  }
  .hljs-number {
    color: var(--qwen-hl-number);
  }
  .hljs-comment,
  .hljs-quote,
  .hljs-meta {
    color: var(--qwen-hl-comment);
    font-style: italic;
  }
  .hljs-title,
  .hljs-section,
  .hljs-name {
    color: var(--qwen-hl-title);
  }
  .hljs-type,
  .hljs-params,
  .hljs-variable {
    color: var(--qwen-hl-type);
  }
`;
