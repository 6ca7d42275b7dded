/** Facts about the running process for reports: versions, OS, CPU. */
import { readFileSync } from 'node:fs';
import { arch, availableParallelism, cpus, platform, release } from 'node:os';
import { onnxruntimeVersion } from '../runtime/session.js';
import { REPORT_SCHEMA, type Report, type ReportEnvironment } from './schema.js';

let cachedVersion: string | undefined;

/** ranerc's version from package.json. */
export function ranercVersion(): string {
  if (cachedVersion === undefined) {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    cachedVersion = pkg.version;
  }
  return cachedVersion;
}

/** The environment block of a report. `threads` is what the user asked for (undefined → "default"). */
export function collectEnvironment(threads?: number): ReportEnvironment {
  const cpuList = cpus();
  return {
    node: process.version,
    onnxruntime: onnxruntimeVersion(),
    os: `${platform()} ${release()} ${arch()}`,
    cpu: cpuList[0]?.model.trim() ?? 'unknown',
    cores: availableParallelism(),
    threads: threads ?? 'default',
  };
}

/** A new report with environment, version and time filled in; the caller adds models, data and details. */
export function newReport<D, C extends string>(
  command: C,
  settings: Record<string, unknown>,
  details: D,
  opts: { threads?: number; now?: Date } = {},
): Report<D, C> {
  return {
    schema: REPORT_SCHEMA,
    command,
    createdAt: (opts.now ?? new Date()).toISOString(),
    ranerc: ranercVersion(),
    environment: collectEnvironment(opts.threads),
    settings,
    models: [],
    details,
    warnings: [],
  };
}
