/**
 * `ranerc predict --queue` over `ranerc worker` processes (BullMQ on a real redis-server started here):
 * 3 workers, one killed with SIGKILL while it holds a job; the output must be byte-identical to
 * single-process `ranerc predict` over the same file, in order, no line missing or repeated.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, QueueEvents } from 'bullmq';
import { teacherLogits } from '../../src/distill/teacher.js';
import { loadModelFolder } from '../../src/onnx/folder.js';
import { emissionsViaQueue } from '../../src/queue/client.js';
import { sha256File } from '../../src/util/fs.js';
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

function startWorker(queue: string, name = 'w'): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, 'worker', '--model', MODEL, '--queue', redis.url, '--queue-name', queue, '--lock-ms', '1500', '--threads', '1', '--name', name], {
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
    const workers = await Promise.all([0, 1, 2].map((i) => startWorker(queue, `w${i}`)));
    const connection = { host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: null };
    const events = new QueueEvents(queue, { connection });
    const q = new Queue(queue, { connection });
    await events.waitUntilReady();
    let completed = 0;
    let stalled = 0;
    let killedAt = -1;
    events.on('stalled', () => stalled++);
    events.on('completed', () => void completed++);
    // once the run is well under way, kill worker w0 (SIGKILL: no chance to finish) right after it takes a job
    events.on('active', ({ jobId }) => {
      if (completed < 20 || killedAt >= 0) return;
      void q.getJob(jobId).then((job) => {
        if (killedAt < 0 && job?.processedBy === 'w0') {
          killedAt = completed;
          workers[0].kill('SIGKILL');
        }
      });
    });
    const r = await run(['predict', '--model', MODEL, '--file', file, '--queue', redis.url, '--queue-name', queue, '--chunk', '20']);
    await events.close();
    await q.close();
    for (const w of workers.slice(1)) w.kill('SIGTERM');
    expect(r.code, r.stderr).toBe(0);
    const got = r.stdout.split('\n').filter((l) => l !== '');
    expect(killedAt).toBeGreaterThanOrEqual(20);
    expect(workers[0].signalCode).toBe('SIGKILL');
    expect(got.length).toBe(N);
    expect(r.stdout).toBe(single.stdout);
    // the killed worker held a job: BullMQ's stalled-job check gave it to another worker
    expect(stalled).toBeGreaterThanOrEqual(1);
  }, 300_000);
});

describe.skipIf(!REDIS_BIN)('distill teacher logits through the queue', () => {
  it('workers compute the same logits as the local teacher pass, and fill the teacher-logit cache', async () => {
    const folder = await loadModelFolder({ model: MODEL });
    const all = texts(300);
    const queue = `teacher-${process.pid}-${Date.now()}`;
    const workers = await Promise.all([0, 1].map(() => startWorker(queue)));
    try {
      const local = await teacherLogits(folder, all, { cacheDir: null, cacheDtype: 'float32', threads: 1 });
      const modelSha = await sha256File(folder.onnxPath);
      const cacheDir = join(dir, 'tl');
      const remote = await teacherLogits(folder, all, {
        cacheDir,
        cacheDtype: 'float32',
        threads: 1,
        compute: (t) => emissionsViaQueue({ url: redis.url, queueName: queue, texts: t, modelSha, batch: 32, chunk: 25 }),
      });
      expect(remote.count).toBe(300);
      expect(remote.fromCache).toBe(0);
      let maxDiff = 0;
      for (let i = 0; i < 300; i++) {
        expect(remote.emissions[i].tokens).toEqual(local.emissions[i].tokens);
        const a = remote.emissions[i].logits;
        const b = local.emissions[i].logits;
        expect(a.length).toBe(b.length);
        for (let k = 0; k < a.length; k++) maxDiff = Math.max(maxDiff, Math.abs(a[k] - b[k]));
      }
      // different batch compositions pad differently: onnxruntime agrees to float32 rounding, not bit for bit
      expect(maxDiff).toBeLessThan(1e-4);
      // the cache the workers filled is read by a later local run without computing
      const again = await teacherLogits(folder, all, { cacheDir, cacheDtype: 'float32', threads: 1 });
      expect(again.fromCache).toBe(300);
      expect(again.computeMs).toBe(0);
      // a worker with another model refuses the job instead of answering wrongly
      await expect(emissionsViaQueue({ url: redis.url, queueName: queue, texts: all.slice(0, 3), modelSha: '0'.repeat(64), batch: 32 })).rejects.toThrow(/different model/);
    } finally {
      for (const w of workers) w.kill('SIGTERM');
    }
  }, 300_000);
});
