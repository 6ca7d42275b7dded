/**
 * Fine-tuning through the ONNX → tfjs executor: the public surface.
 *
 *   const r = await finetuneModelFolder({ model, train, dev, out, epochs: 1 });   // a whole run
 *   const trainer = new Trainer(executor, { loss: 'crf', crf });                  // one step at a time
 *   trainer.step(planEpoch(...)[0].map((idx) => makeMicroBatch(rows, idx, padId)), lr);
 */
export {
  CURVE_FILE,
  defaultMaxBatchTokens,
  finetuneModelFolder,
  frozenInitializers,
  type FinetuneOptions,
  type FinetuneProgress,
  type FinetuneResult,
} from './finetune.js';
export { CRF_PARAM, Trainer, type Checkpoint, type StepResult, type TrainerOptions } from './trainer.js';
export {
  batchFeeds,
  makeMicroBatch,
  microBatches,
  planEpoch,
  trainingRows,
  type EpochPlanOptions,
  type MicroBatch,
  type RowOptions,
  type TrainRow,
} from './data.js';
export { tokenLoss, tokenLossValue, type CrfTensors, type LossKind, type LossTargets } from './loss.js';
export { learningRate, warmupStepsFor, type LinearSchedule } from './schedule.js';
export { HostAdamW, hostGlobalNorm, type HostAdamWOptions, type OptimParam } from './optim.js';
export { curveSvg, movingAverage, type FinetuneDetails, type FinetuneEval, type FinetunePoint } from './report.js';
