/**
 * CLI commands are declarative records, one file each: a name, a description, the options, and
 * a handler that gets parsed options and the CliContext. main.ts turns them into yargs commands.
 */
import type { Argv } from "yargs";
import type { CliContext, GlobalArgs } from "./context.js";

export interface CommandSpec<Args> {
  command: string;
  describe: string;
  builder: (yargs: Argv<GlobalArgs>) => Argv<Args>;
  /**
   * The command shuts down its own children on Ctrl-C/SIGTERM (the daemon saves snapshots
   * first), so main.ts starts its children in their own process groups and only aborts the
   * signal instead of stopping every child at once.
   */
  handlesSignals?: boolean;
  /** Returns the process exit code (default 0). */
  run: (args: Args, context: CliContext) => Promise<number | void>;
}

/** Identity with inference: `defineCommand({ ... })` types `run`'s args from `builder`. */
export function defineCommand<Args>(spec: CommandSpec<Args>): CommandSpec<Args> {
  return spec;
}

/** A command of any arguments, for lists of commands. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyCommand = CommandSpec<any>;

/** A group such as `vhive image build|import|ls|rm`. */
export interface CommandGroup {
  command: string;
  describe: string;
  subcommands: AnyCommand[];
}
