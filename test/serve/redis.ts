/** A throwaway redis-server for tests: a free loopback port, no persistence, stopped by the test. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, Socket } from 'node:net';

export const REDIS_BIN = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((p) => existsSync(p));

/** A free TCP port on 127.0.0.1 (bound then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Resolves once `PING` on host:port answers `+PONG`, within `ms`. */
async function waitPong(port: number, ms: number): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = new Socket();
      const done = (v: boolean): void => {
        s.destroy();
        resolve(v);
      };
      s.setTimeout(500, () => done(false));
      s.once('error', () => done(false));
      s.connect(port, '127.0.0.1', () => s.write('PING\r\n'));
      s.once('data', (d) => done(d.toString().startsWith('+PONG')));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`redis-server on port ${port} did not answer PING within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface TestRedis {
  port: number;
  url: string;
  proc: ChildProcess;
  /** Kill it (SIGKILL, like a crash) and wait for the exit. */
  kill(): Promise<void>;
  /** Start it again on the same port (after `kill`). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startRedis(): Promise<TestRedis> {
  if (!REDIS_BIN) throw new Error('redis-server is not installed (apt-get install redis-server; .ci/run does)');
  const port = await freePort();
  const launch = async (): Promise<ChildProcess> => {
    const p = spawn(REDIS_BIN, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    await waitPong(port, 10_000);
    return p;
  };
  const killProc = (p: ChildProcess): Promise<void> =>
    new Promise((resolve) => {
      if (p.exitCode !== null || p.signalCode !== null) return resolve();
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
  const r: TestRedis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    proc: await launch(),
    kill: () => killProc(r.proc),
    restart: async () => {
      r.proc = await launch();
    },
    stop: () => killProc(r.proc),
  };
  return r;
}

import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = new URL('../../', import.meta.url).pathname;

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newest(p));
    else if (e.name.endsWith('.ts')) t = Math.max(t, statSync(p).mtimeMs);
  }
  return t;
}

/** Build dist/ when a source is newer than the given outputs (worker threads and child processes run dist/). */
export function ensureDist(outputs: string[] = ['dist/cli/index.js', 'dist/serve/pool-worker.js', 'dist/queue/worker.js']): void {
  const m = (p: string): number => (existsSync(join(ROOT, p)) ? statSync(join(ROOT, p)).mtimeMs : 0);
  const src = newest(join(ROOT, 'src'));
  if (Math.min(...outputs.map(m)) >= src) return;
  const r = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, encoding: 'utf8' });
  if (Math.min(...outputs.map(m)) < src) throw new Error(`building dist/ failed (npx tsc -p tsconfig.build.json):\n${r.stdout}${r.stderr}`);
}
