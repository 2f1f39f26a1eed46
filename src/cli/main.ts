#!/usr/bin/env node
/**
 * The vhive command. Parses arguments with yargs, gives each command a CliContext, and owns the
 * process: Ctrl-C aborts the running command (which stops its VMs); a second Ctrl-C exits at
 * once, and the exit hook in shared/child.ts kills any child still alive.
 */
import yargs, { type Argv } from "yargs";
import { hideBin } from "yargs/helpers";
import { isVhiveError } from "../shared/errors.js";
import { stopAllChildren } from "../shared/child.js";
import type { CommandSpec } from "./command.js";
import { createContext, type GlobalArgs } from "./context.js";
import { describeError } from "./format.js";
import { demoCommand } from "./commands/demo.js";
import { doctorCommand } from "./commands/doctor.js";
import { imageBuildCommand } from "./commands/image-build.js";
import { imageImportCommand } from "./commands/image-import.js";
import { imageLsCommand } from "./commands/image-ls.js";
import { imageRmCommand } from "./commands/image-rm.js";
import { runCommand } from "./commands/run.js";

const controller = new AbortController();
let exitCode = 0;

function register<Args>(parent: Argv<GlobalArgs>, spec: CommandSpec<Args>): Argv<GlobalArgs> {
  return parent.command({
    command: spec.command,
    describe: spec.describe,
    builder: spec.builder as (y: Argv<GlobalArgs>) => Argv<Args>,
    handler: async (args) => {
      const context = createContext(args as unknown as GlobalArgs, controller.signal);
      try {
        exitCode = (await spec.run(args as unknown as Args, context)) ?? 0;
      } catch (error) {
        await stopAllChildren(1000);
        process.stderr.write(describeError(error) + "\n");
        exitCode = isVhiveError(error, "ERR_ABORTED") ? 130 : 1;
      }
    },
  });
}

let interrupts = 0;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    process.stderr.write(`\n${signal}: stopping (again to force)\n`);
    controller.abort();
  });
}

const cli = yargs(hideBin(process.argv))
  .scriptName("vhive")
  .usage("$0 <command>\n\nServerless functions in QEMU microVMs, started fast from memory snapshots.")
  .option("state", { type: "string", describe: "state directory (default $VHIVE_STATE or ~/.local/share/vhive)" })
  .option("log-level", { choices: ["debug", "info", "warn", "error", "silent"] as const, default: "warn" as const, describe: "log detail on stderr" })
  .command("image", "build, import, list and remove function images", (images) => {
    let group = images as unknown as Argv<GlobalArgs>;
    for (const spec of [imageBuildCommand, imageImportCommand, imageLsCommand, imageRmCommand]) {
      group = register(group, spec as CommandSpec<unknown>);
    }
    return group.demandCommand(1, "name an image command");
  }) as unknown as Argv<GlobalArgs>;

let root = cli;
for (const spec of [doctorCommand, runCommand, demoCommand]) root = register(root, spec as CommandSpec<unknown>);

await root.demandCommand(1, "name a command (vhive --help lists them)").strict().recommendCommands().help().wrap(Math.min(110, process.stdout.columns ?? 110)).parseAsync();
process.exitCode = exitCode;
