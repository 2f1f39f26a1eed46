/**
 * One error type for everything vhive reports to a user. Callers match on `code`, never on
 * message text. Every code has a row (meaning, remedy) in docs/errors.md; a unit test keeps
 * the two in step.
 */

export const ERROR_CODES = {
  ERR_VALIDATION: "A command-line option, recipe field or request field is invalid.",
  ERR_TOOL_MISSING: "A host program vhive needs (QEMU, mmdebstrap, mkfs.ext4, lz4, cpio, umoci) is not installed.",
  ERR_KERNEL_MISSING: "No Debian cloud kernel was found to extract the guest vmlinux from.",
  ERR_KERNEL_EXTRACT: "The guest kernel could not be extracted from the bzImage.",
  ERR_INITRAMFS: "The guest initramfs could not be built (busybox or a virtio module is missing).",
  ERR_RECIPE_INVALID: "An image recipe is malformed, names a file that does not exist, or copies a symlink that leads outside its directory.",
  ERR_IMAGE_INVALID: "An OCI layout or docker-archive is malformed (bad JSON, missing blob, bad layer).",
  ERR_IMAGE_BUILD: "Building an image's root filesystem failed.",
  ERR_IMAGE_EXPORT: "Exporting an image as an OCI archive failed: the destination cannot be written, or the image's ext4 cannot be read.",
  ERR_IMAGE_NOT_FOUND: "No image matches the given name, id or path.",
  ERR_IMAGE_AMBIGUOUS: "An id prefix matches more than one image.",
  ERR_HOST_UNSUPPORTED: "The host lacks something no package provides (TSC rate, /dev/userfaultfd, disk space).",
  ERR_HOST_MEMORY: "The host has too little memory available for the instances asked for (`vhive bench density`).",
  ERR_ACCEL_UNAVAILABLE: "The requested accelerator (kvm) cannot run a guest on this host.",
  ERR_QEMU_START: "QEMU exited before its monitor came up (bad option, missing file, port taken).",
  ERR_PORT_IN_USE: "The host port asked for is already taken by another process.",
  ERR_QMP_GREETING: "QEMU's monitor did not send a valid greeting.",
  ERR_QMP_COMMAND: "QEMU's monitor rejected a command.",
  ERR_QMP_DISCONNECTED: "The link to QEMU's monitor closed while a command was in flight.",
  ERR_GUEST_INIT: "The guest's init failed (module, disk or network set-up) and ended the VM.",
  ERR_GUEST_PANIC: "The guest kernel panicked.",
  ERR_GUEST_EXITED: "The function's entrypoint exited; the VM was ended.",
  ERR_VM_EXITED: "QEMU exited unexpectedly while the VM was running.",
  ERR_READY_TIMEOUT: "The function did not answer within the readiness timeout.",
  ERR_PROTO_INVALID: "The .proto file cannot be loaded or does not define the method named.",
  ERR_INVOKE: "Calling the function failed.",
  ERR_INVOKE_TIMEOUT: "The function did not answer an invocation within the invocation timeout.",
  ERR_SNAPSHOT_NOT_FOUND: "No snapshot matches the given id.",
  ERR_SNAPSHOT_MISMATCH: "A snapshot was made with a different QEMU, machine, kernel, initramfs or image than it would be restored with.",
  ERR_SNAPSHOT_CORRUPT: "A snapshot's files are missing, truncated or altered since it was made.",
  ERR_SNAPSHOT_CREATE: "Saving a VM's state into a snapshot failed.",
  ERR_RESTORE: "Loading a snapshot's device state into a new VM failed.",
  ERR_NATIVE_MISSING: "vhive's native helpers (the pager and the QEMU memory shim) are not built.",
  ERR_PAGER: "The userfaultfd pager of a restored VM failed or exited.",
  ERR_ABORTED: "The operation was cancelled (Ctrl-C or a signal).",
  ERR_DISPOSED: "An object was used after it was disposed (a bug in the caller).",
  ERR_FUNCTION_NOT_FOUND: "No function of that name is deployed on the daemon.",
  ERR_FUNCTION_EXISTS: "A function of that name is already deployed.",
  ERR_CAPACITY: "No instance could take the request in time: every instance was busy at --max, or the host memory budget was used up.",
  ERR_INSTANCE_FAILED: "A function instance died while it served a request; the pool replaces it.",
  ERR_SHUTTING_DOWN: "The daemon is shutting down and takes no more requests.",
  ERR_UNAUTHORIZED: "A request to the daemon lacked the right bearer token.",
  ERR_DAEMON_UNREACHABLE: "The CLI could not reach the vhive daemon.",
  ERR_DAEMON_RUNNING: "Another vhive daemon already serves this state directory.",
  ERR_STORE: "The daemon's database (vhive.db) could not be opened or written.",
  ERR_ROUTE_NOT_FOUND: "No route of the daemon's API matches the request's method and path.",
  ERR_TTRPC_CONNECT: "No ttrpc server answered at a socket address (no socket there, or nobody listening).",
  ERR_TTRPC_LISTEN: "A ttrpc server could not listen on its socket (the path is taken, or its directory is missing or not writable).",
  ERR_TTRPC_DISCONNECTED: "A ttrpc connection closed while a call was in flight.",
  ERR_TTRPC_PROTOCOL: "A ttrpc peer sent a frame or message that is not valid ttrpc.",
  ERR_TTRPC_STATUS: "A ttrpc call ended with an error status: the peer's answer, a timeout (DEADLINE_EXCEEDED) or a message over 4 MiB (RESOURCE_EXHAUSTED).",
  ERR_CRI: "A call to containerd's CRI plugin (RunPodSandbox, CreateContainer, ...) failed.",
  ERR_TRACE_INVALID: "A trace file (the Azure Functions trace's CSV) is missing, or has a missing column or a malformed value.",
} as const;

