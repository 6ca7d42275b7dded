/**
 * CRF-in-graph import: a graph whose output is an integer tag sequence decoded by a traced linear-chain CRF
 * becomes a standard emissions graph (`logits`) plus CRF parameters (crf.json). See detect.ts for how the
 * decode is recognised and cut.ts for the cut.
 */
import type { CrfParams } from '../../ner/types.js';
import { InputError } from '../../errors.js';
import type { onnx } from '../codec.js';
import { cutToEmissions } from './cut.js';
import { findCrfDecode, hasIntegerDecodeOutput, type CrfDecodeFound } from './detect.js';

export { findCrfDecode, hasIntegerDecodeOutput } from './detect.js';
export type { CrfDecodeFound } from './detect.js';

export interface CrfConversion {
  model: onnx.ModelProto;
  crf: CrfParams;
  found: CrfDecodeFound;
  droppedInputs: string[];
  keptInputs: string[];
  removedNodes: number;
  removedInitializers: number;
}

/** Convert a CRF-in-graph export; InputError naming the node when the decode is not one ranerc reads. */
export function convertCrfExport(model: onnx.IModelProto, labels: string[], file?: string): CrfConversion {
  const output = hasIntegerDecodeOutput(model);
  if (!output) {
    throw new InputError('the model has no integer decode output to convert', {
      file,
      hint: 'ranerc convert reads exports whose output is CRF-decoded tag ids (e.g. ModelScope "predictions"); this model can be used as it is',
    });
  }
  const found = findCrfDecode(model, output, file);
  if (found.labels !== labels.length) {
    throw new InputError(`the CRF in the graph has ${found.labels} labels but the model folder lists ${labels.length}`, {
      file,
      node: found.emissionsNode,
      hint: 'config.json id2label must list the labels the CRF was trained with, in id order',
    });
  }
  const cut = cutToEmissions(model, found);
  return {
    model: cut.model,
    // the graph's CRF runs over the first sub-token of each word (label_mask compaction): so does ranerc's decode
    crf: { labels: [...labels], transitions: found.transitions, start: found.start, end: found.end, positions: 'words' },
    found,
    droppedInputs: cut.droppedInputs,
    keptInputs: cut.keptInputs,
    removedNodes: cut.removedNodes,
    removedInitializers: cut.removedInitializers,
  };
}
