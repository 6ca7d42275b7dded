#!/usr/bin/env node
/**
 * Load test of `ranerc serve` on loopback: the same seeded stream of /predict requests (default 2,000 at
 * concurrency 32, drawn from 500 distinct MSRA test sentences, so texts repeat as real traffic does) is
 * sent to three servers:
 *
 *   one-at-a-time   --max-batch 1  --max-wait-ms 0 --cache-size 0
 *   micro-batching  --max-batch 32 --max-wait-ms 5 --cache-size 0
 *   batching+cache  --max-batch 32 --max-wait-ms 5 --cache-size 1024
 *
 * Each server is the built CLI (`node bin/ranerc.js serve`, run `npm run build` first) in its own
 * process, warmed up with other sentences, then loaded by this process through keep-alive connections.
 * Reports throughput, latency percentiles, batch sizes and cache hits per configuration; an error is a
 * non-200 answer, a failed connection, or an answer that differs from the one-at-a-time answer for the
 * same text. Exits 1 if there was any error.
 *
 *   node bench/serve.mjs [--model DIR] [--requests 2000] [--concurrency 32] [--distinct 500]
 *                        [--rounds 1] [--data FILE.jsonl] [--threads N] [--seed 7] [--json]
 *
 * `--suite workers` compares inference worker threads instead (no cache, so every text runs the model):
 *
 *   1 worker        --workers 1 --max-batch 32 --max-wait-ms 5 --cache-size 0
 *   2 workers       --workers 2 --max-batch 32 --max-wait-ms 5 --cache-size 0
 *   main thread     --workers 0 --max-batch 32 --max-wait-ms 5 --cache-size 0   (no pool: its overhead)
 *
 * and then floods a server with a small queue bound (`--flood 2000` requests at concurrency 512 against
 * --max-queue 64): every answer must be 200 or 429 (with Retry-After), none 5xx, none left hanging (30 s).
 * Each configuration also reports the CPU it spent per request (server main thread, other server threads,
 * this load generator; from /proc on Linux) and the requests/s that CPU allows on the machine's cores,
 * which bounds what a second worker can add when the load generator shares the machine.
 * The batching suite pins --workers 0 (the model on the main thread, as before the pool existed).
 *
 * With --rounds R the configurations are run R times each, interleaved, and their rounds pooled
 * (throughput = all requests / all seconds; percentiles over all latencies): on a shared machine this
 * keeps a change of background load from favouring one configuration.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(REPO, 'bin', 'ranerc.js');

const { values: args } = parseArgs({
  options: {
    model: { type: 'string' },
    requests: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '32' },
    distinct: { type: 'string', default: '500' },
    data: { type: 'string', default: join(REPO, 'fixtures', 'data', 'msra_test_sample.jsonl') },
    threads: { type: 'string' },
    seed: { type: 'string', default: '7' },
    rounds: { type: 'string', default: '1' },
    suite: { type: 'string', default: 'batching' },
    flood: { type: 'string', default: '2000' },
    json: { type: 'boolean', default: false },
  },
});

/** The best model in the repository: the fixture teacher once committed, else a tiny fixture. */
function defaultModel() {
  const teacher = join(REPO, 'fixtures', 'teacher', 'model');
  return existsSync(join(teacher, 'config.json')) ? teacher : join(REPO, 'fixtures', 'tiny', 'bio-crf-op14');
}

const MODEL = args.model ?? defaultModel();
const N = Number(args.requests);
const C = Number(args.concurrency);
const DISTINCT = Number(args.distinct);
const ROUNDS = Number(args.rounds);
for (const [k, v] of [['--requests', N], ['--concurrency', C], ['--distinct', DISTINCT], ['--rounds', ROUNDS]]) {
  if (!Number.isInteger(v) || v < 1) {
    console.error(`bench/serve: ${k} must be a positive integer`);
    process.exit(2);
  }
}
if (!existsSync(join(REPO, 'dist', 'cli', 'index.js'))) {
  console.error('bench/serve: dist/ is missing; run `npm run build` first');
  process.exit(2);
}

