import { DEFAULT_WS_READ, WS_CODECS, WS_READS } from "../../memory/index.js";
import { openHost, restoreOnce, RESTORE_ONCE_MODES } from "../../start/index.js";
import { SnapshotStore } from "../../snapshot/index.js";
import { StatePaths } from "../../shared/paths.js";
import { defineCommand } from "../command.js";
import { startOptions, startOptionsOf } from "../function-options.js";
import { describeRestore } from "../snapshot-output.js";

export const snapshotRestoreCommand = defineCommand({
  command: "restore <snapshot>",
  describe: "start a new VM from a snapshot, invoke the function once, stop",
  builder: (yargs) =>
    startOptions(
      yargs
        .positional("snapshot", { type: "string", demandOption: true, describe: "snapshot id, id prefix, or function name (its newest snapshot)" })
        .option("mode", {
          choices: RESTORE_ONCE_MODES,
          default: "vanilla" as const,
          describe: "how guest memory is loaded; pool, pool-installed: on a VMM pre-started first (untimed), its working set prefetched at the cold start or installed while it waited",
        })
        .option("data", { type: "string", describe: "request data, as for vhive run" })
        .option("evict", { type: "boolean", default: false, describe: "drop the snapshot's and image's files from the page cache first (a cold start from disk)" })
        .option("drop-caches", { type: "boolean", default: false, describe: "drop the whole machine's page cache first" })
        .option("ws-codec", { choices: WS_CODECS, describe: "prefetch, pool, pool-installed: the working set's encoding to read (packed first if missing); record: the one to write (default lz4)" })
        .option("ws-read", { choices: WS_READS, describe: `prefetch, pool, pool-installed: read the working set with O_DIRECT (direct) or through the page cache, shared by concurrent restores (cached); default ${DEFAULT_WS_READ}` })
        .option("json", { type: "boolean", default: false, describe: "print one JSON object" }),
    ),
  run: async (args, context) => {
    const snapshot = await new SnapshotStore(new StatePaths(context.stateDir)).resolve(args.snapshot);
    const host = await openHost({ stateDir: context.stateDir, accel: args.accel, log: context.log });
    const result = await restoreOnce(host, snapshot, args.data, {
      mode: args.mode,
      evict: args.evict,
      dropCaches: args["drop-caches"],
      wsCodec: args["ws-codec"],
      wsRead: args["ws-read"],
      ...startOptionsOf(args, context),
    });
    if (args.json) context.printJson(result);
    else context.print(describeRestore(result));
  },
});
