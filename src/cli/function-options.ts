/** Options shared by the commands that start a function VM (run, demo). */
import type { Argv } from "yargs";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { buildImage, ImageStore, type StoredImage } from "../image/index.js";
import { DEFAULT_INVOKE_TIMEOUT_MS } from "../invoke/index.js";
import { RECIPE_FILE } from "../image/recipe.js";
import { DEFAULT_MEM_MIB, DEFAULT_READY_TIMEOUT_MS, DEFAULT_VCPUS } from "../start/index.js";
import { VhiveError } from "../shared/errors.js";
import { StatePaths } from "../shared/paths.js";
import type { CliContext } from "./context.js";
import { parseDurationMs } from "./duration.js";
import { withProgress } from "./progress.js";

/** Guest size, for commands that boot. */
export function sizeOptions<T>(yargs: Argv<T>) {
  return yargs
    .option("memory", { type: "number", describe: `guest memory in MiB (default: the image's, else ${DEFAULT_MEM_MIB})` })
    .option("vcpus", { type: "number", default: DEFAULT_VCPUS, describe: "guest vCPUs" });
}

/** --accel, for every command that starts VMs. */
export function accelOption<T>(yargs: Argv<T>) {
  return yargs.option("accel", { choices: ["auto", "kvm", "tcg"] as const, default: "auto" as const, describe: "accelerator; auto probes KVM and falls back to TCG" });
}

/** --timeout, the invocation timeout, for every command that invokes a function it starts. */
export function timeoutOption<T>(yargs: Argv<T>) {
  return yargs.option("timeout", {
    type: "string",
    default: `${DEFAULT_INVOKE_TIMEOUT_MS / 1000}s`,
    describe: "how long one invocation may take before ERR_INVOKE_TIMEOUT, e.g. 30s or 5m (a bare number is seconds)",
  });
}

/** --timeout as the start paths take it. */
export function invokeTimeoutOf(args: { timeout: string }): number {
  const timeoutMs = parseDurationMs(args.timeout, "timeout");
  if (timeoutMs <= 0) throw new VhiveError("ERR_VALIDATION", `--timeout ${args.timeout}: expected a duration above 0, such as 30s`);
  return timeoutMs;
}

/** How an instance is started and reached, for every command that starts one. */
export function startOptions<T>(yargs: Argv<T>) {
  return timeoutOption(accelOption(yargs))
    .option("host-port", { type: "number", describe: "loopback port to forward to the function (default: a free one)" })
    .option("ready-timeout", { type: "number", default: DEFAULT_READY_TIMEOUT_MS / 1000, describe: "seconds until the function must answer" })
    .option("method", { type: "string", describe: "gRPC method, package.Service/Method (default: the image's)" })
    .option("proto", { type: "string", describe: ".proto file for the method (default: the image's)" })
    .option("keep-logs", { type: "boolean", default: false, describe: "keep the VM's serial log in the state directory" });
}

/** startOptions as the orchestrator takes them. */
export function startOptionsOf(
  args: { "host-port"?: number; "ready-timeout": number; method?: string; proto?: string; "keep-logs": boolean; timeout: string },
  context: CliContext,
) {
  return {
    invokeTimeoutMs: invokeTimeoutOf(args),
    hostPort: args["host-port"],
    readyTimeoutMs: args["ready-timeout"] * 1000,
    method: args.method,
    protoPath: args.proto,
    keepRunDir: args["keep-logs"],
    signal: context.signal,
  };
}

/** An image reference, or a recipe directory to build (cached) first. */
export async function imageFromRef(ref: string, context: CliContext): Promise<StoredImage> {
  const paths = new StatePaths(context.stateDir);
  const isRecipe = await stat(join(ref, RECIPE_FILE)).then((info) => info.isFile(), () => false);
  if (!isRecipe) return new ImageStore(paths).resolve(ref);
  return withProgress(`building ${ref}`, context.log, (onProgress) => buildImage(paths, ref, { signal: context.signal, onProgress }));
}
