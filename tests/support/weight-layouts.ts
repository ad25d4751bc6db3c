// What a build's weight-layout table (Kernels.weightLayouts, read from the module) must say,
// checked against facts from outside the kernels: the GGUF block sizes the reader knows
// (src/gguf/ggml-types.ts), and that repack works in place (a packed layout holds the same
// bytes per element as the GGUF layout it comes from).
import { GGML_TYPE_INFO, type GGMLType } from '../../src/gguf/ggml-types.ts';
import { GGUF_WEIGHT_TYPES, type WeightLayout, type WeightType } from '../../src/model/kernels.ts';

/** Everything wrong with one build's table; empty when it agrees with the facts. */
export function layoutTableProblems(layouts: Iterable<[WeightType, WeightLayout]>): string[] {
  const table = new Map(layouts);
  const problems: string[] = [];
  for (const [type, layout] of table) {
    if (GGUF_WEIGHT_TYPES.has(type)) {
      const info = GGML_TYPE_INFO[type as GGMLType];
      if (layout.blockSize !== info.blockSize || layout.blockBytes !== info.blockBytes) {
        problems.push(`${layout.name}: ${layout.blockSize}/${layout.blockBytes} elements/bytes per block, GGUF says ${info.blockSize}/${info.blockBytes}`);
      }
      const packed = table.get(layout.packedType);
      if (!packed) problems.push(`${layout.name} repacks into ${layout.packedType}, which this build cannot read`);
      else if (packed.blockBytes * layout.blockSize !== layout.blockBytes * packed.blockSize) {
        problems.push(`${layout.name} -> ${packed.name} changes the bytes per element, so it cannot be done in place`);
      }
    } else if (![...table].some(([from, l]) => GGUF_WEIGHT_TYPES.has(from) && l.packedType === type)) {
      problems.push(`${layout.name} is read but no GGUF type repacks into it`);
    }
  }
  for (const type of GGUF_WEIGHT_TYPES) {
    if (!table.has(type as WeightType)) problems.push(`GGUF type ${GGML_TYPE_INFO[type as GGMLType].name} is missing`);
  }
  return problems;
}
