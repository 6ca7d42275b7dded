/**
 * One onnxruntime-node InferenceSession for a token-classification model: discovers which inputs the
 * graph declares (input_ids, attention_mask, token_type_ids, position_ids; int64 or int32), finds the
 * logits output, builds feeds from padded batches (reusing its input buffers), and measures load time.
 */
import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { GraphError, InputError } from '../errors.js';

/** What `NerSession.open` accepts. */
export interface SessionOptions {
  /** Intra-op threads; omitted → onnxruntime's default (one per physical core). */
  threads?: number;
  /** Inter-op threads; omitted → onnxruntime's default. */
  interOpThreads?: number;
  /** Graph optimization level; omitted → onnxruntime's default ('all'). */
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Record onnxruntime's per-node profile to `<prefix>_<timestamp>.json` (read it after `endProfiling`). */
  profileFilePrefix?: string;
  /** Write the graph onnxruntime runs (after its optimizations) to this .onnx file when the session is created. */
  optimizedModelFilePath?: string;
  /** Execution mode; omitted → onnxruntime's default ('sequential'). */
  executionMode?: 'sequential' | 'parallel';
  /** Whether idle intra-op threads spin for work (onnxruntime's default: yes); false lowers CPU use between runs. */
  intraOpSpinning?: boolean;
}

/** A padded batch as nested arrays (convenient; `runFlat` is the allocation-free path). */
export interface EncodedBatch {
  /** Token ids, `batch` rows of `seqLen` ids each (padded). */
  ids: ArrayLike<number>[];
  /** 1 for real tokens, 0 for padding; same shape as `ids`. */
  mask: ArrayLike<number>[];
  /** Segment ids; zeros when omitted. */
  typeIds?: ArrayLike<number>[];
  seqLen: number;
  batch: number;
}

/** A padded batch as row-major flat arrays of length `batch * seqLen`. */
export interface FlatBatch {
  ids: ArrayLike<number>;
  mask: ArrayLike<number>;
  /** Segment ids; zeros when omitted. */
  typeIds?: ArrayLike<number>;
  seqLen: number;
  batch: number;
}

/** Logits of one batch, row-major [batch, seq, labels]. */
export interface SessionOutput {
  logits: Float32Array;
  dims: [number, number, number];
}

/** The roles ranerc knows how to feed. */
export type InputRole = 'input_ids' | 'attention_mask' | 'token_type_ids' | 'position_ids';

/** One graph input and how ranerc feeds it. */
export interface SessionInput {
  name: string;
  role: InputRole;
  type: 'int64' | 'int32';
}

const ROLE_BY_NAME: Record<string, InputRole> = {
  input_ids: 'input_ids',
  attention_mask: 'attention_mask',
  token_type_ids: 'token_type_ids',
  position_ids: 'position_ids',
};

/**
 * Resolve a folder (HF `model.onnx`, Optimum `onnx/model.onnx`, or the folder's only .onnx file) or a file
 * to the ONNX file path.
 */
export async function resolveOnnxPath(pathOrFolder: string): Promise<string> {
  const abs = resolve(pathOrFolder);
  let st;
  try {
    st = await stat(abs);
  } catch {
    throw new InputError('model not found', {
      file: pathOrFolder,
      hint: 'pass a model folder (with model.onnx or onnx/model.onnx) or an .onnx file',
    });
  }
  if (!st.isDirectory()) return abs;
  for (const candidate of [join(abs, 'model.onnx'), join(abs, 'onnx', 'model.onnx')]) {
    try {
      if ((await stat(candidate)).isFile()) return candidate;
    } catch {
      // try the next layout
    }
  }
  const found: string[] = [];
  for (const d of [abs, join(abs, 'onnx')]) {
    try {
      for (const f of await readdir(d)) if (f.toLowerCase().endsWith('.onnx')) found.push(join(d, f));
    } catch {
      // no such subfolder
    }
  }
  if (found.length === 1) return found[0];
  throw new InputError(
    found.length === 0 ? 'folder has no model.onnx (nor onnx/model.onnx)' : `folder has several .onnx files and no model.onnx`,
    {
      file: pathOrFolder,
      hint: found.length === 0 ? 'export the model to ONNX into this folder as model.onnx' : 'pass the .onnx file you mean as --model FILE',
    },
  );
}

