/**
 * Model folders: find, read and validate a model (Hugging Face layout `DIR/model.onnx`, Optimum /
 * hub layout `DIR/onnx/model.onnx`, or a bare `.onnx` plus `--labels` / `--vocab`), and write new
 * ones atomically (checked by onnxruntime before they appear).
 */
import { copyFile, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join, relative, resolve } from 'node:path';
import type { CrfParams } from '../ner/types.js';
import { parseVocab } from '../ner/tokenizer.js';
import { writeBertTokenizerJson } from '../ner/tokenizer-json.js';
import { GraphError, InputError } from '../errors.js';
import { atomicWriteDir } from '../util/fs.js';
import { decodeModel, type onnx } from './codec.js';
import { resolveLocation, saveModel, type ExternalDataMode } from './external.js';
import { convertAtLoad, hasIntegerDecodeOutput } from './convert/load.js';
import { forEachTensor } from './graph.js';
import { defaultLayout, onnxRelPath, ortConfig, quantizedOps, type Layout } from './layout.js';
import { EXTERNAL } from './tensor.js';
import type { ModelConfig, ModelFolder, Provenance, TokenizerConfig } from './types.js';

export const CRF_FORMAT = 'ranerc-crf/1';

/** Hugging Face BertTokenizer defaults, used for keys tokenizer_config.json does not set. */
export const BERT_TOKENIZER_DEFAULTS: TokenizerConfig = {
  do_lower_case: true,
  strip_accents: null,
  tokenize_chinese_chars: true,
  unk_token: '[UNK]',
  cls_token: '[CLS]',
  sep_token: '[SEP]',
  pad_token: '[PAD]',
  mask_token: '[MASK]',
};

/** Largest model_max_length taken as a real limit (HF writes int(1e30) for "unset"). */
const SANE_MAX_LENGTH = 1_000_000;
const DEFAULT_MAX_LENGTH = 512;

/** Files that never belong to a compressed model folder: other ONNX files, other frameworks' weights. */
const FOREIGN_WEIGHTS = /\.(onnx|onnx\.data|onnx_data|bin|safetensors|pt|pth|ckpt|h5|msgpack|ot|tflite|pb)$/i;

// ------------------------------------------------------------------------------------ helpers

function errno(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : undefined;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

async function readText(path: string, what: string, hint: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    const code = errno(e);
    throw new InputError(code === 'ENOENT' ? `${what} not found` : `cannot read ${what} (${code ?? String(e)})`, {
      file: path,
      hint,
      cause: e,
    });
  }
}

