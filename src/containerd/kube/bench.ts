#!/usr/bin/env node
/**
 * The Kubernetes part of scripts/k8s-bench.sh: `kubectl scale` of a Deployment from 0 to 1
 * until its pod's first reply at its pod IP, on the cluster of scripts/k8s-cluster.sh, for
 *
 *   boot      a vhive pod on a node without the image's snapshot (node 2's are removed first)
 *   prefetch  a vhive pod on a node with the snapshot and its working set (node 1)
 *   runc      the same image in a runc Deployment (node 1)
 *
 * interleaved round by round, and where the time goes, on the host's clock (the watch of the
 * pods, the shim's start record, the client's reply):
 *
 *   scheduleMs    kubectl scale until the pod is bound to a node (the ReplicaSet controller
 *                 makes the pod, the scheduler places it; as this host's watch sees it)
 *   kubeletMs     bound until containerd runs the pod's vhive shim (kubelet's pod sync,
 *                 RunPodSandbox's network namespace and CNI)
 *   shimMs        the pod's shim starts, until its server listens
 *   sandboxMs     the sandbox's pause container (runc, through the pod's shim), kubelet's
 *                 CreateContainer and the function container's shim start, until Create arrives
 *   createMs      Create: the rootfs, the container's vhive image, the host context
 *   toStartMs     Create answered until Start arrives
 *   startPathMs   Start: boot or restore, until the function answers
 *   replyMs       Start's answer back to kubelet, the pod's IP reaching this host's watch
 *                 (kubelet's status update through the API server), and the first call there
 *
 * A runc pod has scheduleMs and restMs (bound until the first reply). Prints a table on stderr,
 * writes every row and the summary to OUT/k8s-scale.json, and prints, as its last line, one JSON
 * object keyed by kind, each {"medianMs","minMs","maxMs","n"}.
 *
 *   node dist/containerd/kube/bench.js --cluster DIR --out DIR [--reps 5]
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { describeError } from "../../cli/format.js";
import { packagePath } from "../../shared/package-root.js";
import { median, summarize } from "../../bench/stats.js";
import { StatePaths } from "../../shared/paths.js";
import { SnapshotStore } from "../../snapshot/index.js";
import { epochMs } from "../shim/start-record.js";
import { Cluster } from "./cluster.js";
import type { PodView } from "./kubectl.js";
import { callFunction } from "./replies.js";

const PORT = 50051;
const IMAGE = "vhive.local/helloworld:latest";
const TIMEOUT_MS = 600_000;
const KINDS = ["boot", "prefetch", "runc"] as const;
type Kind = (typeof KINDS)[number];
const VHIVE_PHASES = ["scheduleMs", "kubeletMs", "shimMs", "sandboxMs", "createMs", "toStartMs", "startPathMs", "replyMs"] as const;
const RUNC_PHASES = ["scheduleMs", "restMs"] as const;

interface Row {
  kind: Kind;
  round: number;
  node: string;
  start: string;
  totalMs: number;
  split: Record<string, number>;
}

const say = (line: string) => process.stderr.write(`==> ${line}\n`);
const roundAll = (split: Record<string, number>) => Object.fromEntries(Object.entries(split).map(([phase, ms]) => [phase, Math.round(ms)]));

function deployment(name: string, node: string, vhive: boolean): object {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name },
    spec: {
      replicas: 0,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name }, annotations: vhive ? { "dev.vhive.start": "reap" } : {} },
        spec: {
          ...(vhive ? { runtimeClassName: "vhive" } : {}),
          enableServiceLinks: false,
          nodeSelector: { "kubernetes.io/hostname": node },
          containers: [{ name: "helloworld", image: IMAGE, imagePullPolicy: "Never", ports: [{ containerPort: PORT }], resources: { limits: { memory: "256Mi", cpu: "1" } } }],
        },
      },
    },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { cluster: { type: "string" }, out: { type: "string" }, reps: { type: "string" } }, strict: true });
  if (!values.cluster || !values.out) throw new Error("k8s-bench: --cluster DIR and --out DIR are needed (scripts/k8s-bench.sh passes them)");
  const reps = Number(values.reps ?? 5);
  if (!Number.isInteger(reps) || reps < 1) throw new Error(`k8s-bench: --reps takes a whole number of rounds (got ${values.reps})`);
  const cluster = await Cluster.open(values.cluster);
  const { kubectl } = cluster;
  const [warm, cold] = [cluster.info.nodes[0]!, cluster.info.nodes[1] ?? cluster.info.nodes[0]!];
  const names: Record<Kind, string> = { boot: "bench-boot", prefetch: "bench-prefetch", runc: "bench-runc" };
  const nodeOf: Record<Kind, string> = { boot: cold.name, prefetch: warm.name, runc: warm.name };

  await kubectl.run(["label", "node", ...cluster.info.nodes.map((node) => node.name), "dev.vhive/runtime=true", "--overwrite"]);
  await kubectl.run(["apply", "-f", packagePath("deploy", "kubernetes", "runtimeclass.yaml")]);
  const manifest = join(values.out, "k8s-bench-deployments.json");
  await mkdir(values.out, { recursive: true });
  await writeFile(manifest, JSON.stringify({ apiVersion: "v1", kind: "List", items: KINDS.map((kind) => deployment(names[kind], nodeOf[kind], kind !== "runc")) }));
  await kubectl.run(["apply", "-f", manifest]);

  /** One scale from 0 to 1 and back; the row of the pod it started. */
  const scaleOnce = async (kind: Kind, round: number): Promise<Row> => {
    const selector = `app=${names[kind]}`;
    let scheduledAt: number | undefined;
    // The pod is called as soon as the watch shows its IP (the call retries until it answers).
    let calling: Promise<{ pod: PodView; repliedAt: number }> | undefined;
    await using _watch = await kubectl.watchPods(selector, (pod) => {
      if (pod.deleting) return;
      if (pod.node && scheduledAt === undefined) scheduledAt = epochMs();
      if (pod.ip && !calling) calling = callFunction(pod.ip, PORT, pod.name, TIMEOUT_MS).then(() => ({ pod, repliedAt: epochMs() }));
    });
    const beganAt = epochMs();
    await kubectl.run(["scale", `deployment/${names[kind]}`, "--replicas=1"]);
    const deadline = Date.now() + TIMEOUT_MS;
    while (!calling) {
      if (Date.now() > deadline) throw new Error(`${names[kind]}: no pod got an IP within ${TIMEOUT_MS / 1000} s`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const { repliedAt } = await calling;
    // The pod as it is now: its containers' ids are set once it runs.
    const [now] = await kubectl.pods(selector);
    const reply = { pod: now!, ms: Math.round(repliedAt - beganAt) };
    const bound = scheduledAt ?? repliedAt;
    let row: Row;
    if (kind === "runc") {
      row = { kind, round, node: reply!.pod.node!, start: "runc", totalMs: reply!.ms, split: roundAll({ scheduleMs: bound - beganAt, restMs: repliedAt - bound }) };
    } else {
      const record = await cluster.startRecord(reply!.pod, "helloworld");
      const t = record.timeline;
      row = {
        kind,
        round,
        node: reply!.pod.node!,
        start: record.start,
        totalMs: reply!.ms,
        split: roundAll({
          scheduleMs: bound - beganAt,
          kubeletMs: t.shimStartedAt - bound,
          shimMs: t.servingAt - t.shimStartedAt,
          sandboxMs: t.createAt - t.servingAt,
          createMs: t.createdAt - t.createAt,
          toStartMs: t.startAt - t.createdAt,
          startPathMs: t.answeredAt - t.startAt,
          replyMs: repliedAt - t.answeredAt,
        }),
      };
    }
    await kubectl.run(["scale", `deployment/${names[kind]}`, "--replicas=0"]);
    await kubectl.waitPods(selector, (pods) => pods.length === 0, "gone", TIMEOUT_MS);
    return row;
  };

  // The node's shim state holds only this image's snapshots, and no pod runs while they go.
  const removeSnapshots = async (vhiveState: string) => {
    const store = new SnapshotStore(new StatePaths(vhiveState));
    const { snapshots, damaged } = await store.list({ includeQuarantined: true });
    for (const id of [...snapshots.map((snapshot) => snapshot.meta.id), ...damaged.map((broken) => broken.id)]) await store.remove(id);
  };

  // Node 1 gets the snapshot (a boot, saved as it stops) and its working set (a record).
  say(`warming ${warm.name}: its snapshot and working set of ${IMAGE}`);
  for (let attempt = 0; attempt < 4; attempt++) {
    const row = await scaleOnce("prefetch", 0);
    say(`  warm-up: ${row.start} in ${row.totalMs} ms`);
    if (row.start === "prefetch") break;
  }
  const rows: Row[] = [];
  for (let round = 1; round <= reps; round++) {
    for (const kind of KINDS) {
      if (kind === "boot") await removeSnapshots(cold.vhiveState);
      const row = await scaleOnce(kind, round);
      if (row.start !== kind && kind !== "runc") throw new Error(`round ${round}: the ${kind} pod started by ${row.start}`);
      rows.push(row);
      say(`round ${round}: ${kind} on ${row.node}: first reply ${row.totalMs} ms after kubectl scale (${Object.entries(row.split).map(([phase, ms]) => `${phase} ${Math.round(ms)}`).join(", ")})`);
    }
  }
  await kubectl.run(["delete", "-f", manifest, "--wait=true"], { timeoutMs: TIMEOUT_MS });

  const summary = Object.fromEntries(
    KINDS.map((kind) => {
      const of = rows.filter((row) => row.kind === kind);
      const totals = summarize(of.map((row) => row.totalMs));
      const phases = kind === "runc" ? RUNC_PHASES : VHIVE_PHASES;
      return [kind, { medianMs: Math.round(totals.median), minMs: Math.round(totals.min), maxMs: Math.round(totals.max), n: totals.n, phases: Object.fromEntries(phases.map((phase) => [phase, Math.round(median(of.map((row) => row.split[phase]!)))])) }];
    }),
  );
  say("medians (ms) of kubectl scale 0 -> 1 until the first reply at the pod IP:");
  for (const kind of KINDS) {
    const entry = summary[kind]!;
    say(`  ${kind.padEnd(8)} ${String(entry.medianMs).padStart(6)} (${entry.minMs}..${entry.maxMs}, n=${entry.n})  ${Object.entries(entry.phases).map(([phase, ms]) => `${phase} ${ms}`).join(", ")}`);
  }
  await writeFile(join(values.out, "k8s-scale.json"), JSON.stringify({ command: `k8s-bench --reps ${reps}`, measuredAt: new Date().toISOString(), rows, summary }, null, 2) + "\n");
  process.stdout.write(JSON.stringify(Object.fromEntries(KINDS.map((kind) => [kind, { medianMs: summary[kind]!.medianMs, minMs: summary[kind]!.minMs, maxMs: summary[kind]!.maxMs, n: summary[kind]!.n }]))) + "\n");
}

main().catch((error: unknown) => {
  process.stderr.write(`k8s-bench: ${describeError(error)}\n`);
  process.exitCode = 1;
});
