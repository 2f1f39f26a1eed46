import { startDaemon, DEFAULT_LISTEN } from "../../daemon/index.js";
import { defineCommand } from "../command.js";
import { parseDurationMs } from "../duration.js";
import { accelOption } from "../function-options.js";

export const serveCommand = defineCommand({
  command: "serve",
  describe: "run the vhive daemon: an HTTP API to deploy and invoke functions, with instance pools, keep-alive and snapshots",
  handlesSignals: true,
  builder: (yargs) =>
    accelOption(yargs)
      .option("listen", { type: "string", default: DEFAULT_LISTEN, describe: "host:port of the API; beyond loopback a --token is required" })
      .option("token", { type: "string", describe: "bearer token every request must carry (default $VHIVE_TOKEN)" })
      .option("memory-budget", { type: "number", describe: "MiB of guest memory instances may use in all (default 75% of the free memory at start-up)" })
      .option("queue-timeout", { type: "string", default: "120s", describe: "how long a request may wait for an instance before 503" }),
  run: async (args, context) => {
    const daemon = await startDaemon({
      stateDir: context.stateDir,
      listen: args.listen,
      token: args.token ?? (process.env.VHIVE_TOKEN || undefined),
      memoryBudgetMib: args["memory-budget"],
      queueTimeoutMs: parseDurationMs(args["queue-timeout"], "queue-timeout"),
      accel: args.accel,
      log: context.log,
    });
    process.stderr.write(`vhive daemon listening on ${daemon.url} (state ${context.stateDir}, memory budget ${daemon.functions.budget.totalMib} MiB)\n`);
    await new Promise<void>((resolve) => {
      if (context.signal.aborted) resolve();
      context.signal.addEventListener("abort", () => resolve(), { once: true });
    });
    await daemon.close();
    process.stderr.write("vhive daemon stopped; snapshots are kept\n");
  },
});
