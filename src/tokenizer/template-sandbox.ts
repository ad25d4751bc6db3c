// Chat templates come inside downloaded or dropped GGUF files: they are untrusted programs. This
// renders them with @huggingface/jinja's interpreter under a budget, so a hostile template ends in
// a typed error instead of a hang or an out-of-memory crash of the worker:
// - fuel: every evaluation step costs one unit (and every container element measured), so loops
//   of any shape stop; a wall-clock deadline backs it up for single slow operations;
// - size: every value a step produces is measured as the text it would serialize to (cached per
//   immutable container, so lists sharing one another cannot grow exponentially unseen) and must
//   stay under a cap set from the size of the conversation;
// - amplifiers, the operations whose output can dwarf their inputs (range, replace, indent, join,
//   tojson with indent or separators), are sized from their arguments before they run;
// - nesting depth, so recursive macros stop before the stack does.
// The budget grows with the input, so templates doing honest work on long conversations pass.
import { Environment, Interpreter, type Template } from '@huggingface/jinja';

type Program = Template['parsed'];
type Statement = Program['body'][number];

/** The parts of @huggingface/jinja's runtime values this file reads (they are not exported as types). */
interface JinjaValue {
  type: string;
  value: unknown;
}

interface Node {
  type: string;
}
interface IdentifierNode extends Node {
  value: string;
}
interface CallNode extends Node {
  callee: Node;
  args: Node[];
}
interface MemberNode extends Node {
  object: Node;
  property: Node;
  computed: boolean;
}

/** Interpreter methods that are private in the library's types; overridden below. */
interface InterpreterInternals {
  evaluate(statement: Statement | undefined, environment: Environment): JinjaValue;
  applyFilter(operand: JinjaValue, filter: Node, environment: Environment): JinjaValue;
  evaluateCallExpression(expr: CallNode, environment: Environment): JinjaValue;
  evaluateArguments(args: Node[], environment: Environment): [JinjaValue[], Map<string, JinjaValue>];
  evaluateBlock(statements: Statement[], environment: Environment): JinjaValue;
}
const InternalsInterpreter = Interpreter as unknown as new (env: Environment) => InterpreterInternals;

export interface RenderLimits {
  /** Evaluation steps (and container elements measured). */
  fuel: number;
  /** Serialized size of any one value, the output included (UTF-16 units). */
  maxChars: number;
  /** Characters of all strings produced, summed over the render. */
  maxChurn: number;
  /** Elements `range()` may produce. */
  maxRange: number;
  /** Nesting of evaluation (recursive macros). */
  maxDepth: number;
  /** Milliseconds of wall-clock time. */
  maxMillis: number;
}

/** Thrown when a render exceeds its budget. */
export class TemplateBudgetError extends Error {
  override readonly name = 'TemplateBudgetError';
}

/** Thrown by the template's own raise_exception(). */
export class TemplateRaisedError extends Error {
  override readonly name = 'TemplateRaisedError';
}

/** What a value would serialize to: characters, container elements, nesting. */
interface Measure {
  chars: number;
  nodes: number;
  depth: number;
  /** Holds a namespace (the one mutable container), so it cannot be cached. */
  mutable: boolean;
}

/** Fuel spent between looks at the clock. */
const CLOCK_CHECK_UNITS = 4096;

const SCALAR: Measure = { chars: 24, nodes: 1, depth: 0, mutable: false };

/** Limits for a context whose strings total `inputChars` and that holds `items` messages and tools. */
export function limitsFor(inputChars: number, items: number): RenderLimits {
  return {
    // Qwen3's template spends about 170 units a message; loops die within a second or so.
    fuel: 1_000_000 + 1_000 * items,
    maxChars: 2 * inputChars + (1 << 20),
    maxChurn: 64 * inputChars + (64 << 20),
    maxRange: 1 << 20,
    maxDepth: 512,
    maxMillis: 5_000,
  };
}

/** Total length of the strings (keys included) in a plain JS value: the size of a render's input. */
export function inputChars(value: unknown, depth = 0): number {
  if (typeof value === 'string') return value.length;
  if (value === null || typeof value !== 'object' || depth > 64) return 0;
  let sum = 0;
  if (Array.isArray(value)) for (const item of value) sum += inputChars(item, depth + 1);
  else for (const [key, item] of Object.entries(value)) sum += key.length + inputChars(item, depth + 1);
  return sum;
}

class BoundedInterpreter extends InternalsInterpreter {
  private fuel: number;
  private nextClockCheck: number;
  private churn = 0;
  private depth = 0;
  private readonly deadline: number;
  private readonly measured = new WeakMap<object, Measure>();

  constructor(environment: Environment, private readonly limits: RenderLimits) {
    super(environment);
    this.fuel = limits.fuel;
    this.nextClockCheck = limits.fuel - CLOCK_CHECK_UNITS;
    this.deadline = performance.now() + limits.maxMillis;
  }

