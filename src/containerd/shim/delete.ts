/**
 * `containerd-shim-vhive-v2 ... -bundle DIR delete`: containerd runs it when a shim died (its
 * ttrpc connection closed) to clean up after it, and reads a DeleteResponse from its stdout.
 * The VMs died with the server (PR_SET_PDEATHSIG); what is left to undo is the rootfs mount, a
 * network namespace of the container's own, the socket, and the VM's run directory.
 */
import { readFile, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { PassThrough } from "node:stream";
import { shim } from "../api.js";
import { socketPathOf } from "../ttrpc/address.js";
import { unmountRootfs } from "./container-image.js";
import { runTool } from "../../shared/tool.js";
import { canConnect, CRI_ANNOTATIONS, DELEGATE_FILE, ownNetnsName, readBundleSpec, removeNetns, shimGroup, shimSocketAddress } from "./bundle.js";
import { releasePod, RUNC_SHIM } from "./pod.js";
import { START_RECORD_FILE } from "./start-record.js";
import type { ShimFlags } from "./flags.js";

/** What a container killed with its shim exits with: SIGKILL's status, as runc's shim reports. */
const KILLED_STATUS = 128 + 9;

export async function deleteShim(flags: ShimFlags): Promise<Uint8Array> {
  const bundle = flags.bundle ?? process.cwd();
  const spec = await readBundleSpec(bundle);
  if ((await readFile(join(bundle, DELEGATE_FILE), "utf8").catch(() => "")).trim() === "runc") {
    // The pod's sandbox goes last: its function claim goes with it.
    if (spec.annotations[CRI_ANNOTATIONS.containerType] === "sandbox") {
      const socket = socketPathOf(shimSocketAddress(flags.address, flags.namespace, shimGroup(flags.id, spec.annotations)));
      await releasePod(socket);
      // The pod's vhive shim served the sandbox; if it died, its socket is left.
      if (!(await canConnect(socket))) await rm(socket, { force: true });
    }
    return deleteThroughRunc(flags, bundle);
  }
  const config = JSON.parse(await readFile(join(bundle, "config.json"), "utf8").catch(() => "{}")) as { root?: { path?: string } };
  await unmountRootfs(resolve(bundle, config.root?.path ?? "rootfs")).catch(() => {});
  const group = shimGroup(flags.id, spec.annotations);
  const socket = socketPathOf(shimSocketAddress(flags.address, flags.namespace, group));
  // A pod's shim may serve other containers still: only a dead one's socket and namespace go.
  if (!(await canConnect(socket))) {
    await rm(socket, { force: true });
    if (spec.network === "new") await removeNetns(ownNetnsName(flags.namespace, group));
  }
  const started = JSON.parse(await readFile(join(bundle, START_RECORD_FILE), "utf8").catch(() => "{}")) as { pid?: number; runDir?: string };
  // The VM died with its shim, before it could remove its run directory (serial log).
  if (started.runDir) await rm(started.runDir, { recursive: true, force: true });
  return shim.DeleteResponse.encode({ pid: started.pid ?? 0, exitStatus: KILLED_STATUS, exitedAt: new Date() }).finish();
}

/** A container runc's shim ran (a pod's sandbox or sidecar): its delete is runc's, answer and all. */
async function deleteThroughRunc(flags: ShimFlags, bundle: string): Promise<Uint8Array> {
  const args = ["-namespace", flags.namespace, "-address", flags.address, "-id", flags.id, "-bundle", bundle];
  if (flags.publishBinary) args.push("-publish-binary", flags.publishBinary);
  const chunks: Buffer[] = [];
  const out = new PassThrough();
  out.on("data", (chunk: Buffer) => chunks.push(chunk));
  await runTool(RUNC_SHIM, [...args, "delete"], { failCode: "ERR_VALIDATION", step: "deleting the container through containerd-shim-runc-v2", cwd: bundle, stdout: out });
  return Buffer.concat(chunks);
}
