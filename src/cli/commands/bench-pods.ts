import { benchPodStart, POD_KINDS, SHIM_PHASES, type PodKind, type PodStartReport, type ShimPhase } from "../../bench/index.js";
import { connectCri } from "../../containerd/cri/index.js";
import { VhiveError } from "../../shared/errors.js";
import { makeTempDir } from "../../shared/tmp.js";
import { openHost } from "../../start/index.js";
import { containerdOptions, formatRange, repsOf, summaryJson } from "../containerd-options.js";
import { defineCommand } from "../command.js";
import { formatMs, table } from "../format.js";
import { invokeTimeoutOf } from "../function-options.js";
import { withProgress } from "../progress.js";

function parseKinds(text: string): PodKind[] {
  const kinds = text.split(",").map((kind) => kind.trim()).filter(Boolean);
  const unknown = kinds.filter((kind) => !(POD_KINDS as readonly string[]).includes(kind));
  if (unknown.length > 0 || kinds.length === 0) throw new VhiveError("ERR_VALIDATION", `--kinds ${text}: ${unknown.length ? `unknown ${unknown.join(", ")}` : "none given"}`, { remedy: `name some of ${POD_KINDS.join(", ")}` });
  return POD_KINDS.filter((kind) => kinds.includes(kind));
}

function describe(report: PodStartReport): string {
  const kinds = POD_KINDS.filter((kind) => report.kinds[kind]);
  const vhive = kinds.filter((kind) => kind !== "runc");
  const lines = [
    `${report.imageRef} in pods through containerd's CRI under ${report.accel}, ${report.reps} pods of each kind, page cache evicted before each; from RunPodSandbox until the function's first reply at the pod IP`,
    "",
    table([["", "median  (min .. max)"], ...kinds.map((kind) => [kind === "runc" ? "runc (handler runc)" : `${kind} (handler vhive)`, formatRange(report.kinds[kind]!.totalMs)])]),
  ];
  if (vhive.length > 0) {
    const phases = Object.keys(SHIM_PHASES) as ShimPhase[];
    lines.push("", "where a vhive pod's start goes (medians)", table([["", ...vhive, ""], ...phases.map((phase) => [`  ${phase}`, ...vhive.map((kind) => formatMs(report.kinds[kind]!.split![phase])), SHIM_PHASES[phase]])]));
  }
  const runc = report.kinds.runc?.runcSplit;
  if (runc) lines.push("", `runc pods (medians): RunPodSandbox ${formatMs(runc.sandboxMs)}, CreateContainer + StartContainer ${formatMs(runc.containerMs)}, then until the function answered ${formatMs(runc.answerMs)}`);
  return lines.join("\n");
}

export const benchPodsCommand = defineCommand({
  command: "pods",
  describe: "a function pod's start through containerd's CRI (RunPodSandbox to the first reply at the pod IP): booted, restored, recording, prefetched (handler vhive) and as a plain runc pod of the same image",
  builder: (yargs) =>
    containerdOptions(yargs)
      .option("containerd-root", { type: "string", default: "/var/lib/containerd", describe: "containerd's root directory (its overlayfs snapshotter holds the layers runc pods run from)" })
      .option("kinds", { type: "string", default: POD_KINDS.join(","), describe: `comma-separated, of ${POD_KINDS.join(", ")}` }),
  run: async (args, context) => {
    const reps = repsOf(args.reps);
    const kinds = parseKinds(args.kinds);
    const host = await openHost({ stateDir: context.stateDir, accel: args.accel, log: context.log });
    await using logs = await makeTempDir("bench-pods-logs");
    using cri = connectCri(args.containerd);
    const report = await withProgress("pod starts", context.log, (update) =>
      benchPodStart(host, {
        cri,
        containerdStateDir: args["containerd-state"],
        containerdRootDir: args["containerd-root"],
        imageRef: args.image,
        logDirectory: logs.path,
        kinds,
        reps,
        data: args.data,
        invokeTimeoutMs: invokeTimeoutOf(args),
        signal: context.signal,
        onProgress: update,
      }),
    );
    if (args.json) return context.printJson(report);
    context.print(describe(report));
    context.print(JSON.stringify(Object.fromEntries(kinds.map((kind) => [kind, summaryJson(report.kinds[kind]!.totalMs)]))));
  },
});
