import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError, RanercError, UsageError } from '../../src/errors.js';
import { planRun, variantChain } from '../../src/run/plan.js';
import { loadRecipe, parseRecipe } from '../../src/run/recipe.js';
import { closest, editDistance } from '../../src/run/schema.js';
import { PLANNED_KINDS, stepKind } from '../../src/run/steps/index.js';
import { parseOverride } from '../../src/run/yaml.js';
import { REPO, registerResave, resaveRecipe, tempDir, TINY } from './helpers.js';

registerResave();
const FILE = '/recipes/test.yaml';
const DATA = join(REPO, 'fixtures', 'data', 'msra_dev_sample.jsonl');
const BASE = resaveRecipe(DATA);

/** The error a recipe raises (fails the test when it parses). */
function refuse(text: string, sets: string[] = []): RanercError {
  try {
    parseRecipe(text, FILE, sets.map(parseOverride));
  } catch (e) {
    if (e instanceof RanercError) return e;
    throw e;
  }
  throw new Error('the recipe was accepted');
}

/** 1-based line of the first line containing `needle`. */
function lineOf(text: string, needle: string): number {
  const i = text.split('\n').findIndex((l) => l.includes(needle));
  if (i < 0) throw new Error(`no line with ${needle}`);
  return i + 1;
}

