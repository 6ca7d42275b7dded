/**
 * `ranerc quantize --format auto`, the choice (pure, no I/O): given the float input's and each
 * candidate's measured p50 latency at the same (seq, batch) points, in the same process, pick the
 * candidate to write. A candidate slower than the input at any point is never chosen; the fastest of
 * the rest (geometric mean of its speed-ups over the points) wins. When every quantized candidate is
 * slower, the float graph is written unchanged, and the reason says so with the numbers.
 */

/** The kinds of model `--format auto` builds and times. */
export type AutoCandidateName = 'qdq' | 'qoperator' | 'dynamic' | 'weights-only';
/** What auto can write: a candidate, or the float input unchanged. */
export type AutoChoice = AutoCandidateName | 'float';

/** p50 latency at one (seq, batch) point. */
export interface AutoPoint {
  seqLen: number;
  batch: number;
  p50Ms: number;
}

/** A candidate as measured (or why it could not be built). */
export interface AutoCandidateInput {
  name: AutoCandidateName;
  /** ONNX file bytes; undefined when the candidate failed to build. */
  bytes?: number;
  /** p50 per point, in the same order as the float input's points. */
  points?: AutoPoint[];
  /** Why the candidate was not built or not timed. */
  error?: string;
}

/** A row of the auto table in the report. */
export interface AutoCandidateRow extends AutoCandidateInput {
  /** Float p50 / candidate p50, per point. */
  speedups?: number[];
  /** Geometric mean of `speedups`. */
  speedup?: number;
  /** Slower than the float input at some point (p50 above the input's). */
  slower?: boolean;
  chosen: boolean;
  /** Why it was not chosen (or, for the chosen one, why it was). */
  note: string;
}

/** `details.auto` of the quantize report. */
export interface AutoDetails {
  chosen: AutoChoice;
  reason: string;
  /** The float input's p50 per point and its file bytes. */
  float: { bytes: number; points: AutoPoint[] };
  candidates: AutoCandidateRow[];
  /** How the timing was done: one process, interleaved rounds. */
  timing: { rounds: number; seconds: number; threads: number | 'default'; inputs: 'data' | 'synthetic' };
  /** Whose SQNR / node tables the rest of `details` holds (the chosen candidate, or the fastest one when float was written). */
  detailsOf?: AutoCandidateName;
}

function fmtMs(x: number): string {
  return x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toFixed(3);
}

function pointLabel(p: AutoPoint): string {
  return `seq ${p.seqLen} × batch ${p.batch}`;
}

/** Geometric mean of positive numbers (NaN for none). */
export function geometricMean(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  return Math.exp(xs.reduce((s, x) => s + Math.log(x), 0) / xs.length);
}

/**
 * Choose what `--format auto` writes. `floatPoints` and each candidate's `points` must list the same
 * (seq, batch) points in the same order (a mismatch throws: the timings would not be comparable).
 */
export function chooseAuto(floatPoints: readonly AutoPoint[], floatBytes: number, candidates: readonly AutoCandidateInput[]): Pick<AutoDetails, 'chosen' | 'reason' | 'candidates'> {
  if (floatPoints.length === 0) throw new RangeError('auto needs at least one timed (seq, batch) point');
  const rows: AutoCandidateRow[] = candidates.map((c) => {
    if (c.error !== undefined || !c.points) return { ...c, chosen: false, note: `not built: ${c.error ?? 'no timings'}` };
    if (c.points.length !== floatPoints.length || c.points.some((p, i) => p.seqLen !== floatPoints[i].seqLen || p.batch !== floatPoints[i].batch)) {
      throw new RangeError(`candidate ${c.name} was timed at other points than the float input`);
    }
    const speedups = c.points.map((p, i) => floatPoints[i].p50Ms / p.p50Ms);
    const slowAt = c.points.filter((p, i) => p.p50Ms > floatPoints[i].p50Ms);
    const slower = slowAt.length > 0;
    const note = slower
      ? `slower than the input: ${slowAt.map((p) => `${pointLabel(p)} ${fmtMs(floatPoints[c.points!.indexOf(p)].p50Ms)} → ${fmtMs(p.p50Ms)} ms`).join('; ')}`
      : '';
    return { ...c, speedups, speedup: geometricMean(speedups), slower, chosen: false, note };
  });
  const eligible = rows.filter((r) => r.slower === false).sort((a, b) => (b.speedup ?? 0) - (a.speedup ?? 0));
  const best = eligible[0];
  if (best) {
    best.chosen = true;
    const sizeRatio = best.bytes !== undefined && floatBytes > 0 ? best.bytes / floatBytes : NaN;
    best.note = `fastest not slower than the input: ${best.speedup!.toFixed(2)}× (geometric mean over ${floatPoints.length} point${floatPoints.length === 1 ? '' : 's'}), ${sizeRatio.toFixed(3)}× the size`;
    for (const r of eligible.slice(1)) r.note = `${r.speedup!.toFixed(2)}×, slower than ${best.name} (${best.speedup!.toFixed(2)}×)`;
    return { chosen: best.name, reason: `${best.name}: ${best.note}`, candidates: rows };
  }
  const built = rows.filter((r) => r.slower !== undefined);
  const why =
    built.length === 0
      ? 'no candidate could be built'
      : `every candidate is slower than the input (${built.map((r) => `${r.name} ${r.speedup!.toFixed(2)}×`).join(', ')})`;
  return { chosen: 'float', reason: `the float graph was written unchanged: ${why}`, candidates: rows };
}

/** The auto table: one row for the float input, one per candidate (header + string cells, pure). */
export function autoTable(a: AutoDetails): { header: string[]; rows: string[][] } {
  const pts = a.float.points;
  const header = ['model', 'size', 'size ×', ...pts.map((p) => `p50 ms s${p.seqLen} b${p.batch}`), 'speed-up', 'chosen', 'note'];
  const rows: string[][] = [['float input', bytesText(a.float.bytes), '1.000', ...pts.map((p) => fmtMs(p.p50Ms)), '1.00×', a.chosen === 'float' ? 'yes' : '', '']];
  for (const c of a.candidates) {
    rows.push([
      c.name,
      c.bytes === undefined ? '' : bytesText(c.bytes),
      c.bytes === undefined ? '' : (c.bytes / a.float.bytes).toFixed(3),
      ...pts.map((_, i) => (c.points ? fmtMs(c.points[i].p50Ms) : '')),
      c.speedup === undefined ? '' : `${c.speedup.toFixed(2)}×`,
      c.chosen ? 'yes' : '',
      c.note,
    ]);
  }
  return { header, rows };
}

function bytesText(b: number): string {
  return b >= 1 << 20 ? `${(b / (1 << 20)).toFixed(1)} MiB` : `${(b / 1024).toFixed(1)} KiB`;
}
