/**
 * ttrpc error statuses: google.rpc.Status with gRPC's codes (google.rpc.Code, both generated
 * from Debian's googleapis .proto files), as Go's ttrpc sends them in a Response.
 *
 * A call that ends with a non-OK status rejects with TtrpcStatusError (code ERR_TTRPC_STATUS),
 * which carries the gRPC code. A server handler may throw one to answer with an explicit code;
 * any other error is mapped by statusFromError: a VhiveError by its code (ERR_VALIDATION ->
 * INVALID_ARGUMENT, the *_NOT_FOUND codes -> NOT_FOUND, ...), a Node system error by its errno
 * as Go's ttrpc maps os errors (ENOENT -> NOT_FOUND), anything else -> UNKNOWN.
 */
import { isVhiveError, VhiveError, type VhiveErrorCode } from "../../shared/errors.js";
import type { Any } from "../generated/google/protobuf/any.js";
import { Code } from "../generated/google/rpc/code.js";
import type { Status } from "../generated/google/rpc/status.js";

export { Code as GrpcCode };
export type { Status };

/** The name gRPC gives a code ("NOT_FOUND"), or its number for one this version does not know. */
export function grpcCodeName(code: number): string {
  const name = (Code as unknown as Record<number, string | undefined>)[code];
  return name === undefined || code === Code.UNRECOGNIZED ? String(code) : name;
}

export interface TtrpcStatusErrorOptions {
  cause?: unknown;
  /** google.rpc.Status details, passed through unchanged. */
  statusDetails?: Any[];
}

export class TtrpcStatusError extends VhiveError {
  readonly grpcCode: number;
  readonly grpcMessage: string;
  readonly statusDetails: Any[];

  constructor(grpcCode: number, grpcMessage: string, options: TtrpcStatusErrorOptions = {}) {
    super("ERR_TTRPC_STATUS", `${grpcCodeName(grpcCode)}: ${grpcMessage}`, { cause: options.cause });
    this.name = "TtrpcStatusError";
    this.grpcCode = grpcCode;
    this.grpcMessage = grpcMessage;
    this.statusDetails = options.statusDetails ?? [];
  }

  static fromStatus(status: Status): TtrpcStatusError {
    return new TtrpcStatusError(status.code, status.message, { statusDetails: status.details });
  }

  toStatus(): Status {
    return { code: this.grpcCode, message: this.grpcMessage, details: this.statusDetails };
  }
}

export const OK_STATUS: Status = { code: Code.OK, message: "", details: [] };

// containerd turns these codes back into its own errdefs (errdefs.FromGRPC), so `ctr` says
// "not found", "invalid argument", ... for them. Codes not listed become UNKNOWN.
const CODE_OF_VHIVE_ERROR: Partial<Record<VhiveErrorCode, Code>> = {
  ERR_VALIDATION: Code.INVALID_ARGUMENT,
  ERR_RECIPE_INVALID: Code.INVALID_ARGUMENT,
  ERR_IMAGE_INVALID: Code.INVALID_ARGUMENT,
  ERR_IMAGE_AMBIGUOUS: Code.INVALID_ARGUMENT,
  ERR_PROTO_INVALID: Code.INVALID_ARGUMENT,
  ERR_IMAGE_NOT_FOUND: Code.NOT_FOUND,
  ERR_SNAPSHOT_NOT_FOUND: Code.NOT_FOUND,
  ERR_FUNCTION_NOT_FOUND: Code.NOT_FOUND,
  ERR_ROUTE_NOT_FOUND: Code.NOT_FOUND,
  ERR_FUNCTION_EXISTS: Code.ALREADY_EXISTS,
  ERR_TOOL_MISSING: Code.FAILED_PRECONDITION,
  ERR_KERNEL_MISSING: Code.FAILED_PRECONDITION,
  ERR_NATIVE_MISSING: Code.FAILED_PRECONDITION,
  ERR_HOST_UNSUPPORTED: Code.FAILED_PRECONDITION,
  ERR_ACCEL_UNAVAILABLE: Code.FAILED_PRECONDITION,
  ERR_SNAPSHOT_MISMATCH: Code.FAILED_PRECONDITION,
  ERR_SNAPSHOT_CORRUPT: Code.FAILED_PRECONDITION,
  ERR_ABORTED: Code.CANCELLED,
  ERR_READY_TIMEOUT: Code.DEADLINE_EXCEEDED,
  ERR_CAPACITY: Code.RESOURCE_EXHAUSTED,
  ERR_SHUTTING_DOWN: Code.UNAVAILABLE,
  ERR_UNAUTHORIZED: Code.UNAUTHENTICATED,
  ERR_DISPOSED: Code.INTERNAL,
};

// As Go's ttrpc convertCode does for os.IsNotExist, os.IsExist and os.IsPermission.
const CODE_OF_ERRNO: Record<string, Code> = {
  ENOENT: Code.NOT_FOUND,
  EEXIST: Code.ALREADY_EXISTS,
  EACCES: Code.PERMISSION_DENIED,
  EPERM: Code.PERMISSION_DENIED,
};

/** The status a server answers with for an error a handler threw. */
export function statusFromError(error: unknown): Status {
  if (error instanceof TtrpcStatusError) return error.toStatus();
  if (isVhiveError(error)) {
    const remedy = error.remedy === undefined ? "" : ` (what to do: ${error.remedy})`;
    return {
      code: CODE_OF_VHIVE_ERROR[error.code] ?? Code.UNKNOWN,
      message: `[${error.code}] ${error.message}${remedy}`,
      details: [],
    };
  }
  const errno = (error as { code?: unknown } | null)?.code;
  const code = typeof errno === "string" ? (CODE_OF_ERRNO[errno] ?? Code.UNKNOWN) : Code.UNKNOWN;
  return { code, message: error instanceof Error ? error.message : String(error), details: [] };
}
