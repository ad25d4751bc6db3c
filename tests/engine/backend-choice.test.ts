// chooseBackend() over every preference × adapter × model case, against a table written out by
// hand from the rules: 'cpu' always CPU; 'auto' WebGPU only for a model with an MLC build on a
// real adapter with shader-f16; 'webgpu' (the user's override) WebGPU on any adapter that can
// run the build (an f16 build needs shader-f16), else CPU flagged as a fallback.
import { describe, expect, it } from 'vitest';
import { chooseBackend, type BackendPreference } from '../../src/engine/backend.ts';
import type { WebGpuSupport } from '../../src/engine/webgpu-detect.ts';

const adapter = (isFallbackAdapter: boolean) => ({ vendor: 'v', architecture: 'a', description: 'test adapter', isFallbackAdapter });
const SUPPORT: Record<string, WebGpuSupport> = {
  none: { available: false, reason: 'no WebGPU adapter', shaderF16: false, maxBufferSize: 0, maxStorageBufferBindingSize: 0 },
  // What Chromium's SwiftShader gives with --enable-unsafe-webgpu.
  swiftshader: { available: true, adapter: adapter(true), shaderF16: false, maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: 2 ** 27 },
  softwareF16: { available: true, adapter: adapter(true), shaderF16: true, maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: 2 ** 27 },
  gpuNoF16: { available: true, adapter: adapter(false), shaderF16: false, maxBufferSize: 2 ** 32, maxStorageBufferBindingSize: 2 ** 31 },
  gpuF16: { available: true, adapter: adapter(false), shaderF16: true, maxBufferSize: 2 ** 32, maxStorageBufferBindingSize: 2 ** 31 },
};
const MODELS: Record<string, { mlcModelId?: string } | undefined> = {
  noModel: undefined,
  noMlcBuild: {},
  f16: { mlcModelId: 'Qwen3-4B-q4f16_1-MLC' },
  f32: { mlcModelId: 'Qwen3-4B-q4f32_1-MLC' },
};

// [preference, support, model] → 'cpu' | 'webgpu' | 'cpu (fallback)'
const TABLE: Array<[BackendPreference, string, string, 'cpu' | 'webgpu' | 'cpu (fallback)']> = [];
for (const support of Object.keys(SUPPORT)) {
  for (const model of Object.keys(MODELS)) TABLE.push(['cpu', support, model, 'cpu']);
}
TABLE.push(
  ['auto', 'none', 'noModel', 'cpu'], ['auto', 'none', 'noMlcBuild', 'cpu'], ['auto', 'none', 'f16', 'cpu'], ['auto', 'none', 'f32', 'cpu'],
  ['auto', 'swiftshader', 'noModel', 'cpu'], ['auto', 'swiftshader', 'noMlcBuild', 'cpu'], ['auto', 'swiftshader', 'f16', 'cpu'], ['auto', 'swiftshader', 'f32', 'cpu'],
  ['auto', 'softwareF16', 'noModel', 'cpu'], ['auto', 'softwareF16', 'noMlcBuild', 'cpu'], ['auto', 'softwareF16', 'f16', 'cpu'], ['auto', 'softwareF16', 'f32', 'cpu'],
  ['auto', 'gpuNoF16', 'noModel', 'cpu'], ['auto', 'gpuNoF16', 'noMlcBuild', 'cpu'], ['auto', 'gpuNoF16', 'f16', 'cpu'], ['auto', 'gpuNoF16', 'f32', 'cpu'],
  ['auto', 'gpuF16', 'noModel', 'cpu'], ['auto', 'gpuF16', 'noMlcBuild', 'cpu'], ['auto', 'gpuF16', 'f16', 'webgpu'], ['auto', 'gpuF16', 'f32', 'webgpu'],

  ['webgpu', 'none', 'noModel', 'cpu (fallback)'], ['webgpu', 'none', 'noMlcBuild', 'cpu (fallback)'],
  ['webgpu', 'none', 'f16', 'cpu (fallback)'], ['webgpu', 'none', 'f32', 'cpu (fallback)'],
  ['webgpu', 'swiftshader', 'noModel', 'cpu (fallback)'], ['webgpu', 'swiftshader', 'noMlcBuild', 'cpu (fallback)'],
  ['webgpu', 'swiftshader', 'f16', 'cpu (fallback)'], ['webgpu', 'swiftshader', 'f32', 'webgpu'],
  ['webgpu', 'softwareF16', 'noModel', 'cpu (fallback)'], ['webgpu', 'softwareF16', 'noMlcBuild', 'cpu (fallback)'],
  ['webgpu', 'softwareF16', 'f16', 'webgpu'], ['webgpu', 'softwareF16', 'f32', 'webgpu'],
  ['webgpu', 'gpuNoF16', 'noModel', 'cpu (fallback)'], ['webgpu', 'gpuNoF16', 'noMlcBuild', 'cpu (fallback)'],
  ['webgpu', 'gpuNoF16', 'f16', 'cpu (fallback)'], ['webgpu', 'gpuNoF16', 'f32', 'webgpu'],
  ['webgpu', 'gpuF16', 'noModel', 'cpu (fallback)'], ['webgpu', 'gpuF16', 'noMlcBuild', 'cpu (fallback)'],
  ['webgpu', 'gpuF16', 'f16', 'webgpu'], ['webgpu', 'gpuF16', 'f32', 'webgpu'],
);

describe('chooseBackend', () => {
  it('covers every preference × support × model case exactly once', () => {
    const keys = new Set(TABLE.map(([p, s, m]) => `${p}/${s}/${m}`));
    expect(keys.size).toBe(TABLE.length);
    expect(TABLE.length).toBe(3 * Object.keys(SUPPORT).length * Object.keys(MODELS).length);
  });

  it.each(TABLE)('%s on %s with %s → %s', (preference, support, model, expected) => {
    const choice = chooseBackend(preference, SUPPORT[support]!, MODELS[model]);
    const got = choice.backend === 'webgpu' ? 'webgpu' : choice.fallback ? 'cpu (fallback)' : 'cpu';
    expect(got).toBe(expected);
    expect(choice.reason.length).toBeGreaterThan(10);
  });

  it('explains the deciding reason, in words and as a code', () => {
    expect(chooseBackend('webgpu', SUPPORT.none!, MODELS.f16).reason).toContain('no WebGPU adapter');
    expect(chooseBackend('webgpu', SUPPORT.none!, MODELS.f16).code).toBe('webgpu-unavailable');
    expect(chooseBackend('webgpu', SUPPORT.swiftshader!, MODELS.f16).code).toBe('no-shader-f16');
    expect(chooseBackend('auto', SUPPORT.swiftshader!, MODELS.f32).code).toBe('software-adapter');
    expect(chooseBackend('auto', SUPPORT.gpuF16!, MODELS.noMlcBuild).code).toBe('no-mlc-build');
    expect(chooseBackend('cpu', SUPPORT.gpuF16!, MODELS.f16).code).toBe('cpu-chosen');
    expect(chooseBackend('auto', SUPPORT.gpuF16!, MODELS.f16).code).toBe('webgpu-ok');
    expect(chooseBackend('webgpu', SUPPORT.swiftshader!, MODELS.f16).reason).toContain('shader-f16');
    expect(chooseBackend('auto', SUPPORT.swiftshader!, MODELS.f32).reason).toContain('software');
    expect(chooseBackend('auto', SUPPORT.gpuNoF16!, MODELS.f32).reason).toContain('shader-f16');
    expect(chooseBackend('auto', SUPPORT.gpuF16!, MODELS.noMlcBuild).reason).toContain('no WebGPU (MLC) build');
  });
});
