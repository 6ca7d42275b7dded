/**
 * Recipes: read a YAML file (plus `--set` overrides), check every field by hand against the schema of
 * the recipe and of each step kind, and return a typed `Recipe`. Every problem is an error naming the
 * recipe file, the line and the field (or the `--set` that caused it), with a hint; exit code 2.
 *
 * Format (documented in recipes/README.md):
 *
 *   name: raner-lite               # default: the file name without .yaml
 *   seed: 13                       # passed to steps that train or sample
 *   threads: 2                     # onnxruntime intra-op threads for every step (default: onnxruntime's)
 *   inputs:  { model: ../fixtures/teacher/model, test: ../fixtures/data/msra_test_sample.jsonl }
 *   steps:                         # name → { kind, fields of that kind }; ${name.output} refers to outputs
 *     int8: { kind: quantize, model: ${inputs.model}, calib: ${inputs.calib} }
 *   variants:                      # name → the model the table compares (in this order)
 *     original: { model: ${inputs.model} }
 *     int8:     { model: ${int8.model}, gates: { max-f1-drop: 1.0 } }
 *   baseline: original             # F1 drops and speed-ups are relative to it (default: first variant)
 *   measure:                       # how every variant is scored and timed
 *     eval:  { data: ${inputs.test} }
 *     bench: { seq: [64], batch: [1] }
 *   gates: { max-f1-drop: 2.0, max-latency-ms: null, max-size-mb: null }
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, extname, resolve } from 'node:path';
import { InputError } from '../errors.js';
import { sha256 } from '../util/fs.js';
import { checkKeys, closest, isRef, NAME_RE, readField, type FieldSpec, type PathSetting, type Ref, type SettingValue } from './schema.js';
import { PLANNED_KINDS, stepKind, stepKinds } from './steps/index.js';
import type { StepDefinition } from './steps/types.js';
import { describe, LocatedTree, parseOverride, pathText, type Override, type YamlPath } from './yaml.js';

/** The three gates, by their recipe/flag names. */
export const GATE_NAMES = ['max-f1-drop', 'max-latency-ms', 'max-size-mb'] as const;
export type GateName = (typeof GATE_NAMES)[number];
/** Gate limits; null switches a gate off (per variant), undefined leaves it to the next level. */
export type GateLimits = Partial<Record<GateName, number | null>>;

export const GATE_FIELDS: Record<GateName, FieldSpec> = {
  'max-f1-drop': { type: 'number', min: 0, nullable: true, doc: 'most micro-F1 points a variant may lose against the baseline' },
  'max-latency-ms': { type: 'number', min: 0, nullable: true, doc: 'highest p50 latency (ms) at batch 1 and the first bench sequence length' },
  'max-size-mb': { type: 'number', min: 0, nullable: true, doc: 'largest model (ONNX file + external data), in MB of 10^6 bytes' },
};

/** Settings as validated: literal paths absolute, references not yet resolved. */
export type StepFields = Record<string, SettingValue | undefined>;

/** One step of a recipe (or one the runner adds to measure a variant). */
export interface StepSpec {
  name: string;
  def: StepDefinition;
  fields: StepFields;
  /** Where the step is written (for messages). */
  path: YamlPath;
  /** Set on the eval/bench steps the runner adds for each variant. */
  measures?: { variant: string; what: 'eval' | 'bench' };
}

export interface VariantSpec {
  name: string;
  description?: string;
  model: PathSetting;
  /** Gate limits written on this variant (null = off for it). */
  gates: GateLimits;
  path: YamlPath;
}

export interface Recipe {
  /** Absolute path of the recipe file. */
  file: string;
  /** SHA-256 of the recipe text. */
  sha256: string;
  name: string;
  description?: string;
  seed: number;
  threads: number | null;
  /** Input name → absolute path. */
  inputs: Record<string, string>;
  steps: StepSpec[];
  variants: VariantSpec[];
  baseline: string;
  measure: {
    eval: StepFields;
    bench: StepFields;
    /** `all`: when any variant is timed again, all are (latencies from one session); `changed`: only those whose key changed. */
    rebench: 'all' | 'changed';
  };
  gates: GateLimits;
  /** The parsed document (for messages about places in it). */
  tree: LocatedTree;
}

