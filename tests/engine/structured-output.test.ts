// Structured output (response_format) on the CPU engine in Node: every answer held to a JSON
// Schema parses (JSON.parse) and validates (Ajv, the oracle for what the schema means) on the
// tiny and small fixtures, streamed or not; json_object answers are objects; what cannot be a
// schema is a typed error. The models have random weights, so they would never write JSON on
// their own: whatever parses here is the grammar's doing.
import Ajv2020 from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CpuEngine } from '../../src/engine/cpu-engine.ts';
import type { ChatCompletionRequest } from '../../src/engine/types.ts';
import { ensureFixture } from '../fixtures/fixtures.ts';
import { JSON_SCHEMAS, schemaRequest } from './json-schemas.ts';

const ajv = new Ajv2020({ strict: false });
const engines: Record<string, CpuEngine> = {};


beforeAll(async () => {
  for (const name of ['tiny-f32', 'small-q4_k_m']) {
    const engine = new CpuEngine();
    await engine.load({ kind: 'path', path: await ensureFixture(name) }, { threads: 2, build: 'simd128', contextLength: 1024 });
    engines[name] = engine;
  }
}, 300_000);

afterAll(async () => {
  for (const engine of Object.values(engines)) await engine.unload();
});

describe.each(['tiny-f32', 'small-q4_k_m'])('structured output: %s', (fixture) => {
  it(`holds every answer to its schema (${Object.keys(JSON_SCHEMAS).length} schemas): it parses and validates`, async () => {
    expect(Object.keys(JSON_SCHEMAS).length).toBeGreaterThanOrEqual(30);
    const failures: string[] = [];
    for (const [name, schema] of Object.entries(JSON_SCHEMAS)) {
      const validate = ajv.compile(schema);
      const completion = await engines[fixture]!.chat.completions.create(schemaRequest(name, 7));
      const text = completion.choices[0].message.content;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (error) {
        failures.push(`${name}: does not parse (${completion.choices[0].finish_reason}, ${completion.usage.completion_tokens} tokens): ${text.slice(0, 120)}`);
        continue;
      }
      if (!validate(value)) failures.push(`${name}: ${ajv.errorsText(validate.errors)} in ${text.slice(0, 120)}`);
      if (completion.choices[0].finish_reason !== 'stop') failures.push(`${name}: finished by ${completion.choices[0].finish_reason}`);
    }
    expect(failures).toEqual([]);
  }, 300_000);

  it('streams the same constrained answer it gives whole, and another seed gives another valid one', async () => {
    const engine = engines[fixture]!;
    const whole = await engine.chat.completions.create(schemaRequest('outline', 3));
    let streamed = '';
    for await (const chunk of await engine.chat.completions.create({ ...schemaRequest('outline', 3), stream: true })) streamed += chunk.choices[0].delta.content ?? '';
    expect(streamed).toBe(whole.choices[0].message.content);
    const other = await engine.chat.completions.create(schemaRequest('outline', 4));
    expect(ajv.validate(JSON_SCHEMAS.outline!, JSON.parse(other.choices[0].message.content))).toBe(true);
  }, 120_000);

  it('answers json_object requests with a JSON object', async () => {
    for (const seed of [1, 2, 3]) {
      const completion = await engines[fixture]!.chat.completions.create({
        messages: [{ role: 'user', content: 'Reply in JSON.' }], response_format: { type: 'json_object' }, max_tokens: 200, temperature: 0.7, seed,
      });
      if (completion.choices[0].finish_reason === 'length') continue; // an unbounded string ran past the budget
      const value = JSON.parse(completion.choices[0].message.content) as unknown;
      expect(typeof value === 'object' && value !== null && !Array.isArray(value)).toBe(true);
    }
  }, 120_000);
});

describe('structured output: bad formats', () => {
  it('refuses what is not a usable schema with bad-request naming the field', async () => {
    const engine = engines['tiny-f32']!;
    const ask = (response_format: unknown) => engine.chat.completions.create({ messages: [{ role: 'user', content: 'x' }], response_format } as ChatCompletionRequest);
    await expect(ask({ type: 'json_schema' })).rejects.toMatchObject({ code: 'bad-request', message: expect.stringMatching(/response_format.json_schema must be an object/) });
    await expect(ask({ type: 'json_schema', json_schema: { name: 'bad name!', schema: {} } })).rejects.toMatchObject({ code: 'bad-request', message: expect.stringMatching(/name/) });
    await expect(ask({ type: 'json_schema', json_schema: { name: 'x', schema: { type: 'nonsense' } } })).rejects.toMatchObject({ code: 'bad-request', message: expect.stringMatching(/json_schema.schema/) });
    await expect(ask({ type: 'yaml' })).rejects.toMatchObject({ code: 'bad-request', message: expect.stringMatching(/response_format.type/) });
    await expect(ask({ type: 'json_object', extra: 1 })).rejects.toMatchObject({ code: 'bad-request', message: expect.stringMatching(/response_format.extra/) });
    // Keywords the grammar cannot hold are refused, naming where they are.
    await expect(ask({ type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', properties: { s: { type: 'number', minimum: 0, maximum: 1 } } } } }))
      .rejects.toMatchObject({ code: 'unsupported', message: expect.stringMatching(/schema.properties.s: 'minimum' on a number with a fraction/) });
    for (const keyword of [{ not: { type: 'string' } }, { type: 'array', uniqueItems: true }, { type: 'integer', multipleOf: 5 }, { if: { type: 'string' }, then: { maxLength: 2 } }, { type: 'string', format: 'hostname' }]) {
      await expect(ask({ type: 'json_schema', json_schema: { name: 'x', schema: keyword } }), JSON.stringify(keyword)).rejects.toMatchObject({ code: 'unsupported' });
    }
    const huge = { type: 'object', properties: Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`property_${i}`, { type: 'integer' }])) };
    await expect(ask({ type: 'json_schema', json_schema: { name: 'huge', schema: huge } })).rejects.toMatchObject({ code: 'bad-request', message: expect.stringMatching(/at most 65536/) });
    // Still usable afterwards.
    const ok = await engine.chat.completions.create(schemaRequest('person', 1));
    expect(ajv.validate(JSON_SCHEMAS.person!, JSON.parse(ok.choices[0].message.content))).toBe(true);
  });
});
