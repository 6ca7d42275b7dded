/**
 * `ranerc predict --queue` over `ranerc worker` processes (BullMQ on a real redis-server started here):
 * 3 workers, one killed with SIGKILL while it holds a job; the output must be byte-identical to
 * single-process `ranerc predict` over the same file, in order, no line missing or repeated.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QueueEvents } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../serve/helpers.js';
import { ensureDist, REDIS_BIN, startRedis, type TestRedis } from '../serve/redis.js';

const MODEL = join(REPO, 'fixtures/tiny/bio-crf-op14');
const BIN = join(REPO, 'bin/ranerc.js');
const N = Number(process.env.RANERC_QUEUE_TEST_TEXTS ?? 10_000);

let redis: TestRedis;
let dir: string;
const procs: ChildProcess[] = [];
beforeAll(async () => {
  ensureDist();
  redis = await startRedis();
  dir = mkdtempSync(join(tmpdir(), 'ranerc-queue-'));
}, 180_000);
afterAll(async () => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** N texts: the MSRA sample's sentences, each made distinct by its line number. */
function texts(n: number): string[] {
  const base = readFileSync(join(REPO, 'fixtures/data/msra_dev_sample.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => (JSON.parse(l) as { text: string }).text.replace(/\s+/g, ' ').trim())
    .filter((t) => t !== '');
  return Array.from({ length: n }, (_, i) => `${base[i % base.length]} ${i}`);
}

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(p);
    let stdout = '';
    let stderr = '';
    p.stdout!.setEncoding('utf8');
    p.stderr!.setEncoding('utf8');
    p.stdout!.on('data', (d: string) => (stdout += d));
    p.stderr!.on('data', (d: string) => (stderr += d));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

function startWorker(queue: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, 'worker', '--model', MODEL, '--queue', redis.url, '--queue-name', queue, '--lock-ms', '1500', '--threads', '1'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    procs.push(p);
    let err = '';
    p.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('Ctrl+C stops')) resolve(p);
    });
    p.on('exit', (code) => reject(new Error(`worker exited (${code}): ${err}`)));
  });
}

describe.skipIf(!REDIS_BIN)('predict --queue with 3 workers, one killed midway', () => {
  it(`${N} texts: output identical to single-process predict, in order, none missing or repeated`, async () => {
    const all = texts(N);
    const file = join(dir, 'big.txt');
    writeFileSync(file, `${all.join('\n')}\n`);
    const single = spawnSync(process.execPath, [BIN, 'predict', '--model', MODEL, '--file', file, '--threads', '1'], { encoding: 'utf8', maxBuffer: 1 << 28 });
    expect(single.status, single.stderr).toBe(0);
    const want = single.stdout.split('\n').filter((l) => l !== '');
    expect(want.length).toBe(N);

    const queue = `test-${process.pid}-${Date.now()}`;
    const workers = await Promise.all([0, 1, 2].map(() => startWorker(queue)));
    const events = new QueueEvents(queue, { connection: { host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: null } });
    await events.waitUntilReady();
    let completed = 0;
    let stalled = 0;
    let killedAt = -1;
    events.on('stalled', () => stalled++);
    events.on('completed', () => {
      completed++;
      // kill one worker (SIGKILL, no chance to finish) once the run is well under way
      if (completed === 20) {
        killedAt = completed;
        workers[0].kill('SIGKILL');
      }
    });
    const r = await run(['predict', '--model', MODEL, '--file', file, '--queue', redis.url, '--queue-name', queue, '--chunk', '20']);
    await events.close();
    for (const w of workers.slice(1)) w.kill('SIGTERM');
    expect(r.code, r.stderr).toBe(0);
    const got = r.stdout.split('\n').filter((l) => l !== '');
    expect(killedAt).toBe(20);
    expect(workers[0].signalCode).toBe('SIGKILL');
    expect(got.length).toBe(N);
    expect(r.stdout).toBe(single.stdout);
    // the killed worker held a job: BullMQ's stalled-job check gave it to another worker
    expect(stalled).toBeGreaterThanOrEqual(1);
  }, 300_000);
});
