/**
 * `ranerc export-web --model DIR --out DIR`: write the serve page as a static folder that runs the
 * model in the browser (onnxruntime-web, wasm); see src/web/export.ts.
 */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { exportWeb } from '../web/export.js';
import { action, type CliContext } from './context.js';
import { addModelOptions, addWindowOptions, openModelFolder, windowOptions, type ModelFlags, type WindowFlags } from './options.js';

interface ExportWebFlags extends ModelFlags, WindowFlags {
  out: string;
  json?: boolean;
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(2)} MB`;
}

async function runExportWeb(ctx: CliContext, flags: ExportWebFlags): Promise<number> {
  const folder = await openModelFolder(flags);
  const w = windowOptions(flags);
  const r = await exportWeb(folder, resolve(flags.out), { windowSize: w.windowSize, overlap: w.overlap });
  if (flags.json) {
    ctx.out(`${JSON.stringify(r)}\n`);
    return 0;
  }
  ctx.out(
    [
      `wrote ${r.dir}`,
      `  files      ${r.files}`,
      `  total      ${mb(r.bytes)}`,
      `  model      ${mb(r.modelBytes)} (${r.int8Ops.length > 0 ? `INT8: ${r.int8Ops.join(', ')}` : 'float'})`,
      `serve it with any static file server, e.g.  npx http-server ${flags.out}  or  python3 -m http.server -d ${flags.out}`,
      '',
    ].join('\n'),
  );
  return 0;
}

export function register(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('export-web')
    .description('write the web page as a static folder that runs the model in the browser (onnxruntime-web, no server)');
  addModelOptions(cmd);
  addWindowOptions(cmd);
  cmd
    .requiredOption('-o, --out <dir>', 'folder to write (replaced atomically)')
    .option('--json', 'print the result as JSON')
    .action(action(ctx, 'export-web', (opts: ExportWebFlags) => runExportWeb(ctx, opts)));
}
