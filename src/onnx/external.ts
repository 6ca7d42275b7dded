/**
 * ONNX external data: load a model whose tensors live in side files (`data_location = EXTERNAL`,
 * `external_data` entries `location` / `offset` / `length`), and save models with or without them.
 *
 * After {@link loadModel} every tensor is an ordinary in-memory tensor (raw_data), so the rest of
 * ranerc never sees external data. {@link saveModel} writes one side file `<model file>.data` with
 * 4096-aligned offsets, like onnx's `convert_model_to_external_data`.
 */
import { mkdir, open, readFile, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, normalize, relative, resolve, sep, win32 } from 'node:path';
import { GraphError, InputError } from '../errors.js';
import { tempSibling } from '../util/fs.js';
import { decodeModel, encodeModel, onnx } from './codec.js';
import { forEachTensor } from './graph.js';
import { DataType, dimsOf, elementCount, elementSize, EXTERNAL, tensorByteLength, tensorRawBytes } from './tensor.js';

/** Where an external tensor's bytes came from. */
export interface ExternalRef {
  tensor: string;
  /** Absolute path of the data file. */
  file: string;
  /** `location` as written in the model. */
  location: string;
  offset: number;
  length: number;
}

export interface LoadedModel {
  model: onnx.ModelProto;
  /** Absolute path of the .onnx file. */
  path: string;
  /** Size of the .onnx file. */
  fileBytes: number;
  /** Size on disk of the external data files (each counted once; 0 when none). */
  externalBytes: number;
  /** The external data files the model referenced (absolute, each once). */
  externalFiles: string[];
  /** One entry per tensor that was loaded from external data. */
  external: ExternalRef[];
}

export type ExternalDataMode = 'auto' | 'always' | 'never';

export interface SaveOptions {
  /** 'auto' (default): external data only when the model would not fit protobuf's 2 GB limit. */
  externalData?: ExternalDataMode;
  /** Initializers smaller than this stay inline (default 1024 bytes). */
  minExternalBytes?: number;
  /** 'auto' externalizes above this serialized size (default {@link AUTO_EXTERNAL_LIMIT}). */
  autoLimitBytes?: number;
}

export interface SaveResult {
  /** Size of the written .onnx file. */
  fileBytes: number;
  /** Size of the written external data file (0 when none). */
  externalBytes: number;
  /** Absolute paths of the files written (the model first). */
  files: string[];
}

/** Protobuf refuses messages of 2 GiB and more. */
export const PROTOBUF_LIMIT = 2 ** 31 - 1;
/** 'auto' externalizes above this serialized size (protobuf's limit less a 256 MiB safety margin). */
export const AUTO_EXTERNAL_LIMIT = PROTOBUF_LIMIT - 256 * 2 ** 20;
/** Offsets of tensors in the data file are multiples of this. */
export const EXTERNAL_ALIGNMENT = 4096;

function errno(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : undefined;
}

async function readModelFile(path: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (e) {
    const code = errno(e);
    if (code === 'ENOENT') throw new InputError('ONNX model file not found', { file: path, hint: 'check the path', cause: e });
    if (code === 'EISDIR') {
      throw new InputError('expected an .onnx file but this is a directory', { file: path, hint: 'pass the model file inside it', cause: e });
    }
    throw new InputError(`cannot read the ONNX model (${code ?? String(e)})`, { file: path, hint: 'check the file permissions', cause: e });
  }
}

/** Resolve `location` against `dir`, rejecting absolute paths and `..` escapes. */
export function resolveLocation(dir: string, location: string, modelPath: string, tensor: string): string {
  const hint = 'external data must be a relative path inside the model folder; re-save the model with onnx.save_model';
  if (!location) throw new InputError(`tensor "${tensor}" has external data without a location`, { file: modelPath, hint });
  if (isAbsolute(location) || win32.isAbsolute(location) || location.includes('\0')) {
    throw new InputError(`tensor "${tensor}": external data location "${location}" is an absolute path`, { file: modelPath, hint });
  }
  const full = resolve(dir, normalize(location.replace(/\\/g, '/')));
  const rel = relative(dir, full);
  if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
    throw new InputError(`tensor "${tensor}": external data location "${location}" points outside the model folder`, { file: modelPath, hint });
  }
  return full;
}

function parseIntField(value: string | null | undefined, what: string, modelPath: string, tensor: string): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(Number(value))) {
    throw new InputError(`tensor "${tensor}": external data ${what} "${value}" is not a non-negative integer`, {
      file: modelPath,
      hint: 're-save the model with onnx.save_model',
    });
  }
  return Number(value);
}

