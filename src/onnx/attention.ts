/**
 * The attention finder's public API; the implementation lives in ./attention/ (one concern per file,
 * see ./attention/index.ts). Kept so that `../onnx/attention.js` imports keep working.
 */
export * from './attention/index.js';
