import { benchContainerdStart, SHIM_PHASES, type ContainerdStartReport, type ShimPhase } from "../../bench/index.js";
import { openHost } from "../../start/index.js";
import { containerdOptions, formatRange, repsOf, summaryJson } from "../containerd-options.js";
import { defineCommand } from "../command.js";
import { formatMs, table } from "../format.js";
import { invokeTimeoutOf } from "../function-options.js";
import { withProgress } from "../progress.js";

function describe(report: ContainerdStartReport): string {
  const phases = Object.keys(SHIM_PHASES).filter((phase) => phase !== "sandboxMs") as ShimPhase[];
  const pct = (share: number) => `${(share * 100).toFixed(1)}%`;
  return [
    `${report.imageRef} under ${report.accel}, ${report.reps} starts of each kind, page cache evicted before each; from \`ctr run -d\` (or the restore call) until the function's first reply`,
    "",
    table([
      ["", "median  (min .. max)"],
      ["containerd, boot", formatRange(report.boot.totalMs)],
      ["containerd, prefetch", formatRange(report.prefetch.totalMs)],
      ["vhive snapshot restore, prefetch", `${formatRange(report.restore.wallMs)}   QEMU spawn .. reply: ${formatMs(report.restore.totalMs.median)}`],
    ]),
    "",
    `the shim's overhead: (containerd prefetch - restore) / containerd prefetch = ${formatMs(report.overhead.ms)} / ${formatMs(report.prefetch.totalMs.median)} = ${pct(report.overhead.share)} (target <= ${pct(report.overhead.target)})`,
    "",
    "what no shim avoids (medians)",
    table([
      ["  containerd and runc starting a container (ctr run -d, the same image, process sleep)", formatRange(report.runc)],
      ["  a bare Node process (node -e 0; the shim runs two per container: start, server)", formatRange(report.node)],
    ]),
    "",
    "where a start through containerd goes (medians)",
    table([["", "boot", "prefetch", ""], ...phases.map((phase) => [`  ${phase}`, formatMs(report.boot.split[phase]), formatMs(report.prefetch.split[phase]), SHIM_PHASES[phase]])]),
  ].join("\n");
}

export const benchContainerdCommand = defineCommand({
  command: "containerd",
  describe: "a function container's start through containerd (ctr run, runtime io.containerd.vhive.v2), boot and prefetch, beside vhive snapshot restore of the same snapshot; the shim's overhead",
  builder: (yargs) => containerdOptions(yargs).option("namespace", { type: "string", default: "default", describe: "containerd namespace the image is in (ctr's -n)" }),
  run: async (args, context) => {
    const reps = repsOf(args.reps);
    const host = await openHost({ stateDir: context.stateDir, accel: args.accel, log: context.log });
    const report = await withProgress("containerd starts", context.log, (update) =>
      benchContainerdStart(host, {
        socket: args.containerd,
        containerdStateDir: args["containerd-state"],
        namespace: args.namespace,
        imageRef: args.image,
        reps,
        data: args.data,
        invokeTimeoutMs: invokeTimeoutOf(args),
        signal: context.signal,
        onProgress: update,
      }),
    );
    if (args.json) return context.printJson(report);
    context.print(describe(report));
    context.print(
      JSON.stringify({
        boot: summaryJson(report.boot.totalMs),
        prefetch: summaryJson(report.prefetch.totalMs),
        restore: summaryJson(report.restore.wallMs),
        overheadShare: Math.round(report.overhead.share * 1000) / 1000,
        target: report.overhead.target,
        runc: summaryJson(report.runc),
        node: summaryJson(report.node),
      }),
    );
  },
});
