import type { SubcommandModule } from './context.js';

/**
 * The subcommand registry: one file per subcommand under src/cli/, each listed here once.
 * Order is the order `ranerc --help` lists them.
 */
export const subcommands: SubcommandModule[] = [];
