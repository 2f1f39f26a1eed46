/**
 * What a container asks for, read from its bundle's config.json (the OCI runtime spec), and
 * turned into what a vhive microVM needs:
 *
 *   process.args/env/cwd/user   the function's entrypoint, run as that uid:gid in the guest
 *   linux.resources.memory      guest memory: the limit rounded up to MiB (unset: the image's
 *                               memMib, else 256 MiB)
 *   linux.resources.cpu         vCPUs: quota / period rounded up (unset: 1)
 *   linux.namespaces network    where the VM's forwarded port listens: the namespace's path (a
 *                               pod's), a new namespace (no path: as runc makes one), or none
 *                               (--net-host: the host's)
 *   annotations                 vhive's own, documented in ANNOTATIONS
 *
 * Everything else in the spec is for Linux containers and does not apply to a VM.
 */
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { z } from "zod";
import { VhiveError } from "../../shared/errors.js";

/** Annotations a container (or its pod) sets to steer vhive. */
export const ANNOTATIONS = {
  /** How the VM starts: `boot` always boots; `vanilla` and `reap` restore the image's snapshot (reap: record once, then prefetch). Default reap. */
  start: "dev.vhive.start",
  /** The TCP port the function listens on (default: the image's vhive config, else $PORT). */
  port: "dev.vhive.port",
  /** grpc or http (default: the image's vhive config, else http). */
  protocol: "dev.vhive.protocol",
  /** The gRPC method readiness and invocations use (default: the image's, else helloworld.Greeter/SayHello). */
  method: "dev.vhive.grpc-method",
} as const;

export const START_POLICIES = ["boot", "vanilla", "reap"] as const;
export type ContainerStartPolicy = (typeof START_POLICIES)[number];

const SpecSchema = z.object({
  process: z.object({
    args: z.array(z.string()).optional(),
    env: z.array(z.string()).optional(),
    cwd: z.string().optional(),
    user: z.object({ uid: z.number().int().nonnegative(), gid: z.number().int().nonnegative() }).optional(),
    terminal: z.boolean().optional(),
  }),
  root: z.object({ path: z.string() }).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  linux: z
    .object({
      resources: z
        .object({
          memory: z.object({ limit: z.number().optional() }).optional(),
          cpu: z.object({ quota: z.number().optional(), period: z.number().optional() }).optional(),
        })
        .optional(),
      namespaces: z.array(z.object({ type: z.string(), path: z.string().optional() })).optional(),
    })
    .optional(),
});

/** Where the container's network is: a namespace at a path, a new one, or the host's. */
export type ContainerNetwork = { kind: "path"; path: string } | { kind: "new" } | { kind: "host" };

export interface ContainerSpec {
  argv: string[];
  env: Record<string, string>;
  cwd: string;
  user: { uid: number; gid: number } | undefined;
  terminal: boolean;
  /** The bundle's root filesystem directory. */
  rootPath: string;
  annotations: Record<string, string>;
  /** Guest memory and vCPUs the spec asks for, if it does. */
  memMib: number | undefined;
  vcpus: number | undefined;
  network: ContainerNetwork;
  start: ContainerStartPolicy;
}

const MIB = 1024 * 1024;

function invalid(bundle: string, problem: string, remedy: string): VhiveError {
  return new VhiveError("ERR_VALIDATION", `the container's OCI spec (${join(bundle, "config.json")}): ${problem}`, { remedy });
}

export async function readContainerSpec(bundle: string): Promise<ContainerSpec> {
  const path = join(bundle, "config.json");
  const text = await readFile(path, "utf8").catch((error: NodeJS.ErrnoException) => {
    throw invalid(bundle, `cannot be read (${error.code ?? error.message})`, "containerd writes config.json into the bundle; is this a bundle directory?");
  });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw invalid(bundle, "is not valid JSON", "containerd writes it; check the client that made the container");
  }
  return parseContainerSpec(json, bundle);
}

export function parseContainerSpec(json: unknown, bundle: string): ContainerSpec {
  const parsed = SpecSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw invalid(bundle, `${issue.path.join(".") || "the spec"}: ${issue.message}`, "the spec must follow the OCI runtime spec (process.args, process.cwd, ...)");
  }
  const spec = parsed.data;
  const argv = spec.process.args ?? [];
  if (argv.length === 0) {
    throw invalid(bundle, "process.args is empty: the container has no entrypoint", "give the image an Entrypoint or Cmd, or pass the command to run (`ctr run IMAGE ID COMMAND...`)");
  }
  const annotations = spec.annotations ?? {};
  const start = annotations[ANNOTATIONS.start] ?? "reap";
  if (!(START_POLICIES as readonly string[]).includes(start)) {
    throw invalid(bundle, `annotation ${ANNOTATIONS.start}=${start} is not a start policy`, `use one of ${START_POLICIES.join(", ")}`);
  }
  const env: Record<string, string> = {};
  for (const entry of spec.process.env ?? []) {
    const at = entry.indexOf("=");
    if (at > 0) env[entry.slice(0, at)] = entry.slice(at + 1);
  }
  const limit = spec.linux?.resources?.memory?.limit;
  const { quota, period } = spec.linux?.resources?.cpu ?? {};
  const networkNamespace = spec.linux?.namespaces?.find((namespace) => namespace.type === "network");
  const network: ContainerNetwork = !networkNamespace ? { kind: "host" } : networkNamespace.path ? { kind: "path", path: networkNamespace.path } : { kind: "new" };
  return {
    argv,
    env,
    cwd: spec.process.cwd || "/",
    user: spec.process.user && (spec.process.user.uid !== 0 || spec.process.user.gid !== 0) ? spec.process.user : undefined,
    terminal: spec.process.terminal ?? false,
    rootPath: resolve(bundle, spec.root?.path ?? "rootfs"),
    annotations,
    // A limit of 0 or less (or the kernel's "no limit") is no limit.
    memMib: limit !== undefined && limit > 0 && limit < 2 ** 62 ? Math.ceil(limit / MIB) : undefined,
    vcpus: quota !== undefined && quota > 0 && period !== undefined && period > 0 ? Math.max(1, Math.ceil(quota / period)) : undefined,
    network,
    start: start as ContainerStartPolicy,
  };
}
