/**
 * `ranerc run [RECIPE] [--set key=value ...] [--out DIR] [--max-f1-drop P] [--max-latency-ms MS]
 * [--max-size-mb MB] [--no-cache] [--json]` — run a recipe's steps (cached by content hash), score and
 * time every variant, write artifacts/<variant>/ and summary.json/md/html, print the table.
 *
 * Exit codes: 0 every gate held; 1 unexpected failure; 2 bad usage or input (a malformed recipe names
 * its line); 3 a gate failed (the message names the variant, the gate, the measured number and the limit).
 */
import type { Command } from 'commander';
import { fileURLToPath } from 'node:url';
import { ExitCode } from '../errors.js';
import { GATE_NAMES, loadRecipe, type GateLimits } from '../run/recipe.js';
import { runRecipe } from '../run/runner.js';
import { summaryJson, terminalTable } from '../run/summary.js';
import { action, numberOption, type CliContext } from './context.js';

/** The default recipe, shipped with ranerc. */
export const DEFAULT_RECIPE = fileURLToPath(new URL('../../recipes/raner-lite.yaml', import.meta.url));

interface RunFlags {
  set: string[];
  out?: string;
  maxF1Drop?: number;
  maxLatencyMs?: number;
  maxSizeMb?: number;
  /** false with --no-cache */
  cache: boolean;
  json?: boolean;
}

async function runCommand(ctx: CliContext, recipeArg: string | undefined, flags: RunFlags): Promise<number> {
  const recipe = await loadRecipe(recipeArg ?? DEFAULT_RECIPE, flags.set);
  const gates: GateLimits = {};
  if (flags.maxF1Drop !== undefined) gates['max-f1-drop'] = flags.maxF1Drop;
  if (flags.maxLatencyMs !== undefined) gates['max-latency-ms'] = flags.maxLatencyMs;
  if (flags.maxSizeMb !== undefined) gates['max-size-mb'] = flags.maxSizeMb;
  const result = await runRecipe(recipe, {
    outDir: flags.out,
    noCache: !flags.cache,
    gates,
    interactive: ctx.interactive,
    json: flags.json,
    log: (line) => ctx.err(`run: ${line}\n`),
  });
  const s = result.summary;
  if (flags.json) ctx.out(summaryJson(s));
  else {
    const cachedSteps = s.steps.filter((x) => x.cached).length;
    ctx.out(
      `${s.recipe.name}: ${s.variants.length} variants, baseline ${s.baseline}; F1 on ${s.measure.data?.path ?? '?'}; ` +
        `${s.steps.length} steps (${cachedSteps} cached) in ${s.seconds.toFixed(1)} s\n\n${terminalTable(s)}`,
    );
  }
  ctx.err(`run: artifacts and summary.{json,md,html} in ${result.outDir}\n`);
  if (result.failures.length > 0) {
    for (const f of result.failures) ctx.err(`ranerc run: gate failed: ${f}\n`);
    return ExitCode.GATE;
  }
  return ExitCode.OK;
}

export function register(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('run')
    .description('run a recipe (prune/quantize/distill/eval/bench steps, cached), compare the variants, write artifacts and summary.html; exit 3 when a gate fails')
    .argument('[recipe]', 'recipe YAML (default: recipes/raner-lite.yaml)')
    .option('--set <key=value>', 'override a recipe field by its dotted path, typed like the field (repeatable)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--out <dir>', 'run folder: step cache, artifacts/, summary.* (default: reports/run-<recipe name>/)')
    .option('--max-f1-drop <points>', `gate: most micro-F1 points a variant may lose against the baseline`, numberOption('--max-f1-drop', 0))
    .option('--max-latency-ms <ms>', 'gate: highest p50 latency at batch 1', numberOption('--max-latency-ms', 0))
    .option('--max-size-mb <mb>', 'gate: largest model (ONNX + external data, MB = 10^6 bytes)', numberOption('--max-size-mb', 0))
    .option('--no-cache', 're-run every step even when its inputs are unchanged')
    .option('--json', 'print summary.json on stdout instead of the table');
  cmd.addHelpText(
    'after',
    `\nGates (${GATE_NAMES.join(', ')}) from flags apply to every variant that does not set its own limit in the recipe.\n` +
      'Exit codes: 0 ok, 1 unexpected failure, 2 bad usage or input, 3 a gate failed.\n',
  );
  cmd.action(action(ctx, 'run', (recipe: string | undefined, opts: RunFlags) => runCommand(ctx, recipe, opts)));
}
