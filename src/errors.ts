/**
 * Typed errors and the exit codes ranerc documents:
 * 0 ok, 1 unexpected failure, 2 bad usage or input, 3 a quality gate failed.
 */
export const ExitCode = {
  OK: 0,
  FAILURE: 1,
  USAGE: 2,
  GATE: 3,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export interface ErrorWhere {
  /** File the problem is in. */
  file?: string;
  /** 1-based line in that file. */
  line?: number;
  /** ONNX node (name or op type) the problem is about. */
  node?: string;
}

/** Base class: every error ranerc raises on purpose. `hint` says how to fix it. */
export class RanercError extends Error {
  readonly exitCode: ExitCode;
  readonly hint?: string;
  readonly where: ErrorWhere;

  constructor(message: string, opts: { exitCode?: ExitCode; hint?: string; cause?: unknown } & ErrorWhere = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.exitCode = opts.exitCode ?? ExitCode.FAILURE;
    this.hint = opts.hint;
    this.where = { file: opts.file, line: opts.line, node: opts.node };
  }

  /** One human line (plus a hint line): "file:line: [node X] message". */
  format(): string {
    const loc = this.where.file ? `${this.where.file}${this.where.line ? `:${this.where.line}` : ''}: ` : '';
    const node = this.where.node ? `node ${this.where.node}: ` : '';
    return `${loc}${node}${this.message}${this.hint ? `\n  hint: ${this.hint}` : ''}`;
  }
}

/** Bad command-line usage (exit 2). */
export class UsageError extends RanercError {
  constructor(message: string, opts: { hint?: string; cause?: unknown } & ErrorWhere = {}) {
    super(message, { ...opts, exitCode: ExitCode.USAGE });
  }
}

/** Bad input: a missing/corrupt file, a malformed data line, an unknown label (exit 2). */
export class InputError extends RanercError {
  constructor(message: string, opts: { hint?: string; cause?: unknown } & ErrorWhere = {}) {
    super(message, { ...opts, exitCode: ExitCode.USAGE });
  }
}

/** The ONNX graph does not have a shape a command needs, or an op is unsupported (exit 2). */
export class GraphError extends RanercError {
  constructor(message: string, opts: { hint?: string; cause?: unknown } & ErrorWhere = {}) {
    super(message, { ...opts, exitCode: ExitCode.USAGE });
  }
}

/** A quality gate failed (exit 3). */
export class GateError extends RanercError {
  constructor(message: string, opts: { hint?: string } & ErrorWhere = {}) {
    super(message, { ...opts, exitCode: ExitCode.GATE });
  }
}

export function isRanercError(e: unknown): e is RanercError {
  return e instanceof RanercError;
}
