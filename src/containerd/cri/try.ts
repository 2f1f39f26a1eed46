#!/usr/bin/env node
/**
 * The CRI part of scripts/cri-try.sh (which starts a private containerd with its CRI plugin and
 * CNI, and imports the images): three pods of helloworld one after another with runtime handler
 * `vhive`, each with a sidecar of the same image that calls the function on the pod's localhost;
 * the function is called at each pod IP from here, each pod removed before the next starts. The
 * first pod boots (and becomes the image's snapshot as it stops), the second restores recording
 * its working set, the third prefetches. Prints progress on stderr and, as its last line, one
 * JSON object:
 *
 *   {"starts":["boot","record","prefetch"],"podReplies":[...],"sidecarReplies":[...],"ms":[...]}
 *
 * ms: from RunPodSandbox to the function's first reply at the pod IP. Ctrl-C (or SIGTERM)
 * removes the pods made so far and exits 130.
 *
 *   node dist/containerd/cri/try.js --socket SOCK --containerd-state DIR --image REF --log-dir DIR
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { z } from "zod";
import { addressClient, parseFunctionAddress } from "../../invoke/index.js";
import { describeError } from "../../cli/format.js";
import { messageOf, VhiveError } from "../../shared/errors.js";
import { readStartRecord, taskBundle } from "../shim/start-record.js";
import { connectCri, type CriClient } from "./client.js";
import { containerConfig, readCriLog, waitContainerExited } from "./config.js";
import { helloworldSidecarCommand, PodSet } from "./pods.js";

/** CRI's containerd namespace. */
const CRI_NAMESPACE = "k8s.io";
const FUNCTION_PORT = 50051;

const Options = z
  .object({
    socket: z.string().min(1),
    "containerd-state": z.string().min(1),
    image: z.string().min(1),
    "log-dir": z.string().min(1),
    pods: z.coerce.number().int().min(1).max(10).default(3),
    "timeout-ms": z.coerce.number().int().positive().default(120_000),
  })
  .strict();
type Options = z.infer<typeof Options>;

function parseOptions(argv: string[]): Options {
  const string = { type: "string" } as const;
  const { values } = parseArgs({ args: argv, options: { socket: string, "containerd-state": string, image: string, "log-dir": string, pods: string, "timeout-ms": string }, strict: true });
  const parsed = Options.safeParse(values);
  if (!parsed.success) {
    throw new VhiveError("ERR_VALIDATION", `cri-try: ${parsed.error.issues.map((issue) => `--${issue.path.join(".")}: ${issue.message}`).join("; ")}`, {
      remedy: "run it through scripts/cri-try.sh, which passes --socket, --containerd-state, --image and --log-dir",
    });
  }
  return parsed.data;
}

interface PodResult {
  start: string;
  podReply: string;
  sidecarReply: string;
  ms: number;
}

const say = (line: string) => process.stderr.write(`==> ${line}\n`);

/** The function's reply at host:port, waiting for it to answer first. */
async function callAt(host: string, data: string, timeoutMs: number, signal: AbortSignal): Promise<string> {
  const client = addressClient(parseFunctionAddress(`${host}:${FUNCTION_PORT}`), { invokeTimeoutMs: timeoutMs });
  try {
    await client.waitReady({ timeoutMs, signal });
    return (await client.invoke(data, { signal })).text;
  } finally {
    client.close();
  }
}

async function tryPod(cri: CriClient, pods: PodSet, options: Options, round: number, signal: AbortSignal): Promise<PodResult> {
  const began = performance.now();
  const pod = await pods.runPod(`helloworld-${round}`, "vhive", { signal });
  const functionLog = `user-container-${round}.log`;
  const functionId = await pods.startContainer(pod, containerConfig("user-container", options.image, { logPath: functionLog }), signal);
  const podReply = await callAt(pod.ip, `pod ${round}`, options["timeout-ms"], signal);
  const ms = Math.round(performance.now() - began);
  const { start } = await readStartRecord(taskBundle(options["containerd-state"], CRI_NAMESPACE, functionId));
  say(`pod ${round} (${pod.ip}): started by ${start}, answered "${podReply}" ${ms} ms after RunPodSandbox`);

  const sidecarLog = `sidecar-${round}.log`;
  const sidecar = await pods.startContainer(pod, containerConfig("sidecar", options.image, { command: helloworldSidecarCommand(`sidecar ${round}`, FUNCTION_PORT), logPath: sidecarLog }), signal);
  const exited = await waitContainerExited(cri, sidecar, options["timeout-ms"], signal);
  const log = await readCriLog(join(options["log-dir"], sidecarLog));
  if (exited.exitCode !== 0) {
    throw new VhiveError("ERR_INVOKE", `the sidecar of pod ${round} could not call the function at localhost:${FUNCTION_PORT} (exit status ${exited.exitCode})`, { details: log.stderr });
  }
  const sidecarReply = log.stdout.trim();
  say(`pod ${round}: the sidecar called localhost:${FUNCTION_PORT}: "${sidecarReply}"`);
  await pods.remove(pod, signal);
  // What the shim said in the function container's log: the start, what it saved as it stopped.
  const said = (await readCriLog(join(options["log-dir"], functionLog))).stderr.split("\n").filter((line) => line.startsWith("vhive: "));
  for (const line of said) say(`pod ${round}: ${line}`);
  return { start, podReply, sidecarReply, ms };
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  const controller = new AbortController();
  for (const name of ["SIGINT", "SIGTERM"] as const) {
    process.on(name, () => {
      if (controller.signal.aborted) process.exit(130);
      say(`${name}: removing the pods made so far (again to force)`);
      controller.abort();
    });
  }
  using cri = connectCri(options.socket);
  await using pods = new PodSet(cri, { logDirectory: options["log-dir"], onCleanupError: (pod, error) => say(`removing pod ${pod.name} failed: ${messageOf(error)}`) });
  const results: PodResult[] = [];
  try {
    for (let round = 1; round <= options.pods; round++) results.push(await tryPod(cri, pods, options, round, controller.signal));
  } catch (error) {
    if (controller.signal.aborted) return 130;
    throw error;
  }
  process.stdout.write(
    JSON.stringify({ starts: results.map((r) => r.start), podReplies: results.map((r) => r.podReply), sidecarReplies: results.map((r) => r.sidecarReply), ms: results.map((r) => r.ms) }) + "\n",
  );
  return 0;
}

main().then(
  (code) => (process.exitCode = code),
  (error: unknown) => {
    process.stderr.write(`cri-try: ${describeError(error)}\n`);
    process.exitCode = 1;
  },
);