  override evaluate(statement: Statement | undefined, environment: Environment): JinjaValue {
    this.spend(1);
    if (++this.depth > this.limits.maxDepth) {
      throw new TemplateBudgetError(`the chat template nests deeper than ${this.limits.maxDepth} levels`);
    }
    try {
      const value = super.evaluate(statement, environment);
      this.check(value);
      return value;
    } finally {
      this.depth--;
    }
  }

  /**
   * A block runs once per loop iteration, even an empty one. The library's loop iteration (new
   * scopes, a loop object) costs about as much as 16 plain steps, so it is charged so.
   */
  override evaluateBlock(statements: Statement[], environment: Environment): JinjaValue {
    this.spend(16);
    return super.evaluateBlock(statements, environment);
  }

  override applyFilter(operand: JinjaValue, filter: Node, environment: Environment): JinjaValue {
    if (filter.type === 'CallExpression') {
      const call = filter as CallNode;
      const name = call.callee.type === 'Identifier' ? (call.callee as IdentifierNode).value : '';
      if (AMPLIFYING_FILTERS.has(name)) this.checkAmplifier(name, operand, ...this.evaluateArguments(call.args, environment));
    } else if ((filter as IdentifierNode).value === 'tojson' || (filter as IdentifierNode).value === 'string') {
      this.checkAmplifier('tojson', operand, [], new Map());
    }
    return super.applyFilter(operand, filter, environment);
  }

  override evaluateCallExpression(expr: CallNode, environment: Environment): JinjaValue {
    // `text.replace(old, new)`: the one string method whose output can dwarf its input.
    const callee = expr.callee as MemberNode;
    if (callee.type === 'MemberExpression' && !callee.computed && (callee.property as IdentifierNode).value === 'replace') {
      const object = this.evaluate(callee.object as Statement, environment);
      if (object.type === 'StringValue') this.checkAmplifier('replace', object, ...this.evaluateArguments(expr.args, environment));
    }
    return super.evaluateCallExpression(expr, environment);
  }

  private spend(units: number): void {
    this.fuel -= units;
    if (this.fuel < 0) {
      throw new TemplateBudgetError(`the chat template takes more than ${this.limits.fuel} steps for this conversation`);
    }
    if (this.fuel < this.nextClockCheck) {
      this.nextClockCheck = this.fuel - CLOCK_CHECK_UNITS;
      if (performance.now() > this.deadline) throw new TemplateBudgetError(`the chat template ran for more than ${this.limits.maxMillis} ms`);
    }
  }

  private tooLarge(what: string, chars: number): TemplateBudgetError {
    return new TemplateBudgetError(`the chat template builds ${what} of ${chars} characters, more than the ${this.limits.maxChars} allowed for this conversation`);
  }

  /** Every value a step produces: its serialized size under the cap, strings counted towards churn. */
  private check(value: JinjaValue): void {
    if (value.type === 'StringValue') {
      const length = (value.value as string).length;
      if (length > this.limits.maxChars) throw this.tooLarge('a string', length);
      this.churn += length;
      if (this.churn > this.limits.maxChurn) {
        throw new TemplateBudgetError(`the chat template produces more than ${this.limits.maxChurn} characters of strings in all`);
      }
      return;
    }
    const { chars } = this.measure(value, 0);
    if (chars > this.limits.maxChars) throw this.tooLarge('a value', chars);
  }

  /** The serialized size of a value, stopping (with an error) once it passes the cap. */
  private measure(value: JinjaValue, level: number): Measure {
    switch (value.type) {
      case 'StringValue':
        return { chars: (value.value as string).length + 2, nodes: 1, depth: 0, mutable: false };
      case 'ArrayValue':
      case 'TupleValue':
      case 'ObjectValue':
      case 'KeywordArgumentsValue':
      case 'NamespaceValue':
        break;
      default:
        return SCALAR;
    }
    const cached = this.measured.get(value);
    if (cached) return cached;
    if (level > this.limits.maxDepth) throw new TemplateBudgetError(`the chat template nests values deeper than ${this.limits.maxDepth} levels`);
    const isMap = value.value instanceof Map;
    const entries: Iterable<[string, JinjaValue]> = isMap
      ? (value.value as Map<string, JinjaValue>).entries()
      : (value.value as JinjaValue[]).map((item) => ['', item] as [string, JinjaValue]);
    const total: Measure = { chars: 2, nodes: 1, depth: 0, mutable: value.type === 'NamespaceValue' };
    for (const [key, item] of entries) {
      this.spend(1);
      const m = this.measure(item, level + 1);
      total.chars += m.chars + key.length + (isMap ? 6 : 2);
      total.nodes += m.nodes;
      total.depth = Math.max(total.depth, m.depth + 1);
      total.mutable ||= m.mutable;
      if (total.chars > this.limits.maxChars) throw this.tooLarge('a value', total.chars);
    }
    if (!total.mutable) this.measured.set(value, total);
    return total;
  }

