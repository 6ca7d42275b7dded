import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { ExitCode, isRanercError } from '../errors.js';
import { subcommands } from './commands.js';
import { addLayoutOption } from './layout.js';
import type { CliContext } from './context.js';

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** Build the commander program (exposed for tests). */
export function buildProgram(ctx: CliContext): Command {
  const program = new Command('ranerc')
    .description('Compress ONNX named-entity-recognition models (prune, quantize, distill) and prove it with reports.')
    .version(version())
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeOut: ctx.out, writeErr: ctx.err })
    .exitOverride();
  for (const m of subcommands) m.register(program, ctx);
  addLayoutOption(program);
  return program;
}

/** Run the CLI on `argv` (process.argv shape); resolves to the exit code. */
export async function main(argv: string[], ctx?: Partial<CliContext>): Promise<number> {
  const full: CliContext = {
    out: ctx?.out ?? ((t) => void process.stdout.write(t)),
    err: ctx?.err ?? ((t) => void process.stderr.write(t)),
    interactive: ctx?.interactive ?? Boolean(process.stderr.isTTY),
    exitCode: ExitCode.OK,
  };
  const program = buildProgram(full);
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version exit 0; anything else commander rejects is bad usage.
      return e.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
    }
    if (isRanercError(e)) {
      full.err(`ranerc: ${e.format()}\n`);
      return e.exitCode;
    }
    throw e;
  }
  return full.exitCode;
}
