/**
 * `ranerc serve` as a user runs it: the built executable (bin/ranerc.js) in a child process, stopped with
 * SIGTERM/SIGINT while requests are in flight; flag and model errors through main().
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { Agent } from 'node:http';
import { createServer as createNetServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/index.js';
import { answerLine, FACTS, http, postPredict, REPO } from './helpers.js';

const CASE = FACTS.find((c) => c.id === 'bio-crf-msra-default-overlap')!;
const MODEL = join(REPO, CASE.model);
const BIN = join(REPO, 'bin', 'ranerc.js');

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(['node', 'ranerc', ...args], { out: (t) => void (out += t), err: (t) => void (err += t), interactive: false });
  return { code, out, err };
}

/** Newest modification time (ms) of the .ts files under a folder. */
function newestTs(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newestTs(p));
    else if (e.name.endsWith('.ts')) t = Math.max(t, statSync(p).mtimeMs);
  }
  return t;
}

function mtime(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

/**
 * Make sure dist/ is built from the current sources (CI's `npm ci` builds it; a developer's edits may be
 * newer). tsc still emits when some other file of the tree has type errors; what matters here is that the
 * CLI and the server were emitted.
 */
function ensureBuilt(): void {
  const src = newestTs(join(REPO, 'src'));
  const outs = ['dist/cli/index.js', 'dist/cli/serve.js', 'dist/serve/server.js'].map((p) => mtime(join(REPO, p)));
  if (Math.min(...outs) >= src) return;
  const r = spawnSync(process.execPath, [join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], {
    cwd: REPO,
    encoding: 'utf8',
  });
  const after = ['dist/cli/index.js', 'dist/cli/serve.js', 'dist/serve/server.js'].map((p) => mtime(join(REPO, p)));
  if (Math.min(...after) < src) throw new Error(`building dist/ failed (npx tsc -p tsconfig.build.json):\n${r.stdout}${r.stderr}`);
}

interface Child {
  proc: ChildProcess;
  url: string;
  err: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Start `ranerc serve` on a free port and wait for the URL line. */
function startChild(...extra: string[]): Promise<Child> {
  const proc = spawn(process.execPath, [BIN, 'serve', '--model', MODEL, '--port', '0', ...extra], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stderr!.on('data', (c: Buffer) => (err += c.toString('utf8')));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.on('close', (code, signal) => resolve({ code, signal })));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL from ranerc serve within 60 s; stderr:\n${err}`)), 60_000);
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString('utf8');
      const m = /^ranerc serve: (http:\/\/\S+)$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, url: m[1], err: () => err, exit });
      }
    });
    void exit.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`ranerc serve exited (${code}) before listening; stderr:\n${err}`));
    });
  });
}

const children: ChildProcess[] = [];
beforeAll(() => ensureBuilt(), 300_000);
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

describe('bin/ranerc.js serve (child process)', () => {
  it('prints the URL, answers /predict, and on SIGTERM finishes the requests in flight, then exits 0', async () => {
    const c = await startChild('--max-wait-ms', '60000');
    children.push(c.proc);
    const picks = CASE.predictions.filter((p) => p.entities.length > 0).slice(0, 3);
    const pending = picks.map((p) => postPredict(c.url, { text: p.text }));
    // the texts sit in the micro-batch queue (60 s wait) until shutdown flushes them
    let queued = 0;
    for (let k = 0; k < 500 && queued < picks.length; k++) {
      queued = (JSON.parse((await http(c.url, { path: '/healthz' })).body) as { queue: number }).queue;
      if (queued < picks.length) await new Promise((r) => setTimeout(r, 20));
    }
    expect(queued).toBe(picks.length);
    const t0 = performance.now();
    c.proc.kill('SIGTERM');
    const rs = await Promise.all(pending);
    rs.forEach((r, k) => {
      expect(r.status).toBe(200);
      expect(r.body).toBe(answerLine(picks[k].entities));
    });
    const ex = await c.exit;
    expect(ex).toEqual({ code: 0, signal: null });
    expect(performance.now() - t0).toBeLessThan(30_000); // not the 60 s batching wait
    expect(c.err()).toMatch(/SIGTERM: finishing requests in flight/);
    expect(c.err()).toMatch(/stopped/);
    await expect(http(c.url, { path: '/healthz', agent: new Agent() })).rejects.toThrow(/ECONNREFUSED/);
  });

  it('exits 0 on SIGINT (Ctrl+C) when idle', async () => {
    const c = await startChild();
    children.push(c.proc);
    expect((await http(c.url, { path: '/healthz' })).status).toBe(200);
    c.proc.kill('SIGINT');
    expect(await c.exit).toEqual({ code: 0, signal: null });
  });
});

describe('ranerc serve errors (exit 2 with a hint, nothing left listening)', () => {
  let blocker: Server;
  let port: number;
  beforeAll(async () => {
    blocker = createNetServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    port = (blocker.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((r) => blocker.close(() => r())));

  it('port in use', async () => {
    const r = await cli('serve', '--model', MODEL, '--port', String(port));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE/);
    expect(r.err).toMatch(/hint: .*--port/);
    expect(r.out).toBe('');
  });

  it('missing model folder names it', async () => {
    const missing = join(REPO, 'no-such-model-folder');
    const r = await cli('serve', '--model', missing, '--port', '0');
    expect(r.code).toBe(2);
    expect(r.err).toContain(missing);
    expect(r.err).toMatch(/hint:/);
  });

  for (const args of [
    ['--port', '70000'],
    ['--port', 'http'],
    ['--max-batch', '0'],
    ['--max-wait-ms', '-1'],
    ['--cache-size', '-5'],
    ['--max-text-chars', '0'],
    ['--max-texts', '1.5'],
    ['--max-body-bytes', '1'],
  ]) {
    it(`${args.join(' ')} is a usage error`, async () => {
      const r = await cli('serve', '--model', MODEL, ...args);
      expect(r.code).toBe(2);
      expect(r.err).toContain(args[0]);
    });
  }

  it('--help lists the flags', async () => {
    const r = await cli('serve', '--help');
    expect(r.code).toBe(0);
    for (const f of ['--model', '--port', '--host', '--max-batch', '--max-wait-ms', '--cache-size', '--max-text-chars', '--max-texts', '--max-body-bytes', '--threads', '--max-length']) {
      expect(r.out).toContain(f);
    }
  });
});
