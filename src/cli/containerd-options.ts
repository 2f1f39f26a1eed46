/**
 * Options of the benchmarks that start functions through a containerd (bench containerd, bench
 * pods): where that containerd is, the function's image in it, and how many reps. Their --state
 * must be the state directory the vhive shim uses there (containerd's VHIVE_STATE).
 */
import type { Argv } from "yargs";
import { VhiveError } from "../shared/errors.js";
import { accelOption, timeoutOption } from "./function-options.js";
import { formatMs } from "./format.js";
import type { Summary } from "../bench/index.js";

export function containerdOptions<T>(yargs: Argv<T>) {
  return timeoutOption(accelOption(yargs))
    .option("containerd", { type: "string", default: "/run/containerd/containerd.sock", describe: "containerd's socket" })
    .option("containerd-state", { type: "string", default: "/run/containerd", describe: "containerd's state directory (the tasks' bundles, where the shim writes vhive-start.json)" })
    .option("image", { type: "string", default: "vhive.local/helloworld:bench", describe: "the function's image in containerd (a `vhive image export` archive, imported)" })
    .option("reps", { type: "number", default: 5, describe: "starts of each kind" })
    .option("data", { type: "string", describe: "request data (default: the image's first input)" })
    .option("json", { type: "boolean", default: false, describe: "print one JSON object with every run instead of the table" });
}

export function repsOf(reps: number): number {
  if (!Number.isInteger(reps) || reps < 1) throw new VhiveError("ERR_VALIDATION", `--reps ${reps}: expected a whole number of at least 1`);
  return reps;
}

/** "1234.5 ms  (1100.0 ms .. 1400.2 ms)" */
export function formatRange(summary: Summary): string {
  return `${formatMs(summary.median)}  (${formatMs(summary.min)} .. ${formatMs(summary.max)})`;
}

/** A summary as the last line's JSON has it: whole ms. */
export function summaryJson(summary: Summary): { medianMs: number; minMs: number; maxMs: number; n: number } {
  return { medianMs: Math.round(summary.median), minMs: Math.round(summary.min), maxMs: Math.round(summary.max), n: summary.n };
}