describe('a valid recipe', () => {
  it('parses with defaults filled, references kept, paths absolute', () => {
    const r = parseRecipe(BASE, FILE);
    expect(r.name).toBe('resave-test');
    expect(r.seed).toBe(3);
    expect(r.threads).toBe(1);
    expect(r.baseline).toBe('original'); // the first variant
    expect(r.variants.map((v) => v.name)).toEqual(['original', 'copy', 'bmes']);
    expect(r.steps[0].fields).toEqual({ model: { ref: 'inputs', output: 'crf' }, 'external-data': 'never', note: '' });
    expect(r.measure.eval).toMatchObject({ data: { ref: 'inputs', output: 'test' }, mode: 'default', batch: 32, crf: true, threads: 1 });
    expect(r.measure.bench).toMatchObject({ seq: [16], batch: [1], warmup: 0, iterations: 2, seconds: 0, threads: 1 });
    expect(r.measure.rebench).toBe('all');
    expect(r.inputs.crf).toBe(join(TINY, 'bio-crf-op14'));
    expect(r.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('plans the recipe steps first (dependencies before users), then eval@ and bench@ per variant', () => {
    const text = BASE.replace('steps:\n', 'steps:\n  twice:\n    kind: resave\n    model: ${copy.model}\n');
    const r = parseRecipe(text, FILE);
    expect(r.steps.map((s) => s.name)).toEqual(['twice', 'copy']);
    expect(planRun(r).map((s) => s.name)).toEqual([
      'copy',
      'twice',
      'eval@original',
      'eval@copy',
      'eval@bmes',
      'bench@original',
      'bench@copy',
      'bench@bmes',
    ]);
    expect(variantChain(r, 'copy').map((s) => s.name)).toEqual(['copy']);
    expect(variantChain(r, 'original')).toEqual([]);
  });

  it('relative paths are relative to the recipe file; --set paths to the working directory', async () => {
    const t = await tempDir('rel');
    try {
      const r = parseRecipe(BASE.replace(`test: ${DATA}`, 'test: ../fixtures/data/msra_dev_sample.jsonl'), join(REPO, 'recipes', 'x.yaml'));
      expect(r.inputs.test).toBe(DATA);
      const r2 = parseRecipe(BASE, FILE, [parseOverride('inputs.test=fixtures/data/msra_dev_sample.jsonl')], { cwd: REPO });
      expect(r2.inputs.test).toBe(DATA);
    } finally {
      await t.cleanup();
    }
  });

  it('--set converts text to the field type: numbers, lists, booleans, enums, null', () => {
    const r = parseRecipe(BASE, FILE, [
      'measure.bench.seq=32,64',
      'measure.bench.seconds=0.5',
      'measure.eval.crf=false',
      'measure.eval.mode=strict',
      'steps.copy.external-data=always',
      'gates.max-f1-drop=1.5',
      'variants.original.gates.max-f1-drop=null',
      'seed=7',
      'baseline=bmes',
    ].map(parseOverride));
    expect(r.measure.bench.seq).toEqual([32, 64]);
    expect(r.measure.bench.seconds).toBe(0.5);
    expect(r.measure.eval.crf).toBe(false);
    expect(r.measure.eval.mode).toBe('strict');
    expect(r.steps[0].fields['external-data']).toBe('always');
    expect(r.gates).toEqual({ 'max-f1-drop': 1.5 });
    expect(r.variants[0].gates).toEqual({ 'max-f1-drop': null });
    expect(r.seed).toBe(7);
    expect(r.baseline).toBe('bmes');
  });

  it('the shipped recipes are valid and plan without cycles', async () => {
    const { readdir } = await import('node:fs/promises');
    const files = [
      ...(await readdir(join(REPO, 'recipes'))).filter((f) => f.endsWith('.yaml')).map((f) => join(REPO, 'recipes', f)),
      ...(await readdir(join(REPO, 'recipes', 'examples'))).filter((f) => f.endsWith('.yaml')).map((f) => join(REPO, 'recipes', 'examples', f)),
    ];
    expect(files.length).toBeGreaterThanOrEqual(3);
    for (const f of files) {
      const r = await loadRecipe(f);
      expect(planRun(r).length, f).toBe(r.steps.length + 2 * r.variants.length);
    }
    expect((await loadRecipe(join(REPO, 'recipes', 'examples', 'tiny-compare.yaml'))).variants.length).toBe(3);
  });
});

describe('a bad recipe exits 2 naming the line and the field', () => {
  it('malformed YAML: the line of the syntax error', () => {
    const text = BASE.replace('measure:\n  eval:', 'measure:\n  eval: [unclosed\n  x:');
    const e = refuse(text);
    expect(e).toBeInstanceOf(InputError);
    expect(e.exitCode).toBe(2);
    expect(e.where.file).toBe(FILE);
    expect(e.where.line).toBeGreaterThanOrEqual(lineOf(text, 'eval: [unclosed'));
    expect(e.where.line).toBeLessThanOrEqual(lineOf(text, 'eval: [unclosed') + 2);
    expect(e.message).toMatch(/not valid YAML/);
    expect(e.hint).toBeTruthy();
  });

  it('a duplicate key', () => {
    const text = BASE.replace('seed: 3\n', 'seed: 3\nseed: 4\n');
    const e = refuse(text);
    expect(e.where.line).toBe(lineOf(text, 'seed: 4'));
    expect(e.message).toMatch(/unique|duplicate/i);
  });

  it('an unknown field, with the likely intended one', () => {
    const text = BASE.replace('measure:\n', 'varients:\n  x: 1\nmeasure:\n');
    const e = refuse(text);
    expect(e.message).toContain('varients: unknown field');
    expect(e.hint).toContain('did you mean "variants"?');
    expect(e.where.line).toBe(lineOf(text, 'varients:'));
  });

  it('a wrongly typed value names the field, the expectation and the value', () => {
    const text = BASE.replace('iterations: 2', 'iterations: lots');
    const e = refuse(text);
    expect(e.message).toBe('measure.bench.iterations: must be an integer in [1, 10000000], got the text "lots"');
    expect(e.where.line).toBe(lineOf(text, 'iterations: lots'));
    expect(e.format()).toContain(`${FILE}:${lineOf(text, 'iterations: lots')}: measure.bench.iterations`);
  });

  it('an unknown step kind lists the available kinds', () => {
    const text = BASE.replace('kind: resave', 'kind: compress');
    const e = refuse(text);
    expect(e.message).toContain('steps.copy.kind: unknown step kind "compress"');
    expect(e.hint).toMatch(/available kinds: .*eval.*bench/);
    expect(e.where.line).toBe(lineOf(text, 'kind: compress'));
  });

  const missing = PLANNED_KINDS.filter((k) => !stepKind(k));
  it.skipIf(missing.length === 0)('a planned kind whose library has not landed is named as such', () => {
    const text = BASE.replace('kind: resave', `kind: ${missing[0]}`);
    const e = refuse(text);
    expect(e.message).toContain(`step kind "${missing[0]}" is not available in this ranerc build yet`);
    expect(e.where.line).toBe(lineOf(text, `kind: ${missing[0]}`));
  });

  it('a missing required field', () => {
    const text = BASE.replace('    data: ${inputs.test}\n', '    mode: strict\n');
    const e = refuse(text);
    expect(e.message).toMatch(/^measure\.eval\.data: is required/);
    expect(e.where.line).toBe(lineOf(text, '  eval:'));
  });

  it('a reference to a step that does not exist, with a suggestion', () => {
    const text = BASE.replace('model: ${copy.model}', 'model: ${cpy.model}');
    const e = refuse(text);
    expect(e.message).toContain('variants.copy.model: ${cpy.model}: no step named "cpy"');
    expect(e.hint).toContain('did you mean "copy"?');
    expect(e.where.line).toBe(lineOf(text, '${cpy.model}'));
  });

  it('a reference to an output the step does not have, or to an unknown input', () => {
    let text = BASE.replace('model: ${copy.model}', 'model: ${copy.report}');
    expect(refuse(text).message).toContain('a resave step has no output "report"');
    text = BASE.replace('model: ${inputs.crf}\nvariants', 'model: ${inputs.teacher}\nvariants');
    const e = refuse(text);
    expect(e.message).toContain('no input named "teacher"');
    expect(e.where.line).toBe(lineOf(text, '${inputs.teacher}'));
  });

  it('a text that only contains a reference', () => {
    const e = refuse(BASE.replace('model: ${copy.model}', 'model: out/${copy.model}'));
    expect(e.message).toContain('is not a reference');
  });

  it('steps that refer to each other in a cycle', () => {
    const text = BASE.replace('steps:\n  copy:\n    kind: resave\n    model: ${inputs.crf}\n', 'steps:\n  a:\n    kind: resave\n    model: ${b.model}\n  b:\n    kind: resave\n    model: ${a.model}\n').replace('${copy.model}', '${a.model}');
    const r = parseRecipe(text, FILE);
    try {
      planRun(r);
      throw new Error('planned');
    } catch (e) {
      expect(e).toBeInstanceOf(InputError);
      expect((e as InputError).message).toMatch(/cycle: a → b → a/);
      expect((e as InputError).where.line).toBe(lineOf(text, '  a:'));
    }
  });

  it('an input path that does not exist', () => {
    const text = BASE.replace(`test: ${DATA}`, 'test: /nonexistent/test.jsonl');
    const e = refuse(text);
    expect(e.message).toBe('inputs.test: /nonexistent/test.jsonl does not exist');
    expect(e.where.line).toBe(lineOf(text, '/nonexistent/test.jsonl'));
  });

  it('a baseline that is not a variant; a bad name; no variants', () => {
    expect(refuse(`${BASE}baseline: teacher\n`).message).toContain('baseline: "teacher" is not a variant');
    expect(refuse(BASE.replace('  bmes:\n    model', '  "bad name":\n    model')).message).toContain('is not a valid variant name');
    expect(refuse(BASE.replace(/variants:[\s\S]*?measure:/, 'variants: {}\nmeasure:')).message).toContain('variants: lists no variant');
  });

  it('gate limits must be non-negative numbers (or null)', () => {
    const text = `${BASE}gates:\n  max-size-mb: -3\n`;
    const e = refuse(text);
    expect(e.message).toBe('gates.max-size-mb: must be a number >= 0 (or null), got number -3');
    expect(e.where.line).toBe(lineOf(text, 'max-size-mb: -3'));
  });

  it('a bad --set is a usage error naming the --set', () => {
    let e = refuse(BASE, ['gates.max-f1-drop=abc']);
    expect(e).toBeInstanceOf(UsageError);
    expect(e.exitCode).toBe(2);
    expect(e.message).toBe('--set gates.max-f1-drop=abc: gates.max-f1-drop: must be a number >= 0 (or null), got the text "abc"');
    e = refuse(BASE, ['measure.bench.seq=16,x']);
    expect(e.message).toContain('measure.bench.seq: must be a list of integers >= 3');
    e = refuse(BASE, ['steps.copy.colour=red']);
    expect(e.message).toContain('--set steps.copy.colour=red: steps.copy.colour: unknown field for a resave step');
    e = refuse(BASE, ['seed.x=1']);
    expect(e.message).toContain('seed is number 3, not a map or list');
    expect(() => parseOverride('novalue')).toThrow(UsageError);
    expect(() => parseOverride('a..b=1')).toThrow(/dotted key/);
  });

  it('a recipe file that does not exist', async () => {
    await expect(loadRecipe('/nonexistent/recipe.yaml')).rejects.toThrow(InputError);
  });
});

describe('suggestions', () => {
  it('edit distance and closest word', () => {
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('', 'abc')).toBe(3);
    expect(closest('varients', ['inputs', 'variants', 'steps'])).toBe('variants');
    expect(closest('zzzzzz', ['inputs', 'variants'])).toBeUndefined();
  });
});

describe('recipes/README.md', () => {
  it('documents every step kind this build has, with all its fields', async () => {
    const { readFile } = await import('node:fs/promises');
    const { stepKinds } = await import('../../src/run/steps/index.js');
    const readme = await readFile(join(REPO, 'recipes', 'README.md'), 'utf8');
    for (const d of stepKinds()) {
      if (d.kind === 'resave') continue; // registered by these tests only
      const start = readme.indexOf(`### \`${d.kind}\``);
      expect(start, d.kind).toBeGreaterThan(-1);
      const next = readme.indexOf('\n## ', start);
      const section = readme.slice(start, next < 0 ? undefined : next).split('\n### ')[0];
      for (const f of Object.keys(d.fields)) expect(section, `${d.kind}.${f}`).toContain(`| \`${f}\` |`);
    }
  });
});