const TOP_KEYS = ['name', 'description', 'seed', 'threads', 'inputs', 'steps', 'variants', 'baseline', 'measure', 'gates'];

/** Read, override and validate a recipe file. */
export async function loadRecipe(file: string, sets: readonly string[] = [], opts: { cwd?: string } = {}): Promise<Recipe> {
  const abs = resolve(file);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (e) {
    throw new InputError('recipe file not found', { file: abs, hint: 'pass a recipe YAML file (see recipes/README.md), or none for recipes/raner-lite.yaml', cause: e });
  }
  return parseRecipe(text, abs, sets.map(parseOverride), opts);
}

function isMapValue(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Validate recipe text (the file name is for messages and relative paths). */
export function parseRecipe(text: string, file: string, overrides: readonly Override[] = [], opts: { cwd?: string } = {}): Recipe {
  const tree = LocatedTree.parse(text, file);
  for (const o of overrides) tree.applyOverride(o);
  const recipeDir = dirname(file);
  const cwd = opts.cwd ?? process.cwd();
  const resolvePath = (v: string, fromSet: boolean) => resolve(fromSet ? cwd : recipeDir, v);

  const root = tree.get([]);
  if (!isMapValue(root)) throw tree.error([], `a recipe must be a map of fields, got ${describe(root ?? undefined)}`, `start with "name:", "inputs:", "steps:" and "variants:" (see recipes/README.md)`);
  checkKeys(tree, [], TOP_KEYS, 'a recipe');

  const mapAt = (path: YamlPath, required: boolean, what: string): Record<string, unknown> => {
    const v = tree.get(path);
    if (v === undefined || v === null) {
      if (required) throw tree.error(path, `is required (${what})`, `add "${pathText(path)}:" with ${what}`);
      return {};
    }
    if (!isMapValue(v)) throw tree.error(path, `must be a map (${what}), got ${describe(v)}`, `write "${String(path[path.length - 1])}:" followed by indented "name: value" lines`);
    return v;
  };
  const checkName = (path: YamlPath, name: string, what: string) => {
    if (!NAME_RE.test(name)) throw tree.error(path, `"${name}" is not a valid ${what} name`, 'use letters, digits, "-" and "_" (starting with a letter or digit)');
  };
  const need = (path: YamlPath, spec: FieldSpec): SettingValue | undefined => readField(tree, path, spec, resolvePath);

  const nameV = need(['name'], { type: 'string', doc: 'the recipe name' });
  const name = typeof nameV === 'string' ? nameV : basename(file, extname(file));
  if (!NAME_RE.test(name)) throw tree.error(['name'], `"${name}" is not a valid recipe name`, 'use letters, digits, "-" and "_"');
  const description = need(['description'], { type: 'string', doc: 'what the recipe is for' }) as string | undefined;
  const seed = need(['seed'], { type: 'integer', min: 0, max: 2 ** 31 - 1, default: 42, doc: 'seed for steps that train or sample' }) as number;
  const threads = (need(['threads'], { type: 'integer', min: 1, max: 1024, nullable: true, doc: 'onnxruntime intra-op threads' }) ?? null) as number | null;

  // inputs
  const inputs: Record<string, string> = {};
  for (const key of Object.keys(mapAt(['inputs'], false, 'named input files and folders'))) {
    checkName(['inputs', key], key, 'input');
    const v = need(['inputs', key], { type: 'file', required: true, doc: 'a path to a file or folder' });
    if (isRef(v)) throw tree.error(['inputs', key], 'inputs are paths, not references', 'write a path relative to the recipe file');
    const p = (v as { path: string }).path;
    if (!existsSync(p)) {
      throw tree.error(['inputs', key], `${p} does not exist`, 'fix the path (relative paths are relative to the recipe file; --set paths to the working directory)');
    }
    inputs[key] = p;
  }

  // steps
  const steps: StepSpec[] = [];
  const stepNames = Object.keys(mapAt(['steps'], false, 'named steps: name → { kind: ..., fields }'));
  for (const stepName of stepNames) {
    const path: YamlPath = ['steps', stepName];
    checkName(path, stepName, 'step');
    if (stepName === 'inputs') throw tree.error(path, '"inputs" is reserved for ${inputs.name} references', 'rename the step');
    const body = tree.get(path);
    if (!isMapValue(body)) throw tree.error(path, `must be a map with a kind, got ${describe(body)}`, 'e.g. "quantize: { kind: quantize, model: ${inputs.model} }"');
    const kindV = need([...path, 'kind'], { type: 'string', required: true, doc: `the step kind: ${stepKinds().map((d) => d.kind).join(', ')}` }) as string;
    const def = stepKind(kindV);
    if (!def) {
      const known = stepKinds().map((d) => d.kind);
      const planned = PLANNED_KINDS.includes(kindV) && !known.includes(kindV);
      throw tree.error(
        [...path, 'kind'],
        planned
          ? `step kind "${kindV}" is not available in this ranerc build yet (its library has not landed)`
          : `unknown step kind "${kindV}"`,
        `${!planned && closest(kindV, known) ? `did you mean "${closest(kindV, known)}"? ` : ''}available kinds: ${known.join(', ')}`,
      );
    }
    const fields = readStepFields(tree, path, def, ['kind', 'description'], need, { seed, threads });
    const problem = def.validate?.(fields);
    if (problem) throw tree.error([...path, problem.field], problem.message, problem.hint);
    steps.push({ name: stepName, def, fields, path });
  }

  // variants
  const variants: VariantSpec[] = [];
  const variantNames = Object.keys(mapAt(['variants'], true, 'the models to compare: name → { model: ... }'));
  if (variantNames.length === 0) throw tree.error(['variants'], 'lists no variant', 'add at least one, e.g. "original: { model: ${inputs.model} }"');
  for (const vName of variantNames) {
    const path: YamlPath = ['variants', vName];
    checkName(path, vName, 'variant');
    const body = tree.get(path);
    if (!isMapValue(body)) throw tree.error(path, `must be a map with a model, got ${describe(body)}`, 'e.g. "int8: { model: ${int8.model} }"');
    checkKeys(tree, path, ['model', 'description', 'gates'], `variant ${vName}`);
    const model = need([...path, 'model'], { type: 'model', required: true, doc: 'the model folder this variant ships' }) as PathSetting;
    const desc = need([...path, 'description'], { type: 'string', doc: 'a line for the table' }) as string | undefined;
    variants.push({ name: vName, description: desc, model, gates: readGates(tree, [...path, 'gates'], need, mapAt), path });
  }
  const baselineV = need(['baseline'], { type: 'string', doc: 'the variant the others are compared with' }) as string | undefined;
  const baseline = baselineV ?? variants[0].name;
  if (!variants.some((v) => v.name === baseline)) {
    throw tree.error(['baseline'], `"${baseline}" is not a variant`, `pick one of: ${variants.map((v) => v.name).join(', ')}`);
  }

  // measure
  mapAt(['measure'], true, 'how every variant is scored (eval) and timed (bench)');
  checkKeys(tree, ['measure'], ['eval', 'bench', 'rebench'], 'measure');
  mapAt(['measure', 'eval'], true, 'the eval settings, at least data: labelled test data');
  mapAt(['measure', 'bench'], false, 'the bench settings');
  const evalDef = stepKind('eval')!;
  const benchDef = stepKind('bench')!;
  const measure = {
    eval: readStepFields(tree, ['measure', 'eval'], evalDef, [], need, { seed, threads }, ['model']),
    bench: readStepFields(tree, ['measure', 'bench'], benchDef, [], need, { seed, threads }, ['model']),
    rebench: need(['measure', 'rebench'], {
      type: 'enum',
      values: ['all', 'changed'],
      default: 'all',
      doc: 'when one variant must be timed again: time all of them (latencies from one session) or only the changed ones',
    }) as 'all' | 'changed',
  };

  const gates = readGates(tree, ['gates'], need, mapAt);

  const recipe: Recipe = {
    file,
    sha256: sha256(text),
    name,
    description,
    seed,
    threads,
    inputs,
    steps,
    variants,
    baseline,
    measure,
    gates,
    tree,
  };
  checkReferences(recipe);
  return recipe;
}

function readGates(
  tree: LocatedTree,
  path: YamlPath,
  need: (path: YamlPath, spec: FieldSpec) => SettingValue | undefined,
  mapAt: (path: YamlPath, required: boolean, what: string) => Record<string, unknown>,
): GateLimits {
  mapAt(path, false, 'gate limits');
  checkKeys(tree, path, GATE_NAMES, 'gates');
  const out: GateLimits = {};
  for (const g of GATE_NAMES) {
    if (tree.get([...path, g]) === undefined) continue;
    out[g] = need([...path, g], GATE_FIELDS[g]) as number | null;
  }
  return out;
}

/** Validate a step's fields (all of `def.fields` except `skip`); inherited recipe settings fill gaps. */
function readStepFields(
  tree: LocatedTree,
  path: YamlPath,
  def: StepDefinition,
  extraKeys: string[],
  need: (path: YamlPath, spec: FieldSpec) => SettingValue | undefined,
  globals: { seed: number; threads: number | null },
  skip: string[] = [],
): StepFields {
  const names = Object.keys(def.fields).filter((k) => !skip.includes(k));
  checkKeys(tree, path, [...extraKeys, ...names], `a ${def.kind} step`);
  const fields: StepFields = {};
  for (const k of names) {
    fields[k] = need([...path, k], def.fields[k]);
    if (fields[k] === undefined && (def.inherits ?? []).includes(k as 'seed' | 'threads')) {
      fields[k] = globals[k as 'seed' | 'threads'];
    }
  }
  return fields;
}

/**
 * Every `${name.output}` must name an input or a step with that output; every literal path must exist
 * (references to step outputs are checked when the step has run).
 */
function checkReferences(r: Recipe): void {
  const exists = (path: YamlPath, v: SettingValue | undefined) => {
    if (v !== null && typeof v === 'object' && 'path' in v && !existsSync(v.path)) {
      throw r.tree.error(path, `${v.path} does not exist`, 'fix the path (relative paths are relative to the recipe file; --set paths to the working directory)');
    }
  };
  const check = (path: YamlPath, ref: Ref, wantModel: boolean) => {
    if (ref.ref === 'inputs') {
      if (!(ref.output in r.inputs)) {
        throw r.tree.error(path, `\${inputs.${ref.output}}: no input named "${ref.output}"`, `inputs: ${Object.keys(r.inputs).join(', ') || '(none)'}`);
      }
      return;
    }
    const step = r.steps.find((s) => s.name === ref.ref);
    if (!step) {
      const near = closest(ref.ref, r.steps.map((s) => s.name));
      throw r.tree.error(path, `\${${ref.ref}.${ref.output}}: no step named "${ref.ref}"`, `${near ? `did you mean "${near}"? ` : ''}steps: ${r.steps.map((s) => s.name).join(', ') || '(none)'}; inputs are \${inputs.name}`);
    }
    if (!step.def.outputs.includes(ref.output)) {
      throw r.tree.error(
        path,
        `\${${ref.ref}.${ref.output}}: a ${step.def.kind} step has no output "${ref.output}"`,
        step.def.outputs.length ? `its outputs: ${step.def.outputs.join(', ')}` : `a ${step.def.kind} step produces measurements, not files`,
      );
    }
    if (wantModel && ref.output !== 'model') {
      throw r.tree.error(path, `\${${ref.ref}.${ref.output}} is not a model`, `use \${${ref.ref}.model}`);
    }
  };
  for (const s of r.steps) {
    for (const [k, v] of Object.entries(s.fields)) {
      if (isRef(v)) check([...s.path, k], v, s.def.fields[k]?.type === 'model');
      else exists([...s.path, k], v);
    }
  }
  for (const v of r.variants) {
    if (isRef(v.model)) check([...v.path, 'model'], v.model, true);
    else exists([...v.path, 'model'], v.model);
  }
  for (const what of ['eval', 'bench'] as const) {
    for (const [k, v] of Object.entries(r.measure[what])) {
      if (isRef(v)) check(['measure', what, k], v, false);
      else exists(['measure', what, k], v);
    }
  }
}
