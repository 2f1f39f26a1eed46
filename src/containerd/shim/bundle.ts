/**
 * Where a shim's things live, derived the same way by every subcommand (start, the server,
 * delete), so that delete can clean up after a server that was SIGKILLed:
 *
 *   the socket     /run/containerd/s/vhive-<sha256(address/namespace/group), 32 hex digits>,
 *                  where containerd's shim library puts runc's (runtime/v2/shim/util_unix.go
 *                  SocketAddress: the digest of containerd's address keeps instances apart)
 *                  but for the prefix, so it never is the runc shim's of the same pod: a short
 *                  path, within the 107 bytes a Unix socket allows wherever containerd's own
 *                  socket lies. One vhive shim per pod (the group is the CRI sandbox id) or per
 *                  container
 *   <bundle>/vhive-delegate  "runc" for a container vhive handed to runc's shim (a pod's sandbox
 *                  and its sidecars): delete is then runc's
 *   <bundle>/address         the socket's address, which a restarted containerd reconnects to
 *   <bundle>/vhive-start.json how the container's VM started and when each step happened (start-record.ts)
 *   a network namespace      /run/netns/vhive-<digest>, made for a container whose spec asks
 *                  for a new one (no path), removed with the shim
 */
import { createHash } from "node:crypto";
import { readFile, rename, writeFile } from "node:fs/promises";
import { createConnection } from "node:net";
import { join } from "node:path";
import { runTool } from "../../shared/tool.js";

/** CRI's annotations on a pod's containers (containerd's pkg/cri/annotations). */
export const CRI_ANNOTATIONS = {
  /** The pod a container belongs to: groups a pod's containers into one shim. */
  sandboxId: "io.kubernetes.cri.sandbox-id",
  /** "sandbox" (the pod's pause container) or "container". */
  containerType: "io.kubernetes.cri.container-type",
  containerName: "io.kubernetes.cri.container-name",
  imageName: "io.kubernetes.cri.image-name",
} as const;

const GROUP_ANNOTATIONS = [CRI_ANNOTATIONS.sandboxId];

export interface BundleSpecSummary {
  annotations: Record<string, string>;
  /** The network namespace's path, "new" (a namespace of its own), or undefined (the host's). */
  network: string | "new" | undefined;
}

/** What start needs of config.json, read leniently: Create reads and checks it whole. */
export async function readBundleSpec(bundle: string): Promise<BundleSpecSummary> {
  const text = await readFile(join(bundle, "config.json"), "utf8").catch(() => "{}");
  const spec = JSON.parse(text) as { annotations?: Record<string, string>; linux?: { namespaces?: { type: string; path?: string }[] } };
  const namespace = spec.linux?.namespaces?.find((entry) => entry.type === "network");
  return { annotations: spec.annotations ?? {}, network: namespace ? (namespace.path ?? "new") : undefined };
}

export function shimGroup(id: string, annotations: Record<string, string>): string {
  for (const key of GROUP_ANNOTATIONS) if (annotations[key]) return annotations[key]!;
  return id;
}

/** Where containerd's shim library puts shim sockets (defaults.DefaultStateDir). */
const SHIM_SOCKET_ROOT = "/run/containerd";

/** unix:///run/containerd/s/vhive-<sha256>: where runc's shim's socket goes too. */
export function shimSocketAddress(containerdAddress: string, namespace: string, group: string): string {
  const digest = createHash("sha256").update(join(containerdAddress, namespace, group)).digest("hex").slice(0, 32);
  return `unix://${join(SHIM_SOCKET_ROOT, "s", `vhive-${digest}`)}`;
}

/** Whether a server answers on a Unix socket path. */
export function canConnect(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ path });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** Write <bundle>/address through a temporary file (containerd reads it after a restart). */
export async function writeAddressFile(bundle: string, address: string): Promise<void> {
  const path = join(bundle, "address");
  await writeFile(`${path}.partial`, address, { mode: 0o600 });
  await rename(`${path}.partial`, path);
}

/** The name of the network namespace a container of its own gets. */
export function ownNetnsName(namespace: string, group: string): string {
  return `vhive-${createHash("sha256").update(`${namespace}/${group}`).digest("hex").slice(0, 16)}`;
}

/** Make a named network namespace with its loopback up (as runc gives a new one). */
export async function makeNetns(name: string): Promise<string> {
  await runTool("ip", ["netns", "add", name], { failCode: "ERR_HOST_UNSUPPORTED", step: `making network namespace ${name}` });
  await runTool("ip", ["-n", name, "link", "set", "lo", "up"], { failCode: "ERR_HOST_UNSUPPORTED", step: `bringing up lo in ${name}` });
  return `/run/netns/${name}`;
}

/** Remove a network namespace made by makeNetns; nothing to do if it is gone. */
export async function removeNetns(name: string): Promise<void> {
  await runTool("ip", ["netns", "delete", name], { failCode: "ERR_HOST_UNSUPPORTED", step: `removing network namespace ${name}` }).catch(() => {});
}

/** The marker of a bundle handed to runc's shim (see the header). */
export const DELEGATE_FILE = "vhive-delegate";
