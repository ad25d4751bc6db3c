// ggml tensor types: ids as stored in GGUF tensor infos, and the size of one quant block.
// Sizes follow the block structs of ggml/src/ggml-common.h (QK_K = 256, K_SCALE_SIZE = 12).

import { GGUFError } from './errors.ts';

export enum GGMLType {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  BF16 = 30,
}

export interface GGMLTypeInfo {
  readonly name: string;
  /** Elements per block; rows (ne0) must be a multiple of it. */
  readonly blockSize: number;
  /** Bytes per block. */
  readonly blockBytes: number;
}

export const GGML_TYPE_INFO: Readonly<Record<GGMLType, GGMLTypeInfo>> = {
  [GGMLType.F32]: { name: 'F32', blockSize: 1, blockBytes: 4 },
  [GGMLType.F16]: { name: 'F16', blockSize: 1, blockBytes: 2 },
  [GGMLType.Q4_0]: { name: 'Q4_0', blockSize: 32, blockBytes: 18 }, // d f16, qs[16]
  [GGMLType.Q4_1]: { name: 'Q4_1', blockSize: 32, blockBytes: 20 }, // d, m f16, qs[16]
  [GGMLType.Q5_0]: { name: 'Q5_0', blockSize: 32, blockBytes: 22 }, // d, qh[4], qs[16]
  [GGMLType.Q5_1]: { name: 'Q5_1', blockSize: 32, blockBytes: 24 }, // d, m, qh[4], qs[16]
  [GGMLType.Q8_0]: { name: 'Q8_0', blockSize: 32, blockBytes: 34 }, // d, qs[32]
  [GGMLType.Q8_1]: { name: 'Q8_1', blockSize: 32, blockBytes: 36 }, // d, s, qs[32]
  [GGMLType.Q2_K]: { name: 'Q2_K', blockSize: 256, blockBytes: 84 }, // scales[16], qs[64], d, dmin
  [GGMLType.Q3_K]: { name: 'Q3_K', blockSize: 256, blockBytes: 110 }, // hmask[32], qs[64], scales[12], d
  [GGMLType.Q4_K]: { name: 'Q4_K', blockSize: 256, blockBytes: 144 }, // d, dmin, scales[12], qs[128]
  [GGMLType.Q5_K]: { name: 'Q5_K', blockSize: 256, blockBytes: 176 }, // d, dmin, scales[12], qh[32], qs[128]
  [GGMLType.Q6_K]: { name: 'Q6_K', blockSize: 256, blockBytes: 210 }, // ql[128], qh[64], scales[16], d
  [GGMLType.Q8_K]: { name: 'Q8_K', blockSize: 256, blockBytes: 292 }, // d f32, qs[256], bsums i16[16]
  [GGMLType.BF16]: { name: 'BF16', blockSize: 1, blockBytes: 2 },
};

export function isGGMLType(id: number): id is GGMLType {
  return Object.prototype.hasOwnProperty.call(GGML_TYPE_INFO, id);
}

/** The type's name, or "type <id>" for an id we do not know. */
export function ggmlTypeName(id: number): string {
  return isGGMLType(id) ? GGML_TYPE_INFO[id].name : `type ${id}`;
}

function typeInfo(type: GGMLType): GGMLTypeInfo {
  if (!isGGMLType(type)) throw new GGUFError('unsupported-type', `unknown ggml type id ${type}`);
  return GGML_TYPE_INFO[type];
}

/** Bytes of one row of `ne0` elements. Throws unless ne0 is a positive multiple of the block size. */
export function rowBytes(type: GGMLType, ne0: number): number {
  const info = typeInfo(type);
  if (!Number.isSafeInteger(ne0) || ne0 < 1) {
    throw new GGUFError('bad-tensor', `row length ${ne0} is not a positive integer`);
  }
  if (ne0 % info.blockSize !== 0) {
    throw new GGUFError(
      'bad-tensor',
      `row length ${ne0} is not a multiple of the ${info.name} block size ${info.blockSize}`,
    );
  }
  const bytes = (ne0 / info.blockSize) * info.blockBytes;
  if (!Number.isSafeInteger(bytes)) {
    throw new GGUFError('limit-exceeded', `row of ${ne0} ${info.name} elements is too large`);
  }
  return bytes;
}

/**
 * Bytes of a tensor with shape `dims` (ne0 first). Throws on a bad row length, a dim < 1 or a
 * size beyond Number.MAX_SAFE_INTEGER (checked by division before multiplying).
 */
export function tensorBytes(type: GGMLType, dims: readonly number[]): number {
  if (dims.length < 1) throw new GGUFError('bad-tensor', 'a tensor needs at least one dimension');
  let bytes = rowBytes(type, dims[0]);
  for (let i = 1; i < dims.length; i++) {
    const d = dims[i];
    if (!Number.isSafeInteger(d) || d < 1) {
      throw new GGUFError('bad-tensor', `dimension ${i} is ${d}, not a positive integer`);
    }
    if (bytes > Math.floor(Number.MAX_SAFE_INTEGER / d)) {
      throw new GGUFError('limit-exceeded', `tensor [${dims.join(',')}] is too large`);
    }
    bytes *= d;
  }
  return bytes;
}