/** 1-based line of character offset `pos` in `text`. */
function lineAt(text: string, pos: number): number {
  let line = 1;
  for (let i = 0; i < pos && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/** 1-based line where `"key"` first appears (after `"section"` when given), if it does. */
function lineOfKey(text: string, key: string, section?: string): number | undefined {
  const from = section ? text.indexOf(`"${section}"`) : 0;
  if (from < 0) return undefined;
  const i = text.indexOf(`"${key}"`, from);
  return i < 0 ? undefined : lineAt(text, i);
}

function parseJson(text: string, path: string, hint: string): unknown {
  try {
    return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const pos = /position (\d+)/.exec(msg);
    const lc = /line (\d+)/.exec(msg);
    const line = lc ? Number(lc[1]) : pos ? lineAt(text, Number(pos[1])) : undefined;
    throw new InputError(`invalid JSON: ${msg}`, { file: path, line, hint, cause: e });
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// ------------------------------------------------------------------------------------ labels

/**
 * Label names by id from an `id2label` object: ids must be the integers 0..n-1 (as JSON keys),
 * names non-empty and distinct.
 */
export function labelsFromId2Label(id2label: unknown, file: string, text = ''): string[] {
  const hint = 'config.json needs "id2label": {"0": "O", "1": "B-PER", ...} with ids 0..n-1';
  if (!isObject(id2label)) {
    throw new InputError('"id2label" must be an object mapping ids to label names', { file, line: lineOfKey(text, 'id2label'), hint });
  }
  const entries = Object.entries(id2label);
  if (entries.length === 0) throw new InputError('"id2label" is empty', { file, line: lineOfKey(text, 'id2label'), hint });
  const labels = new Array<string>(entries.length);
  for (const [key, value] of entries) {
    const line = lineOfKey(text, key, 'id2label');
    if (!/^(0|[1-9]\d*)$/.test(key)) throw new InputError(`id2label key "${key}" is not a non-negative integer`, { file, line, hint });
    const id = Number(key);
    if (id >= entries.length) {
      const missing = [...Array(entries.length).keys()].filter((i) => !(String(i) in id2label));
      throw new InputError(`id2label ids are not contiguous: has ${id} but lacks ${missing.join(', ')} (${entries.length} labels need ids 0..${entries.length - 1})`, {
        file,
        line,
        hint,
      });
    }
    if (typeof value !== 'string' || value.length === 0) {
      throw new InputError(`id2label[${key}] must be a non-empty string`, { file, line, hint });
    }
    labels[id] = value;
  }
  checkDistinct(labels, file, (i) => lineOfKey(text, String(i), 'id2label'));
  return labels;
}

function checkDistinct(labels: string[], file: string, lineOf: (i: number) => number | undefined): void {
  const seen = new Map<string, number>();
  labels.forEach((l, i) => {
    const prev = seen.get(l);
    if (prev !== undefined) {
      throw new InputError(`label "${l}" appears twice (ids ${prev} and ${i})`, {
        file,
        line: lineOf(i),
        hint: 'every label name must be distinct',
      });
    }
    seen.set(l, i);
  });
}

/** Read a --labels file: one label per line, or JSON (`{"id2label": {...}}`, `{"0": "O", ...}` or `["O", ...]`). */
export async function readLabelsFile(path: string): Promise<string[]> {
  const text = await readText(path, 'labels file', 'pass --labels FILE with one label per line, or a JSON with "id2label"');
  const trimmed = text.replace(/^\ufeff/, '').trimStart();
  if (extname(path).toLowerCase() === '.json' || trimmed.startsWith('{') || trimmed.startsWith('[')) {
    const json = parseJson(text, path, 'fix the JSON, or use a text file with one label per line');
    if (Array.isArray(json)) {
      json.forEach((l, i) => {
        if (typeof l !== 'string' || l.length === 0) {
          throw new InputError(`label ${i} must be a non-empty string`, { file: path, hint: 'a JSON labels list is ["O", "B-PER", ...]' });
        }
      });
      if (json.length === 0) throw new InputError('the labels list is empty', { file: path, hint: 'list the labels in id order' });
      checkDistinct(json as string[], path, () => undefined);
      return json as string[];
    }
    if (isObject(json) && 'id2label' in json) return labelsFromId2Label(json.id2label, path, text);
    if (isObject(json) && Object.keys(json).length > 0 && Object.keys(json).every((k) => /^\d+$/.test(k))) {
      return labelsFromId2Label(json, path, text);
    }
    throw new InputError('JSON labels file has no "id2label"', {
      file: path,
      hint: 'use {"id2label": {"0": "O", ...}}, a JSON list of labels, or a text file with one label per line',
    });
  }
  const lines = text.replace(/^\ufeff/, '').split('\n').map((l) => l.replace(/\r$/, '').trim());
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  if (lines.length === 0) throw new InputError('the labels file is empty', { file: path, hint: 'write one label per line, in id order' });
  lines.forEach((l, i) => {
    if (l === '') throw new InputError('empty label line', { file: path, line: i + 1, hint: 'write one label per line, in id order, without blank lines' });
  });
  checkDistinct(lines, path, (i) => i + 1);
  return lines;
}

// ------------------------------------------------------------------------------------ CRF

/** Validate a parsed crf.json against the model's labels. */
export function parseCrf(json: unknown, labels: string[], file: string, text = ''): CrfParams {
  const hint = `crf.json must be {"format":"${CRF_FORMAT}","labels":[...],"transitions":[[...]],"start_transitions":[...],"end_transitions":[...]}`;
  if (!isObject(json)) throw new InputError('crf.json must be a JSON object', { file, hint });
  if (json.format !== CRF_FORMAT) {
    throw new InputError(`unknown CRF format ${JSON.stringify(json.format)} (expected "${CRF_FORMAT}")`, { file, line: lineOfKey(text, 'format'), hint });
  }
  const crfLabels = json.labels;
  if (!Array.isArray(crfLabels) || !crfLabels.every((l) => typeof l === 'string')) {
    throw new InputError('"labels" must be a list of label names', { file, line: lineOfKey(text, 'labels'), hint });
  }
  const n = labels.length;
  const differ = crfLabels.length !== n ? -1 : crfLabels.findIndex((l, i) => l !== labels[i]);
  if (crfLabels.length !== n || differ >= 0) {
    throw new InputError(
      crfLabels.length !== n
        ? `crf.json has ${crfLabels.length} labels but the model has ${n}`
        : `crf.json label ${differ} is "${crfLabels[differ]}" but the model's label ${differ} is "${labels[differ]}"`,
      { file, line: lineOfKey(text, 'labels'), hint: 'crf.json "labels" must list the model\'s id2label names in id order; re-export the CRF' },
    );
  }
  const vector = (key: string): number[] => {
    const v = json[key];
    if (!Array.isArray(v) || v.length !== n || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      throw new InputError(`"${key}" must be a list of ${n} finite numbers`, { file, line: lineOfKey(text, key), hint });
    }
    return v as number[];
  };
  const trans = json.transitions;
  if (!Array.isArray(trans) || trans.length !== n) {
    throw new InputError(`"transitions" must be a ${n}×${n} matrix (from × to)`, { file, line: lineOfKey(text, 'transitions'), hint });
  }
  trans.forEach((row, i) => {
    if (!Array.isArray(row) || row.length !== n || !row.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      throw new InputError(`"transitions" row ${i} must be ${n} finite numbers`, { file, line: lineOfKey(text, 'transitions'), hint });
    }
  });
  const crf: CrfParams = { labels: [...labels], transitions: trans as number[][], start: vector('start_transitions'), end: vector('end_transitions') };
  if (json.positions !== undefined) {
    if (json.positions !== 'tokens' && json.positions !== 'words') {
      throw new InputError(`"positions" must be "tokens" or "words", not ${JSON.stringify(json.positions)}`, {
        file,
        line: lineOfKey(text, 'positions'),
        hint: '"words": the CRF runs over the first sub-token of each word (ModelScope TransformerCRF); "tokens" (the default): over every sub-token',
      });
    }
    if (json.positions === 'words') crf.positions = 'words';
  }
  return crf;
}

/** The crf.json document for `crf`. */
export function crfToJson(crf: CrfParams): Record<string, unknown> {
  return {
    format: CRF_FORMAT,
    labels: crf.labels,
    transitions: crf.transitions,
    start_transitions: crf.start,
    end_transitions: crf.end,
    ...(crf.positions === 'words' ? { positions: 'words' } : {}),
  };
}

// ------------------------------------------------------------------------------------ loading

function normalizeTokenizerConfig(raw: Record<string, unknown>): TokenizerConfig {
  const out: TokenizerConfig = { ...BERT_TOKENIZER_DEFAULTS, ...raw };
  for (const key of ['unk_token', 'cls_token', 'sep_token', 'pad_token', 'mask_token'] as const) {
    const v = raw[key];
    // newer transformers write special tokens as AddedToken objects {"content": "[UNK]", ...}
    if (isObject(v) && typeof v.content === 'string') out[key] = v.content;
  }
  return out;
}

/** Model types whose position ids are offset by padding_idx + 1 (Hugging Face's RoBERTa embeddings). */
const ROBERTA_POSITIONS = new Set(['roberta', 'xlm-roberta', 'xlm-roberta-xl', 'camembert', 'longformer', 'data2vec-text']);

/** model_max_length when sane (capped by max_position_embeddings), else max_position_embeddings, else 512. */
export function resolveMaxLength(tok: TokenizerConfig, config: ModelConfig): number {
  const maxPos = config.max_position_embeddings;
  let pos = typeof maxPos === 'number' && Number.isInteger(maxPos) && maxPos > 0 ? maxPos : undefined;
  // RoBERTa-family position ids start at padding_idx + 1 (create_position_ids_from_input_ids), so
  // max_position_embeddings 514 holds 512 tokens
  const pad = config.pad_token_id;
  if (pos !== undefined && typeof pad === 'number' && ROBERTA_POSITIONS.has(String(config.model_type)) && pos > pad + 1) pos -= pad + 1;
  const mml = tok.model_max_length;
  if (typeof mml === 'number' && Number.isInteger(mml) && mml > 0 && mml <= SANE_MAX_LENGTH) return pos ? Math.min(mml, pos) : mml;
  return pos ?? DEFAULT_MAX_LENGTH;
}

async function findOnnxInDir(dir: string): Promise<string> {
  for (const candidate of [join(dir, 'model.onnx'), join(dir, 'onnx', 'model.onnx')]) if (await isFile(candidate)) return candidate;
  const onnxFiles = async (d: string): Promise<string[]> => {
    try {
      return (await readdir(d)).filter((f) => f.toLowerCase().endsWith('.onnx')).map((f) => join(d, f));
    } catch {
      return [];
    }
  };
  const found = [...(await onnxFiles(dir)), ...(await onnxFiles(join(dir, 'onnx')))];
  if (found.length === 1) return found[0];
  if (found.length === 0) {
    throw new InputError('no model.onnx in the model folder (looked for model.onnx and onnx/model.onnx)', {
      file: join(dir, 'model.onnx'),
      hint: 'export the model to ONNX first (e.g. optimum-cli export onnx), or pass the .onnx file itself',
    });
  }
  throw new InputError(`the folder has several ONNX files and no model.onnx: ${found.map((f) => relative(dir, f)).join(', ')}`, {
    file: dir,
    hint: 'pass the .onnx file you mean as --model FILE',
  });
}

interface OnnxCheck {
  externalFiles: string[];
  /** The integer output of a CRF-in-graph export (no float output), to be converted at load. */
  decodeOutput?: string;
  logits?: { name: string; classes: number };
}

/** Decode the ONNX file (InputError when missing/empty/corrupt) and read what folder validation needs. */
async function checkOnnx(onnxPath: string): Promise<OnnxCheck> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(onnxPath);
  } catch (e) {
    throw new InputError(errno(e) === 'ENOENT' ? 'ONNX model file not found' : `cannot read the ONNX model (${errno(e) ?? String(e)})`, {
      file: onnxPath,
      hint: 'check the path',
      cause: e,
    });
  }
  const model = decodeModel(bytes, onnxPath);
  const dir = dirname(onnxPath);
  const externalFiles = new Set<string>();
  forEachTensor(model, (t) => {
    if (t.dataLocation !== EXTERNAL) return;
    const location = (t.externalData ?? []).find((e) => e.key === 'location')?.value ?? '';
    externalFiles.add(resolveLocation(dir, location, onnxPath, t.name ?? ''));
  });
  for (const f of externalFiles) {
    if (!(await isFile(f))) {
      throw new InputError(`external data file "${relative(dir, f)}" is missing`, {
        file: onnxPath,
        hint: `copy ${basename(f)} next to the model; external data always travels with its .onnx file`,
      });
    }
  }
  const outputs = model.graph?.output ?? [];
  const out = outputs.find((o) => o.name === 'logits') ?? outputs[0];
  const tt = out?.type?.tensorType;
  const dims = tt?.shape?.dim ?? [];
  const last = dims[dims.length - 1];
  const floatOut = tt?.elemType === 1 || tt?.elemType === 10 || tt?.elemType === 11 || tt?.elemType === 16;
  let logits: OnnxCheck['logits'];
  if (floatOut && last && last.dimValue != null && Object.prototype.hasOwnProperty.call(last, 'dimValue')) {
    const classes = Number(last.dimValue.toString());
    if (classes > 0) logits = { name: out.name ?? 'output 0', classes };
  }
  return { externalFiles: [...externalFiles], logits, decodeOutput: hasIntegerDecodeOutput(model) };
}

async function listExtraFiles(dir: string, exclude: Set<string>): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && !e.name.startsWith('.') && !FOREIGN_WEIGHTS.test(e.name) && !exclude.has(resolve(dir, e.name)))
    .map((e) => e.name)
    .sort();
}

