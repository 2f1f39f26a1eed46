/**
 * The shim server: containerd.task.v2.Task over ttrpc on the socket start made for it, running
 * in the container's network namespace (start put it there), until containerd's Shutdown finds
 * no task left, or a signal ends it (then its VMs end at once; if it is SIGKILLed, its VMs die
 * with it: they run with PR_SET_PDEATHSIG, and pagers exit when their stdin closes).
 *
 * Where vhive keeps images, snapshots and working sets: $VHIVE_STATE, else /var/lib/vhive (the
 * shim inherits containerd's environment); the accelerator: $VHIVE_ACCEL (auto, kvm, tcg).
 */
import { closeSync, writeSync } from "node:fs";
import { messageOf } from "../../shared/errors.js";
import { createLog, type Log } from "../../shared/log.js";
import { openHost, type Host } from "../../start/index.js";
import type { AccelRequest } from "../../vm/index.js";
import { shim } from "../api.js";
import { EventPublisher } from "../publisher.js";
import { TtrpcServer } from "../ttrpc/index.js";
import { removeNetns } from "./bundle.js";
import type { ShimFlags } from "./flags.js";
import { parseShimBootstrap, SandboxProxy } from "./sandbox-proxy.js";
import { releasePod } from "./pod.js";
import { ShimService } from "./service.js";
import { epochMs } from "./start-record.js";

/** The shim's state directory when containerd's environment names none. */
export const DEFAULT_SHIM_STATE = "/var/lib/vhive";
/** The fd start reads "ready" on. */
const READY_FD = 3;

/** The host context, opened once: the server listens (and answers containerd) before it is ready. */
function lazyHost(log: Log): () => Promise<Host> {
  let host: Promise<Host> | undefined;
  // A pod's shim outlives a failed container start: a failure is not kept, the next Create tries again.
  return () =>
    (host ??= openHost({
      stateDir: process.env.VHIVE_STATE || DEFAULT_SHIM_STATE,
      accel: (process.env.VHIVE_ACCEL as AccelRequest | undefined) ?? "auto",
      log,
    }).catch((error: unknown) => {
      host = undefined;
      throw error;
    }));
}

export async function serveShim(flags: ShimFlags): Promise<void> {
  const log = createLog(flags.debug ? "debug" : "info").child({ shim: "vhive", namespace: flags.namespace, id: flags.id });
  if (!flags.socket) throw new Error("the server needs -socket (start gives it)");
  const ttrpcAddress = process.env.TTRPC_ADDRESS ?? `${flags.address}.ttrpc`;
  const publisher = new EventPublisher({ address: ttrpcAddress, namespace: flags.namespace, log });
  const host = lazyHost(log);
  const server = new TtrpcServer({ log });
  let ending: Promise<void> | undefined;
  const end = (how: "close" | "destroy", code: number) =>
    (ending ??= (async () => {
      log.info("shim shutting down", { how });
      if (how === "destroy") await service.destroy();
      await server[how]();
      await sandbox?.close();
      // A pod's shim that goes with its sandbox takes the pod's claim on its function along; one
      // that ends while the sandbox lives (a signal, a crash) leaves it for the sandbox's delete.
      if (sandbox?.shutDown) await releasePod(flags.socket!);
      await publisher.close();
      if (process.env.VHIVE_SHIM_NETNS) await removeNetns(process.env.VHIVE_SHIM_NETNS);
      process.exit(code);
    })());
  // start passes when it began; a server started some other way counts from its own start.
  const processTimes = { shimStartedAt: Number(process.env.VHIVE_SHIM_STARTED_AT) || performance.timeOrigin, serverStartedAt: performance.timeOrigin, servingAt: 0 };
  const sandbox = flags.sandboxId && flags.sandboxShim ? new SandboxProxy(flags.sandboxId, parseShimBootstrap(flags.sandboxShim)) : undefined;
  const service = new ShimService({
    host,
    publisher,
    log,
    onShutdown: () => void end("close", 0),
    processTimes,
    sandbox,
  });
  server.register(shim.TaskDefinition, service.implementation());
  await server.listen({ path: flags.socket });
  processTimes.servingAt = epochMs();
  for (const signal of ["SIGTERM", "SIGINT"] as const) process.once(signal, () => void end("destroy", 0));
  process.on("uncaughtException", (error) => {
    log.error("uncaught error: ending every VM", { error: messageOf(error) });
    void end("destroy", 1);
  });
  writeSync(READY_FD, "ready\n");
  closeSync(READY_FD);
  log.info("shim serving", { socket: flags.socket });
  // Opened now, while containerd reads the address, connects and sends Create, rather than by
  // Create; Create awaits the same promise, so a failure is reported there.
  host().catch(() => undefined);
}