/** Runs async sections one at a time, in call order (a failed section does not block the next). */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.tail.then(fn, fn);
    this.tail = p.catch(() => undefined);
    return p;
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * A reusable input buffer. int64 inputs are written through an Int32Array view of the same memory
 * (low word = value, high word = sign), so filling never allocates BigInts.
 */
class InputBuffer {
  private buf = new ArrayBuffer(0);
  constructor(readonly type: 'int64' | 'int32') {}
  /** A view of `n` elements (grown when needed) plus an int32 view to write it through. */
  take(n: number): { data: BigInt64Array | Int32Array; words: Int32Array; stride: 1 | 2 } {
    const bytes = n * (this.type === 'int64' ? 8 : 4);
    if (this.buf.byteLength < bytes) this.buf = new ArrayBuffer(Math.max(bytes, this.buf.byteLength * 2));
    if (this.type === 'int32') {
      const data = new Int32Array(this.buf, 0, n);
      return { data, words: data, stride: 1 };
    }
    return { data: new BigInt64Array(this.buf, 0, n), words: new Int32Array(this.buf, 0, 2 * n), stride: 2 };
  }
}

/**
 * A token-classification session. Create with `NerSession.open`, run padded batches, `close()` when done.
 * Input buffers are reused between runs; concurrent `run` calls are queued and run one at a time.
 */
export class NerSession {
  /** Milliseconds `InferenceSession.create` took (reading the file and optimizing the graph). */
  readonly loadMs: number;
  /** The graph inputs and how each is fed. */
  readonly inputs: readonly SessionInput[];
  /** Name of the logits output. */
  readonly logitsName: string;
  /** The logits output's static last dimension, when the graph declares one. */
  readonly numLabels: number | undefined;
  private readonly buffers = new Map<string, InputBuffer>();
  private readonly queue = new SerialQueue();
  private closed = false;

  private constructor(
    readonly onnxPath: string,
    private readonly session: ort.InferenceSession,
    loadMs: number,
  ) {
    this.loadMs = loadMs;
    this.inputs = describeInputs(session, onnxPath);
    const out = findLogitsOutput(session, onnxPath);
    this.logitsName = out.name;
    this.numLabels = out.labels;
    for (const inp of this.inputs) this.buffers.set(inp.name, new InputBuffer(inp.type));
  }

