/**
 * `ranerc bench --model DIR` — onnxruntime latency (p50/p95/p99) and throughput over a grid of sequence
 * lengths × batch sizes, model load time and peak RSS; writes report.json/md. `--int8 DIR` times a second
 * (INT8) model of the same network in interleaved rounds; `--profile` records onnxruntime's per-node
 * profile and optimized graph of each model at each point and prints time by op type, the GEMM share,
 * the int8/float GEMM speed ratio and the speed-up bound.
 */
import { Option, type Command } from 'commander';
import { UsageError } from '../errors.js';
import { readExamples } from '../ner/data.js';
import { loadTokenizer } from '../ner/tokenizers/index.js';
import { newReport } from '../report/environment.js';
import { summarizeModel } from '../report/models.js';
import { withProgress } from '../report/progress.js';
import type { BenchDetails, Report } from '../report/schema.js';
import { fmt, renderTable } from '../report/table.js';
import { profileText } from '../report/profile.js';
import { resolveReportDir } from '../report/write.js';
import { loadModelFolder } from '../onnx/folder.js';
import type { ModelFolder } from '../onnx/types.js';
import {
  benchModel,
  benchRow,
  makeBenchBatch,
  measureInterleaved,
  peakRssBytes,
  syntheticBenchInputs,
  textBenchInputs,
  type BenchInputs,
  type BenchRow,
} from '../runtime/bench.js';
import { cpuFeatures } from '../runtime/cpu.js';
import { profilePair, type ProfileDetails } from '../runtime/profile.js';
import { NerSession } from '../runtime/session.js';
import { rename, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { action, intListOption, intOption, numberOption, type CliContext } from './context.js';
import {
  addModelOptions,
  addReportOptions,
  addThreadsOption,
  emitReport,
  openModelFolder,
  type ModelFlags,
  type ReportFlags,
} from './options.js';

interface BenchFlags extends ModelFlags, ReportFlags {
  data?: string;
  seq: number[];
  batch: number[];
  warmup: number;
  iterations?: number;
  seconds?: number;
  int8?: string;
  profile?: boolean;
  profileRuns: number;
}

/** Defaults: at least 10 timed runs per point, and at least 3 s unless --iterations is given alone. */
export function benchBudget(flags: { iterations?: number; seconds?: number }): { iterations: number; minSeconds: number } {
  return {
    iterations: flags.iterations ?? 10,
    minSeconds: flags.seconds ?? (flags.iterations === undefined ? 3 : 0),
  };
}

/** The latency table printed on the terminal. */
export function benchTable(rows: BenchRow[]): string {
  return renderTable(
    ['seq', 'batch', 'p50 ms', 'p95 ms', 'p99 ms', 'mean ms', 'sent/s', 'tokens/s', 'runs'],
    rows.map((r) => [
      String(r.seqLen),
      String(r.batch),
      fmt.ms(r.p50Ms),
      fmt.ms(r.p95Ms),
      fmt.ms(r.p99Ms),
      fmt.ms(r.meanMs),
      fmt.rate(r.sentencesPerSec),
      fmt.rate(r.tokensPerSec),
      String(r.iterations),
    ]),
    { align: ['right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'] },
  );
}

async function runBench(ctx: CliContext, flags: BenchFlags): Promise<number> {
  const folder = await openModelFolder(flags);
  const tooLong = flags.seq.filter((s) => s > folder.maxLength || s < 3);
  if (tooLong.length > 0) {
    throw new UsageError(`--seq ${tooLong.join(',')} outside [3, ${folder.maxLength}] (the model's maximum length)`, {
      hint: `pick sequence lengths (tokens incl. [CLS]/[SEP]) of at most ${folder.maxLength}`,
    });
  }
  const tokenizer = await loadTokenizer(folder);
  let inputs: BenchInputs;
  if (flags.data !== undefined) {
    const data = await readExamples(flags.data, { unknownTypes: 'skip' });
    const real = textBenchInputs(
      tokenizer,
      data.examples.map((e) => e.text),
    );
    if (real.sequences.length === 0) {
      throw new UsageError('the data file has no text to take token ids from', {
        hint: 'pass a JSONL/CoNLL file with sentences, or leave --data out for synthetic ids',
      });
    }
    inputs = real;
  } else {
    inputs = syntheticBenchInputs(tokenizer);
  }
  const budget = benchBudget(flags);
  let other: ModelFolder | undefined;
  if (flags.int8 !== undefined) other = await loadModelFolder({ model: flags.int8 });
  const reportDir = await resolveReportDir('bench', flags.reportDir);
  const session = await NerSession.open(folder.onnxPath, { threads: flags.threads });
  const second = other ? await NerSession.open(other.onnxPath, { threads: flags.threads }) : undefined;
  let rows: BenchRow[];
  let rows2: BenchRow[] | undefined;
  let peak: number;
  try {
    const total = flags.seq.length * flags.batch.length;
    if (second) {
      rows = [];
      rows2 = [];
      const rounds = 4;
      rows = await withProgress('bench', total * rounds, { interactive: ctx.interactive, json: flags.json }, async (bar) => {
        const out: BenchRow[] = [];
        let point = 0;
        for (const seq of flags.seq) {
          for (const batch of flags.batch) {
            const feed = makeBenchBatch(inputs, seq, batch);
            const done = point * rounds;
            const [sa, sb] = await measureInterleaved([() => session.runFlat(feed), () => second.runFlat(feed)], {
              rounds,
              warmup: flags.warmup,
              iterations: budget.iterations,
              seconds: budget.minSeconds,
              onRound: (r) => bar.update(done + r, `seq ${seq} × batch ${batch}`),
            });
            out.push(benchRow(seq, batch, sa));
            rows2!.push(benchRow(seq, batch, sb));
            point++;
          }
        }
        return out;
      });
    } else {
      rows = await withProgress('bench', total, { interactive: ctx.interactive, json: flags.json }, (bar) =>
        benchModel(session, {
          seqLens: flags.seq,
          batchSizes: flags.batch,
          inputs,
          warmup: flags.warmup,
          iterations: budget.iterations,
          minSeconds: budget.minSeconds,
          onPoint: (i, _n, seq, batch) => bar.update(i, `seq ${seq} × batch ${batch}`),
        }),
      );
    }
    // Read the high-water mark before summarizeModel decodes the model in JS.
    peak = peakRssBytes();
  } finally {
    await session.close();
    await second?.close();
  }
  const profiles: ProfileDetails[] = [];
  // Profiles are written beside the report folder first (the report is written atomically, replacing the
  // folder) and moved into <report>/profile/ after it.
  const profileTmp = `${reportDir}.profile-tmp`;
  const relocate = (p: string): string => join(reportDir, 'profile', basename(p));
  if (flags.profile) {
    const points = flags.seq.flatMap((seq) => flags.batch.map((batch) => ({ seq, batch })));
    await withProgress('profile', points.length, { interactive: ctx.interactive, json: flags.json }, async (bar) => {
      for (const [i, { seq, batch }] of points.entries()) {
        bar.update(i, `seq ${seq} × batch ${batch}`);
        const p = await profilePair(folder.onnxPath, other?.onnxPath, makeBenchBatch(inputs, seq, batch), {
          dir: profileTmp,
          threads: flags.threads,
          runs: flags.profileRuns,
          names: other ? ['float', 'int8'] : ['model', 'model'],
        });
        for (const m of [p.float, p.int8]) {
          if (!m) continue;
          m.trace = relocate(m.trace);
          if (m.optimized) m.optimized = relocate(m.optimized);
        }
        if (rows2) p.measuredSpeedup = rows[i].p50Ms / rows2[i].p50Ms;
        profiles.push(p);
      }
    });
  }
  const details: BenchDetails = {
    inputs: inputs.source,
    seqLens: flags.seq,
    batchSizes: flags.batch,
    warmup: flags.warmup,
    iterations: budget.iterations,
    seconds: budget.minSeconds,
    peakRssBytes: peak,
    loadMs: session.loadMs,
    compared: second ? { model: flags.int8!, loadMs: second.loadMs, rounds: 4 } : undefined,
    cpu: cpuFeatures(),
    profile: profiles.length > 0 ? profiles : undefined,
  };
  const report: Report<BenchDetails, 'bench'> = newReport(
    'bench',
    {
      model: flags.model,
      data: flags.data ?? null,
      seq: flags.seq,
      batch: flags.batch,
      warmup: flags.warmup,
      iterations: budget.iterations,
      seconds: budget.minSeconds,
      threads: flags.threads ?? 'default',
      int8: flags.int8 ?? null,
      profile: flags.profile ?? false,
    },
    details,
    { threads: flags.threads },
  );
  const model = await summarizeModel(folder, 'model', flags.model);
  model.latency = rows;
  model.loadMs = session.loadMs;
  report.models.push(model);
  if (other && second && rows2) {
    const m2 = await summarizeModel(other, 'int8', flags.int8!);
    m2.latency = rows2;
    m2.loadMs = second.loadMs;
    report.models.push(m2);
  }
  let text = benchTable(rows);
  if (rows2) {
    text = `${flags.model}\n${text}\n${flags.int8} (interleaved with the first, same inputs and threads)\n${benchTable(rows2)}\n`;
    text += rows.map((r, i) => `seq ${r.seqLen} × batch ${r.batch}: speed-up ${(r.p50Ms / rows2![i].p50Ms).toFixed(2)}× (p50)`).join('\n') + '\n';
  }
  for (const p of profiles) text += `\nprofile\n${profileText(p)}`;
  const head =
    `${flags.model}: ${fmt.bytes(model.bytes)}, ${model.parameters === undefined ? '?' : fmt.int(model.parameters)} parameters, ` +
    `load ${fmt.ms(session.loadMs)} ms, peak RSS ${fmt.bytes(peak)}, ${inputs.source} inputs, threads ${flags.threads ?? 'default'}` +
    `${details.cpu ? `, CPU ${details.cpu.flags.join('/') || 'no avx2'}${details.cpu.vnni ? ' (VNNI)' : ' (no VNNI)'}` : ''}\n\n`;
  try {
    await emitReport(ctx, report, { ...flags, reportDir }, head + text);
    if (flags.profile) await rename(profileTmp, join(reportDir, 'profile'));
  } finally {
    await rm(profileTmp, { recursive: true, force: true });
  }
  return 0;
}

export function register(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('bench')
    .description('latency percentiles, throughput, load time and peak memory of a model under onnxruntime');
  addModelOptions(cmd);
  cmd
    .option('-d, --data <file>', 'take token ids from these sentences (default: seeded random ids)')
    .addOption(
      new Option('--seq <list>', 'sequence lengths incl. [CLS]/[SEP], comma-separated')
        .argParser(intListOption('--seq', 3))
        .default([64, 128], '64,128'),
    )
    .addOption(new Option('--batch <list>', 'batch sizes, comma-separated').argParser(intListOption('--batch', 1)).default([1, 8], '1,8'))
    .option('--warmup <n>', 'untimed runs per point', intOption('--warmup', 0, 100000), 5)
    .option('--iterations <n>', 'timed runs per point (default: at least 10, and at least 3 s)', intOption('--iterations', 1, 10000000))
    .option('--seconds <s>', 'time each point for at least this long', numberOption('--seconds', 0, 86400))
    .option('--int8 <dir>', 'a second (INT8) model of the same network: timed in interleaved rounds with the first, and profiled beside it')
    .option('--profile', "record onnxruntime's per-node profile and optimized graph at each point (saved under the report folder): time by op type, GEMM share, int8/float GEMM speed ratio, speed-up bound")
    .option('--profile-runs <n>', 'profiled runs per model and point (after the warm-up)', intOption('--profile-runs', 1, 100000), 12);
  addThreadsOption(cmd);
  addReportOptions(cmd);
  cmd.action(action(ctx, 'bench', (opts: BenchFlags) => runBench(ctx, opts)));
}
