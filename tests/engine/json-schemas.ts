// JSON Schemas for structured-output tests: the shapes people ask a writing and coding assistant
// for (nested objects, arrays with item counts, enums, required fields, numbers with ranges,
// strings with lengths and patterns, unions, constants, nullables). Strings and arrays are bounded
// so that a model with random weights, which never chooses to close a string, still ends its
// answer within a test's token budget; the grammar is what is under test, not the model's taste.

import type { ChatCompletionRequest } from '../../src/engine/types.ts';

const str = (maxLength = 12, minLength = 0) => ({ type: 'string', minLength, maxLength });

export const JSON_SCHEMAS: Record<string, Record<string, unknown>> = {
  person: { type: 'object', properties: { name: str(), age: { type: 'integer', minimum: 0, maximum: 120 } }, required: ['name', 'age'], additionalProperties: false },
  colours: { type: 'array', items: { enum: ['red', 'green', 'blue'] }, minItems: 2, maxItems: 4 },
  flag: { type: 'boolean' },
  nothing: { type: 'null' },
  integerRange: { type: 'integer', minimum: -5, maximum: 5 },
  number: { type: 'number' },
  shortString: str(8, 1),
  enumString: { enum: ['draft', 'review', 'published'] },
  constant: { const: 'qwen-web' },
  nested: {
    type: 'object',
    properties: {
      author: { type: 'object', properties: { first: str(), last: str() }, required: ['first', 'last'], additionalProperties: false },
      year: { type: 'integer', minimum: 1900, maximum: 2100 },
    },
    required: ['author', 'year'],
    additionalProperties: false,
  },
  tags: { type: 'object', properties: { tags: { type: 'array', items: str(6), minItems: 1, maxItems: 3 } }, required: ['tags'], additionalProperties: false },
  outline: {
    type: 'object',
    properties: {
      title: str(16),
      sections: {
        type: 'array', minItems: 1, maxItems: 3,
        items: { type: 'object', properties: { heading: str(10), points: { type: 'array', items: str(8), maxItems: 2 } }, required: ['heading', 'points'], additionalProperties: false },
      },
    },
    required: ['title', 'sections'],
    additionalProperties: false,
  },
  union: { anyOf: [{ type: 'integer', minimum: 0, maximum: 9 }, str(5)] },
  oneOfObjects: {
    oneOf: [
      { type: 'object', properties: { kind: { const: 'circle' }, r: { type: 'integer', minimum: 1, maximum: 9 } }, required: ['kind', 'r'], additionalProperties: false },
      { type: 'object', properties: { kind: { const: 'square' }, side: { type: 'integer', minimum: 1, maximum: 9 } }, required: ['kind', 'side'], additionalProperties: false },
    ],
  },
  nullable: { type: 'object', properties: { note: { type: ['string', 'null'], maxLength: 6 } }, required: ['note'], additionalProperties: false },
  matrix: { type: 'array', minItems: 2, maxItems: 2, items: { type: 'array', minItems: 2, maxItems: 2, items: { type: 'integer', minimum: 0, maximum: 9 } } },
  tuple: { type: 'array', prefixItems: [str(6), { type: 'integer', minimum: 0, maximum: 99 }, { type: 'boolean' }], items: false, minItems: 3 },
  pattern: { type: 'object', properties: { code: { type: 'string', pattern: '^[A-Z]{3}-[0-9]{2}$' } }, required: ['code'], additionalProperties: false },
  date: { type: 'object', properties: { day: { type: 'string', pattern: '^2026-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9])$' } }, required: ['day'], additionalProperties: false },
  optionalFields: { type: 'object', properties: { a: { type: 'integer', minimum: 0, maximum: 3 }, b: str(4), c: { type: 'boolean' } }, required: ['a'], additionalProperties: false },
  percent: { type: 'object', properties: { score: { type: 'integer', minimum: 0, maximum: 100 } }, required: ['score'], additionalProperties: false },
  formats: { type: 'object', properties: { day: { type: 'string', format: 'date' }, id: { type: 'string', format: 'uuid' } }, required: ['day', 'id'], additionalProperties: false },
  emptyObject: { type: 'object', properties: {}, additionalProperties: false },
  emptyArray: { type: 'array', maxItems: 0 },
  enumMixed: { enum: [1, 'two', null, true] },
  translation: {
    type: 'object',
    properties: { source: { enum: ['en', 'zh', 'fr'] }, target: { enum: ['en', 'zh', 'fr'] }, text: str(20, 1) },
    required: ['source', 'target', 'text'],
    additionalProperties: false,
  },
  codeReview: {
    type: 'object',
    properties: {
      verdict: { enum: ['approve', 'changes'] },
      issues: {
        type: 'array', maxItems: 2,
        items: { type: 'object', properties: { line: { type: 'integer', minimum: 1, maximum: 500 }, severity: { enum: ['low', 'high'] }, message: str(12) }, required: ['line', 'severity', 'message'], additionalProperties: false },
      },
    },
    required: ['verdict', 'issues'],
    additionalProperties: false,
  },
  keyValues: { type: 'array', maxItems: 3, items: { type: 'object', properties: { key: str(5, 1), value: { type: 'integer', minimum: 0, maximum: 99 } }, required: ['key', 'value'], additionalProperties: false } },
  deep: {
    type: 'object',
    properties: { a: { type: 'object', properties: { b: { type: 'object', properties: { c: { type: 'object', properties: { d: { type: 'integer', minimum: 0, maximum: 9 } }, required: ['d'], additionalProperties: false } }, required: ['c'], additionalProperties: false } }, required: ['b'], additionalProperties: false } },
    required: ['a'],
    additionalProperties: false,
  },
  refs: {
    $defs: { point: { type: 'object', properties: { x: { type: 'integer', minimum: 0, maximum: 9 }, y: { type: 'integer', minimum: 0, maximum: 9 } }, required: ['x', 'y'], additionalProperties: false } },
    type: 'object',
    properties: { from: { $ref: '#/$defs/point' }, to: { $ref: '#/$defs/point' } },
    required: ['from', 'to'],
    additionalProperties: false,
  },
  allOf: { allOf: [{ type: 'object', properties: { id: { type: 'integer', minimum: 1, maximum: 99 } }, required: ['id'] }, { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] }] },
  summary: {
    type: 'object',
    properties: { summary: str(24, 1), keyPoints: { type: 'array', items: str(10, 1), minItems: 2, maxItems: 3 }, sentiment: { enum: ['positive', 'neutral', 'negative'] } },
    required: ['summary', 'keyPoints', 'sentiment'],
    additionalProperties: false,
  },
  unicodeEnum: { enum: ['写作', '润色', '翻译', 'résumé'] },
  integerArray: { type: 'array', items: { type: 'integer', minimum: -100, maximum: 100 }, minItems: 3, maxItems: 5 },
};

/** A request held to schema `name` (sampled, seeded, with room for the bounded answers above). */
export function schemaRequest(name: string, seed: number): ChatCompletionRequest & { stream?: false } {
  return {
    messages: [{ role: 'user', content: `Answer in JSON (${name}).` }],
    response_format: { type: 'json_schema', json_schema: { name, schema: JSON_SCHEMAS[name], strict: true } },
    max_tokens: 400,
    temperature: 0.8,
    seed,
  };
}