/**
 * Resolve and validate a model: a folder (`DIR/model.onnx` or `DIR/onnx/model.onnx`, with
 * config.json and vocab.txt beside it) or a bare .onnx file (labels from `labels` or a config.json
 * beside it; vocab from `vocab` or a vocab.txt beside it). Every problem is an InputError naming the
 * file, with a hint.
 */
export async function loadModelFolder(opts: { model: string; labels?: string; vocab?: string }): Promise<ModelFolder> {
  const modelArg = resolve(opts.model);
  let st;
  try {
    st = await stat(modelArg);
  } catch (e) {
    throw new InputError('model path does not exist', {
      file: modelArg,
      hint: 'pass a model folder (with model.onnx, config.json, vocab.txt) or a .onnx file',
      cause: e,
    });
  }
  const bare = !st.isDirectory();
  let dir: string;
  let onnxPath: string;
  if (bare) {
    onnxPath = modelArg;
    dir = dirname(onnxPath);
    // Optimum/hub layout: the file sits in onnx/ under the folder that has config.json
    if (basename(dir) === 'onnx' && !(await isFile(join(dir, 'config.json'))) && (await isFile(join(dirname(dir), 'config.json')))) {
      dir = dirname(dir);
    }
  } else {
    dir = modelArg;
    onnxPath = await findOnnxInDir(dir);
    const sub = dirname(onnxPath);
    if (sub !== dir && !(await isFile(join(dir, 'config.json'))) && (await isFile(join(sub, 'config.json')))) dir = sub; // a self-contained onnx/ folder
  }
  const st2 = await stat(onnxPath).catch(() => undefined);
  if (!st2 || !st2.isFile()) throw new InputError('ONNX model file not found', { file: onnxPath, hint: 'check the path' });
  if (st2.size === 0) throw new InputError('ONNX file is empty', { file: onnxPath, hint: 're-export or re-download the model' });

  // config.json and labels
  const configPath = join(dir, 'config.json');
  let config: ModelConfig;
  let labels: string[];
  let labelsPath: string;
  const hasConfig = await isFile(configPath);
  let configText = '';
  let rawConfig: Record<string, unknown> = {};
  if (hasConfig) {
    configText = await readText(configPath, 'config.json', 'fix the file permissions');
    const parsed = parseJson(configText, configPath, 'fix config.json (it must be a JSON object)');
    if (!isObject(parsed)) throw new InputError('config.json must be a JSON object', { file: configPath, hint: 'write config.json as {"id2label": {...}, ...}' });
    rawConfig = parsed;
  }
  if (opts.labels) {
    labelsPath = resolve(opts.labels);
    labels = await readLabelsFile(labelsPath);
  } else if (hasConfig) {
    labelsPath = configPath;
    if (!('id2label' in rawConfig)) {
      throw new InputError('config.json has no "id2label"', {
        file: configPath,
        hint: 'add "id2label": {"0": "O", "1": "B-PER", ...} to config.json, or pass --labels FILE',
      });
    }
    labels = labelsFromId2Label(rawConfig.id2label, configPath, configText);
  } else {
    throw new InputError(bare ? 'no labels for this model: there is no config.json beside it' : 'config.json not found', {
      file: configPath,
      hint: bare ? 'pass --labels FILE (one label per line, or a JSON with "id2label")' : 'a model folder needs config.json with "id2label"; or pass --labels FILE',
    });
  }
  const id2label = Object.fromEntries(labels.map((l, i) => [String(i), l]));
  config = { ...rawConfig, id2label } as ModelConfig;
  if (opts.labels || !isObject(rawConfig.label2id)) config.label2id = Object.fromEntries(labels.map((l, i) => [l, i]));

  // tokenizer: tokenizer.json (Hugging Face fast tokenizer: WordPiece, BPE or Unigram) and/or a WordPiece
  // vocab.txt; an explicit --vocab wins over the folder's tokenizer.json
  const jsonPath = join(dir, 'tokenizer.json');
  const hasJson = !opts.vocab && (await isFile(jsonPath));
  const vocabCandidate = opts.vocab ? resolve(opts.vocab) : join(dir, 'vocab.txt');
  let vocabPath: string | undefined;
  if (await isFile(vocabCandidate)) {
    vocabPath = vocabCandidate;
  } else if (opts.vocab || !hasJson) {
    throw new InputError(opts.vocab ? 'vocab.txt not found' : 'no tokenizer: neither tokenizer.json nor vocab.txt is beside the model', {
      file: vocabCandidate,
      hint: opts.vocab ? 'check the --vocab path' : 'put the tokenizer.json (Hugging Face fast tokenizer) or the WordPiece vocab.txt the model was trained with beside it, or pass --vocab FILE',
    });
  }
  if (vocabPath) {
    const vocabText = await readText(vocabPath, 'vocab file', 'check the --vocab path');
    const vocabLines = vocabText.split('\n');
    if (vocabLines[vocabLines.length - 1] === '') vocabLines.pop();
    if (vocabLines.length === 0) throw new InputError('the vocab file is empty', { file: vocabPath, hint: 'use the vocab.txt the model was trained with' });
    if (typeof config.vocab_size === 'number' && vocabLines.length > config.vocab_size) {
      throw new InputError(`vocab has ${vocabLines.length} tokens but config.json says vocab_size ${config.vocab_size}`, {
        file: vocabPath,
        hint: `token ids would run past the embedding table; use the vocab.txt that belongs to ${configPath}`,
      });
    }
  }

  // tokenizer_config.json
  const tokPath = join(dir, 'tokenizer_config.json');
  let tokenizerConfig = { ...BERT_TOKENIZER_DEFAULTS };
  if (await isFile(tokPath)) {
    const parsed = parseJson(await readText(tokPath, 'tokenizer_config.json', 'fix the file permissions'), tokPath, 'fix tokenizer_config.json');
    if (!isObject(parsed)) throw new InputError('tokenizer_config.json must be a JSON object', { file: tokPath, hint: 'fix or delete tokenizer_config.json' });
    tokenizerConfig = normalizeTokenizerConfig(parsed);
  }

  // ONNX: decodes, external data present, logits width = number of labels
  const check = await checkOnnx(onnxPath);
  if (check.logits && check.logits.classes !== labels.length) {
    throw new InputError(
      `the model's output "${check.logits.name}" has ${check.logits.classes} classes but ${relative(process.cwd(), labelsPath) || labelsPath} lists ${labels.length} labels`,
      { file: onnxPath, hint: `the labels (${labelsPath}) do not belong to this model; use the config.json/labels it was trained with` },
    );
  }

  // crf.json
  const crfPath = join(dir, 'crf.json');
  let crf: CrfParams | undefined;
  if (await isFile(crfPath)) {
    const text = await readText(crfPath, 'crf.json', 'fix the file permissions');
    crf = parseCrf(parseJson(text, crfPath, 'fix crf.json'), labels, crfPath, text);
  }

  // ranerc.json
  const provPath = join(dir, 'ranerc.json');
  let provenance: Provenance | undefined;
  if (await isFile(provPath)) {
    const parsed = parseJson(await readText(provPath, 'ranerc.json', 'fix the file permissions'), provPath, 'fix or delete ranerc.json');
    if (!isObject(parsed) || typeof parsed.command !== 'string' || (parsed.history !== undefined && !Array.isArray(parsed.history))) {
      throw new InputError('ranerc.json is not ranerc provenance (needs "command", and "history" must be a list)', {
        file: provPath,
        hint: 'delete ranerc.json; ranerc writes it when it produces a folder',
      });
    }
    provenance = parsed as unknown as Provenance;
  }

  const exclude = new Set([resolve(onnxPath), ...check.externalFiles.map((f) => resolve(f))]);
  const extraFiles = bare && !hasConfig ? [] : await listExtraFiles(dir, exclude);

  // CRF-in-graph export (e.g. ModelScope "predictions"): work on the converted emissions graph; the CRF the
  // graph decodes with is the model's CRF (a crf.json beside such a graph is not used)
  let converted: Awaited<ReturnType<typeof convertAtLoad>> | undefined;
  if (check.decodeOutput) {
    converted = await convertAtLoad(onnxPath, labels);
    crf = converted.crf;
  }

  const folder: ModelFolder = {
    dir,
    onnxPath: converted?.onnxPath ?? onnxPath,
    bare,
    config,
    labels,
    tokenizerConfig,
    maxLength: resolveMaxLength(tokenizerConfig, config),
    extraFiles,
    labelsPath,
    externalDataFiles: converted ? [] : check.externalFiles,
  };
  if (converted) folder.conversion = converted.conversion;
  if (crf) folder.crf = crf;
  if (provenance) folder.provenance = provenance;
  if (vocabPath) folder.vocabPath = vocabPath;
  if (hasJson) folder.tokenizerPath = jsonPath;
  return folder;
}

