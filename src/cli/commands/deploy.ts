import { resolve } from "node:path";
import { DEPLOY_DEFAULTS, type DeploySpec } from "../../orchestrator/index.js";
import { DEFAULT_MEM_MIB } from "../../start/index.js";
import { KEEPALIVE_POLICIES, START_POLICIES, type FunctionRecord } from "../../store/index.js";
import { defineCommand } from "../command.js";
import { daemonClient } from "../daemon-client.js";
import { parseDurationMs } from "../duration.js";
import { invokeTimeoutOf } from "../function-options.js";
import { functionLine, FUNCTION_HEADER } from "../function-output.js";
import { table } from "../format.js";

export const deployCommand = defineCommand({
  command: "deploy <name>",
  describe: "deploy a function on the daemon, or update it",
  builder: (yargs) =>
    yargs
      .positional("name", { type: "string", demandOption: true, describe: "function name" })
      .option("image", { type: "string", demandOption: true, describe: "image id, id prefix or name (in the daemon's state directory)" })
      .option("memory", { type: "number", describe: `guest memory in MiB (default: the image's, else ${DEFAULT_MEM_MIB})` })
      .option("vcpus", { type: "number", describe: `guest vCPUs (default ${DEPLOY_DEFAULTS.vcpus})` })
      .option("start", { choices: START_POLICIES, describe: `cold starts: boot, or from a snapshot (vanilla), with REAP (reap; default ${DEPLOY_DEFAULTS.start})` })
      .option("keepalive", { type: "string", describe: `idle time before an instance is stopped, e.g. 60s (default ${DEPLOY_DEFAULTS.keepaliveMs / 1000}s), under the fixed policy` })
      .option("keepalive-policy", {
        choices: KEEPALIVE_POLICIES,
        describe: `fixed (--keepalive), or hybrid: the hybrid histogram policy of Shahrad et al., learnt from the function's idle times (default ${DEPLOY_DEFAULTS.keepalivePolicy})`,
      })
      .option("min", { type: "number", describe: `instances kept warm (default ${DEPLOY_DEFAULTS.minInstances})` })
      .option("max", { type: "number", describe: `instances at most; requests queue beyond (default ${DEPLOY_DEFAULTS.maxInstances})` })
      .option("concurrency", { type: "number", describe: `requests one instance serves at once (default ${DEPLOY_DEFAULTS.concurrency})` })
      .option("pool", { type: "number", describe: `pre-started VMMs kept for cold starts, refilled after use, ended at scale to zero (--start reap; default ${DEPLOY_DEFAULTS.poolDepth}: none)` })
      .option("pool-installed", { type: "boolean", describe: "pooled VMMs install the working set while they wait (they hold its memory then)" })
      .option("method", { type: "string", describe: "gRPC method to call, package.Service/Method (default: the image's)" })
      .option("proto", { type: "string", describe: ".proto file that defines --method, on the daemon's host (default: the image's)" })
      .option("timeout", { type: "string", describe: `how long one invocation may take before ERR_INVOKE_TIMEOUT, e.g. 2m (default ${DEPLOY_DEFAULTS.invokeTimeoutMs / 1000}s)` })
      .option("json", { type: "boolean", default: false, describe: "print one JSON object" }),
  run: async (args, context) => {
    const spec: DeploySpec = {
      image: args.image,
      memMib: args.memory,
      vcpus: args.vcpus,
      start: args.start,
      keepaliveMs: args.keepalive === undefined ? undefined : parseDurationMs(args.keepalive, "keepalive"),
      keepalivePolicy: args["keepalive-policy"],
      minInstances: args.min,
      maxInstances: args.max,
      concurrency: args.concurrency,
      poolDepth: args.pool,
      poolInstalled: args["pool-installed"],
      invokeTimeoutMs: args.timeout === undefined ? undefined : invokeTimeoutOf({ timeout: args.timeout }),
      method: args.method,
      // The daemon resolves paths from its own working directory: send an absolute one.
      proto: args.proto === undefined ? undefined : resolve(args.proto),
    };
    // Options not given are undefined, which JSON leaves out: the daemon applies its defaults.
    const { function: fn } = await daemonClient(context).request<{ function: FunctionRecord }>("PUT", `/functions/${encodeURIComponent(args.name)}`, spec);
    if (args.json) context.printJson(fn);
    else context.print(table([FUNCTION_HEADER, functionLine(fn)]));
  },
});