  /** Refuses, before it runs, an amplifying operation whose output would pass the cap. */
  private checkAmplifier(name: string, operand: JinjaValue, args: JinjaValue[], kwargs: Map<string, JinjaValue>): void {
    const arg = (index: number, key: string): JinjaValue | undefined => args[index] ?? kwargs.get(key);
    const text = (v: JinjaValue | undefined): string => (v?.type === 'StringValue' ? (v.value as string) : '');
    const count = (v: JinjaValue | undefined): number => (v?.type === 'IntegerValue' ? Math.max(0, v.value as number) : 0);
    let bound = 0;
    switch (name) {
      case 'replace': {
        if (operand.type !== 'StringValue') return;
        const source = operand.value as string;
        const old = text(arg(0, 'old'));
        const limit = arg(2, 'count')?.type === 'IntegerValue' && (arg(2, 'count')!.value as number) >= 0 ? (arg(2, 'count')!.value as number) : Infinity;
        const matches = Math.min(limit, occurrences(source, old));
        bound = source.length + matches * text(arg(1, 'new')).length;
        break;
      }
      case 'indent': {
        if (operand.type !== 'StringValue') return;
        const width = arg(0, 'width');
        const pad = width?.type === 'StringValue' ? (width.value as string).length : width === undefined ? 4 : count(width);
        bound = (operand.value as string).length + (occurrences(operand.value as string, '\n') + 1) * pad;
        break;
      }
      case 'join': {
        const m = this.measure(operand, 0);
        bound = m.chars + m.nodes * text(arg(0, 'separator')).length;
        break;
      }
      case 'tojson': {
        const m = this.measure(operand, 0);
        const separators = kwargs.get('separators');
        const separatorChars = separators && Array.isArray(separators.value)
          ? (separators.value as JinjaValue[]).reduce((sum, s) => sum + text(s).length, 0)
          : 4;
        bound = m.chars + m.nodes * (separatorChars + 1 + count(kwargs.get('indent')) * (m.depth + 1));
        break;
      }
    }
    if (bound > this.limits.maxChars) throw this.tooLarge(`the result of ${name}`, bound);
  }
}

const AMPLIFYING_FILTERS = new Set(['replace', 'indent', 'join', 'tojson']);

/** Non-overlapping occurrences of `part` in `text`; an empty `part` occurs between all characters. */
function occurrences(text: string, part: string): number {
  if (part.length === 0) return text.length + 1;
  let n = 0;
  for (let at = text.indexOf(part); at >= 0; at = text.indexOf(part, at + part.length)) n++;
  return n;
}

/** Python's range() with its length checked before anything is built. */
function boundedRange(limits: RenderLimits) {
  return (...args: unknown[]): number[] => {
    if (!args.every((a) => typeof a === 'number' && Number.isInteger(a))) throw new Error('range() takes integers');
    const [start, stop, step = 1] = (args.length === 1 ? [0, args[0], 1] : args) as number[];
    if (step === 0) throw new Error('range() step must not be zero');
    const length = Math.max(0, Math.ceil((stop - start) / step));
    if (length > limits.maxRange) throw new TemplateBudgetError(`range() of ${length} numbers is more than the ${limits.maxRange} a chat template may use`);
    return Array.from({ length }, (_, i) => start + i * step);
  };
}

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

/** strftime_now(format) for the directives chat templates use (dates in system prompts). */
function strftimeNow(format: unknown): string {
  const now = new Date();
  const pad = (n: number) => String(n).padStart(2, '0');
  const fields: Record<string, string> = {
    Y: String(now.getFullYear()), m: pad(now.getMonth() + 1), d: pad(now.getDate()),
    B: MONTHS[now.getMonth()], b: MONTHS[now.getMonth()].slice(0, 3), H: pad(now.getHours()), M: pad(now.getMinutes()), '%': '%',
  };
  return String(format).replace(/%([YmdBbHM%])/g, (_, field: string) => fields[field]);
}

/** Renders a parsed template with `context` under `limits`; throws TemplateBudgetError past them. */
export function renderBounded(program: Program, context: Record<string, unknown>, limits: RenderLimits): string {
  const environment = new Environment();
  const globals: Record<string, unknown> = {
    false: false, true: true, none: null, False: false, True: true, None: null,
    raise_exception: (message: unknown) => {
      throw new TemplateRaisedError(String(message));
    },
    range: boundedRange(limits),
    strftime_now: strftimeNow,
    ...context,
  };
  for (const [name, value] of Object.entries(globals)) environment.set(name, value);
  const result = new BoundedInterpreter(environment, limits).evaluate(program, environment);
  return result.value as string;
}
