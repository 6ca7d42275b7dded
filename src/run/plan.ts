/**
 * The run plan: the recipe's steps in dependency order, then one `eval@<variant>` and one
 * `bench@<variant>` step per variant (from `measure:`), all evals before all benches so the timings are
 * taken one after another at the end of the run. Pure: no files are touched.
 */
import { isRef, type SettingValue } from './schema.js';
import type { Recipe, StepFields, StepSpec } from './recipe.js';
import { stepKind } from './steps/index.js';

/** The steps a value refers to (not `inputs`). */
export function stepRefs(fields: StepFields): string[] {
  const out: string[] = [];
  for (const v of Object.values(fields)) if (isRef(v) && v.ref !== 'inputs') out.push(v.ref);
  return out;
}

/** Name of the step that scores (`eval`) or times (`bench`) a variant. */
export function measureStepName(variant: string, what: 'eval' | 'bench'): string {
  return `${what}@${variant}`;
}

/** All steps to run, in order. Throws (naming the recipe line) on a reference cycle. */
export function planRun(recipe: Recipe): StepSpec[] {
  const byName = new Map(recipe.steps.map((s) => [s.name, s]));
  const ordered: StepSpec[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (s: StepSpec, trail: string[]) => {
    const st = state.get(s.name);
    if (st === 'done') return;
    if (st === 'visiting') {
      const cycle = [...trail.slice(trail.indexOf(s.name)), s.name];
      throw recipe.tree.error(s.path, `steps refer to each other in a cycle: ${cycle.join(' → ')}`, 'a step can only use outputs of steps that do not depend on it');
    }
    state.set(s.name, 'visiting');
    for (const dep of stepRefs(s.fields)) {
      const d = byName.get(dep);
      if (d) visit(d, [...trail, s.name]);
    }
    state.set(s.name, 'done');
    ordered.push(s);
  };
  for (const s of recipe.steps) visit(s, []);

  const measures = (what: 'eval' | 'bench'): StepSpec[] =>
    recipe.variants.map((v) => {
      const fields: Record<string, SettingValue | undefined> = { ...recipe.measure[what], model: v.model };
      return {
        name: measureStepName(v.name, what),
        def: stepKind(what)!,
        fields,
        path: [...v.path, 'model'],
        measures: { variant: v.name, what },
      };
    });
  return [...ordered, ...measures('eval'), ...measures('bench')];
}

/**
 * The recipe steps a variant's model comes out of, oldest first (following model references back to
 * an input): the chain the artifact report lists.
 */
export function variantChain(recipe: Recipe, variant: string): StepSpec[] {
  const v = recipe.variants.find((x) => x.name === variant);
  if (!v) return [];
  const byName = new Map(recipe.steps.map((s) => [s.name, s]));
  const chain: StepSpec[] = [];
  const seen = new Set<string>();
  const walk = (name: string) => {
    const s = byName.get(name);
    if (!s || seen.has(name)) return;
    seen.add(name);
    for (const dep of stepRefs(s.fields)) walk(dep);
    chain.push(s);
  };
  if (isRef(v.model) && v.model.ref !== 'inputs') walk(v.model.ref);
  return chain;
}