/** Read exactly `length` bytes at `offset`. */
async function readAt(fh: FileHandle, offset: number, length: number): Promise<Uint8Array> {
  const buf = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, offset + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  if (done !== length) throw new RangeError(`short read: ${done} of ${length} bytes`);
  return buf;
}

/**
 * Read and decode an ONNX model and bring every external tensor into raw_data (locations are
 * relative to the model's directory). InputError for a missing/corrupt model, a missing data file,
 * a location outside the folder, or an offset/length beyond the data file.
 */
export async function loadModel(path: string): Promise<LoadedModel> {
  const abs = resolve(path);
  const bytes = await readModelFile(abs);
  const model = decodeModel(bytes, abs);
  const dir = dirname(abs);

  const pending: Array<{ t: onnx.ITensorProto; name: string; file: string; location: string; offset: number; length?: number }> = [];
  forEachTensor(model, (t) => {
    if (t.dataLocation !== EXTERNAL) return;
    const name = t.name ?? '';
    const kv = new Map((t.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
    const location = kv.get('location') ?? '';
    const file = resolveLocation(dir, location, abs, name);
    const offset = parseIntField(kv.get('offset'), 'offset', abs, name) ?? 0;
    const length = parseIntField(kv.get('length'), 'length', abs, name);
    pending.push({ t, name, file, location, offset, length });
  });

  const external: ExternalRef[] = [];
  const byFile = new Map<string, typeof pending>();
  for (const p of pending) {
    const list = byFile.get(p.file);
    if (list) list.push(p);
    else byFile.set(p.file, [p]);
  }
  let externalBytes = 0;
  for (const [file, list] of byFile) {
    let fh: FileHandle;
    try {
      fh = await open(file, 'r');
    } catch (e) {
      throw new InputError(`external data file "${relative(dir, file)}" (tensor "${list[0].name}") cannot be opened (${errno(e) ?? String(e)})`, {
        file: abs,
        hint: `copy ${basename(file)} next to the model; external data always travels with its .onnx file`,
        cause: e,
      });
    }
    try {
      const size = (await fh.stat()).size;
      externalBytes += size;
      for (const p of list) {
        const length = p.length ?? size - p.offset;
        if (p.offset + length > size || length < 0) {
          throw new InputError(
            `tensor "${p.name}": external data [${p.offset}, ${p.offset + length}) lies beyond the end of ${basename(file)} (${size} bytes)`,
            { file: abs, hint: 'the data file is truncated or belongs to another model; re-export or re-download both files' },
          );
        }
        const es = elementSize(p.t.dataType ?? 0);
        if (es !== undefined) {
          const want = Math.ceil(elementCount(dimsOf(p.t)) * es);
          if (want !== length) {
            throw new InputError(`tensor "${p.name}": external data holds ${length} bytes but its shape needs ${want}`, {
              file: abs,
              hint: 'the model and its data file do not match; re-export or re-download both',
            });
          }
        }
        const data = await readAt(fh, p.offset, length);
        const t = p.t as onnx.ITensorProto & Record<string, unknown>;
        t.rawData = data;
        t.externalData = [];
        delete t.dataLocation;
        external.push({ tensor: p.name, file, location: p.location, offset: p.offset, length });
      }
    } finally {
      await fh.close();
    }
  }
  return { model, path: abs, fileBytes: bytes.length, externalBytes, externalFiles: [...byFile.keys()], external };
}

// ------------------------------------------------------------------------------------ saving

interface Placement {
  offset: number;
  bytes: Uint8Array;
}

function payloadBytes(model: onnx.IModelProto): number {
  let n = 0;
  forEachTensor(model, (t) => {
    n += tensorByteLength(t);
  });
  return n;
}

function assertNoUnresolved(model: onnx.IModelProto): void {
  forEachTensor(model, (t, _site, path) => {
    if (t.dataLocation === EXTERNAL) {
      throw new GraphError(`tensor "${t.name ?? ''}" (${path}) still points at external data`, {
        node: t.name ?? undefined,
        hint: 'load models with loadModel(), which reads external data into memory, before saving them',
      });
    }
  });
}

/**
 * A copy of `model` whose large initializers (main graph and subgraphs) point into `location`;
 * `placements` receives their bytes. The input model is not modified (shared parts are reused).
 */
function externalize(model: onnx.IModelProto, location: string, minBytes: number, placements: Placement[]): onnx.IModelProto {
  let end = 0;
  const moveTensor = (t: onnx.ITensorProto): onnx.ITensorProto => {
    if ((t.dataType ?? 0) === DataType.STRING || tensorByteLength(t) < minBytes) return t;
    const bytes = tensorRawBytes(t);
    const offset = Math.ceil(end / EXTERNAL_ALIGNMENT) * EXTERNAL_ALIGNMENT;
    end = offset + bytes.length;
    placements.push({ offset, bytes });
    const copy: onnx.ITensorProto & Record<string, unknown> = { ...t };
    delete copy.rawData;
    copy.floatData = [];
    copy.int32Data = [];
    copy.int64Data = [];
    copy.doubleData = [];
    copy.uint64Data = [];
    copy.dataLocation = EXTERNAL;
    copy.externalData = [
      { key: 'location', value: location },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(bytes.length) },
    ];
    return copy;
  };
  const cloneGraph = (g: onnx.IGraphProto): onnx.IGraphProto => ({
    ...g,
    initializer: (g.initializer ?? []).map(moveTensor),
    node: (g.node ?? []).map((n) =>
      (n.attribute ?? []).some((a) => a.g || a.graphs?.length)
        ? {
            ...n,
            attribute: (n.attribute ?? []).map((a) =>
              a.g || a.graphs?.length ? { ...a, g: a.g ? cloneGraph(a.g) : a.g, graphs: (a.graphs ?? []).map(cloneGraph) } : a,
            ),
          }
        : n,
    ),
  });
  return { ...model, graph: model.graph ? cloneGraph(model.graph) : model.graph };
}

async function writeDataFile(path: string, placements: Placement[]): Promise<number> {
  const fh = await open(path, 'w');
  let size = 0;
  try {
    for (const p of placements) {
      let done = 0;
      while (done < p.bytes.length) {
        const { bytesWritten } = await fh.write(p.bytes, done, p.bytes.length - done, p.offset + done);
        done += bytesWritten;
      }
      size = Math.max(size, p.offset + p.bytes.length);
    }
    await fh.truncate(size);
  } finally {
    await fh.close();
  }
  return size;
}

/**
 * Save `model` to `path` (atomically: temp files renamed into place; the data file first). With
 * external data, initializers of at least `minExternalBytes` go to `<file name>.data` beside it.
 * The model passed in is not modified.
 */
export async function saveModel(model: onnx.IModelProto, path: string, opts: SaveOptions = {}): Promise<SaveResult> {
  const mode = opts.externalData ?? 'auto';
  const minBytes = opts.minExternalBytes ?? 1024;
  const abs = resolve(path);
  assertNoUnresolved(model);
  let encoded: Uint8Array | undefined;
  let useExternal = mode === 'always';
  if (mode === 'auto') {
    const limit = opts.autoLimitBytes ?? AUTO_EXTERNAL_LIMIT;
    if (payloadBytes(model) <= limit) {
      encoded = encodeModel(model);
      if (encoded.length > limit) encoded = undefined;
    }
    useExternal = encoded === undefined;
  }
  const location = `${basename(abs)}.data`;
  const dataPath = join(dirname(abs), location);
  const placements: Placement[] = [];
  if (useExternal) encoded = encodeModel(externalize(model, location, minBytes, placements));
  else if (!encoded) encoded = encodeModel(model);
  if (encoded.length > PROTOBUF_LIMIT) {
    throw new GraphError(`the serialized model is ${encoded.length} bytes, over protobuf's 2 GB limit`, {
      hint: mode === 'never' ? "save with externalData 'auto' or 'always'" : 'lower minExternalBytes so more tensors go to external data',
    });
  }
  await mkdir(dirname(abs), { recursive: true });
  const tmpModel = tempSibling(abs);
  const tmpData = placements.length > 0 ? tempSibling(dataPath) : undefined;
  try {
    let externalBytes = 0;
    if (tmpData) externalBytes = await writeDataFile(tmpData, placements);
    await writeFile(tmpModel, encoded);
    if (tmpData) await rename(tmpData, dataPath);
    await rename(tmpModel, abs);
    return { fileBytes: (await stat(abs)).size, externalBytes, files: tmpData ? [abs, dataPath] : [abs] };
  } catch (e) {
    await rm(tmpModel, { force: true });
    if (tmpData) await rm(tmpData, { force: true });
    throw e;
  }
}