const SUITES = {
  batching: [
    { name: 'one-at-a-time', flags: ['--workers', '0', '--max-batch', '1', '--max-wait-ms', '0', '--cache-size', '0'] },
    { name: 'micro-batching', flags: ['--workers', '0', '--max-batch', '32', '--max-wait-ms', '5', '--cache-size', '0'] },
    { name: 'batching+cache', flags: ['--workers', '0', '--max-batch', '32', '--max-wait-ms', '5', '--cache-size', '1024'] },
  ],
  workers: [
    { name: '1 worker', flags: ['--workers', '1', '--max-batch', '32', '--max-wait-ms', '5', '--cache-size', '0'] },
    { name: '2 workers', flags: ['--workers', '2', '--max-batch', '32', '--max-wait-ms', '5', '--cache-size', '0'] },
    { name: 'main thread', flags: ['--workers', '0', '--max-batch', '32', '--max-wait-ms', '5', '--cache-size', '0'] },
  ],
};
const CONFIGS = SUITES[args.suite];
if (!CONFIGS) {
  console.error(`bench/serve: --suite must be one of ${Object.keys(SUITES).join(', ')}`);
  process.exit(2);
}

/** mulberry32 */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sentences = readFileSync(args.data, 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '')
  .map((l) => JSON.parse(l).text)
  .filter((t) => typeof t === 'string' && t.length > 0);
if (sentences.length < DISTINCT + 64) {
  console.error(`bench/serve: ${args.data} has ${sentences.length} sentences; need --distinct + 64`);
  process.exit(2);
}
const pool = sentences.slice(0, DISTINCT);
const warm = sentences.slice(DISTINCT, DISTINCT + 64);
const r = rng(Number(args.seed));
const stream = Array.from({ length: N }, () => pool[Math.floor(r() * pool.length)]);

function post(url, agent, text, timeoutMs = 0) {
  const u = new URL(url);
  const body = JSON.stringify({ text });
  return new Promise((resolve) => {
    const t0 = performance.now();
    const req = request(
      { host: u.hostname, port: u.port, method: 'POST', path: '/predict', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - t0, retryAfter: res.headers['retry-after'] }));
        res.on('error', (e) => resolve({ status: 0, body: String(e), ms: performance.now() - t0 }));
      },
    );
    req.on('error', (e) => resolve({ status: 0, body: String(e), ms: performance.now() - t0 }));
    if (timeoutMs > 0) req.setTimeout(timeoutMs, () => req.destroy(new Error('hung: no answer in time')));
    req.end(body);
  });
}

async function getText(url, path) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    request({ host: u.hostname, port: u.port, path }, (res) => {
      let b = '';
      res.on('data', (c) => (b += c));
      res.on('end', () => resolve(b));
    })
      .on('error', reject)
      .end();
  });
}

function metric(text, name) {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

/**
 * CPU seconds used so far by each thread of process `pid` (Linux /proc/<pid>/task/<tid>/stat: utime +
 * stime in clock ticks, 100 per second on Linux), or undefined where /proc is not there.
 */
function threadCpu(pid) {
  try {
    const out = new Map();
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(tid, (Number(f[11]) + Number(f[12])) / 100);
    }
    return out;
  } catch {
    return undefined;
  }
}

/** Server CPU between two snapshots, split into its main thread (HTTP, JSON, batching) and all others. */
function cpuDelta(pid, before, after) {
  if (!before || !after) return undefined;
  let main = 0;
  let other = 0;
  for (const [tid, t] of after) {
    const d = t - (before.get(tid) ?? 0);
    if (tid === String(pid)) main += d;
    else other += d;
  }
  return { main, other };
}

