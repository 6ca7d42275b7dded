/**
 * `ranerc convert --model DIR --out DIR --data FILE` — turn a CRF-in-graph export (an integer `predictions`
 * output decoded by a traced Viterbi, e.g. ModelScope RaNER) into a standard folder: model.onnx with a
 * `logits` output, crf.json read from the graph, the tokenizer files. Before anything is written the
 * conversion is proven on the texts of `--data`: ranerc's Viterbi over the converted emissions must give
 * the original graph's own tags on every text within the graph's fixed length; otherwise nothing is written.
 */
import { extname } from 'node:path';
import type { Command } from 'commander';
import { GraphError, InputError } from '../errors.js';
import { readExamples, readTextLines } from '../ner/data.js';
import { tagsToEntities } from '../ner/decode.js';
import { LabelSet } from '../ner/labels.js';
import { scoreSpans } from '../ner/metrics.js';
import type { Entity, Example } from '../ner/types.js';
import type { ModelFolder } from '../onnx/types.js';
import { Predictor } from '../runtime/predict.js';
import { loadTokenizer } from '../ner/tokenizers/index.js';
import { checkEquivalence, type EquivalenceResult } from '../onnx/convert/equivalence.js';
import { loadModel } from '../onnx/external.js';
import { loadModelFolder, writeModelFolder } from '../onnx/folder.js';
import { newReport, ranercVersion } from '../report/environment.js';
import { summarizeData, summarizeModel } from '../report/models.js';
import { withProgress } from '../report/progress.js';
import type { Report } from '../report/schema.js';
import { fmt, renderTable } from '../report/table.js';
import { sha256File } from '../util/fs.js';
import { action, type CliContext } from './context.js';
import { addModelOptions, addReportOptions, addThreadsOption, emitReport, type ModelFlags, type ReportFlags } from './options.js';

interface ConvertFlags extends ModelFlags, ReportFlags {
  out: string;
  data: string;
}

export interface ConvertDetails {
  output: string;
  fixedLength: number;
  droppedInputs: string[];
  note: string;
  equivalence: Omit<EquivalenceResult, 'graphTags' | 'tokens'>;
  /** With labelled --data: micro entity F1 on the compared texts, graph's own decode vs ranerc's decode. */
  f1?: { sentences: number; graph: number; ranerc: number };
}

async function readData(path: string): Promise<{ examples: Example[]; labelled: boolean }> {
  if (extname(path).toLowerCase() === '.txt') return { examples: await readTextLines(path), labelled: false };
  return { examples: (await readExamples(path)).examples, labelled: true };
}

/**
 * Entity F1 on the compared texts (those within the fixed length) of the graph's own decode and of ranerc's
 * default decode of the converted folder (what `eval` reports).
 */
async function f1Comparison(folder: ModelFolder, examples: Example[], eq: EquivalenceResult, threads?: number): Promise<ConvertDetails['f1']> {
  const labels = new LabelSet(folder.labels);
  const kept = examples.map((_, i) => i).filter((i) => eq.graphTags[i] !== undefined);
  const graphPred = kept.map((i) => {
    const toks = eq.tokens[i]!;
    const words = eq.graphTags[i]!;
    let w = -1;
    const tags = toks.map((t, k) => (k === 0 || toks[k - 1].word !== t.word ? words[++w] : words[w]));
    return tagsToEntities(examples[i].text, toks, tags, labels);
  });
  const predictor = await Predictor.open(folder, { threads });
  let ranerc: Entity[][];
  try {
    ranerc = await predictor.predict(kept.map((i) => examples[i].text));
  } finally {
    await predictor.close();
  }
  const gold = kept.map((i) => examples[i].entities);
  return { sentences: kept.length, graph: scoreSpans(gold, graphPred).micro.f1, ranerc: scoreSpans(gold, ranerc).micro.f1 };
}

