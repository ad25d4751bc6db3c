// Structured output by constrained decoding: before each token the grammar of the requested
// format (a JSON object, or JSON matching a schema) gives a mask of the tokens that can continue a
// valid answer; the others cannot be sampled, so the answer always parses. The grammar engine is
// XGrammar (@mlc-ai/web-xgrammar, what web-llm uses): no eval, its wasm inside its own JS, and a
// mask a small fraction of a decode step (docs/perf-log.md, "structured output").
//
// Its package is a UMD bundle labelled as an ES module: imported as one it defines
// globalThis.xgrammar and exports nothing (a bundler may wrap it as CommonJS and give exports
// instead), and in Node its start-up reads the CommonJS globals `require` and `__filename`, which
// ES modules lack. Both are lent to it while it starts, then removed.
import type * as XGrammar from '@mlc-ai/web-xgrammar';
import { importCode, isCodeUnavailable } from '../lazy-code.ts';
import type { Tokenizer } from '../tokenizer/tokenizer.ts';
import { EngineError } from './errors.ts';
import { prepareSchema } from './json-schema.ts';
import type { ResponseFormat, ToolDefinition } from './types.ts';

type XGrammarModule = typeof XGrammar;

let loading: Promise<XGrammarModule> | undefined;

// Kept in a variable so bundlers leave it alone: browser bundles must never pull in node:module.
const NODE_MODULE = 'node:module';