  /** Open a model folder or .onnx file. Errors: InputError (missing/corrupt file), GraphError (unusable graph). */
  static async open(onnxPathOrFolder: string, opts: SessionOptions = {}): Promise<NerSession> {
    const onnxPath = await resolveOnnxPath(onnxPathOrFolder);
    // Warnings stay quiet (ranerc reports what matters); errors are also raised to the caller.
    const options: ort.InferenceSession.SessionOptions = { logSeverityLevel: 3 };
    if (opts.threads !== undefined) options.intraOpNumThreads = opts.threads;
    if (opts.interOpThreads !== undefined) options.interOpNumThreads = opts.interOpThreads;
    if (opts.graphOptimizationLevel !== undefined) options.graphOptimizationLevel = opts.graphOptimizationLevel;
    if (opts.profileFilePrefix !== undefined) {
      options.enableProfiling = true;
      options.profileFilePrefix = opts.profileFilePrefix;
    }
    if (opts.optimizedModelFilePath !== undefined) options.optimizedModelFilePath = opts.optimizedModelFilePath;
    if (opts.executionMode !== undefined) options.executionMode = opts.executionMode;
    if (opts.intraOpSpinning !== undefined) options.extra = { session: { intra_op: { allow_spinning: opts.intraOpSpinning ? '1' : '0' } } };
    const t0 = performance.now();
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(onnxPath, options);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      throw new InputError(`onnxruntime cannot load the model: ${firstLine(msg)}`, {
        file: onnxPath,
        hint: 'check that the file is a complete ONNX model (re-export or re-download it) and that its external data files sit beside it',
        cause: e,
      });
    }
    const loadMs = performance.now() - t0;
    try {
      return new NerSession(onnxPath, session, loadMs);
    } catch (e) {
      await session.release();
      throw e;
    }
  }

  /** Whether the graph takes a given input. */
  has(role: InputRole): boolean {
    return this.inputs.some((i) => i.role === role);
  }

  /** Run a batch given as nested arrays. */
  async run(batch: EncodedBatch): Promise<SessionOutput> {
    const { seqLen, batch: b } = batch;
    checkRows(batch.ids, b, seqLen, 'ids');
    checkRows(batch.mask, b, seqLen, 'mask');
    if (batch.typeIds) checkRows(batch.typeIds, b, seqLen, 'typeIds');
    const flatten = (rows: ArrayLike<number>[]): Int32Array => {
      const out = new Int32Array(b * seqLen);
      for (let r = 0; r < b; r++) out.set(Array.from(rows[r]), r * seqLen);
      return out;
    };
    return this.runFlat({
      ids: flatten(batch.ids),
      mask: flatten(batch.mask),
      typeIds: batch.typeIds ? flatten(batch.typeIds) : undefined,
      seqLen,
      batch: b,
    });
  }

  /** Run a batch given as flat row-major arrays (`batch * seqLen` long). */
  runFlat(batch: FlatBatch): Promise<SessionOutput> {
    return this.queue.run(() => this.runNow(batch));
  }

  private async runNow(batch: FlatBatch): Promise<SessionOutput> {
    if (this.closed) throw new Error('NerSession.run after close()');
    const { seqLen, batch: b } = batch;
    const n = b * seqLen;
    if (!Number.isInteger(b) || !Number.isInteger(seqLen) || b < 1 || seqLen < 1) {
      throw new RangeError(`batch and seqLen must be positive integers, got ${b} × ${seqLen}`);
    }
    if (batch.ids.length < n || batch.mask.length < n || (batch.typeIds && batch.typeIds.length < n)) {
      throw new RangeError(`flat batch arrays must hold batch × seqLen = ${n} values`);
    }
    const feeds: Record<string, ort.Tensor> = {};
    for (const inp of this.inputs) {
      const { data, words, stride } = this.buffers.get(inp.name)!.take(n);
      if (stride === 2 && !LITTLE_ENDIAN) fillBigInt(data as BigInt64Array, inp.role, batch, n, seqLen);
      else fillWords(words, stride, inp.role, batch, n, seqLen);
      feeds[inp.name] = new ort.Tensor(inp.type, data, [b, seqLen]);
    }
    let results: ort.InferenceSession.ReturnType;
    try {
      results = await this.session.run(feeds, [this.logitsName]);
    } catch (e) {
      throw new GraphError(`onnxruntime failed on a batch of ${b} × ${seqLen} tokens: ${firstLine(e instanceof Error ? e.message : String(e))}`, {
        file: this.onnxPath,
        hint: `if the model supports fewer than ${seqLen} tokens (position embeddings), pass a smaller --max-length`,
        cause: e,
      });
    }
    const out = results[this.logitsName] as ort.Tensor;
    const dims = out.dims;
    if (out.type !== 'float32' || dims.length !== 3 || dims[0] !== b || dims[1] !== seqLen) {
      throw new GraphError(
        `output "${this.logitsName}" has type ${out.type} and shape [${dims.join(', ')}], expected float32 [${b}, ${seqLen}, labels]`,
        { node: this.logitsName, file: this.onnxPath, hint: 'ranerc needs a token classifier whose logits are [batch, sequence, labels]' },
      );
    }
    return { logits: out.data as Float32Array, dims: [dims[0], dims[1], dims[2]] };
  }

  /** Stop onnxruntime's profiler and flush its JSON file (sessions opened with `profileFilePrefix`). */
  async endProfiling(): Promise<void> {
    await this.queue.run(async () => {
      this.session.endProfiling();
    });
  }

  /** Release the native session (idempotent). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue.run(() => this.session.release());
  }
}

/** Value of input `role` at flat position i. */
function valueAt(role: InputRole, batch: FlatBatch, i: number, seqLen: number): number {
  switch (role) {
    case 'input_ids':
      return batch.ids[i];
    case 'attention_mask':
      return batch.mask[i] ? 1 : 0;
    case 'token_type_ids':
      return batch.typeIds ? batch.typeIds[i] : 0;
    case 'position_ids':
      return i % seqLen;
  }
}

/** Fill through an int32 view; for int64 (stride 2, little-endian) the high word carries the sign. */
function fillWords(words: Int32Array, stride: 1 | 2, role: InputRole, batch: FlatBatch, n: number, seqLen: number): void {
  if (stride === 1) {
    if (role === 'input_ids') for (let i = 0; i < n; i++) words[i] = batch.ids[i];
    else for (let i = 0; i < n; i++) words[i] = valueAt(role, batch, i, seqLen);
    return;
  }
  for (let i = 0; i < n; i++) {
    const v = role === 'input_ids' ? batch.ids[i] : valueAt(role, batch, i, seqLen);
    words[2 * i] = v;
    words[2 * i + 1] = v < 0 ? -1 : 0;
  }
}

