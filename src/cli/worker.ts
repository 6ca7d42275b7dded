/**
 * `ranerc worker --queue redis://host:port --model DIR` — process `ranerc predict --queue` jobs (BullMQ)
 * until SIGINT/SIGTERM; run any number of them, on any machines that reach the Redis. A worker that dies
 * mid-job loses its lock after --lock-ms and another worker redoes the job (results are stored by chunk
 * index, so nothing is duplicated). The first signal finishes the job in hand, a second one exits now.
 */
import type { Command } from 'commander';
import { DEFAULT_QUEUE_NAME } from '../queue/protocol.js';
import { startQueueWorker } from '../queue/worker.js';
import { action, intOption, type CliContext } from './context.js';
import { addModelOptions, addThreadsOption, openModelFolder, type ModelFlags } from './options.js';

interface WorkerFlags extends ModelFlags {
  queue: string;
  queueName: string;
  concurrency: number;
  lockMs: number;
  name?: string;
}

async function runWorker(ctx: CliContext, flags: WorkerFlags): Promise<number> {
  const folder = await openModelFolder(flags);
  let texts = 0;
  let jobs = 0;
  const w = await startQueueWorker({
    url: flags.queue,
    queueName: flags.queueName,
    folder,
    threads: flags.threads,
    concurrency: flags.concurrency,
    lockMs: flags.lockMs,
    name: flags.name,
    onJob: (n) => {
      jobs++;
      texts += n;
    },
  });
  ctx.err(`ranerc worker: model ${folder.dir} (SHA-256 ${w.modelSha.slice(0, 12)}…), queue ${flags.queueName} on ${flags.queue}; Ctrl+C stops\n`);
  const sig = await new Promise<NodeJS.Signals>((resolve) => {
    const on = (s: NodeJS.Signals): void => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(s);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
  ctx.err(`ranerc worker: ${sig}: finishing the job in hand\n`);
  const force = (): void => process.exit(130);
  process.once('SIGINT', force);
  process.once('SIGTERM', force);
  await w.close();
  ctx.err(`ranerc worker: stopped after ${jobs} jobs, ${texts} texts\n`);
  return 0;
}

export function register(program: Command, ctx: CliContext): void {
  const cmd = program.command('worker').description('process `ranerc predict --queue` jobs from a Redis (BullMQ) queue');
  addModelOptions(cmd);
  cmd
    .requiredOption('--queue <url>', 'the Redis of the queue (redis://host:port)')
    .option('--queue-name <name>', 'BullMQ queue name (as given to predict)', DEFAULT_QUEUE_NAME)
    .option('--concurrency <n>', 'jobs processed at once', intOption('--concurrency', 1, 256), 1)
    .option('--name <name>', 'worker name recorded on the jobs it takes (default host:pid)')
    .option('--lock-ms <ms>', 'job lock: a worker silent this long is taken for dead and its job redone', intOption('--lock-ms', 500, 3_600_000), 30_000);
  addThreadsOption(cmd);
  cmd.action(action(ctx, 'worker', (opts: WorkerFlags) => runWorker(ctx, opts)));
}