async function loadXGrammar(): Promise<XGrammarModule> {
  loading ??= (async () => {
    const scope = globalThis as { xgrammar?: XGrammarModule; require?: unknown; __filename?: unknown; document?: unknown; location?: unknown };
    const lent: ('require' | '__filename')[] = [];
    if (typeof process !== 'undefined' && process.versions?.node && scope.document === undefined && scope.location === undefined) {
      const { createRequire } = (await import(/* @vite-ignore */ NODE_MODULE)) as typeof import('node:module');
      const require = createRequire(import.meta.url);
      if (scope.require === undefined) { scope.require = require; lent.push('require'); }
      if (scope.__filename === undefined) { scope.__filename = require.resolve('@mlc-ai/web-xgrammar'); lent.push('__filename'); }
    }
    try {
      // Run as an ES module (Node, a dev server) it sets globalThis.xgrammar; a bundler that
      // wraps it as CommonJS gives its exports instead (the default export, or named ones).
      const module = (await importCode('The grammar engine (XGrammar)', () => import('@mlc-ai/web-xgrammar'))) as Partial<XGrammarModule> & { default?: Partial<XGrammarModule> };
      const xgrammar = [module, module.default, scope.xgrammar].find((m) => m?.TokenizerInfo) as XGrammarModule | undefined;
      if (!xgrammar) throw new Error('@mlc-ai/web-xgrammar gave neither exports nor globalThis.xgrammar');
      // Its wasm starts on first use: while the lent globals are still there.
      (await xgrammar.TokenizerInfo.createTokenizerInfo(['a'], 'byte_level')).dispose();
      return xgrammar;
    } finally {
      for (const name of lent) delete scope[name];
    }
  })();
  try {
    return await loading;
  } catch (error) {
    loading = undefined;
    if (isCodeUnavailable(error)) throw new EngineError('unsupported', (error as Error).message, { cause: error, detail: 'code-unavailable' });
    throw new EngineError('internal', `the grammar engine (XGrammar) did not start: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

/** One answer's constraint, step by step: next(), then mask() the logits, then accept() the token chosen. */
export interface TokenConstraint {
  /** Works out the tokens allowed next; false when only an end-of-generation token is (the answer is complete). */
  next(): Promise<boolean>;
  /** Sets every token not allowed next to -Infinity. */
  mask(logits: Float32Array): void;
  /** Advances the grammar by the sampled token. */
  accept(token: number): void;
  dispose(): void;
}

/** Compiles formats against one model's vocabulary (kept for the model's lifetime). */
export class GrammarCompiler {
  private constructor(
    private readonly xgrammar: XGrammarModule,
    private readonly info: XGrammar.TokenizerInfo,
    private readonly compiler: XGrammar.GrammarCompiler,
    private readonly stopIds: ReadonlySet<number>,
  ) {}

  /** `vocabRows`: the model's output rows (at least the tokenizer's tokens; extra rows are never allowed). */
  static async create(tokenizer: Tokenizer, vocabRows: number): Promise<GrammarCompiler> {
    const xgrammar = await loadXGrammar();
    const tokens = Array.from({ length: tokenizer.vocabSize }, (_, id) => tokenizer.tokenText(id));
    const info = await xgrammar.TokenizerInfo.createTokenizerInfo(tokens, 'byte_level', false, vocabRows, [...tokenizer.eogIds]);
    const compiler = await xgrammar.GrammarCompiler.createGrammarCompiler(info, true);
    return new GrammarCompiler(xgrammar, info, compiler, tokenizer.eogIds);
  }

  /** A fresh constraint for one answer in `format`. Schema errors are bad requests naming the field. */
  async constraint(format: ResponseFormat): Promise<TokenConstraint> {
    // Pretty-printed JSON (2-space indent): whitespace is fixed, so a model cannot fill its answer
    // with blank lines, and the output reads well.
    return format.type === 'json_object'
      ? this.compile({ type: 'object' }, { indent: 2, strict: false }, 'response_format')
      : this.compile(format.json_schema.schema ?? {}, { indent: 2, strict: format.json_schema.strict ?? false }, 'response_format.json_schema.schema');
  }

  /**
   * The body of one call to one of `tools`, as Qwen3 writes it between <tool_call> tags: one line,
   * {"name": …, "arguments": {…}}, the arguments held to the function's parameters.
   */
  async toolCallConstraint(tools: readonly ToolDefinition[]): Promise<TokenConstraint> {
    const calls = tools.map((tool, i) => ({
      type: 'object',
      properties: { name: { const: tool.function.name }, arguments: prepareSchema(tool.function.parameters ?? { type: 'object' }, `tools[${i}].function.parameters`) },
      required: ['name', 'arguments'],
      additionalProperties: false,
    }));
    return this.compile(calls.length === 1 ? calls[0]! : { anyOf: calls }, { strict: true }, 'tools[].function.parameters');
  }

  private async compile(schema: unknown, layout: { indent?: number; strict: boolean }, where: string): Promise<TokenConstraint> {
    let compiled: XGrammar.CompiledGrammar;
    try {
      compiled = layout.indent === undefined
        ? await this.compiler.compileJSONSchema(JSON.stringify(schema), false, undefined, [', ', ': '], layout.strict)
        : await this.compiler.compileJSONSchema(JSON.stringify(schema), false, layout.indent, undefined, layout.strict);
    } catch (error) {
      throw new EngineError('bad-request', `${where}: the grammar engine cannot use this schema (${error instanceof Error ? error.message : String(error)})`, { cause: error });
    }
    const matcher = await this.xgrammar.GrammarMatcher.createGrammarMatcher(compiled);
    compiled.dispose();
    return new XGrammarConstraint(matcher, this.stopIds);
  }

  dispose(): void {
    this.compiler.dispose();
    this.info.dispose();
  }
}

class XGrammarConstraint implements TokenConstraint {
  private bitmask: Int32Array | undefined;

  constructor(
    private readonly matcher: XGrammar.GrammarMatcher,
    private readonly stopIds: ReadonlySet<number>,
  ) {}

  async next(): Promise<boolean> {
    const bitmask = await this.matcher.getNextTokenBitmask();
    this.bitmask = bitmask;
    let allowed = 0;
    let content = false;
    for (let word = 0; word < bitmask.length && !content; word++) {
      for (let bits = bitmask[word]!; bits !== 0; bits &= bits - 1) {
        allowed++;
        const id = word * 32 + (31 - Math.clz32(bits & -bits));
        if (!this.stopIds.has(id)) { content = true; break; }
      }
    }
    if (allowed === 0) throw new EngineError('internal', 'the grammar allows no next token');
    return content;
  }

  mask(logits: Float32Array): void {
    const bitmask = this.bitmask;
    if (!bitmask) throw new Error('mask() before next()');
    for (let word = 0; word < bitmask.length; word++) {
      const bits = bitmask[word]!;
      if (bits === -1) continue;
      const base = word * 32;
      for (let bit = 0; bit < 32 && base + bit < logits.length; bit++) {
        if (((bits >>> bit) & 1) === 0) logits[base + bit] = -Infinity;
      }
    }
    logits.fill(-Infinity, Math.min(bitmask.length * 32, logits.length));
  }

  accept(token: number): void {
    this.bitmask = undefined;
    if (!this.matcher.acceptToken(token)) throw new EngineError('internal', `the grammar rejected token ${token} it had allowed`);
  }

  dispose(): void {
    this.matcher.dispose();
  }
}