// ------------------------------------------------------------------------------------ writing

export interface WriteFolderOptions {
  provenance: Provenance;
  /** CRF for the new folder: undefined keeps the source's, null drops it. */
  crf?: CrfParams | null;
  /** Keys merged over the source config.json. */
  config?: Partial<ModelConfig>;
  externalData?: ExternalDataMode;
  /** Where the ONNX file goes (src/onnx/layout.ts); default: the command's --layout, else ranerc. */
  layout?: Layout;
}

export interface WriteFolderResult {
  dir: string;
  onnxPath: string;
  /** Bytes of model.onnx plus its external data. */
  sizeBytes: number;
  /** Bytes of every file in the folder. */
  totalBytes: number;
}

const REGENERATED = new Set(['config.json', 'vocab.txt', 'crf.json', 'ranerc.json', 'ort_config.json']);

function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/** The node an onnxruntime load error names ("Node (name) Op ...", "In Node, ("name", Op, ...", "node with name 'name'"). */
export function ortErrorNode(message: string): string | undefined {
  const m = /Node \(([^)]*)\) Op/.exec(message) ?? /In Node, \("([^"]*)"/.exec(message) ?? /node with name '([^']*)'/.exec(message);
  return m?.[1] || undefined;
}

/**
 * Write a complete model folder at `outDir`, atomically: model.onnx (+ external data; where the
 * layout puts it: `onnx/model_quantized.onnx` for an INT8 graph in the transformers.js layout), config.json
 * (source merged with `opts.config`), vocab.txt and the source's other tokenizer files, crf.json,
 * ranerc.json (with the source's provenance appended to `history`). The written model is opened
 * with onnxruntime before the folder is moved into place; if that fails, a GraphError is thrown
 * and nothing is left behind (an existing `outDir` is kept as it was).
 */
