/**
 * What a step kind is: its fields (validated from the recipe), the outputs other steps can refer to,
 * and a `run` that writes those outputs into a folder the runner gives it. One file per kind under
 * src/run/steps/, listed in the registry (src/run/steps/index.ts).
 */
import type { F1Scores } from '../../ner/types.js';
import type { DataFileSummary, ModelSummary, Report } from '../../report/schema.js';
import type { Progress } from '../../report/progress.js';
import type { BenchRow } from '../../runtime/bench.js';
import type { FieldSpec } from '../schema.js';

/** Settings as a step sees them: paths resolved to absolute paths, defaults filled in. */
export type ResolvedValue = string | number | boolean | number[] | string[] | null;
export type StepSettings = Readonly<Record<string, ResolvedValue | undefined>>;

/** What the runner gives a running step. */
export interface StepContext {
  /** The step's name in the recipe. */
  name: string;
  /** An empty folder for the step's outputs (moved into place when the step succeeds). */
  dir: string;
  /**
   * A folder the step may keep reusable intermediate results in across runs (e.g. prune's importance
   * scores, distill's teacher logits), keyed by their own content hashes: `<run folder>/cache/<kind>/`.
   */
  cacheDir: string;
  /** The run's seed (recipe `seed`). */
  seed: number;
  /** A progress bar on stderr (silent when stderr is not a terminal or with --json). */
  progress(title: string, total: number): Progress;
  /** One line of news on stderr. */
  log(line: string): void;
}

/** What a step reports back; kept in the step's manifest so a cached step gives the same answer. */
export interface StepOutcome {
  /** Output name → path relative to `ctx.dir` (e.g. `{ model: 'model' }`). */
  outputs: Record<string, string>;
  /** Entity scores (eval). */
  f1?: F1Scores;
  /** Latency rows (bench). */
  latency?: BenchRow[];
  /** Model facts the step measured (size, parameters, load time). */
  model?: ModelSummary;
  /** Data files the step read. */
  data?: DataFileSummary[];
  /** The step's own report; the runner writes it as report.json + report.md in the step folder. */
  report?: Report;
  /** Short facts for the summary (JSON-able). */
  facts?: Record<string, string | number | boolean | null>;
  warnings?: string[];
}

/** A step kind. */
export interface StepDefinition {
  /** The `kind:` value in recipes. */
  readonly kind: string;
  /** One line: what the step does. */
  readonly summary: string;
  /** Bumped when the step's results change for the same settings (part of the cache key). */
  readonly version: number;
  /** The fields a recipe may set (besides `kind`). Paths (`model`/`file`) are hashed for the cache key. */
  readonly fields: Readonly<Record<string, FieldSpec>>;
  /** Recipe-level settings the step takes as defaults for its fields of the same name (`seed`, `threads`). */
  readonly inherits?: ReadonlyArray<'seed' | 'threads'>;
  /** Names other steps can refer to as `${name.<output>}`. */
  readonly outputs: readonly string[];
  /** Results depend on the machine (timings): the machine's description is part of the cache key. */
  readonly machineDependent?: boolean;
  /**
   * Checks across fields, run when the recipe is validated (fields as validated; paths and references
   * unresolved). A problem names the field it is about, so the message can point at its line.
   */
  validate?(fields: Readonly<Record<string, unknown>>): { field: string; message: string; hint: string } | undefined;
  run(ctx: StepContext, settings: StepSettings): Promise<StepOutcome>;
  /**
   * Run several steps of this kind as one (results in the same order) — e.g. bench times its models
   * interleaved in rounds, so a change in the machine's load affects them all alike. Optional.
   */
  runTogether?(items: ReadonlyArray<{ ctx: StepContext; settings: StepSettings }>): Promise<StepOutcome[]>;
}

/** Typed reads of validated settings (a wrong type here is a bug in the step's field list). */
export const setting = {
  str(s: StepSettings, k: string): string {
    const v = s[k];
    if (typeof v !== 'string') throw new TypeError(`setting ${k} is not text`);
    return v;
  },
  optStr(s: StepSettings, k: string): string | undefined {
    const v = s[k];
    return v === undefined || v === null ? undefined : setting.str(s, k);
  },
  num(s: StepSettings, k: string): number {
    const v = s[k];
    if (typeof v !== 'number') throw new TypeError(`setting ${k} is not a number`);
    return v;
  },
  optNum(s: StepSettings, k: string): number | undefined {
    const v = s[k];
    return v === undefined || v === null ? undefined : setting.num(s, k);
  },
  bool(s: StepSettings, k: string): boolean {
    const v = s[k];
    if (typeof v !== 'boolean') throw new TypeError(`setting ${k} is not a boolean`);
    return v;
  },
  ints(s: StepSettings, k: string): number[] {
    const v = s[k];
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'number')) throw new TypeError(`setting ${k} is not a list of numbers`);
    return v as number[];
  },
  strs(s: StepSettings, k: string): string[] {
    const v = s[k];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) throw new TypeError(`setting ${k} is not a list`);
    return v.map(String);
  },
};
