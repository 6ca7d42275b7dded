/**
 * What the in-browser page loads besides the model, all from disk (nothing from the network):
 * ranerc's own compiled modules (tokenizer, windows, Viterbi, label decoding, the web pipeline and
 * page; the same code `ranerc predict` runs) and onnxruntime-web's wasm build from node_modules.
 *
 * Modules come from dist/ when ranerc runs compiled; when it runs from src/ (tests, development) the
 * .ts file is transpiled with TypeScript (a devDependency, present wherever src/ runs).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError } from '../errors.js';
import { parseVocab } from '../ner/tokenizer.js';
import { quantizedOps } from '../onnx/layout.js';
import { decodeModel } from '../onnx/codec.js';
import type { ModelFolder } from '../onnx/types.js';
import type { WebModelSpec } from './pipeline.js';

/** Modules the page imports, relative to src/ (or dist/) without extension. */
export const WEB_MODULES = [
  'errors',
  'ner/decode',
  'ner/labels',
  'ner/tokenizer',
  'ner/types',
  'ner/viterbi',
  'ner/windows',
  'onnx/types',
  'web/node-stub',
  'web/pipeline',
  'web/page',
] as const;

/** onnxruntime-web files the page loads (the wasm-only ESM bundle and its SIMD binary). */
export const ORT_FILES = ['ort.wasm.bundle.min.mjs', 'ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm'] as const;

const HERE = dirname(fileURLToPath(import.meta.url));

/** The JavaScript of one web module, with `node:fs/promises` pointed at the browser stub. */
export async function webModule(rel: string): Promise<string> {
  if (!(WEB_MODULES as readonly string[]).includes(rel)) throw new InputError(`not a web module: ${rel}`, { hint: `one of ${WEB_MODULES.join(', ')}` });
  const compiled = join(HERE, '..', `${rel}.js`);
  let js: string;
  if (existsSync(compiled)) {
    js = await readFile(compiled, 'utf8');
  } else {
    const source = join(HERE, '..', `${rel}.ts`);
    const ts = (await import('typescript')).default;
    js = ts.transpileModule(await readFile(source, 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: false },
      fileName: source,
    }).outputText;
  }
  const depth = rel.split('/').length - 1;
  const stub = `${depth === 0 ? './' : '../'.repeat(depth)}web/node-stub.js`;
  return js.replace(/(from\s*|import\s*\(\s*)(['"])node:fs\/promises\2/g, `$1$2${stub}$2`).replace(/^\/\/# sourceMappingURL=.*$/m, '');
}

/** Path of an onnxruntime-web dist file on disk. */
export function ortFile(name: string): string {
  if (!(ORT_FILES as readonly string[]).includes(name)) throw new InputError(`not an onnxruntime-web file: ${name}`, { hint: ORT_FILES.join(', ') });
  // the package exports no package.json; its CommonJS entry lives in dist/ beside the wasm build
  const main = createRequire(import.meta.url).resolve('onnxruntime-web');
  return join(dirname(main), name);
}

/** Why the folder's model cannot run in a page, or undefined when it can. */
export function webUnsupported(folder: ModelFolder): string | undefined {
  if ((folder.externalDataFiles ?? []).length > 0) return 'the model keeps its weights in external data files';
  if (!folder.vocabPath) return 'the in-browser page tokenizes with a WordPiece vocab.txt, and this model has only tokenizer.json';
  return undefined;
}

/** The page's model description (see WebModelSpec). */
export async function webSpec(
  folder: ModelFolder,
  opts: { model: string; window: number; overlap: number; batchSize?: number; maxBatchTokens?: number; onnx: string },
): Promise<WebModelSpec> {
  if (!folder.vocabPath) {
    throw new InputError('the in-browser page needs a WordPiece vocab.txt; this model has only tokenizer.json', {
      file: folder.dir,
      hint: 'serve it with `ranerc serve` (which reads tokenizer.json), or add the WordPiece vocab.txt of a BERT-style model',
    });
  }
  const vocab = parseVocab(await readFile(folder.vocabPath, 'utf8'));
  const graph = decodeModel(await readFile(folder.onnxPath), folder.onnxPath);
  const spec: WebModelSpec = {
    format: 'ranerc-web/1',
    model: opts.model,
    labels: [...folder.labels],
    vocab,
    tokenizerConfig: folder.tokenizerConfig,
    window: opts.window,
    overlap: opts.overlap,
    batchSize: opts.batchSize ?? 32,
    maxBatchTokens: opts.maxBatchTokens ?? 16384,
    onnx: opts.onnx,
    int8Ops: quantizedOps(graph),
    inputs: [],
    inputTypes: {},
  };
  const inits = new Set((graph.graph?.initializer ?? []).map((t) => t.name));
  for (const i of graph.graph?.input ?? []) {
    if (!i.name || inits.has(i.name)) continue;
    spec.inputs.push(i.name);
    spec.inputTypes[i.name] = i.type?.tensorType?.elemType === 6 ? 'int32' : 'int64'; // TensorProto INT32 = 6
  }
  if (folder.crf) spec.crf = folder.crf;
  return spec;
}
