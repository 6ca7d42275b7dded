/**
 * Runs a recipe: every step in plan order, each skipped when its cache key is unchanged, then the
 * variant artifacts and the summaries.
 *
 * Layout of the run folder (`--out`, default `reports/run-<recipe>/`):
 *   steps/<step>/step.json      the step's manifest: cache key and what it is made of, resolved
 *                               settings, outputs with their content hashes, measured results, time
 *   steps/<step>/model/         a model-producing step's output folder
 *   steps/<step>/report.json|md the step's own report
 *   artifacts/<variant>/        model/, report.json, report.md, SHA256SUMS (rebuilt every run)
 *   summary.json|md|html        the comparison; run.json: the run's manifest
 *
 * A step's key is the SHA-256 of: its kind and the kind's version, its resolved settings with every
 * input file or folder replaced by its content hash (so a downstream step re-runs only when an
 * upstream output actually changed), the ranerc version, and for timing steps the machine. A step is
 * taken from the cache when its manifest has the same key and its outputs still have the recorded
 * content hashes. Each step folder is written atomically: a failed step leaves the previous one.
 */
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { InputError, isRanercError, UsageError } from '../errors.js';
import { collectEnvironment, ranercVersion } from '../report/environment.js';
import { createProgress } from '../report/progress.js';
import { renderMarkdown } from '../report/markdown.js';
import type { ModelSummary } from '../report/schema.js';
import { reportJson } from '../report/write.js';
import { atomicWriteDir, atomicWriteFile, exists } from '../util/fs.js';
import { writeArtifacts, type VariantArtifact } from './artifacts.js';
import { defaultLayout } from '../onnx/layout.js';
import { HashCache, stepKey, type KeyMaterial } from './hash.js';
import { summaryHtml } from './html.js';
import { measureStepName, planRun, variantChain } from './plan.js';
import type { GateLimits, Recipe, StepSpec } from './recipe.js';
import { isRef, type SettingValue } from './schema.js';
import type { ResolvedValue, StepContext, StepOutcome, StepSettings } from './steps/types.js';
import { SUMMARY_SCHEMA, summarizeVariants, summaryJson, summaryMarkdown, type RunSummary, type VariantMeasurement } from './summary.js';

export const STEP_MANIFEST_SCHEMA = 'ranerc.run-step/1' as const;

/** What a step folder's step.json holds. */
export interface StepManifest {
  schema: typeof STEP_MANIFEST_SCHEMA;
  name: string;
  kind: string;
  key: string;
  /** What the key is a hash of. */
  material: KeyMaterial;
  /** The settings the step ran with (paths absolute). */
  settings: Record<string, ResolvedValue | undefined>;
  /** Output name → path relative to the step folder and its content hash. */
  outputs: Record<string, { path: string; sha256: string }>;
  /** The measured results (everything but the report, which is beside it). */
  outcome: Omit<StepOutcome, 'report' | 'outputs'>;
  seconds: number;
  finishedAt: string;
}

/** One step of this run. */
export interface StepRecord {
  spec: StepSpec;
  manifest: StepManifest;
  cached: boolean;
  /** The step folder. */
  dir: string;
  /** Output name → absolute path. */
  outputs: Record<string, string>;
  settings: StepSettings;
}

export interface RunOptions {
  /** The run folder (default reports/run-<recipe name>, relative to the working directory). */
  outDir?: string;
  /** Re-run every step. */
  noCache?: boolean;
  /** Gate limits from the command line (override the recipe's global gates, not a variant's own). */
  gates?: GateLimits;
  /** stderr is a terminal (progress bars). */
  interactive: boolean;
  /** JSON on stdout: no progress bars. */
  json?: boolean;
  /** Lines of news (stderr). */
  log: (line: string) => void;
  now?: () => Date;
}

export interface RunResult {
  outDir: string;
  summary: RunSummary;
  steps: StepRecord[];
  /** One line per failed gate (empty when all passed). */
  failures: string[];
}

/** The run folder a recipe writes to by default. */
export function defaultOutDir(recipe: Pick<Recipe, 'name'>): string {
  return resolve('reports', `run-${recipe.name}`);
}

function displayPath(p: string): string {
  const r = relative(process.cwd(), p);
  return r && !r.startsWith('..') ? r : p;
}

