#!/usr/bin/env node
/**
 * `npm run bench`: run ranerc's benchmarks one after another (never part of `npm test`).
 *
 *   npm run bench                  # the default suite below
 *   npm run bench -- quantize serve # only these
 *   npm run bench -- --list
 *
 * Each benchmark is its own script in bench/ (read its header for flags and what it measures) and needs
 * the compiled CLI in dist/ (`npm run bench` builds it first). Numbers depend on the machine and on what
 * else runs on it: every script prints the CPU count and the load average beside its results.
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** name → [script, default arguments, what it shows] */
const SUITE = {
  quantize: ['quantize.mjs', ['--seq', '64', '--batch', '1'], 'float vs INT8 table for the fixture teacher (size, F1, p50/p95, speed-up)'],
  finetune: ['finetune.mjs', [], 'training throughput (tokens/s) of ranerc finetune on the tfjs backend that runs'],
  autodiff: ['autodiff-throughput.mjs', [], 'ONNX → tfjs executor forward and forward+backward tokens/s'],
  prune: ['prune.mjs', ['--only', 'teacher'], 'head pruning of the fixture teacher: F1 and p50 before → pruned'],
  'prune-brute': ['prune.mjs', ['--only', 'brute'], 'brute-force check of the head ranking on a tiny model (Spearman)'],
  distill: ['distill.mjs', ['--only', 'step'], 'BiLSTM student training step throughput, three implementations'],
  serve: ['serve.mjs', ['--requests', '2000', '--concurrency', '32'], 'load test of ranerc serve: one-at-a-time vs batching vs batching+cache'],
};

const args = process.argv.slice(2);
if (args.includes('--list')) {
  for (const [name, [script, , what]] of Object.entries(SUITE)) console.log(`${name.padEnd(12)} bench/${script}  ${what}`);
  process.exit(0);
}
const unknown = args.filter((a) => !(a in SUITE));
if (unknown.length > 0) {
  console.error(`bench: unknown benchmark(s): ${unknown.join(', ')} (see --list)`);
  process.exit(2);
}
const names = args.length > 0 ? args : Object.keys(SUITE);
const failed = [];
for (const name of names) {
  const [script, defaults, what] = SUITE[name];
  console.log(`\n=== ${name}: ${what}\n    node bench/${script} ${defaults.join(' ')}`);
  const started = Date.now();
  const r = spawnSync(process.execPath, [join(here, script), ...defaults], { stdio: 'inherit' });
  console.log(`=== ${name}: exit ${r.status ?? r.signal} after ${((Date.now() - started) / 1000).toFixed(1)} s`);
  if (r.status !== 0) failed.push(name);
}
if (failed.length > 0) {
  console.error(`\nbench: failed: ${failed.join(', ')}`);
  process.exit(1);
}
