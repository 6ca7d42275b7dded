/**
 * Progress bars on stderr (cli-progress), shown only when stderr is a TTY and the command is not
 * printing JSON. `withProgress` always stops the bar, also when the work throws.
 */
import cliProgress from 'cli-progress';

export interface Progress {
  /** Set the total (e.g. once it is known). */
  setTotal(total: number): void;
  /** Set the current value. */
  update(value: number, label?: string): void;
  /** Stop and clear the bar (idempotent). */
  stop(): void;
  /** Whether a bar is actually drawn. */
  readonly visible: boolean;
}

export interface ProgressOptions {
  /** stderr is a TTY (CliContext.interactive). */
  interactive: boolean;
  /** The command prints JSON: never draw. */
  json?: boolean;
  /** Stream to draw on (default process.stderr). */
  stream?: NodeJS.WritableStream;
}

const SILENT: Progress = { setTotal() {}, update() {}, stop() {}, visible: false };

/** A progress bar, or a silent stand-in when it must not be shown. */
export function createProgress(title: string, total: number, opts: ProgressOptions): Progress {
  if (!opts.interactive || opts.json) return SILENT;
  const bar = new cliProgress.SingleBar(
    {
      format: `${title} [{bar}] {percentage}% | {value}/{total} {label} | {duration_formatted} (eta {eta_formatted})`,
      stream: opts.stream ?? process.stderr,
      clearOnComplete: true,
      hideCursor: true,
      etaBuffer: 50,
      fps: 10,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { label: '' });
  let stopped = false;
  return {
    visible: true,
    setTotal(t) {
      if (!stopped) bar.setTotal(t);
    },
    update(v, label) {
      if (!stopped) bar.update(v, label === undefined ? undefined : { label });
    },
    stop() {
      if (stopped) return;
      stopped = true;
      bar.stop();
    },
  };
}

/** Run `work` with a progress bar that is stopped whatever happens. */
export async function withProgress<T>(
  title: string,
  total: number,
  opts: ProgressOptions,
  work: (p: Progress) => Promise<T>,
): Promise<T> {
  const p = createProgress(title, total, opts);
  try {
    return await work(p);
  } finally {
    p.stop();
  }
}
