/**
 * Profile models under onnxruntime: sessions with the profiler on and the optimized graph saved run one
 * batch in interleaved rounds (so a drift in machine load touches every model alike), the profiles are
 * ended, and each trace is reduced to an op-time table (src/runtime/profile-table.ts). The traces and
 * the optimized graphs stay in `dir`.
 */
import { mkdir, mkdtemp, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { compareProfiles, opTimeTable, profileEvents, type OpTimeTable, type ProfileComparison } from './profile-table.js';
import { NerSession, type FlatBatch, type SessionOptions } from './session.js';

export interface ProfileOptions extends Pick<SessionOptions, 'threads' | 'executionMode' | 'intraOpSpinning'> {
  /** Folder the traces (`<name>.profile.json`) and optimized graphs (`<name>.optimized.onnx`) go to. */
  dir: string;
  /** Counted runs per model (default 12), split over `rounds` (default 4). */
  runs?: number;
  rounds?: number;
  /** Uncounted runs of a model before each of its blocks (default 3): the switch warm-up. */
  warmup?: number;
  /** Save the optimized graphs (default true). */
  saveOptimized?: boolean;
}

/** One model's profile: its table and where the trace and the optimized graph went. */
export type ModelProfile = OpTimeTable & { trace: string; optimized?: string };

/**
 * Profile each model of `models` (name → .onnx path) on `feed`, interleaved: every round runs each
 * model `warmup` uncounted times and then runs/rounds counted times.
 */
export async function profileModels(models: ReadonlyArray<{ name: string; onnxPath: string }>, feed: FlatBatch, opts: ProfileOptions): Promise<ModelProfile[]> {
  const runs = opts.runs ?? 12;
  const rounds = Math.max(1, Math.min(opts.rounds ?? 4, runs));
  const warmup = opts.warmup ?? 3;
  await mkdir(opts.dir, { recursive: true });
  const tmp = await mkdtemp(join(opts.dir, '.profile-'));
  try {
    const sessions: NerSession[] = [];
    const counted: boolean[][] = models.map(() => []);
    try {
      for (const [i, m] of models.entries()) {
        sessions.push(
          await NerSession.open(m.onnxPath, {
            threads: opts.threads,
            executionMode: opts.executionMode,
            intraOpSpinning: opts.intraOpSpinning,
            profileFilePrefix: join(tmp, `${i}`),
            optimizedModelFilePath: opts.saveOptimized === false ? undefined : join(tmp, `${i}.optimized.onnx`),
          }),
        );
      }
      for (let r = 0; r < rounds; r++) {
        const per = Math.floor(runs / rounds) + (r < runs % rounds ? 1 : 0);
        for (const [i, s] of sessions.entries()) {
          for (let k = 0; k < warmup + per; k++) {
            await s.runFlat(feed);
            counted[i].push(k >= warmup);
          }
        }
      }
      for (const s of sessions) await s.endProfiling();
    } finally {
      for (const s of sessions) await s.close();
    }
    const files = await readdir(tmp);
    const out: ModelProfile[] = [];
    for (const [i, m] of models.entries()) {
      const trace = files.find((f) => f.startsWith(`${i}_`) && f.endsWith('.json'));
      if (!trace) throw new InputError('onnxruntime wrote no profile file', { file: m.onnxPath, hint: 'check that the onnxruntime-node build supports profiling' });
      const tracePath = join(opts.dir, `${m.name}.profile.json`);
      await rename(join(tmp, trace), tracePath);
      let optimized: string | undefined;
      if (opts.saveOptimized !== false) {
        optimized = join(opts.dir, `${m.name}.optimized.onnx`);
        await rename(join(tmp, `${i}.optimized.onnx`), optimized);
      }
      const table = opTimeTable(profileEvents(JSON.parse(await readFile(tracePath, 'utf8'))), { keep: (k) => counted[i][k] === true });
      out.push({ ...table, trace: tracePath, optimized });
    }
    return out;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** The profile of one model, or of a float model and its INT8 version, at one input shape (report JSON). */
export interface ProfileDetails {
  seqLen: number;
  batch: number;
  /** Counted runs per model, rounds they were split over, uncounted runs before each block. */
  runs: number;
  rounds: number;
  warmup: number;
  float: ModelProfile;
  int8?: ModelProfile;
  comparison?: ProfileComparison;
  /** p50 float / p50 INT8 from the interleaved latency measurement (no profiler), when there is one. */
  measuredSpeedup?: number;
}

/**
 * Profile a model (`a`) and optionally its INT8 version (`b`) on the same batch, interleaved. Files are
 * named `<name>-s<seq>-b<batch>.*` in `opts.dir`.
 */
export async function profilePair(a: string, b: string | undefined, feed: FlatBatch, opts: ProfileOptions & { names?: [string, string] }): Promise<ProfileDetails> {
  const [na, nb] = opts.names ?? ['float', 'int8'];
  const tag = `s${feed.seqLen}-b${feed.batch}`;
  const models = [{ name: `${na}-${tag}`, onnxPath: a }, ...(b === undefined ? [] : [{ name: `${nb}-${tag}`, onnxPath: b }])];
  const [pa, pb] = await profileModels(models, feed, opts);
  return {
    seqLen: feed.seqLen,
    batch: feed.batch,
    runs: opts.runs ?? 12,
    rounds: Math.max(1, Math.min(opts.rounds ?? 4, opts.runs ?? 12)),
    warmup: opts.warmup ?? 3,
    float: pa,
    int8: pb,
    comparison: pb ? compareProfiles(pa, pb) : undefined,
  };
}
