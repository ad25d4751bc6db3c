// What of JSON Schema structured output can promise. The grammar engine (XGrammar) turns a schema
// into a grammar but silently ignores keywords it cannot express, and misplaces one bound:
// measured on @mlc-ai/web-xgrammar 0.1.27, `not`, `if`, `uniqueItems`, `multipleOf` and `format`
// constrain nothing, an allOf of two objects comes out as any string, and `{ type: 'number',
// maximum: 1 }` allows 1.5. An answer "held to a schema" must validate against it, so before
// compiling, a schema is checked keyword by keyword: what the grammar enforces passes, a few
// things are rewritten into what it enforces (allOf of objects merged, common formats as
// patterns), and anything else is refused with 'unsupported' naming where it is.
import { EngineError } from './errors.ts';

type Schema = Record<string, unknown>;

/** Keywords that change nothing about which documents are valid. */
const ANNOTATIONS = new Set(['title', 'description', 'default', 'examples', '$schema', '$id', '$comment', 'deprecated', 'readOnly', 'writeOnly']);

/** Keywords the grammar enforces, per the kind of value they constrain. */
const ENFORCED = new Set([
  'type', 'enum', 'const', 'anyOf', 'oneOf', '$ref', '$defs', 'definitions',
  'properties', 'required', 'additionalProperties', 'patternProperties', 'minProperties', 'maxProperties',
  'items', 'prefixItems', 'minItems', 'maxItems',
  'minLength', 'maxLength', 'pattern',
  'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum',
]);

/** `format`s rewritten as the pattern they mean (where the schema sets no pattern of its own). */
const FORMAT_PATTERNS: Record<string, string> = {
  date: '^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$',
  time: '^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?$',
  'date-time': '^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$',
  uuid: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$',
  email: '^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(\\.[A-Za-z0-9-]{1,63}){1,4}$',
  ipv4: '^((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])$',
};

const isObject = (v: unknown): v is Schema => typeof v === 'object' && v !== null && !Array.isArray(v);
const unsupported = (path: string, what: string) =>
  new EngineError('unsupported', `${path}: ${what}, which structured output cannot enforce`);

/**
 * The schema the grammar is compiled from: `schema` checked, with the rewrites above. `path`
 * names it in errors (the request field it came from).
 */
export function prepareSchema(schema: unknown, path = 'response_format.json_schema.schema'): unknown {
  if (typeof schema === 'boolean') return schema;
  if (!isObject(schema)) throw new EngineError('bad-request', `${path} must be a schema object`);
  let out: Schema = {};
  for (const [key, value] of Object.entries(schema)) {
    if (ANNOTATIONS.has(key)) continue;
    if (key === 'allOf') continue; // merged below
    if (key === 'format') continue; // rewritten below
    if (!ENFORCED.has(key)) throw unsupported(path, `'${key}'`);
    out[key] = value;
  }
  if (typeof schema.format === 'string') {
    const pattern = FORMAT_PATTERNS[schema.format];
    if (!pattern) throw unsupported(path, `format '${schema.format}'`);
    if (out.pattern === undefined) out.pattern = pattern;
  }
  if (schema.allOf !== undefined) out = mergeAllOf(out, schema.allOf, path);
  checkNumberBounds(out, path);

  for (const key of ['properties', 'patternProperties', '$defs', 'definitions'] as const) {
    if (isObject(out[key])) {
      out[key] = Object.fromEntries(Object.entries(out[key]).map(([name, sub]) => [name, prepareSchema(sub, `${path}.${key}.${name}`)]));
    }
  }
  for (const key of ['anyOf', 'oneOf', 'prefixItems'] as const) {
    if (Array.isArray(out[key])) out[key] = out[key].map((sub, i) => prepareSchema(sub, `${path}.${key}[${i}]`));
  }
  for (const key of ['items', 'additionalProperties'] as const) {
    if (out[key] !== undefined && typeof out[key] !== 'boolean') out[key] = prepareSchema(out[key], `${path}.${key}`);
  }
  return out;
}

/** allOf of object schemas as one object schema: properties and required joined. */
function mergeAllOf(base: Schema, allOf: unknown, path: string): Schema {
  if (!Array.isArray(allOf) || allOf.length === 0) throw new EngineError('bad-request', `${path}.allOf must be a non-empty array`);
  const merged: Schema = { ...base, type: 'object' };
  const properties: Schema = { ...(isObject(base.properties) ? base.properties : {}) };
  const required = new Set<string>(Array.isArray(base.required) ? base.required.map(String) : []);
  if (base.type !== undefined && base.type !== 'object') throw unsupported(path, "'allOf' with a type other than object");
  allOf.forEach((part, i) => {
    const where = `${path}.allOf[${i}]`;
    if (!isObject(part)) throw unsupported(where, 'an allOf part that is not an object schema');
    for (const key of Object.keys(part)) {
      if (!ANNOTATIONS.has(key) && !['type', 'properties', 'required', 'additionalProperties'].includes(key)) {
        throw unsupported(where, `'${key}' inside allOf (only object parts with properties and required are merged)`);
      }
    }
    if (part.type !== undefined && part.type !== 'object') throw unsupported(where, 'an allOf part that is not an object');
    if (isObject(part.properties)) {
      for (const [name, sub] of Object.entries(part.properties)) {
        if (name in properties) throw unsupported(`${where}.properties.${name}`, 'a property that two allOf parts both define');
        properties[name] = sub;
      }
    }
    if (Array.isArray(part.required)) for (const name of part.required) required.add(String(name));
    if (part.additionalProperties === false) merged.additionalProperties = false;
  });
  merged.properties = properties;
  if (required.size > 0) merged.required = [...required];
  return merged;
}

/** Bounds on a number that may have a fraction: the grammar lets 1.5 past maximum 1. */
function checkNumberBounds(schema: Schema, path: string): void {
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  if (!types.includes('number')) return;
  for (const key of ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum']) {
    if (schema[key] !== undefined) throw unsupported(path, `'${key}' on a number with a fraction (an integer range, or an enum of values, can be held)`);
  }
}
