/**
 * The model runs for one micro-batch, shared by the in-process engine and the pool workers: texts grouped
 * by token length (little padding), one Predictor call per group; when a call fails, its texts are
 * retried alone so only the culprit fails. Answers are the `ranerc predict` JSON lines.
 */
import { entitiesJson } from '../cli/predict.js';
import type { Predictor } from '../runtime/predict.js';
import { lengthGroups } from './batcher.js';

export type BatchRun = (texts: string[]) => Promise<Array<string | Error>>;

export function batchRunner(predictor: Predictor, onCall: () => void = () => {}): BatchRun {
  const runGroup = async (texts: string[]): Promise<Array<string | Error>> => {
    onCall();
    try {
      const ents = await predictor.predict(texts);
      return texts.map((t, i) => entitiesJson(t, ents[i]));
    } catch (e) {
      if (texts.length === 1) return [e instanceof Error ? e : new Error(String(e))];
      const out: Array<string | Error> = [];
      for (const t of texts) {
        try {
          onCall();
          out.push(entitiesJson(t, (await predictor.predict([t]))[0]));
        } catch (e1) {
          out.push(e1 instanceof Error ? e1 : new Error(String(e1)));
        }
      }
      return out;
    }
  };
  return async (texts) => {
    if (texts.length === 1) return runGroup(texts);
    const lengths = texts.map((t) => Math.min(predictor.tokenizer.tokenize(t).length, predictor.windowSize));
    const out = new Array<string | Error>(texts.length);
    for (const g of lengthGroups(lengths)) {
      const answers = await runGroup(g.map((i) => texts[i]));
      g.forEach((i, k) => (out[i] = answers[k]));
    }
    return out;
  };
}
