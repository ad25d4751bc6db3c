// Browser-safe entry point of the GGUF layer. NodeFileSource is deliberately not re-exported:
// import it from './node-file-source.ts' in Node-only code so bundles never pull in node:fs.

export { ArrayBufferSource, BlobSource, type ByteSource } from './byte-source.ts';
export { GGUFError, isGGUFError, type GGUFErrorCode } from './errors.ts';
export { GGMLType, GGML_TYPE_INFO, ggmlTypeName, isGGMLType, rowBytes, tensorBytes, type GGMLTypeInfo } from './ggml-types.ts';
export {
  DEFAULT_ALIGNMENT,
  GGUFFile,
  GGUFValueType,
  MAX_ARRAY_DEPTH,
  MAX_ARRAY_LENGTH,
  MAX_STRING_BYTES,
  readGGUF,
  valueTypeName,
  type GGUFArrayValue,
  type GGUFBigIntArray,
  type GGUFNumberArray,
  type GGUFTensorInfo,
  type GGUFValue,
  type ReadGGUFOptions,
} from './reader.ts';
export { readChatTemplate, readModelConfig, readTokenizerData, type ModelConfig, type TokenizerData } from './metadata.ts';