export type VhiveErrorCode = keyof typeof ERROR_CODES;

export interface VhiveErrorOptions {
  cause?: unknown;
  /** What the user should do about it; printed under the message by the CLI. */
  remedy?: string;
  /** Extra text shown after the message, such as the tail of a serial log. */
  details?: string;
}

export class VhiveError extends Error {
  readonly code: VhiveErrorCode;
  readonly remedy: string | undefined;
  readonly details: string | undefined;

  constructor(code: VhiveErrorCode, message: string, options: VhiveErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "VhiveError";
    this.code = code;
    this.remedy = options.remedy;
    this.details = options.details;
  }
}

/** Which part of a snapshot is damaged: its memory file, their checksums, its working set, ... */
export type SnapshotPart = "memory" | "checksums" | "working-set" | "state" | "meta";

/**
 * ERR_SNAPSHOT_CORRUPT with what recovery needs: the part of the snapshot that is damaged (a
 * working set is recorded again, anything else quarantines the snapshot), the file, and where.
 */
export class SnapshotCorruptError extends VhiveError {
  readonly snapshotId: string;
  readonly part: SnapshotPart;
  readonly path: string;
  /** Byte offset into `path` of the first damage found, when known. */
  readonly offset: number | undefined;

  constructor(snapshotId: string, part: SnapshotPart, path: string, message: string, options: VhiveErrorOptions & { offset?: number } = {}) {
    super("ERR_SNAPSHOT_CORRUPT", message, options);
    this.name = "SnapshotCorruptError";
    this.snapshotId = snapshotId;
    this.part = part;
    this.path = path;
    this.offset = options.offset;
  }
}

export function isVhiveError(error: unknown, code?: VhiveErrorCode): error is VhiveError {
  return error instanceof VhiveError && (code === undefined || error.code === code);
}

/** The message of any thrown value, for wrapping causes that are not Errors. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