function fillBigInt(data: BigInt64Array, role: InputRole, batch: FlatBatch, n: number, seqLen: number): void {
  for (let i = 0; i < n; i++) data[i] = BigInt(valueAt(role, batch, i, seqLen));
}

function checkRows(rows: ArrayLike<number>[], batch: number, seqLen: number, what: string): void {
  if (rows.length !== batch || rows.some((r) => r.length !== seqLen)) {
    throw new RangeError(`${what} must have ${batch} rows of ${seqLen} values`);
  }
}

function firstLine(s: string): string {
  const line = s.split('\n').find((l) => l.trim().length > 0) ?? s;
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}

function describeInputs(session: ort.InferenceSession, onnxPath: string): SessionInput[] {
  const out: SessionInput[] = [];
  const unknown: string[] = [];
  for (const meta of session.inputMetadata) {
    const role = ROLE_BY_NAME[meta.name];
    if (!role) {
      unknown.push(meta.name);
      continue;
    }
    const type = meta.isTensor ? meta.type : 'non-tensor';
    if (type !== 'int64' && type !== 'int32') {
      throw new GraphError(`input "${meta.name}" has element type ${type}; ranerc feeds int64 or int32 token inputs`, {
        node: meta.name,
        file: onnxPath,
        hint: 're-export the model with integer (int64 or int32) token inputs',
      });
    }
    out.push({ name: meta.name, role, type });
  }
  if (unknown.length > 0) {
    throw new GraphError(
      `graph input${unknown.length > 1 ? 's' : ''} ${unknown.map((n) => `"${n}"`).join(', ')} unknown to ranerc`,
      {
        node: unknown[0],
        file: onnxPath,
        hint: 'ranerc feeds input_ids, attention_mask, token_type_ids and position_ids only; re-export the model with those input names',
      },
    );
  }
  if (!out.some((i) => i.role === 'input_ids')) {
    throw new GraphError('the graph has no "input_ids" input', {
      file: onnxPath,
      hint: 'export the model with input_names=["input_ids", "attention_mask", "token_type_ids"]',
    });
  }
  return out;
}

function findLogitsOutput(session: ort.InferenceSession, onnxPath: string): { name: string; labels: number | undefined } {
  const metas = session.outputMetadata;
  const isFloat = (m: ort.InferenceSession.ValueMetadata): m is ort.InferenceSession.TensorValueMetadata =>
    m.isTensor && m.type === 'float32';
  const labelsOf = (m: ort.InferenceSession.ValueMetadata): number | undefined => {
    if (!m.isTensor || m.shape.length === 0) return undefined;
    const last = m.shape[m.shape.length - 1];
    return typeof last === 'number' && last > 0 ? last : undefined;
  };
  const named = metas.find((m) => m.name === 'logits');
  if (named) {
    if (named.isTensor && named.type !== 'float32') {
      throw new GraphError(`output "logits" has element type ${named.type}, expected float32`, {
        node: 'logits',
        file: onnxPath,
        hint: 'ranerc needs float32 logits [batch, sequence, labels]',
      });
    }
    return { name: named.name, labels: labelsOf(named) };
  }
  const threeD = metas.filter((m) => isFloat(m) && m.shape.length === 3);
  if (threeD.length === 1) return { name: threeD[0].name, labels: labelsOf(threeD[0]) };
  // Shapes may be undeclared: a single float output is taken as the logits.
  const floats = metas.filter(isFloat);
  if (threeD.length === 0 && floats.length === 1 && floats[0].shape.length === 0) {
    return { name: floats[0].name, labels: undefined };
  }
  const names = metas.map((m) => `"${m.name}"`).join(', ');
  throw new GraphError(
    threeD.length > 1
      ? `cannot tell which output holds the logits: several 3-D float outputs (${names})`
      : `no output looks like token logits (outputs: ${names})`,
    {
      node: threeD[0]?.name ?? metas[0]?.name,
      file: onnxPath,
      hint: 'name the token-classification output "logits" (float32 [batch, sequence, labels]) when exporting',
    },
  );
}

/** The onnxruntime-node version in use (for reports). */
export function onnxruntimeVersion(): string {
  const versions = ort.env.versions as Record<string, string | undefined>;
  return versions.node ?? versions.common ?? 'unknown';
}
