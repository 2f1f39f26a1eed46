/**
 * The pod model, as Kata and vHive's CRI service have it: with runtime handler `vhive`, a pod's
 * sandbox (its pause container) and every container that is not the function run as ordinary
 * Linux containers under containerd-shim-runc-v2 (containerd talks to runc's shim directly for
 * the sidecars; the sandbox's calls go through the pod's vhive shim, sandbox-proxy.ts); the
 * function container runs as a vhive microVM in the pod's network namespace, served by the
 * pod's vhive shim, so it answers at the pod IP and at localhost for the pod's other containers.
 *
 * Which container is the function: the one the pod annotation dev.vhive.function-container
 * names (CRI passes pod annotations to the containers when containerd's pod_annotations lets
 * it through), else the pod's first container: Knative's user-container, which Knative lists
 * first, or the only container of a pod of one. Either way it must be the first container the
 * pod creates (Kubernetes creates them in the pod spec's order): the vhive shim decides as each
 * container starts and sees no further. So an annotation that names a container the pod does
 * not have is refused as the pod's first container is created, naming both.
 *
 * The decision is kept in the pod's claim file (beside the pod's shim socket, holding the
 * function container's name) so that it survives a function container that failed to start or
 * exited: its restart (same name) is the function again, every other container runc's. The
 * pod's sandbox delete removes the claim.
 */
import { readFile, rm, writeFile } from "node:fs/promises";
import { VhiveError } from "../../shared/errors.js";
import { CRI_ANNOTATIONS } from "./bundle.js";

export const FUNCTION_CONTAINER_ANNOTATION = "dev.vhive.function-container";
/** runc's shim, from containerd's PATH (Debian's containerd package installs it). */
export const RUNC_SHIM = "containerd-shim-runc-v2";

export type PodRole = "function" | "runc";

export interface PodState {
  /** The name of the container the pod's claim file names as its function, if any yet. */
  claimedBy: string | undefined;
}

/** What a container is in its pod. A container outside any pod (ctr run) is a function. */
export function podRole(annotations: Record<string, string>, pod: PodState): PodRole {
  const type = annotations[CRI_ANNOTATIONS.containerType];
  if (type === "sandbox") return "runc";
  if (type !== "container") return "function";
  const name = annotations[CRI_ANNOTATIONS.containerName] ?? "";
  const named = annotations[FUNCTION_CONTAINER_ANNOTATION];
  const isFunction = named !== undefined ? name === named : pod.claimedBy === undefined || pod.claimedBy === name;
  if (named !== undefined && !isFunction && pod.claimedBy === undefined) {
    throw new VhiveError("ERR_VALIDATION", `pod annotation ${FUNCTION_CONTAINER_ANNOTATION}=${named} names no container the pod has started: its first container is ${name}`, {
      remedy: `name one of the pod's containers, and list the function container first in the pod spec`,
    });
  }
  return isFunction ? "function" : "runc";
}

/** The claim file of the pod whose shim socket is `socket`. */
const claimPath = (socket: string) => `${socket}.function`;

export async function readPodClaim(socket: string): Promise<string | undefined> {
  const text = await readFile(claimPath(socket), "utf8").catch(() => undefined);
  return text === undefined ? undefined : text.trim();
}

export async function claimPod(socket: string, containerName: string): Promise<void> {
  await writeFile(claimPath(socket), `${containerName}\n`);
}

export async function releasePod(socket: string): Promise<void> {
  await rm(claimPath(socket), { force: true });
}
