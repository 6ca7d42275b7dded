/**
 * `ranerc predict --model DIR "text" ...` or `--file F` — one JSON object per text on stdout:
 * `{"entities":[{"text":"马云","type":"PER","start":0,"end":2}, ...]}` (keys in that order, end exclusive).
 * Offsets count Unicode code points by default, as the JSONL data files and Python do (`text[start:end]`);
 * `--offsets utf16` gives JavaScript string indices instead. They differ only outside the BMP.
 */
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { readTextLines, toJsonlRecord, type OffsetUnit } from '../ner/data.js';
import type { Entity } from '../ner/types.js';
import { withProgress } from '../report/progress.js';
import { predictViaQueue } from '../queue/client.js';
import { DEFAULT_QUEUE_NAME } from '../queue/protocol.js';
import { Predictor } from '../runtime/predict.js';
import { sha256File } from '../util/fs.js';
import { action, intOption, type CliContext } from './context.js';
import {
  addModelOptions,
  addThreadsOption,
  addWindowOptions,
  openModelFolder,
  windowOptions,
  type ModelFlags,
  type WindowFlags,
} from './options.js';

interface PredictFlags extends ModelFlags, WindowFlags {
  file?: string;
  batch: number;
  offsets: string;
  queue?: string;
  queueName: string;
  chunk: number;
}

/**
 * The answer line for one text: entities with keys text, type, start, end (in that order), offsets in
 * code points (default) or UTF-16 units. `entities` carry UTF-16 offsets into `text`.
 */
export function entitiesJson(text: string, entities: Entity[], offsets: OffsetUnit = 'codepoint'): string {
  const spans = toJsonlRecord({ text, entities }, offsets).entities;
  return JSON.stringify({
    entities: entities.map((e, i) => ({ text: e.text, type: e.type, start: spans[i].start, end: spans[i].end })),
  });
}

async function runPredict(ctx: CliContext, texts: string[], flags: PredictFlags): Promise<number> {
  if (flags.offsets !== 'codepoint' && flags.offsets !== 'utf16') {
    throw new UsageError(`--offsets must be "codepoint" or "utf16", got "${flags.offsets}"`, {
      hint: 'codepoint counts characters as Python does; utf16 counts JavaScript string units',
    });
  }
  const offsets: OffsetUnit = flags.offsets;
  const all = [...texts];
  if (flags.file !== undefined) all.push(...(await readTextLines(flags.file)).map((e) => e.text));
  if (all.length === 0) {
    throw new UsageError('no text to predict', {
      hint: 'pass texts as arguments (ranerc predict --model DIR "马云在杭州") or --file with one text per line',
    });
  }
  const folder = await openModelFolder(flags);
  if (flags.queue !== undefined) {
    // spread over `ranerc worker` processes through the BullMQ queue; answers come back in input order
    const lines = await withProgress('predict (queue)', all.length, { interactive: ctx.interactive && all.length > 1000 }, async (bar) =>
      predictViaQueue({
        url: flags.queue!,
        queueName: flags.queueName,
        texts: all,
        modelSha: await sha256File(folder.onnxPath),
        offsets,
        ...windowOptions(flags),
        batch: flags.batch,
        chunk: flags.chunk,
        onProgress: (done) => bar.update(done, 'texts'),
      }),
    );
    ctx.out(lines.map((l) => `${l}\n`).join(''));
    return 0;
  }
  const predictor = await Predictor.open(folder, {
    ...windowOptions(flags),
    threads: flags.threads,
    batchSize: flags.batch,
  });
  try {
    const results = await withProgress('predict', all.length, { interactive: ctx.interactive && all.length > 1000 }, (bar) => {
      predictor.onProgress = (done) => bar.update(done, 'texts');
      return predictor.predict(all);
    });
    ctx.out(results.map((r, i) => `${entitiesJson(all[i], r, offsets)}\n`).join(''));
    return 0;
  } finally {
    await predictor.close();
  }
}

export function register(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('predict')
    .description('print the entities of each text as one JSON object per line')
    .argument('[texts...]', 'texts to tag');
  addModelOptions(cmd);
  cmd
    .option('-f, --file <file>', 'a UTF-8 file with one text per line (blank lines are skipped)')
    .option('--batch <n>', 'windows per onnxruntime run', intOption('--batch', 1, 4096), 32)
    .option('--offsets <unit>', 'what start/end count: codepoint (as Python, the default) or utf16', 'codepoint')
    .option('--queue <url>', 'send the texts to `ranerc worker` processes through a Redis job queue (redis://host:port)')
    .option('--queue-name <name>', 'BullMQ queue name (workers must use the same)', DEFAULT_QUEUE_NAME)
    .option('--chunk <n>', 'texts per queue job', intOption('--chunk', 1, 100_000), 100);
  addWindowOptions(cmd);
  addThreadsOption(cmd);
  cmd.action(action(ctx, 'predict', (texts: string[], opts: PredictFlags) => runPredict(ctx, texts, opts)));
}
