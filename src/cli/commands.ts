import * as bench from './bench.js';
import * as convert from './convert.js';
import type { SubcommandModule } from './context.js';
import * as distill from './distill.js';
import * as evalCommand from './eval.js';
import * as exportWeb from './export-web.js';
import * as finetune from './finetune.js';
import * as inspect from './inspect.js';
import * as predict from './predict.js';
import * as prune from './prune.js';
import * as quantize from './quantize.js';
import * as run from './run.js';
import * as serve from './serve.js';
import * as worker from './worker.js';

/**
 * The subcommand registry: one file per subcommand under src/cli/, each listed here once.
 * Order is the order `ranerc --help` lists them.
 */
export const subcommands: SubcommandModule[] = [inspect, convert, evalCommand, predict, bench, prune, finetune, quantize, distill, serve, worker, exportWeb, run];
