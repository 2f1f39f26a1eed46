/**
 * `containerd-shim-vhive-v2 ... start`: containerd runs it in the bundle directory, reads the
 * shim's address from its stdout (stdout and stderr together: nothing else may be printed), and
 * connects. It starts the server (this same program without an action) as a process of its own
 * session that outlives it, inside the container's network namespace, so that the VM's
 * forwarded port and the shim's own readiness checks are both in the container's network; and
 * waits until the server listens before it prints the address.
 *
 * In a pod (pod.ts), the containers that are not the function are handed to
 * containerd-shim-runc-v2: its start runs in their place, and its address is the one printed. The
 * pod's sandbox is run by runc's shim too, but served by the pod's vhive shim, started here with
 * it (sandbox-proxy.ts says why): the function container's start then finds it running.
 */
import { spawn } from "node:child_process";
import { closeSync, existsSync, lstatSync, openSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { VhiveError } from "../../shared/errors.js";
import { runTool } from "../../shared/tool.js";
import { socketPathOf } from "../ttrpc/address.js";
import { canConnect, CRI_ANNOTATIONS, DELEGATE_FILE, makeNetns, ownNetnsName, readBundleSpec, removeNetns, shimGroup, shimSocketAddress, writeAddressFile } from "./bundle.js";
import { claimPod, podRole, readPodClaim, RUNC_SHIM } from "./pod.js";
import type { ShimFlags } from "./flags.js";

/** How long the server may take to listen (a Node process loading vhive). */
const READY_TIMEOUT_MS = 30_000;

/** The shim's log: containerd's FIFO in the bundle (it copies what comes out into its own log), else a file. */
function openLog(bundle: string): number {
  const fifo = join(bundle, "log");
  // O_RDWR: a FIFO opened so never waits for a reader.
  if (existsSync(fifo) && lstatSync(fifo).isFIFO()) return openSync(fifo, "r+");
  return openSync(join(bundle, "shim.log"), "a");
}

export async function startShim(flags: ShimFlags): Promise<string> {
  const bundle = process.cwd();
  const spec = await readBundleSpec(bundle);
  const group = shimGroup(flags.id, spec.annotations);
  const address = shimSocketAddress(flags.address, flags.namespace, group);
  const socket = socketPathOf(address);
  const running = await canConnect(socket);
  await mkdir(dirname(socket), { recursive: true, mode: 0o700 });
  const type = spec.annotations[CRI_ANNOTATIONS.containerType];
  let sandboxShim: string | undefined;
  if (type === "sandbox") {
    if (running) throw new VhiveError("ERR_VALIDATION", `pod sandbox ${flags.id} has a running shim already`, { remedy: "each pod needs its own sandbox id" });
    sandboxShim = await delegateToRunc(flags, bundle);
  } else {
    if (podRole(spec.annotations, { claimedBy: await readPodClaim(socket) }) === "runc") return delegateToRunc(flags, bundle);
    const containerName = spec.annotations[CRI_ANNOTATIONS.containerName];
    if (type === "container" && running) {
      // The pod's shim, started with its sandbox, serves the function container too.
      await claimPod(socket, containerName ?? flags.id);
      await writeAddressFile(bundle, address);
      return address;
    }
    if (running) throw new VhiveError("ERR_VALIDATION", `container ${flags.id} shares its shim with a running container`, { remedy: "each container outside a pod needs its own id" });
    if (containerName !== undefined) await claimPod(socket, containerName);
  }
  await rm(socket, { force: true }); // a server that died left it

  let netns: string | undefined;
  let ownNetns: string | undefined;
  if (spec.network === "new") {
    ownNetns = ownNetnsName(flags.namespace, group);
    await removeNetns(ownNetns); // one a killed shim left
    netns = await makeNetns(ownNetns);
  } else {
    netns = spec.network;
  }

  const serverArgs = [fileURLToPath(new URL("./main.js", import.meta.url)), "-namespace", flags.namespace, "-id", flags.id, "-address", flags.address, "-socket", socket];
  if (flags.publishBinary) serverArgs.push("-publish-binary", flags.publishBinary);
  if (flags.debug) serverArgs.push("-debug");
  if (sandboxShim) serverArgs.push("-sandbox-id", flags.id, "-sandbox-shim", sandboxShim);
  const [command, ...args] = netns ? ["nsenter", `--net=${netns}`, "--", process.execPath, ...serverArgs] : [process.execPath, ...serverArgs];
  const log = openLog(bundle);
  try {
    const server = spawn(command!, args, {
      cwd: bundle,
      detached: true, // its own session: it outlives this process and containerd's restarts
      stdio: ["ignore", log, log, "pipe"],
      // VHIVE_SHIM_STARTED_AT: when containerd ran this start, for the start record's timeline.
      env: { ...process.env, VHIVE_SHIM_STARTED_AT: String(performance.timeOrigin), ...(ownNetns ? { VHIVE_SHIM_NETNS: ownNetns } : {}) },
    });
    await waitReady(server);
    server.unref();
  } catch (error) {
    if (ownNetns) await removeNetns(ownNetns);
    // containerd undoes nothing of a start that failed: the sandbox's runc shim goes too.
    // (Loaded only here: start must not load the ttrpc protocol on its way.)
    if (sandboxShim) {
      const { parseShimBootstrap, SandboxProxy } = await import("./sandbox-proxy.js");
      await new SandboxProxy(flags.id, parseShimBootstrap(sandboxShim)).shutdownRunc().catch(() => {});
    }
    throw error;
  } finally {
    closeSync(log);
  }
  await writeAddressFile(bundle, address);
  return address;
}

/**
 * Run runc's shim's start for this container instead (same flags, same bundle, no runtime
 * options: vhive's are not runc's), mark the bundle so delete goes to runc too, and return what
 * runc's shim printed (its address): containerd talks to it directly from here on, but for a
 * pod's sandbox, whose calls the pod's vhive shim forwards to it.
 */
async function delegateToRunc(flags: ShimFlags, bundle: string): Promise<string> {
  const args = ["-namespace", flags.namespace, "-address", flags.address, "-id", flags.id];
  if (flags.publishBinary) args.push("-publish-binary", flags.publishBinary);
  if (flags.debug) args.push("-debug");
  await writeFile(join(bundle, DELEGATE_FILE), "runc\n");
  const { stdout } = await runTool(RUNC_SHIM, [...args, "start"], { failCode: "ERR_VALIDATION", step: "handing the container to containerd-shim-runc-v2", cwd: bundle, input: "" });
  return stdout.trim();
}

/** The server writes "ready" on fd 3 once it listens; it exiting first is its failure. */
function waitReady(server: ReturnType<typeof spawn>): Promise<void> {
  const channel = server.stdio[3] as NodeJS.ReadableStream;
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => fail(`it did not listen within ${READY_TIMEOUT_MS / 1000} s`), READY_TIMEOUT_MS);
    const done = () => {
      clearTimeout(timer);
      server.off("exit", onExit);
      (channel as unknown as { destroy(): void }).destroy();
    };
    const fail = (why: string) => {
      done();
      server.kill("SIGKILL");
      reject(new VhiveError("ERR_VALIDATION", `the vhive shim server did not start: ${why}`, { remedy: "read the shim's log (containerd's log, or shim.log in the bundle)" }));
    };
    const onExit = (code: number | null, signal: string | null) => fail(signal ? `it was killed by ${signal}` : `it exited with status ${code}`);
    server.once("exit", onExit);
    channel.on("data", (chunk: Buffer) => {
      if (!chunk.toString().includes("ready")) return;
      done();
      resolve();
    });
  });
}
