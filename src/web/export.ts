/**
 * `ranerc export-web`: the serve page as a static folder that any static host serves. The page runs
 * the model in the browser (onnxruntime-web) — the same files the server's "run in this browser"
 * switch loads, with `api/info` a file (marked `"static": true`, so the page never calls /predict):
 *
 *     index.html  assets/{app.js,style.css,favicon.svg}  api/info
 *     web/model.json  web/model.onnx  web/js/<ranerc modules>.js  web/ort/<onnxruntime-web wasm build>
 */
import { copyFile, mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { InputError } from '../errors.js';
import { LabelSet } from '../ner/labels.js';
import { defaultOverlap } from '../ner/windows.js';
import type { ModelFolder } from '../onnx/types.js';
import { ranercVersion } from '../report/environment.js';
import { typeColors } from '../serve/colors.js';
import { modelName, PUBLIC_DIR } from '../serve/server.js';
import { atomicWriteDir } from '../util/fs.js';
import { ORT_FILES, ortFile, WEB_MODULES, webModule, webSpec, webUnsupported } from './assets.js';

export interface ExportWebOptions {
  /** Tokens per window without [CLS]/[SEP] (default folder.maxLength − 2). */
  windowSize?: number;
  overlap?: number;
}

export interface ExportWebResult {
  dir: string;
  files: number;
  bytes: number;
  modelBytes: number;
  int8Ops: string[];
}

const PAGE_FILES: ReadonlyArray<[string, string]> = [
  ['index.html', 'index.html'],
  ['assets/app.js', 'app.js'],
  ['assets/style.css', 'style.css'],
  ['assets/favicon.svg', 'favicon.svg'],
];

export async function exportWeb(folder: ModelFolder, outDir: string, opts: ExportWebOptions = {}): Promise<ExportWebResult> {
  const unsupported = webUnsupported(folder);
  if (unsupported) {
    throw new InputError(`this model cannot run in a browser page: ${unsupported}`, {
      file: folder.onnxPath,
      hint: 'save the model with its weights inside the .onnx file (under 2 GB), e.g. quantize it to INT8 first',
    });
  }
  const window = opts.windowSize ?? folder.maxLength - 2;
  const overlap = opts.overlap ?? defaultOverlap(window);
  const labels = new LabelSet(folder.labels);
  const model = modelName(folder);
  const spec = await webSpec(folder, { model, window, overlap, onnx: 'web/model.onnx' });
  const info = {
    ranerc: ranercVersion(),
    model,
    ...(folder.provenance?.command ? { producedBy: folder.provenance.command } : {}),
    decoder: folder.crf ? 'crf' : 'argmax',
    scheme: labels.scheme,
    labels: [...labels.labels],
    types: [...labels.types],
    colors: typeColors(labels.types),
    window,
    overlap,
    limits: { maxTexts: 64 },
    static: true,
  };
  return atomicWriteDir(outDir, async (tmp) => {
    const put = async (rel: string, body: string | Uint8Array): Promise<void> => {
      await mkdir(dirname(join(tmp, rel)), { recursive: true });
      await writeFile(join(tmp, rel), body);
    };
    const copy = async (rel: string, from: string): Promise<void> => {
      await mkdir(dirname(join(tmp, rel)), { recursive: true });
      await copyFile(from, join(tmp, rel));
    };
    for (const [rel, file] of PAGE_FILES) await copy(rel, new URL(file, PUBLIC_DIR).pathname);
    await put('api/info', `${JSON.stringify(info)}\n`);
    await put('web/model.json', `${JSON.stringify(spec)}\n`);
    await copy('web/model.onnx', folder.onnxPath);
    for (const m of WEB_MODULES) await put(`web/js/${m}.js`, await webModule(m));
    for (const f of ORT_FILES) await copy(`web/ort/${f}`, ortFile(f));
    let files = 0;
    let bytes = 0;
    for (const e of await readdir(tmp, { recursive: true, withFileTypes: true })) {
      if (!e.isFile()) continue;
      files++;
      bytes += (await stat(join(e.parentPath, e.name))).size;
    }
    return { dir: outDir, files, bytes, modelBytes: (await stat(folder.onnxPath)).size, int8Ops: spec.int8Ops };
  });
}
