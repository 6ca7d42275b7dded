/**
 * `ranerc serve --model DIR [--port 8080] [--host 127.0.0.1] ...` — the REST API and web page of
 * src/serve/server.ts for a model folder. Prints the URL, serves until SIGINT/SIGTERM, then stops
 * accepting, finishes the requests in flight, releases the model and exits 0.
 */
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { physicalCores } from '../serve/cores.js';
import { createServer, SERVE_DEFAULTS, type RanercServer } from '../serve/server.js';
import { action, intOption, numberOption, type CliContext } from './context.js';
import { addModelOptions, addThreadsOption, addWindowOptions, openModelFolder, windowOptions, type ModelFlags, type WindowFlags } from './options.js';

interface ServeFlags extends ModelFlags, WindowFlags {
  port: number;
  host: string;
  maxBatch: number;
  maxWaitMs: number;
  cacheSize: number;
  maxTextChars: number;
  maxTexts: number;
  maxBodyBytes: number;
  workers: number;
  maxQueue: number;
  redis?: string;
  cacheTtl: number;
  rateLimit: number;
  cors?: string;
  lazy?: boolean;
}

/** Resolves when the process gets SIGINT or SIGTERM (the handlers are removed then). */
function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals): void => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(sig);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

async function runServe(ctx: CliContext, flags: ServeFlags): Promise<number> {
  const folder = await openModelFolder(flags);
  let server: RanercServer;
  try {
    server = await createServer({
      model: folder,
      port: flags.port,
      host: flags.host,
      maxBatch: flags.maxBatch,
      maxWaitMs: flags.maxWaitMs,
      cacheSize: flags.cacheSize,
      maxTextChars: flags.maxTextChars,
      maxTexts: flags.maxTexts,
      maxBodyBytes: flags.maxBodyBytes,
      threads: flags.threads,
      workers: flags.workers,
      maxQueue: flags.maxQueue,
      redis: flags.redis,
      cacheTtl: flags.cacheTtl,
      rateLimit: flags.rateLimit,
      cors: flags.cors,
      lazy: flags.lazy,
      ...windowOptions(flags),
    });
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      throw new UsageError(`cannot listen on ${flags.host}:${flags.port}: ${code}`, {
        hint:
          code === 'EADDRINUSE'
            ? 'another process uses that port: pick another with --port (0 = any free port)'
            : 'pick a port above 1023 with --port, or an address of this machine with --host',
        cause: e,
      });
    }
    throw e;
  }
  const signal = untilSignal();
  const { info } = server;
  ctx.out(`ranerc serve: ${server.url}\n`);
  ctx.err(
    `model ${info.model} (${info.decoder}, ${info.scheme}: ${info.types.join(', ')}); ` +
      `${flags.workers} worker${flags.workers === 1 ? '' : 's'}, max batch ${flags.maxBatch}, max wait ${flags.maxWaitMs} ms, queue ${flags.maxQueue}, ` +
      `cache ${flags.cacheSize}${flags.redis ? ` + Redis (TTL ${flags.cacheTtl} s)` : ''}${flags.lazy ? ', lazy load' : ''}; POST ${server.url}/predict; Ctrl+C stops\n`,
  );
  const sig = await signal;
  ctx.err(`ranerc serve: ${sig}: finishing requests in flight and shutting down\n`);
  // A second signal while draining drops the remaining connections.
  const force = (): void => server.app.server.closeAllConnections();
  process.once('SIGINT', force);
  process.once('SIGTERM', force);
  try {
    await server.close();
  } finally {
    process.off('SIGINT', force);
    process.off('SIGTERM', force);
  }
  ctx.err('ranerc serve: stopped\n');
  return 0;
}

export function register(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('serve')
    .description('serve the model: POST /predict REST API, /metrics, /healthz and a web page at /');
  addModelOptions(cmd);
  cmd
    .option('-p, --port <n>', 'port to listen on (0 = any free port)', intOption('--port', 0, 65535), SERVE_DEFAULTS.port)
    .option('--host <addr>', 'interface to listen on (0.0.0.0 for all)', SERVE_DEFAULTS.host)
    .option('--max-batch <n>', 'most texts per model run (1 = one at a time)', intOption('--max-batch', 1, 4096), SERVE_DEFAULTS.maxBatch)
    .option(
      '--max-wait-ms <ms>',
      'longest a text waits for others to batch with (0 = never)',
      numberOption('--max-wait-ms', 0, 60_000),
      SERVE_DEFAULTS.maxWaitMs,
    )
    .option('--cache-size <n>', 'LRU cache entries for repeated texts (0 = off)', intOption('--cache-size', 0, 10_000_000), SERVE_DEFAULTS.cacheSize)
    .option(
      '--max-text-chars <n>',
      'longest text accepted, in characters (code points); longer texts get 413',
      intOption('--max-text-chars', 1, 100_000_000),
      SERVE_DEFAULTS.maxTextChars,
    )
    .option('--max-texts <n>', 'most texts in one {"texts": [...]} request', intOption('--max-texts', 1, 1_000_000), SERVE_DEFAULTS.maxTexts)
    .option(
      '--max-body-bytes <n>',
      'largest request body in bytes; larger bodies get 413',
      intOption('--max-body-bytes', 16, 1 << 30),
      SERVE_DEFAULTS.maxBodyBytes,
    )
    .option(
      '--workers <n>',
      'inference worker threads, each with its own onnxruntime session (0 = run the model on the main thread)',
      intOption('--workers', 0, 256),
      physicalCores(),
    )
    .option('--max-queue <n>', 'most texts waiting for the model; more get 429 with Retry-After', intOption('--max-queue', 1, 10_000_000), SERVE_DEFAULTS.maxQueue)
    .option('--redis <url>', 'shared answer cache in Redis (redis://host:port), behind the LRU; replicas with the same model share it')
    .option('--cache-ttl <s>', 'lifetime of Redis cache entries in seconds (0 = no expiry)', intOption('--cache-ttl', 0, 1 << 30), SERVE_DEFAULTS.cacheTtl)
    .option('--rate-limit <n>', 'requests per minute per client address on /predict (0 = no limit)', intOption('--rate-limit', 0, 10_000_000), 0)
    .option('--cors <origin>', 'allow cross-origin requests from ORIGIN ("*", one origin, or a comma-separated list)')
    .option('--lazy', 'load the model on the first request (/healthz says "loading" until ready)');
  addWindowOptions(cmd);
  addThreadsOption(cmd);
  cmd.action(action(ctx, 'serve', (opts: ServeFlags) => runServe(ctx, opts)));
}
