#!/usr/bin/env node
/**
 * Benchmark (not a test): quantize the fixture teacher and print the float vs INT8 table — size,
 * parameters, micro F1 on the committed MSRA test sample, p50/p95 latency per (sequence, batch) measured
 * in the same process with alternating rounds, and the speed-up — for static QDQ (per tensor and per
 * channel) and dynamic quantization; for each variant also onnxruntime's profile of both models (time by
 * op type, GEMM share, int8/float GEMM ratio k at the model's shapes, the bound 1 / (rest + GEMM / k)).
 *
 *   npm run build && node bench/quantize.mjs [--model DIR] [--calib FILE] [--eval FILE] [--threads N]
 *       [--seq 64,128] [--batch 1,8] [--seconds 4] [--variants qdq,qdq-pc,dynamic] [--keep DIR]
 *
 * Needs the compiled CLI (dist/, from `npm run build`). Reports of each run are written under
 * reports/bench-quantize-<time>/<variant>/.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));

/** @param {string[]} argv */
function parseArgs(argv) {
  /** @type {Record<string, string>} */
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    out[a.slice(2)] = argv[i + 1];
    i++;
  }
  return out;
}

const VARIANTS = {
  qdq: { label: 'static QDQ, per-tensor', opts: {} },
  'qdq-pc': { label: 'static QDQ, per-channel', opts: { perChannel: true } },
  qop: { label: 'static QOperator, per-channel', opts: { format: 'qoperator', perChannel: true } },
  dynamic: { label: 'dynamic, per-channel', opts: { dynamic: true, perChannel: true } },
};

async function main() {
  const args = parseArgs(process.argv.slice(2));
  let quantizeModelFolder, writeReport, renderMarkdown, fmt, renderTable, profileText;
  try {
    ({ quantizeModelFolder } = await import(join(ROOT, 'dist/quantize/index.js')));
    ({ writeReport } = await import(join(ROOT, 'dist/report/write.js')));
    ({ renderMarkdown } = await import(join(ROOT, 'dist/report/markdown.js')));
    ({ fmt, renderTable } = await import(join(ROOT, 'dist/report/table.js')));
    ({ profileText } = await import(join(ROOT, 'dist/report/profile.js')));
  } catch (e) {
    console.error(`bench/quantize: cannot load dist/ (${e instanceof Error ? e.message : e}); run \`npm run build\` first`);
    process.exitCode = 1;
    return;
  }
  const model = resolve(args.model ?? join(ROOT, 'fixtures/teacher/model'));
  const calib = resolve(args.calib ?? join(ROOT, 'fixtures/data/msra_calib.jsonl'));
  const evalData = resolve(args.eval ?? join(ROOT, 'fixtures/data/msra_test_sample.jsonl'));
  const threads = args.threads === undefined ? undefined : Number(args.threads);
  const seqLens = (args.seq ?? '64,128').split(',').map(Number);
  const batchSizes = (args.batch ?? '1,8').split(',').map(Number);
  const seconds = Number(args.seconds ?? 4);
  const names = (args.variants ?? 'qdq,qdq-pc,dynamic').split(',');
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  const reportBase = join(ROOT, 'reports', `bench-quantize-${stamp}`);
  const work = args.keep ? resolve(args.keep) : mkdtempSync(join(tmpdir(), 'ranerc-bench-quantize-'));

  console.log(`model ${model}`);
  console.log(`calibration ${calib}, evaluation ${evalData}, threads ${threads ?? 'default'}, load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  /** @type {string[][]} */
  const rows = [];
  let floatRow;
  try {
    for (const name of names) {
      const v = VARIANTS[/** @type {keyof typeof VARIANTS} */ (name)];
      if (!v) throw new Error(`unknown variant ${name} (known: ${Object.keys(VARIANTS).join(', ')})`);
      const t0 = performance.now();
      const res = await quantizeModelFolder({
        model,
        out: join(work, name),
        calib,
        eval: evalData,
        threads,
        seqLens,
        batchSizes,
        benchSeconds: seconds,
        ...v.opts,
      });
      const wall = (performance.now() - t0) / 1000;
      // onnxruntime's profile of both models at the first (seq, batch) point: time by op type, GEMM share, k, bound
      const prof = res.report.details.profile;
      if (prof) console.log(`\n${v.label}: onnxruntime profile\n${profileText(prof)}`);
      await writeReport(join(reportBase, name), res.report, renderMarkdown(res.report));
      const [before, after] = res.report.models;
      const lat = (/** @type {any} */ m) => (m.latency ?? []).map((r) => `${fmt.ms(r.p50Ms)}/${fmt.ms(r.p95Ms)}`);
      if (!floatRow) {
        floatRow = ['float', fmt.bytes(before.bytes), fmt.int(before.parameters ?? 0), before.f1 ? fmt.pct(before.f1.micro.f1) : '', ...lat(before), ''];
        rows.push(floatRow);
      }
      const speed = (after.latency ?? []).map((r, i) => (before.latency[i].p50Ms / r.p50Ms).toFixed(2)).join(' / ');
      rows.push([v.label, fmt.bytes(after.bytes), fmt.int(after.parameters ?? 0), after.f1 ? fmt.pct(after.f1.micro.f1) : '', ...lat(after), `${speed}×`]);
      console.log(
        `${v.label}: ${(after.bytes / before.bytes).toFixed(3)}× size, F1 ${before.f1 ? fmt.pct(before.f1.micro.f1) : '?'} → ${after.f1 ? fmt.pct(after.f1.micro.f1) : '?'}, ` +
          `quantized in ${wall.toFixed(1)} s (with eval and latency), report ${join(reportBase, name)}`,
      );
    }
  } finally {
    if (!args.keep) rmSync(work, { recursive: true, force: true });
  }
  const grid = seqLens.flatMap((s) => batchSizes.map((b) => `p50/p95 ms s${s} b${b}`));
  console.log('');
  console.log(
    renderTable(['model', 'size', 'params', 'F1 %', ...grid, 'speed-up (p50)'], rows, {
      align: ['left', 'right', 'right', 'right', ...grid.map(() => 'right'), 'right'],
    }),
  );
  console.log(`(latency: float and INT8 measured in the same process, alternating rounds, same inputs and threads; load average now ${loadavg().map((x) => x.toFixed(1)).join(' ')})`);
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
