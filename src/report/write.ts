/** Writing and reading report folders (report.json + report.md), atomically. */
import { readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { InputError } from '../errors.js';
import { atomicWriteDir, exists } from '../util/fs.js';
import { reportProblem, type Report } from './schema.js';

/** `YYYYMMDD-HHMMSS` of a date in UTC (the same clock as the report's `createdAt`). */
export function reportStamp(date: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return (
    `${date.getUTCFullYear()}${p(date.getUTCMonth() + 1)}${p(date.getUTCDate())}-` +
    `${p(date.getUTCHours())}${p(date.getUTCMinutes())}${p(date.getUTCSeconds())}`
  );
}

/**
 * The folder a report goes to: `reportDir` when given (replaced if it exists), else
 * `<base>/<command>-<YYYYMMDD-HHMMSS>` (UTC), with `-2`, `-3`, ... appended if that name is taken.
 */
export async function resolveReportDir(
  command: string,
  reportDir: string | undefined,
  opts: { base?: string; now?: Date } = {},
): Promise<string> {
  if (reportDir !== undefined) return resolve(reportDir);
  const stem = join(resolve(opts.base ?? 'reports'), `${command}-${reportStamp(opts.now ?? new Date())}`);
  let dir = stem;
  for (let k = 2; await exists(dir); k++) dir = `${stem}-${k}`;
  return dir;
}

/** The report as JSON text (2-space indent, trailing newline). */
export function reportJson(report: Report): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}

/** Write report.json and report.md into `dir` atomically (the folder appears complete or not at all). */
export async function writeReport(dir: string, report: Report, markdown: string): Promise<{ dir: string; files: string[] }> {
  const problem = reportProblem(report);
  if (problem) throw new Error(`refusing to write an invalid report: ${problem}`);
  await atomicWriteDir(dir, async (tmp) => {
    await writeFile(join(tmp, 'report.json'), reportJson(report));
    await writeFile(join(tmp, 'report.md'), markdown);
  });
  return { dir, files: [join(dir, 'report.json'), join(dir, 'report.md')] };
}

/** Read and check a report.json (or a folder holding one). */
export async function readReport(path: string): Promise<Report> {
  const file = path.endsWith('.json') ? path : join(path, 'report.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new InputError('report not found', { file, hint: 'pass a report folder or its report.json' });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new InputError(`not valid JSON: ${e instanceof Error ? e.message : String(e)}`, {
      file,
      hint: 'the report may be truncated; re-run the command that wrote it',
    });
  }
  const problem = reportProblem(value);
  if (problem) throw new InputError(`not a ranerc report: ${problem}`, { file, hint: 'pass a report.json written by ranerc' });
  return value as Report;
}
