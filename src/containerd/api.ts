/**
 * containerd's runtime v2 protocol as TypeScript: the message types and service definitions
 * generated at build time (scripts/generate-protos.mjs) from the .proto files of containerd
 * 1.6 that Debian installs. Each message `M` is an interface and a value with M.encode,
 * M.decode, M.fromPartial and M.$type (its full protobuf name).
 */
/** containerd.task.v2: the Task service a shim serves (TaskDefinition) and its messages. */
export * as shim from "./generated/github.com/containerd/containerd/runtime/v2/task/shim.js";
/** containerd.v1.types: a task's Status and ProcessInfo. */
export * as taskTypes from "./generated/github.com/containerd/containerd/api/types/task/task.js";
/** containerd.events: TaskCreate, TaskStart, TaskExit, ... */
export * as events from "./generated/github.com/containerd/containerd/api/events/task.js";
/** containerd.services.events.ttrpc.v1: the Events service (Forward) of containerd's ttrpc socket. */
export * as eventsService from "./generated/github.com/containerd/containerd/api/services/ttrpc/events/v1/events.js";
export { Mount } from "./generated/github.com/containerd/containerd/api/types/mount.js";
export { Any } from "./generated/google/protobuf/any.js";
export { Empty } from "./generated/google/protobuf/empty.js";

/** The ttrpc metadata key that carries the containerd namespace of a call (namespaces/ttrpc.go). */
export const NAMESPACE_METADATA_KEY = "containerd-namespace-ttrpc";
