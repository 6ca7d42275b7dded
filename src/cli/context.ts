import type { Command } from 'commander';
import { ExitCode, isRanercError, UsageError } from '../errors.js';

/** What a subcommand needs from the process: output streams and a way to set the exit code. */
export interface CliContext {
  out: (text: string) => void;
  err: (text: string) => void;
  /** Whether stderr is a TTY (progress bars only then). */
  interactive: boolean;
  exitCode: number;
}

/** A subcommand module: one file per subcommand, each exporting `register`. */
export interface SubcommandModule {
  register(program: Command, ctx: CliContext): void;
}

/**
 * Wrap a subcommand body: its resolved number becomes the exit code; a RanercError is printed as
 * `ranerc <name>: <file:line: message>` with its hint and gives its exit code; anything else is an
 * unexpected failure (exit 1) printed with its stack.
 */
export function action<A extends unknown[]>(
  ctx: CliContext,
  name: string,
  body: (...args: A) => Promise<number>,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      ctx.exitCode = await body(...args);
    } catch (e) {
      if (isRanercError(e)) {
        ctx.err(`ranerc ${name}: ${e.format()}\n`);
        ctx.exitCode = e.exitCode;
      } else {
        ctx.err(`ranerc ${name}: unexpected failure: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
        ctx.exitCode = ExitCode.FAILURE;
      }
    }
  };
}

/** Parse an integer option, with a usage error naming the option. */
export function intOption(name: string, min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new UsageError(`${name} must be an integer in [${min}, ${max}], got "${value}"`);
    }
    return n;
  };
}

/** Parse a number option, with a usage error naming the option. */
export function numberOption(name: string, min = -Infinity, max = Infinity) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min || n > max) {
      throw new UsageError(`${name} must be a number in [${min}, ${max}], got "${value}"`);
    }
    return n;
  };
}

/** Parse a comma-separated list of positive integers ("64,128"). */
export function intListOption(name: string, min = 1) {
  return (value: string): number[] => {
    const parts = value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
    const nums = parts.map(Number);
    if (nums.length === 0 || nums.some((n) => !Number.isInteger(n) || n < min)) {
      throw new UsageError(`${name} must be a comma-separated list of integers >= ${min}, got "${value}"`);
    }
    return nums;
  };
}