async function runConvert(ctx: CliContext, flags: ConvertFlags): Promise<number> {
  const folder = await loadModelFolder({ model: flags.model, labels: flags.labels, vocab: flags.vocab });
  const conv = folder.conversion;
  if (!conv || !folder.crf) {
    throw new InputError('this model is not a CRF-in-graph export: it has a float output, nothing to convert', {
      file: folder.onnxPath,
      hint: 'ranerc convert reads exports whose only output is CRF-decoded tag ids (e.g. ModelScope "predictions"); use this model as it is',
    });
  }
  const data = await readData(flags.data);
  const texts = data.examples.map((e) => e.text);
  if (texts.length === 0) throw new InputError('no texts in the --data file', { file: flags.data, hint: 'give texts to prove the conversion on' });
  const tokenizer = await loadTokenizer(folder);
  const eq = await withProgress('convert: proof', texts.length, { interactive: ctx.interactive, json: flags.json }, (bar) =>
    checkEquivalence(conv.source, { onnxPath: folder.onnxPath, crf: folder.crf! }, tokenizer, texts, conv.fixedLength, {
      threads: flags.threads,
      onProgress: (d) => bar.update(d, 'texts'),
    }),
  );
  const { graphTags: _g, tokens: _t, ...equivalence } = eq;
  if (eq.compared === 0) {
    throw new InputError(`none of the ${texts.length} texts fits the export's fixed length (${conv.fixedLength} tokens with [CLS]/[SEP])`, {
      file: flags.data,
      hint: 'give shorter texts so the conversion can be proven against the graph\'s own decode',
    });
  }
  if (eq.words.matched !== eq.positions) {
    const m = eq.mismatches[0];
    throw new GraphError(
      `the converted model disagrees with the graph's own decode on ${fmt.int(eq.positions - eq.words.matched)} of ${fmt.int(eq.positions)} word positions ` +
        `(first: text ${m.text + 1}, word ${m.word}: graph tag ${m.graph}, ranerc ${m.ranerc}); nothing was written`,
      { file: conv.source, hint: 'this export has a decode ranerc misreads; please report it with the model' },
    );
  }
  const model = (await loadModel(folder.onnxPath)).model;
  const written = await writeModelFolder(flags.out, folder, model, {
    provenance: {
      ranerc: ranercVersion(),
      command: 'convert',
      createdAt: new Date().toISOString(),
      source: { path: conv.source, sha256: await sha256File(conv.source) },
      settings: { note: conv.note, droppedInputs: conv.droppedInputs, fixedLength: conv.fixedLength },
      // this step is the conversion: no separate "convert (at load)" entry
      history: folder.provenance?.history ?? [],
    },
    crf: folder.crf,
  });
  const outFolder = await loadModelFolder({ model: written.dir });
  const details: ConvertDetails = { output: conv.output, fixedLength: conv.fixedLength, droppedInputs: conv.droppedInputs, note: conv.note, equivalence };
  if (data.labelled) details.f1 = await f1Comparison(outFolder, data.examples, eq, flags.threads);
  const report: Report<ConvertDetails, 'convert'> = newReport('convert', { model: flags.model, out: flags.out, data: flags.data }, details, { threads: flags.threads });
  report.models.push(await summarizeModel({ ...folder, onnxPath: conv.source, conversion: undefined, externalDataFiles: undefined }, 'before', flags.model));
  report.models.push(await summarizeModel(outFolder, 'after', flags.out));
  report.data = { files: [await summarizeData(flags.data, { format: extname(flags.data).toLowerCase() === '.txt' ? 'text' : 'jsonl', sentences: texts.length, entities: 0, skipped: 0 })] };
  if (eq.longer > 0) {
    report.warnings.push(`${eq.longer} text(s) are longer than the export's fixed length (${conv.fixedLength} tokens) and were not compared; the converted model reads them in windows`);
  }
  const pct = (x: number): string => `${(100 * x).toFixed(2)} %`;
  const table = renderTable(
    ['check', 'value'],
    [
      ['texts', fmt.int(eq.texts)],
      ['compared (within the fixed length)', fmt.int(eq.compared)],
      ['longer than the fixed length (not compared)', fmt.int(eq.longer)],
      ['word positions', fmt.int(eq.positions)],
      ['tag match, Viterbi over words (the graph\'s computation, ranerc\'s decode)', pct(eq.words.rate)],
      ['tag match, Viterbi over all pieces (for comparison)', pct(eq.allPieces.rate)],
      ['inputs dropped', conv.droppedInputs.join(', ') || '—'],
      ...(details.f1
        ? [
            ['entity F1 (compared texts), graph\'s own decode', pct(details.f1.graph)],
            ['entity F1 (compared texts), ranerc eval decode', pct(details.f1.ranerc)],
          ]
        : []),
    ],
    { align: ['left', 'right'] },
  );
  await emitReport(ctx, report, flags, `${flags.model} -> ${written.dir}\n${conv.note}\n\n${table}`);
  return 0;
}

export function register(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('convert')
    .description('convert a CRF-in-graph export (integer "predictions" output, e.g. ModelScope RaNER) into a standard folder (logits + crf.json), proven on --data');
  addModelOptions(cmd);
  cmd
    .requiredOption('-o, --out <dir>', 'the folder to write (atomically)')
    .requiredOption('-d, --data <file>', 'texts to prove the conversion on: JSONL/CoNLL (texts are used) or .txt, one text per line');
  addThreadsOption(cmd);
  addReportOptions(cmd);
  cmd.action(action(ctx, 'convert', (opts: ConvertFlags) => runConvert(ctx, opts)));
}
