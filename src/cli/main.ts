#!/usr/bin/env node
/**
 * The vhive command. Parses arguments with yargs, gives each command a CliContext, and owns the
 * process: Ctrl-C aborts the running command (which stops its VMs); a second Ctrl-C exits at
 * once, and the exit hook in shared/child.ts kills any child still alive.
 */
import yargs, { type Argv } from "yargs";
import { hideBin } from "yargs/helpers";
import { VhiveError, isVhiveError } from "../shared/errors.js";
import { isolateChildrenFromTerminal, stopAllChildren } from "../shared/child.js";
import type { AnyCommand, CommandGroup, CommandSpec } from "./command.js";
import { createContext, type GlobalArgs } from "./context.js";
import { describeError } from "./format.js";
import { benchBootVsRestoreCommand } from "./commands/bench-boot-vs-restore.js";
import { benchColdstartCommand } from "./commands/bench-coldstart.js";
import { benchConcurrencyCommand } from "./commands/bench-concurrency.js";
import { benchContainerdCommand } from "./commands/bench-containerd.js";
import { benchDensityCommand } from "./commands/bench-density.js";
import { benchLoadCommand } from "./commands/bench-load.js";
import { benchPodsCommand } from "./commands/bench-pods.js";
import { benchReapCommand } from "./commands/bench-reap.js";
import { benchReuseCommand } from "./commands/bench-reuse.js";
import { benchTraceCommand } from "./commands/bench-trace.js";
import { benchTraceSynthCommand } from "./commands/bench-trace-synth.js";
import { demoCommand } from "./commands/demo.js";
import { doctorCommand } from "./commands/doctor.js";
import { imageBuildCommand } from "./commands/image-build.js";
import { imageExportCommand } from "./commands/image-export.js";
import { imageImportCommand } from "./commands/image-import.js";
import { imageLsCommand } from "./commands/image-ls.js";
import { imageRmCommand } from "./commands/image-rm.js";
import { runCommand } from "./commands/run.js";
import { snapshotCreateCommand } from "./commands/snapshot-create.js";
import { snapshotLsCommand } from "./commands/snapshot-ls.js";
import { snapshotRestoreCommand } from "./commands/snapshot-restore.js";
import { snapshotRmCommand } from "./commands/snapshot-rm.js";
import { snapshotVerifyCommand } from "./commands/snapshot-verify.js";
import { serveCommand } from "./commands/serve.js";
import { deployCommand } from "./commands/deploy.js";
import { invokeCommand } from "./commands/invoke.js";
import { callCommand } from "./commands/call.js";
import { lsCommand } from "./commands/ls.js";
import { rmCommand } from "./commands/rm.js";
import { logsCommand } from "./commands/logs.js";

const controller = new AbortController();
let exitCode = 0;
/** Set while a command that stops its own children runs (vhive serve). */
let commandHandlesSignals = false;

function register<Args>(parent: Argv<GlobalArgs>, spec: CommandSpec<Args>): Argv<GlobalArgs> {
  return parent.command({
    command: spec.command,
    describe: spec.describe,
    builder: spec.builder as (y: Argv<GlobalArgs>) => Argv<Args>,
    handler: async (args) => {
      const context = createContext(args as unknown as GlobalArgs, controller.signal);
      commandHandlesSignals = spec.handlesSignals ?? false;
      if (commandHandlesSignals) isolateChildrenFromTerminal();
      try {
        exitCode = (await spec.run(args as unknown as Args, context)) ?? 0;
      } catch (error) {
        await stopAllChildren(1000);
        // After Ctrl-C, whatever failed failed because we stopped it: say so, not what broke.
        const reported = controller.signal.aborted && !isVhiveError(error, "ERR_ABORTED")
          ? new VhiveError("ERR_ABORTED", "cancelled; every VM and helper it started was stopped", { cause: error })
          : error;
        process.stderr.write(describeError(reported) + "\n");
        exitCode = isVhiveError(reported, "ERR_ABORTED") ? 130 : 1;
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
    // Ending the children ends every wait on them, wherever the command is.
    if (!commandHandlesSignals) void stopAllChildren(2000);
  });
}

/** `vhive <group> <command>`: a group of commands under one word. */
function registerGroup(parent: Argv<GlobalArgs>, group: CommandGroup): Argv<GlobalArgs> {
  return parent.command(group.command, group.describe, (inner) => {
    let argv = inner as unknown as Argv<GlobalArgs>;
    for (const spec of group.subcommands) argv = register(argv, spec);
    return argv.demandCommand(1, `name a ${group.command} command`);
  }) as unknown as Argv<GlobalArgs>;
}

let root = yargs(hideBin(process.argv))
  .scriptName("vhive")
  .usage("$0 <command>\n\nServerless functions in QEMU microVMs, started fast from memory snapshots.")
  .option("state", { type: "string", describe: "state directory (default $VHIVE_STATE or ~/.local/share/vhive)" })
  .option("log-level", { choices: ["debug", "info", "warn", "error", "silent"] as const, default: "warn" as const, describe: "log detail on stderr" });

const groups: CommandGroup[] = [
  { command: "image", describe: "build, import, export, list and remove function images", subcommands: [imageBuildCommand, imageImportCommand, imageExportCommand, imageLsCommand, imageRmCommand] },
  { command: "snapshot", describe: "create, list, restore, verify and remove VM snapshots", subcommands: [snapshotCreateCommand, snapshotLsCommand, snapshotRestoreCommand, snapshotVerifyCommand, snapshotRmCommand] },
  { command: "bench", describe: "cold-start experiments", subcommands: [benchBootVsRestoreCommand, benchReapCommand, benchColdstartCommand, benchReuseCommand, benchConcurrencyCommand, benchLoadCommand, benchTraceCommand, benchTraceSynthCommand, benchDensityCommand, benchContainerdCommand, benchPodsCommand] },
];
for (const group of groups) root = registerGroup(root, group);
const commands: AnyCommand[] = [doctorCommand, runCommand, demoCommand, serveCommand, deployCommand, invokeCommand, callCommand, lsCommand, rmCommand, logsCommand];
for (const spec of commands) root = register(root, spec);

await root.demandCommand(1, "name a command (vhive --help lists them)").strict().recommendCommands().help().wrap(Math.min(110, process.stdout.columns ?? 110)).parseAsync();
process.exitCode = exitCode;