function startServer(flags) {
  const extra = args.threads ? ['--threads', args.threads] : [];
  const proc = spawn(process.execPath, [BIN, 'serve', '--model', MODEL, '--port', '0', ...flags, ...extra], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stderr.on('data', (c) => (err += c));
  const exit = new Promise((resolve) => proc.on('close', (code, signal) => resolve({ code, signal })));
  return new Promise((resolve, reject) => {
    proc.stdout.on('data', (c) => {
      out += c;
      const m = /^ranerc serve: (http:\/\/\S+)$/m.exec(out);
      if (m) resolve({ proc, url: m[1], exit, err: () => err });
    });
    exit.then(({ code }) => reject(new Error(`ranerc serve exited ${code} before listening:\n${err}`)));
  });
}

function pct(sorted, p) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

async function runConfig(cfg, reference) {
  const srv = await startServer(cfg.flags);
  const agent = new Agent({ keepAlive: true, maxSockets: C });
  try {
    // warm-up with sentences outside the measured pool (no cache pre-filling)
    await Promise.all(warm.map((t) => post(srv.url, agent, t)));
    const before = await getText(srv.url, '/metrics');
    const lat = new Array(N);
    const answers = new Array(N);
    let errors = 0;
    let mismatches = 0;
    const samples = [];
    let next = 0;
    const cpu0 = threadCpu(srv.proc.pid);
    const client0 = process.cpuUsage();
    const t0 = performance.now();
    const worker = async () => {
      while (next < N) {
        const i = next++;
        const res = await post(srv.url, agent, stream[i]);
        lat[i] = res.ms;
        answers[i] = res.body;
        if (res.status !== 200) {
          errors++;
          if (samples.length < 3) samples.push(`${res.status} ${res.body.slice(0, 200)}`);
        }
      }
    };
    await Promise.all(Array.from({ length: C }, worker));
    const wall = (performance.now() - t0) / 1000;
    const client = process.cpuUsage(client0);
    const serverCpu = cpuDelta(srv.proc.pid, cpu0, threadCpu(srv.proc.pid));
    const after = await getText(srv.url, '/metrics');
    for (let i = 0; i < N; i++) {
      const want = reference?.get(stream[i]);
      if (want !== undefined && answers[i] !== want) {
        mismatches++;
        if (samples.length < 3) samples.push(`differs from one-at-a-time for ${JSON.stringify(stream[i].slice(0, 40))}`);
      }
    }
    const d = (name) => metric(after, name) - metric(before, name);
    const answersByText = new Map();
    stream.forEach((t, i) => answersByText.set(t, answers[i]));
    return {
      lat,
      wall,
      httpErrors: errors,
      mismatches,
      samples,
      batches: d('ranerc_batch_size_count'),
      batchTexts: d('ranerc_batch_size_sum'),
      calls: d('ranerc_predict_calls_total'),
      hits: d('ranerc_cache_hits_total'),
      coalesced: d('ranerc_cache_coalesced_total'),
      answersByText,
      cpuMain: serverCpu?.main ?? NaN,
      cpuOther: serverCpu?.other ?? NaN,
      cpuClient: (client.user + client.system) / 1e6,
    };
  } finally {
    agent.destroy();
    srv.proc.kill('SIGTERM');
    const ex = await srv.exit;
    if (ex.code !== 0) console.error(`warning: ${cfg.name} server exited ${ex.code ?? ex.signal}:\n${srv.err()}`);
  }
}

function table(rows, base) {
  const header = ['config', 'req/s', 'speed-up', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'errors', 'batches', 'mean batch', 'model calls', 'cache hits', 'shared'];
  const body = rows.map((x) => [
    x.config,
    x.throughput_rps.toFixed(1),
    `${(x.throughput_rps / base).toFixed(2)}×`,
    x.p50_ms.toFixed(1),
    x.p90_ms.toFixed(1),
    x.p99_ms.toFixed(1),
    x.max_ms.toFixed(1),
    String(x.errors),
    String(x.batches),
    x.mean_batch.toFixed(2),
    String(x.model_calls),
    String(x.cache_hits),
    String(x.coalesced),
  ]);
  const w = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  return [line(header), w.map((n) => '-'.repeat(n)).join('  '), ...body.map(line)].join('\n');
}

const env = {
  model: relative(REPO, MODEL) || MODEL,
  requests: N,
  rounds: ROUNDS,
  concurrency: C,
  distinct_texts: DISTINCT,
  data: relative(REPO, args.data),
  node: process.version,
  cpu: cpus()[0]?.model.trim() ?? 'unknown',
  cores: availableParallelism(),
  threads: args.threads ?? 'default',
  loadavg_before: loadavg().map((x) => x.toFixed(2)).join(' '),
};
if (!args.json) {
  console.log(`ranerc serve load test: ${N} POST /predict at concurrency ${C} on loopback, ${DISTINCT} distinct texts from ${env.data}${ROUNDS > 1 ? `, ${ROUNDS} interleaved rounds` : ''}`);
  console.log(`model ${env.model}; node ${env.node}; ${env.cores} cores (${env.cpu}); onnxruntime threads ${env.threads}; load average ${env.loadavg_before}`);
}
/** One configuration's rounds combined: throughput over all requests, percentiles over all latencies. */
function summarize(cfg, runs) {
  const lat = runs.flatMap((x) => x.lat).sort((a, b) => a - b);
  const sum = (k) => runs.reduce((a, x) => a + x[k], 0);
  const seconds = sum('wall');
  return {
    config: cfg.name,
    flags: cfg.flags.join(' '),
    rounds: runs.length,
    requests: lat.length,
    errors: sum('httpErrors') + sum('mismatches'),
    http_errors: sum('httpErrors'),
    mismatches: sum('mismatches'),
    seconds,
    throughput_rps: lat.length / seconds,
    round_rps: runs.map((x) => x.lat.length / x.wall),
    p50_ms: pct(lat, 50),
    p90_ms: pct(lat, 90),
    p99_ms: pct(lat, 99),
    max_ms: lat[lat.length - 1],
    batches: sum('batches'),
    mean_batch: sum('batches') > 0 ? sum('batchTexts') / sum('batches') : 0,
    model_calls: sum('calls'),
    cache_hits: sum('hits'),
    coalesced: sum('coalesced'),
    // CPU milliseconds per request: the server's main thread, its other threads (inference workers,
    // onnxruntime's pool, V8's helpers) and this load generator, which shares the machine.
    cpu_ms_per_request: {
      server_main: (1000 * sum('cpuMain')) / lat.length,
      server_other_threads: (1000 * sum('cpuOther')) / lat.length,
      load_client: (1000 * sum('cpuClient')) / lat.length,
    },
    samples: runs.flatMap((x) => x.samples).slice(0, 3),
  };
}

// Rounds interleave the configurations (A B C A B C ...) so that a change in the machine's load
// falls on all of them alike.
const runsByConfig = CONFIGS.map(() => []);
let reference;
for (let round = 0; round < ROUNDS; round++) {
  for (const [k, cfg] of CONFIGS.entries()) {
    if (!args.json) process.stdout.write(`  ${ROUNDS > 1 ? `round ${round + 1}: ` : ''}${cfg.name} (${cfg.flags.join(' ')}) … `);
    const run = await runConfig(cfg, reference);
    if (!reference) reference = run.answersByText;
    runsByConfig[k].push(run);
    if (!args.json) {
      const sorted = [...run.lat].sort((a, b) => a - b);
      console.log(`${(run.lat.length / run.wall).toFixed(1)} req/s, p99 ${pct(sorted, 99).toFixed(1)} ms, ${run.httpErrors + run.mismatches} errors`);
    }
  }
}
const results = CONFIGS.map((cfg, k) => summarize(cfg, runsByConfig[k]));
env.loadavg_after = loadavg().map((x) => x.toFixed(2)).join(' ');
const totalErrors = results.reduce((a, x) => a + x.errors, 0);
if (args.json) {
  console.log(JSON.stringify({ bench: 'serve', environment: env, results }, null, 2));
} else {
  console.log('');
  console.log(table(results, results[0].throughput_rps));
  console.log('');
  console.log('errors: non-200 answers, failed connections, and answers that differ from one-at-a-time for the same text');
  console.log('batches: micro-batches (texts collected from concurrent requests); model calls: pipeline runs after');
  console.log('grouping each batch by token length; shared: cache misses answered by an identical text already in flight');
  for (const x of results) for (const s of x.samples) console.log(`  ${x.config}: ${s}`);
  if (results.every((x) => Number.isFinite(x.cpu_ms_per_request.server_main))) {
    console.log('');
    console.log('CPU per request (ms; /proc thread times over the measured requests):');
    for (const x of results) {
      const c = x.cpu_ms_per_request;
      const total = c.server_main + c.server_other_threads + c.load_client;
      // With every core busy, requests/s cannot exceed cores / (CPU per request).
      console.log(
        `  ${x.config.padEnd(16)} server main ${c.server_main.toFixed(3)}, other server threads ${c.server_other_threads.toFixed(3)}, ` +
          `load client ${c.load_client.toFixed(3)}; total ${total.toFixed(3)} → at most ${(env.cores * 1000 / total).toFixed(0)} req/s on ${env.cores} cores`,
      );
    }
    const one = results.find((x) => x.config === '1 worker');
    const two = results.find((x) => x.config === '2 workers');
    if (one && two) {
      const c = two.cpu_ms_per_request;
      const bound = (env.cores * 1000) / (c.server_main + c.server_other_threads + c.load_client);
      console.log(
        `  2 workers vs 1: measured ${(two.throughput_rps / one.throughput_rps).toFixed(2)}×; the CPU the 2-worker server and this client ` +
          `spend per request allow at most ${(bound / one.throughput_rps).toFixed(2)}× on ${env.cores} otherwise idle cores`,
      );
    }
  }
}

/** Flood a server whose queue holds 64 texts: answers must be 200 or 429 with Retry-After, none 5xx or hanging. */
async function flood() {
  const n = Number(args.flood);
  const conc = 512;
  const srv = await startServer(['--workers', '2', '--max-queue', '64', '--max-batch', '32', '--max-wait-ms', '5', '--cache-size', '0']);
  const agent = new Agent({ keepAlive: true, maxSockets: conc });
  const counts = new Map();
  let noRetryAfter = 0;
  try {
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: conc }, async () => {
        while (next < n) {
          const i = next++;
          const res = await post(srv.url, agent, stream[i % stream.length], 30_000);
          const k = res.status === 0 ? (res.body.includes('hung') ? 'hung' : 'conn-error') : String(res.status);
          counts.set(k, (counts.get(k) ?? 0) + 1);
          if (res.status === 429 && !(Number(res.retryAfter) >= 1)) noRetryAfter++;
        }
      }),
    );
    const wall = (performance.now() - t0) / 1000;
    return { requests: n, concurrency: conc, max_queue: 64, seconds: wall, statuses: Object.fromEntries(counts), missing_retry_after: noRetryAfter };
  } finally {
    agent.destroy();
    srv.proc.kill('SIGTERM');
    await srv.exit;
  }
}

let floodResult;
if (args.suite === 'workers' && Number(args.flood) > 0) {
  floodResult = await flood();
  const bad = Object.entries(floodResult.statuses).filter(([k]) => k !== '200' && k !== '429');
  if (args.json) console.log(JSON.stringify({ bench: 'serve-flood', environment: env, flood: floodResult }, null, 2));
  else {
    console.log('');
    console.log(
      `flood: ${floodResult.requests} requests at concurrency ${floodResult.concurrency} against --max-queue 64 in ${floodResult.seconds.toFixed(1)} s: ` +
        Object.entries(floodResult.statuses).map(([k, v]) => `${k} × ${v}`).join(', ') +
        (floodResult.missing_retry_after ? `; ${floodResult.missing_retry_after} 429s without Retry-After` : '; every 429 had Retry-After'),
    );
  }
  if (bad.length > 0 || floodResult.missing_retry_after > 0 || !floodResult.statuses['429']) process.exitCode = 1;
}
if (process.exitCode !== 1) process.exitCode = totalErrors === 0 ? 0 : 1;