async function readManifest(dir: string): Promise<StepManifest | undefined> {
  try {
    const m = JSON.parse(await readFile(join(dir, 'step.json'), 'utf8')) as StepManifest;
    return m.schema === STEP_MANIFEST_SCHEMA ? m : undefined;
  } catch {
    return undefined;
  }
}

/** The cached manifest of a step when its key matches and its outputs are intact. */
async function cachedManifest(dir: string, key: string, hashes: HashCache): Promise<StepManifest | undefined> {
  const m = await readManifest(dir);
  if (!m || m.key !== key) return undefined;
  for (const o of Object.values(m.outputs)) {
    const p = join(dir, o.path);
    if (!(await exists(p))) return undefined;
    hashes.forget(p);
    if ((await hashes.hash(p)) !== o.sha256) return undefined;
  }
  return m;
}

/**
 * Hold `outDir/.lock` while `work` runs, so two runs never write one run folder; a lock left by a
 * process that no longer exists is taken over. Temp folders of interrupted step writes are removed.
 */
async function withRunLock<T>(outDir: string, work: () => Promise<T>): Promise<T> {
  await mkdir(outDir, { recursive: true });
  const lock = join(outDir, '.lock');
  for (let attempt = 0; ; attempt++) {
    try {
      await writeFile(lock, `${process.pid}\n`, { flag: 'wx' });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw e;
      const pid = Number((await readFile(lock, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) {
        throw new UsageError(`another ranerc run (process ${pid}) is using ${outDir}`, {
          hint: `wait for it to finish, or pass a different --out; delete ${lock} if that process is not ranerc`,
        });
      }
      await rm(lock, { force: true });
    }
  }
  try {
    const stepsDir = join(outDir, 'steps');
    for (const name of await readdir(stepsDir).catch(() => [] as string[])) {
      if (name.startsWith('.') && name.endsWith('.tmp')) await rm(join(stepsDir, name), { recursive: true, force: true });
    }
    return await work();
  } finally {
    await rm(lock, { force: true });
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Run a validated recipe. */
export async function runRecipe(recipe: Recipe, opts: RunOptions): Promise<RunResult> {
  const outDir = resolve(opts.outDir ?? defaultOutDir(recipe));
  planRun(recipe); // a reference cycle is reported before anything is written
  return withRunLock(outDir, () => runLocked(recipe, outDir, opts));
}

async function runLocked(recipe: Recipe, outDir: string, opts: RunOptions): Promise<RunResult> {
  const t0 = performance.now();
  const now = opts.now ?? (() => new Date());
  const plan = planRun(recipe);
  const hashes = new HashCache();
  const records = new Map<string, StepRecord>();
  const environment = collectEnvironment(recipe.threads ?? undefined);
  const machine = { node: environment.node, onnxruntime: environment.onnxruntime, os: environment.os, cpu: environment.cpu, cores: environment.cores };
  const width = String(plan.length).length;

  /** Resolve a step's settings (references → paths) and its cache key; earlier steps must have run. */
  const prepare = async (spec: StepSpec) => {
    const settings: Record<string, ResolvedValue | undefined> = {};
    const keySettings: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(spec.fields)) {
      const path = pathOf(recipe, records, v);
      if (path !== undefined) {
        settings[k] = path;
        const whole = spec.def.fields[k]?.type === 'model' ? await modelFolderOf(path) : path;
        keySettings[k] = { sha256: await hashInput(hashes, whole, recipe, spec, k) };
      } else {
        settings[k] = v as ResolvedValue | undefined;
        keySettings[k] = v;
      }
    }
    const material: KeyMaterial = {
      format: 'ranerc.run-key/1',
      ranerc: ranercVersion(),
      kind: spec.def.kind,
      kindVersion: spec.def.version,
      settings: keySettings,
    };
    if (spec.def.machineDependent) material.machine = machine;
    if (defaultLayout() !== 'ranerc') material.layout = defaultLayout(); // a step's folder differs by --layout
    return { settings, material, key: stepKey(material), dir: join(outDir, 'steps', spec.name) };
  };

  type Prepared = Awaited<ReturnType<typeof prepare>>;
  const tagOf = (spec: StepSpec) => `[${String(plan.indexOf(spec) + 1).padStart(width)}/${plan.length}] ${spec.name} (${spec.def.kind})`;
  const contextFor = (spec: StepSpec, tmp: string): StepContext => ({
    name: spec.name,
    dir: tmp,
    cacheDir: join(outDir, 'cache', spec.def.kind),
    seed: recipe.seed,
    progress: (title, total) => createProgress(title, total, { interactive: opts.interactive, json: opts.json }),
    log: (line) => opts.log(`${' '.repeat(width * 2 + 3)} ${spec.name}: ${line}`),
  });
  /** Outputs, report and manifest of a step that ran into `tmp`. */
  const finish = async (spec: StepSpec, p: Prepared, tmp: string, outcome: StepOutcome, seconds: number): Promise<StepManifest> => {
    const outputs: StepManifest['outputs'] = {};
    for (const name of spec.def.outputs) {
      const rel = outcome.outputs[name];
      if (rel === undefined || !(await exists(join(tmp, rel)))) {
        throw new Error(`step ${spec.name} (${spec.def.kind}) did not write its "${name}" output`);
      }
      outputs[name] = { path: rel, sha256: await hashInput(hashes, join(tmp, rel), recipe, spec, name) };
    }
    if (outcome.report) {
      await writeFile(join(tmp, 'report.json'), reportJson(outcome.report));
      await writeFile(join(tmp, 'report.md'), renderMarkdown(outcome.report));
    }
    const { report: _report, outputs: _outputs, ...rest } = outcome;
    const m: StepManifest = {
      schema: STEP_MANIFEST_SCHEMA,
      name: spec.name,
      kind: spec.def.kind,
      key: p.key,
      material: p.material,
      settings: p.settings,
      outputs,
      outcome: rest,
      seconds,
      finishedAt: now().toISOString(),
    };
    await writeFile(join(tmp, 'step.json'), `${JSON.stringify(m, null, 2)}\n`);
    return m;
  };
  const record = (spec: StepSpec, p: Prepared, manifest: StepManifest, cached: boolean) => {
    const outputs: Record<string, string> = {};
    for (const [name, o] of Object.entries(manifest.outputs)) {
      outputs[name] = join(p.dir, o.path);
      hashes.remember(outputs[name], o.sha256);
    }
    records.set(spec.name, { spec, manifest, cached, dir: p.dir, outputs, settings: p.settings });
  };
  const failed = (specs: StepSpec[], s0: number, e: unknown): never => {
    for (const spec of specs) opts.log(`${tagOf(spec)}: failed after ${((performance.now() - s0) / 1000).toFixed(1)} s`);
    if (isRanercError(e) || !(e instanceof Error)) throw e;
    e.message = `step ${specs.map((x) => x.name).join(', ')} (${specs[0].def.kind}): ${e.message}`;
    throw e;
  };

  // Latencies are compared with each other, so by default (measure.rebench: all) the variants are
  // timed in one session: when any bench@ step has to run, they all run, together — interleaved in
  // rounds when the kind can (runTogether), so a change in the machine's load touches all alike.
  for (const spec of plan) {
    if (records.has(spec.name)) continue;
    if (spec.measures?.what === 'bench' && !opts.noCache && recipe.measure.rebench === 'all') {
      const group = plan.filter((x) => x.measures?.what === 'bench');
      const prepared = await Promise.all(group.map((g) => prepare(g)));
      const manifests = await Promise.all(prepared.map((p) => cachedManifest(p.dir, p.key, hashes)));
      if (manifests.some((m) => m === undefined)) {
        opts.log(`bench: timing every variant again${group[0].def.runTogether ? ', interleaved,' : ''} so that all latencies come from this session`);
        await runGroup(group, prepared);
        continue;
      }
      group.forEach((g, i) => {
        opts.log(`${tagOf(g)}: cached (key ${prepared[i].key.slice(0, 12)}, took ${manifests[i]!.seconds.toFixed(1)} s when it ran)`);
        record(g, prepared[i], manifests[i]!, true);
      });
      continue;
    }
    const p = await prepare(spec);
    const manifest = opts.noCache ? undefined : await cachedManifest(p.dir, p.key, hashes);
    if (manifest) {
      opts.log(`${tagOf(spec)}: cached (key ${p.key.slice(0, 12)}, took ${manifest.seconds.toFixed(1)} s when it ran)`);
      record(spec, p, manifest, true);
      continue;
    }
    await runGroup([spec], [p]);
  }

  /** Run steps of one kind (together when the kind supports it), each into its own atomic folder. */
  async function runGroup(specs: StepSpec[], prepared: Prepared[]): Promise<void> {
    for (const spec of specs) opts.log(`${tagOf(spec)}: running${specs.length > 1 && spec.def.runTogether ? ` (with ${specs.length - 1} more, interleaved)` : ''}`);
    const s0 = performance.now();
    const def = specs[0].def;
    if (specs.length === 1 || !def.runTogether) {
      for (const [i, spec] of specs.entries()) {
        const t = performance.now();
        let m: StepManifest;
        try {
          m = await atomicWriteDir(prepared[i].dir, async (tmp) => finish(spec, prepared[i], tmp, await spec.def.run(contextFor(spec, tmp), prepared[i].settings), (performance.now() - t) / 1000));
        } catch (e) {
          return failed([spec], t, e);
        }
        opts.log(`${tagOf(spec)}: done in ${m.seconds.toFixed(1)} s`);
        record(spec, prepared[i], m, false);
      }
      return;
    }
    // Nested atomic folders: all step folders appear only when the whole group succeeded.
    const manifests: StepManifest[] = [];
    const nest = async (i: number, tmps: string[]): Promise<void> => {
      if (i < specs.length) {
        await atomicWriteDir(prepared[i].dir, (tmp) => nest(i + 1, [...tmps, tmp]));
        return;
      }
      const outcomes = await def.runTogether!(specs.map((spec, j) => ({ ctx: contextFor(spec, tmps[j]), settings: prepared[j].settings })));
      const seconds = (performance.now() - s0) / 1000 / specs.length;
      for (const [j, spec] of specs.entries()) manifests[j] = await finish(spec, prepared[j], tmps[j], outcomes[j], seconds);
    };
    try {
      await nest(0, []);
    } catch (e) {
      return failed(specs, s0, e);
    }
    for (const [j, spec] of specs.entries()) {
      opts.log(`${tagOf(spec)}: done in ${manifests[j].seconds.toFixed(1)} s (its share of ${((performance.now() - s0) / 1000).toFixed(1)} s interleaved)`);
      record(spec, prepared[j], manifests[j], false);
    }
  }

  // Variants: what eval@ and bench@ measured.
  const measured: VariantMeasurement[] = [];
  const artifacts: VariantArtifact[] = [];
  for (const v of recipe.variants) {
    const ev = records.get(measureStepName(v.name, 'eval'))!;
    const be = records.get(measureStepName(v.name, 'bench'))!;
    const f1 = ev.manifest.outcome.f1;
    const model = ev.manifest.outcome.model;
    if (!f1 || !model) throw new Error(`eval@${v.name} recorded no scores`);
    const latency = be.manifest.outcome.latency ?? [];
    measured.push({
      name: v.name,
      model: `artifacts/${v.name}/model`,
      onnxSha256: model.sha256,
      steps: variantChain(recipe, v.name).map((s) => s.name),
      sizeBytes: model.bytes,
      folderBytes: model.folderBytes,
      parameters: model.parameters,
      f1,
      latency,
    });
  }
  const { variants, failures } = summarizeVariants(recipe, measured, opts.gates ?? {});
  const createdAt = now().toISOString();
  for (const v of recipe.variants) {
    const ev = records.get(measureStepName(v.name, 'eval'))!;
    const be = records.get(measureStepName(v.name, 'bench'))!;
    const row = variants.find((x) => x.name === v.name)!;
    const model: ModelSummary = { ...ev.manifest.outcome.model!, latency: be.manifest.outcome.latency, loadMs: be.manifest.outcome.model?.loadMs };
    artifacts.push({
      name: v.name,
      source: String(ev.settings.model),
      model,
      baseline: recipe.baseline,
      data: ev.manifest.outcome.data,
      warnings: [...(ev.manifest.outcome.warnings ?? [])],
      details: {
        recipe: { name: recipe.name, file: displayPath(recipe.file), sha256: recipe.sha256 },
        variant: v.name,
        baseline: recipe.baseline,
        steps: variantChain(recipe, v.name).map((s) => {
          const r = records.get(s.name)!;
          return { name: s.name, kind: s.def.kind, key: r.manifest.key, cached: r.cached, settings: r.manifest.settings };
        }),
        gates: row.gates,
        measuredBy: { eval: `steps/${ev.spec.name}/report.json`, bench: `steps/${be.spec.name}/report.json` },
      },
    });
  }
  const settings = { recipe: displayPath(recipe.file), seed: recipe.seed, threads: recipe.threads ?? 'default', baseline: recipe.baseline };
  await writeArtifacts(outDir, artifacts, { createdAt, ranerc: ranercVersion(), environment, settings });

  const firstEval = records.get(measureStepName(recipe.variants[0].name, 'eval'))!;
  const firstBench = records.get(measureStepName(recipe.variants[0].name, 'bench'))!;
  const { model: _m1, ...evalSettings } = firstEval.settings;
  const evalData = firstEval.manifest.outcome.data?.[0];
  const { model: _m2, ...benchSettings } = firstBench.settings;
  const summary: RunSummary = {
    schema: SUMMARY_SCHEMA,
    createdAt,
    ranerc: ranercVersion(),
    environment,
    recipe: { name: recipe.name, file: displayPath(recipe.file), sha256: recipe.sha256, ...(recipe.description ? { description: recipe.description } : {}) },
    baseline: recipe.baseline,
    measure: { data: evalData ? { ...evalData, path: displayPath(evalData.path) } : null, eval: evalSettings, bench: benchSettings },
    variants,
    gates: { passed: failures.length === 0, failures },
    steps: plan.map((s) => {
      const r = records.get(s.name)!;
      return { name: s.name, kind: s.def.kind, cached: r.cached, seconds: r.manifest.seconds, key: r.manifest.key, ...(s.measures ? { variant: s.measures.variant } : {}) };
    }),
    seconds: (performance.now() - t0) / 1000,
  };
  await atomicWriteFile(join(outDir, 'summary.json'), summaryJson(summary));
  await atomicWriteFile(join(outDir, 'summary.md'), summaryMarkdown(summary));
  await atomicWriteFile(join(outDir, 'summary.html'), summaryHtml(summary));
  await atomicWriteFile(
    join(outDir, 'run.json'),
    `${JSON.stringify(
      {
        schema: 'ranerc.run/1',
        recipe: summary.recipe,
        createdAt,
        ranerc: ranercVersion(),
        steps: plan.map((s) => {
          const r = records.get(s.name)!;
          return { name: s.name, kind: s.def.kind, key: r.manifest.key, cached: r.cached, dir: `steps/${s.name}`, outputs: r.manifest.outputs };
        }),
        artifacts: recipe.variants.map((v) => `artifacts/${v.name}`),
      },
      null,
      2,
    )}\n`,
  );
  return { outDir, summary, steps: plan.map((s) => records.get(s.name)!), failures };
}

/** The absolute path a setting names (a literal path, an input, or an earlier step's output). */
function pathOf(recipe: Recipe, records: Map<string, StepRecord>, v: SettingValue | undefined): string | undefined {
  if (v === null || v === undefined || typeof v !== 'object' || Array.isArray(v)) return undefined;
  if (isRef(v)) {
    if (v.ref === 'inputs') return recipe.inputs[v.output];
    const r = records.get(v.ref);
    if (!r) throw new Error(`step ${v.ref} has not run before a step that uses it (plan order bug)`);
    const p = r.outputs[v.output];
    if (p === undefined) throw new Error(`step ${v.ref} has no output ${v.output}`);
    return p;
  }
  return v.path;
}

/**
 * What a model path's cache hash covers: a folder as it is; for a .onnx file, the folder around it
 * (its config.json, vocab and CRF decide the results too) — the parent of an Optimum `onnx/` folder.
 */
async function modelFolderOf(path: string): Promise<string> {
  const st = await stat(path).catch(() => undefined);
  if (!st || st.isDirectory()) return path;
  const dir = dirname(path);
  if (basename(dir) === 'onnx' && !(await exists(join(dir, 'config.json'))) && (await exists(join(dirname(dir), 'config.json')))) return dirname(dir);
  return dir;
}

async function hashInput(hashes: HashCache, path: string, recipe: Recipe, spec: StepSpec, field: string): Promise<string> {
  try {
    return await hashes.hash(path);
  } catch (e) {
    throw new InputError(`${spec.name}.${field}: cannot read ${path}: ${e instanceof Error ? e.message : String(e)}`, {
      file: recipe.file,
      line: recipe.tree.lineOf([...spec.path, field]),
      hint: 'the file or folder disappeared or is unreadable; fix the path or restore it',
      cause: e,
    });
  }
}
