/**
 * The step registry: recipe `kind:` → step definition, one file per kind in this folder. A kind whose
 * library has not landed yet is simply absent, and the recipe validator rejects it by name and line.
 */
import { benchStep } from './bench.js';
import { distillStep } from './distill.js';
import { evalStep } from './eval.js';
import { finetuneStep } from './finetune.js';
import { pruneStep } from './prune.js';
import { quantizeStep } from './quantize.js';
import type { StepDefinition } from './types.js';

const registry = new Map<string, StepDefinition>();

/** Add a step kind (each kind once). */
export function registerStep(def: StepDefinition): void {
  if (registry.has(def.kind)) throw new Error(`step kind "${def.kind}" is already registered`);
  registry.set(def.kind, def);
}

/** The definition of a kind, or undefined when ranerc has no such step. */
export function stepKind(kind: string): StepDefinition | undefined {
  return registry.get(kind);
}

/** Every registered kind, in registration order. */
export function stepKinds(): StepDefinition[] {
  return [...registry.values()];
}

/**
 * Kinds the recipe format knows but whose library is not in this build yet (named in the error so a
 * user is told it is coming, not that they misspelled it).
 */
export const PLANNED_KINDS: readonly string[] = ['prune', 'finetune', 'quantize', 'distill'];

for (const def of [evalStep, benchStep, pruneStep, finetuneStep, quantizeStep, distillStep]) registerStep(def);
