/**
 * Learning-rate schedule of the fine-tuning loop: linear warm-up, then linear decay to zero
 * (Hugging Face `get_linear_schedule_with_warmup`, with the warm-up counting the step being taken:
 * step 0 already trains at lr / warmupSteps rather than at 0).
 *
 * With a wall-clock budget the decay also follows the clock: the factor is the smaller of the
 * step-based one and 1 − elapsed / budget, so a run cut short by `--max-minutes` still ends near
 * a learning rate of zero (as fixtures/teacher/train_teacher.py's time-based schedule does).
 */

export interface LinearSchedule {
  /** Peak learning rate. */
  lr: number;
  /** Optimizer steps planned in all. */
  totalSteps: number;
  /** Steps of linear warm-up (0 = none). */
  warmupSteps: number;
}

/** Warm-up steps for a ratio of the planned steps (ceil; 0 when the ratio is 0). */
export function warmupStepsFor(totalSteps: number, ratio: number): number {
  if (!(ratio >= 0 && ratio < 1)) throw new RangeError(`warm-up ratio must be in [0, 1), got ${ratio}`);
  return Math.min(totalSteps, Math.ceil(ratio * totalSteps));
}

/**
 * Learning rate for 0-based step `step`: lr·(step + 1)/warmup during warm-up, then
 * lr·max(0, (total − step)/(total − warmup)); `timeFraction` (elapsed / budget, when there is a budget)
 * caps the decay factor at 1 − timeFraction.
 */
export function learningRate(s: LinearSchedule, step: number, timeFraction?: number): number {
  const { lr, totalSteps, warmupSteps } = s;
  let factor: number;
  if (step < warmupSteps) {
    factor = (step + 1) / warmupSteps;
  } else {
    const span = totalSteps - warmupSteps;
    factor = span > 0 ? Math.max(0, (totalSteps - step) / span) : 0;
  }
  if (timeFraction !== undefined && step >= warmupSteps) factor = Math.min(factor, Math.max(0, 1 - timeFraction));
  return lr * factor;
}
