/**
 * What every CLI command gets: the state directory, a log, an AbortSignal that fires on Ctrl-C,
 * and output helpers that keep stdout clean for --json.
 */
import type { Log, LogLevel } from "../shared/log.js";
import { createLog } from "../shared/log.js";
import { defaultStateDir } from "../shared/paths.js";

export interface GlobalArgs {
  state: string | undefined;
  "log-level": LogLevel;
}

export interface CliContext {
  stateDir: string;
  log: Log;
  signal: AbortSignal;
  /** Write a line to stdout. */
  print(line: string): void;
  /** Write one JSON document to stdout. */
  printJson(value: unknown): void;
}

export function createContext(args: GlobalArgs, signal: AbortSignal): CliContext {
  return {
    stateDir: args.state ?? defaultStateDir(),
    log: createLog(args["log-level"]),
    signal,
    print: (line) => process.stdout.write(line + "\n"),
    printJson: (value) => process.stdout.write(JSON.stringify(value, null, 2) + "\n"),
  };
}
