/**
 * The one place where errors become HTTP responses: a VhiveError's code picks the status, the
 * body is always { code, message, statusCode } (plus remedy and details when there are). A
 * request that fails fastify's schema validation names the field. 5xx are logged at error,
 * 4xx at info.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { VhiveError, type VhiveErrorCode } from "../shared/errors.js";
import type { Log } from "../shared/log.js";

const STATUS: Partial<Record<VhiveErrorCode, number>> = {
  ERR_VALIDATION: 400,
  ERR_IMAGE_NOT_FOUND: 400,
  ERR_IMAGE_AMBIGUOUS: 400,
  ERR_PROTO_INVALID: 400,
  ERR_UNAUTHORIZED: 401,
  ERR_FUNCTION_NOT_FOUND: 404,
  ERR_SNAPSHOT_NOT_FOUND: 404,
  ERR_ROUTE_NOT_FOUND: 404,
  ERR_FUNCTION_EXISTS: 409,
  // The function, or the instance that should have run it, failed: a bad gateway.
  ERR_INVOKE: 502,
  // The function took longer than it was given: a gateway timeout.
  ERR_INVOKE_TIMEOUT: 504,
  ERR_INSTANCE_FAILED: 502,
  ERR_QEMU_START: 502,
  ERR_READY_TIMEOUT: 502,
  ERR_GUEST_INIT: 502,
  ERR_GUEST_PANIC: 502,
  ERR_GUEST_EXITED: 502,
  ERR_VM_EXITED: 502,
  ERR_PAGER: 502,
  ERR_RESTORE: 502,
  ERR_QMP_GREETING: 502,
  ERR_QMP_COMMAND: 502,
  ERR_QMP_DISCONNECTED: 502,
  ERR_CAPACITY: 503,
  ERR_SHUTTING_DOWN: 503,
  ERR_ABORTED: 503,
};

export interface ErrorBody {
  code: string;
  message: string;
  statusCode: number;
  remedy?: string;
  details?: string;
}

export function statusOf(code: VhiveErrorCode): number {
  return STATUS[code] ?? 500;
}

interface ValidationIssue {
  instancePath: string;
  message?: string;
  keyword: string;
  params: Record<string, unknown>;
}

/** "body.keepaliveMs must be integer", "body has unknown field color". */
function describeValidation(context: string | undefined, issues: readonly ValidationIssue[]): string {
  return issues
    .map((issue) => {
      const where = [context ?? "request", ...issue.instancePath.split("/").filter(Boolean)].join(".");
      if (issue.keyword === "additionalProperties") return `${where} has unknown field ${String(issue.params.additionalProperty)}`;
      if (issue.keyword === "required") return `${where}.${String(issue.params.missingProperty)} is required`;
      if (issue.keyword === "enum") return `${where} must be one of ${(issue.params.allowedValues as unknown[]).join(", ")}`;
      return `${where} ${issue.message ?? "is invalid"}`;
    })
    .join("; ");
}

export function errorBody(error: unknown): ErrorBody {
  if (error instanceof VhiveError) {
    return { code: error.code, message: error.message, statusCode: statusOf(error.code), ...(error.remedy ? { remedy: error.remedy } : {}), ...(error.details ? { details: error.details } : {}) };
  }
  const fastifyError = error as Partial<FastifyError> & { validation?: ValidationIssue[]; validationContext?: string };
  if (fastifyError.validation) {
    return { code: "ERR_VALIDATION", message: describeValidation(fastifyError.validationContext, fastifyError.validation), statusCode: 400 };
  }
  if (typeof fastifyError.statusCode === "number" && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) {
    // fastify's own 4xx: malformed JSON, wrong content type, body too large.
    return { code: "ERR_VALIDATION", message: fastifyError.message ?? "bad request", statusCode: fastifyError.statusCode };
  }
  return { code: "ERR_INTERNAL", message: `internal error: ${error instanceof Error ? error.message : String(error)}`, statusCode: 500 };
}

export function errorHandler(log: Log) {
  return (error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply => {
    const body = errorBody(error);
    const fields = { method: request.method, url: request.url, code: body.code, status: body.statusCode, error: body.message };
    if (body.statusCode >= 500) log.error("request failed", body.code === "ERR_INTERNAL" && error instanceof Error ? { ...fields, stack: error.stack } : fields);
    else log.info("request refused", fields);
    return reply.status(body.statusCode).send(body);
  };
}