export async function writeModelFolder(
  outDir: string,
  src: ModelFolder,
  model: onnx.IModelProto,
  opts: WriteFolderOptions,
): Promise<WriteFolderResult> {
  const dir = resolve(outDir);
  const crf = opts.crf === null ? undefined : (opts.crf ?? src.crf);
  const config: ModelConfig = { ...src.config, ...opts.config } as ModelConfig;
  const labels = labelsFromId2Label(config.id2label, join(dir, 'config.json'));
  if (crf && (crf.labels.length !== labels.length || crf.labels.some((l, i) => l !== labels[i]))) {
    throw new GraphError(`the CRF's labels (${crf.labels.join(', ')}) differ from the model's (${labels.join(', ')})`, {
      hint: 'pass a CRF whose labels equal the config id2label order, or crf: null to drop it',
    });
  }
  const history = opts.provenance.history ?? [
    ...(src.provenance?.history ?? []),
    ...(src.provenance ? [Object.fromEntries(Object.entries(src.provenance).filter(([k]) => k !== 'history')) as Omit<Provenance, 'history'>] : []),
    ...(src.conversion
      ? [{ ranerc: opts.provenance.ranerc, command: 'convert (at load)', createdAt: opts.provenance.createdAt, source: { path: src.conversion.source, sha256: src.conversion.sourceSha256 }, settings: { note: src.conversion.note } }]
      : []),
  ];
  const provenance: Provenance = { ...opts.provenance, history };
  const layout = opts.layout ?? defaultLayout();
  const int8Ops = quantizedOps(model);
  const onnxRel = onnxRelPath(layout, int8Ops.length > 0);

  const { sizeBytes, totalBytes } = await atomicWriteDir(dir, async (tmp) => {
    await mkdir(dirname(join(tmp, onnxRel)), { recursive: true });
    const saved = await saveModel(model, join(tmp, onnxRel), { externalData: opts.externalData ?? 'auto' });
    if (layout === 'optimum' && int8Ops.length > 0) await writeFile(join(tmp, 'ort_config.json'), json(ortConfig(model, int8Ops)));
    await writeFile(join(tmp, 'config.json'), json(config));
    if (src.vocabPath) await copyFile(src.vocabPath, join(tmp, 'vocab.txt'));
    for (const f of src.extraFiles) {
      if (REGENERATED.has(f)) continue;
      await mkdir(dirname(join(tmp, f)), { recursive: true });
      await copyFile(join(src.dir, f), join(tmp, f));
    }
    if (!src.extraFiles.includes('tokenizer_config.json')) {
      await writeFile(join(tmp, 'tokenizer_config.json'), json(src.tokenizerConfig));
    }
    // the fast-tokenizer file transformers.js and @huggingface/tokenizers read (a source's own is copied above)
    if (!src.extraFiles.includes('tokenizer.json') && src.vocabPath) {
      await writeBertTokenizerJson(tmp, parseVocab(await readFile(src.vocabPath, 'utf8')), src.tokenizerConfig, src.vocabPath);
    }
    if (crf) await writeFile(join(tmp, 'crf.json'), json(crfToJson(crf)));
    await writeFile(join(tmp, 'ranerc.json'), json(provenance));

    const ort = await import('onnxruntime-node');
    try {
      const session = await ort.InferenceSession.create(join(tmp, onnxRel), { logSeverityLevel: 3 });
      await session.release();
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      throw new GraphError(`onnxruntime cannot load the model ranerc produced: ${msg}`, {
        node: ortErrorNode(msg),
        hint: 'this is a ranerc bug or an operator onnxruntime does not support; the output folder was not written',
        cause: e,
      });
    }
    let total = 0;
    for (const e of await readdir(tmp, { recursive: true, withFileTypes: true })) {
      if (e.isFile()) total += (await stat(join(e.parentPath, e.name))).size;
    }
    return { sizeBytes: saved.fileBytes + saved.externalBytes, totalBytes: total };
  });
  return { dir, onnxPath: join(dir, onnxRel), sizeBytes, totalBytes };
}

/** Sizes of a folder's ONNX model (with external data) and of everything ranerc counts as the folder. */
export async function folderSize(folder: ModelFolder): Promise<{ onnxBytes: number; totalBytes: number }> {
  const size = async (p: string): Promise<number> => {
    try {
      return (await stat(p)).size;
    } catch {
      return 0;
    }
  };
  const external = folder.externalDataFiles ?? (await checkOnnx(folder.onnxPath)).externalFiles;
  let onnxBytes = await size(folder.onnxPath);
  for (const f of external) onnxBytes += await size(f);
  let totalBytes = onnxBytes;
  for (const f of folder.extraFiles) totalBytes += await size(join(folder.dir, f));
  if (folder.vocabPath && (!folder.extraFiles.includes(basename(folder.vocabPath)) || resolve(dirname(folder.vocabPath)) !== resolve(folder.dir))) {
    totalBytes += await size(folder.vocabPath);
  }
  return { onnxBytes, totalBytes };
}
