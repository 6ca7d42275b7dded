/**
 * In-memory conversion at load: when a model folder's ONNX graph is a CRF-in-graph export (integer decode
 * output), every command works on the converted emissions graph instead. The converted model is written
 * once per source (content-addressed by the source's SHA-256) to a directory under the OS temp dir, because
 * onnxruntime and the rest of ranerc open models by path; the folder's own files are never touched.
 */
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CrfParams } from '../../ner/types.js';
import { InputError } from '../../errors.js';
import { sha256File } from '../../util/fs.js';
import { loadModel, saveModel } from '../external.js';
import { convertCrfExport, hasIntegerDecodeOutput } from './index.js';

/** What a folder that was converted at load says about it (reports, provenance). */
export interface ModelConversion {
  kind: 'crf-in-graph';
  /** The original ONNX file. */
  source: string;
  sourceSha256: string;
  /** The integer output that was cut away. */
  output: string;
  /** Positions the original decode was unrolled over. */
  fixedLength: number;
  droppedInputs: string[];
  note: string;
}

export interface LoadConversion {
  onnxPath: string;
  crf: CrfParams;
  conversion: ModelConversion;
}

/** Cheap check on an already decoded graph's outputs: is this a CRF-in-graph export to convert? */
export { hasIntegerDecodeOutput };

/**
 * Run the converted graph once at a batch and length the export never used (batch 2, 5 tokens): ranerc feeds
 * every batch size and window length, so an encoder traced with fixed shapes is refused here, clearly.
 */
async function smokeTest(path: string, inputs: string[], source: string): Promise<void> {
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(path, { logSeverityLevel: 3, intraOpNumThreads: 1 });
  try {
    const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {};
    for (const meta of session.inputMetadata) {
      const type = meta.isTensor && meta.type === 'int32' ? 'int32' : 'int64';
      const n = 2 * 5;
      const fill = meta.name === 'token_type_ids' ? 0 : 1;
      feeds[meta.name] = type === 'int32' ? new ort.Tensor('int32', new Int32Array(n).fill(fill), [2, 5]) : new ort.Tensor('int64', new BigInt64Array(n).fill(BigInt(fill)), [2, 5]);
    }
    await session.run(feeds);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new InputError(`the export's encoder does not run at other batch sizes or lengths once the decode is cut away (inputs ${inputs.join(', ')}): ${msg.split('\n')[0]}`, {
      file: source,
      hint: 're-export with dynamic axes for batch and sequence on the inputs (torch.onnx.export(..., dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, ...})); the unrolled decode may stay',
      cause: e,
    });
  } finally {
    await session.release();
  }
}

/** Convert `onnxPath` (a CRF-in-graph export) for use by every command; InputError when unsupported. */
export async function convertAtLoad(onnxPath: string, labels: string[]): Promise<LoadConversion> {
  const loaded = await loadModel(onnxPath);
  const conv = convertCrfExport(loaded.model, labels, onnxPath);
  const sha = await sha256File(onnxPath);
  const dir = join(tmpdir(), 'ranerc-converted', sha.slice(0, 32));
  const target = join(dir, 'model.onnx');
  const ok = await stat(target).then((s) => s.isFile() && s.size > 0, () => false);
  if (!ok) {
    // fill a sibling directory, then move it into place (external data, if any, travels with it)
    const tmp = `${dir}.${process.pid}.${Date.now()}.tmp`;
    await mkdir(tmp, { recursive: true });
    await saveModel(conv.model, join(tmp, 'model.onnx'), { externalData: 'auto' });
    try {
      await smokeTest(join(tmp, 'model.onnx'), conv.keptInputs, onnxPath);
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      throw e;
    }
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
  }
  return {
    onnxPath: target,
    crf: conv.crf,
    conversion: {
      kind: 'crf-in-graph',
      source: onnxPath,
      sourceSha256: sha,
      output: conv.found.output,
      fixedLength: conv.found.fixedLength,
      droppedInputs: conv.droppedInputs,
      note:
        `converted from a CRF-in-graph export: output "${conv.found.output}" (Viterbi unrolled over ${conv.found.fixedLength} positions) cut at the classifier ` +
        `(${conv.found.emissionsNode}); CRF read from the graph; inputs ${conv.droppedInputs.join(', ') || '(none)'} dropped`,
    },
  };
}
