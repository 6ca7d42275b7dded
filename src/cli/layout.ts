/**
 * `--layout ranerc|optimum|transformers.js` on every command that writes a model folder. The flag is
 * added here, once, to the registered commands that write folders; for the duration of the command
 * it becomes the layout writeModelFolder uses (src/onnx/layout.ts).
 */
import { Option, type Command } from 'commander';
import { LAYOUTS, setDefaultLayout, type Layout } from '../onnx/layout.js';

/** Commands whose output is a model folder (`convert` once it exists). */
export const FOLDER_COMMANDS = ['quantize', 'prune', 'finetune', 'distill', 'run', 'convert'];

const HELP =
  "output folder layout: ranerc (model.onnx at the top), transformers.js (onnx/model.onnx; onnx/model_quantized.onnx for INT8) or optimum (model.onnx; model_quantized.onnx + ort_config.json for INT8)";

/** Add `--layout` to the folder-writing subcommands of `program`. */
export function addLayoutOption(program: Command): void {
  for (const cmd of program.commands) {
    if (!FOLDER_COMMANDS.includes(cmd.name())) continue;
    cmd.addOption(new Option('--layout <layout>', HELP).choices(LAYOUTS).default('ranerc'));
    cmd.hook('preAction', (c) => setDefaultLayout((c.opts() as { layout?: Layout }).layout ?? 'ranerc'));
    cmd.hook('postAction', () => setDefaultLayout('ranerc'));
  }
}
