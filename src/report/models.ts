/** Building the `models[]` and `data` entries of a report from files on disk. */
import { countModelParameters } from '../onnx/graph.js';
import { loadModel } from '../onnx/external.js';
import { folderSize } from '../onnx/folder.js';
import type { ModelFolder } from '../onnx/types.js';
import { sha256File } from '../util/fs.js';
import type { DataFileSummary, ModelRole, ModelSummary } from './schema.js';

/**
 * Summarize a model folder: SHA-256 of the ONNX file, its size with external data, the folder size,
 * the parameter count (float or quantized weights, as `ranerc inspect` counts them; decodes the model
 * once) and the labels.
 * `path` is how the user named the model (kept as given in the report).
 */
export async function summarizeModel(
  folder: ModelFolder,
  role: ModelRole,
  path: string,
  opts: { parameters?: boolean } = {},
): Promise<ModelSummary> {
  const [sha256, size] = await Promise.all([sha256File(folder.onnxPath), folderSize(folder)]);
  const summary: ModelSummary = {
    role,
    path,
    onnxPath: folder.onnxPath,
    sha256,
    bytes: size.onnxBytes,
    folderBytes: size.totalBytes,
    labels: [...folder.labels],
  };
  if (folder.conversion) summary.convertedFrom = folder.conversion.note;
  if (opts.parameters ?? true) {
    const loaded = await loadModel(folder.onnxPath);
    summary.bytes = loaded.fileBytes + loaded.externalBytes;
    summary.parameters = countModelParameters(loaded.model.graph ?? {});
  }
  return summary;
}

/** Summarize a data file. */
export async function summarizeData(
  path: string,
  facts: Omit<DataFileSummary, 'path' | 'sha256'>,
): Promise<DataFileSummary> {
  return { path, sha256: await sha256File(path), ...facts };
}
