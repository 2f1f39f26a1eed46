/**
 * gRPC FunctionClient: calls one unary method of a .proto loaded at run time with
 * @grpc/proto-loader (no generated code), so any vSwarm-style function can be invoked given its
 * .proto and "package.Service/Method".
 *
 * Readiness is the channel reaching READY, which grpc-js only reports after the server's
 * HTTP/2 SETTINGS frame arrives. A TCP connect is not enough: QEMU's slirp hostfwd accepts
 * every connection on the host port and closes it again while nothing listens in the guest.
 * grpc-js's reconnect backoff (1 s growing to 120 s) is lowered to the caller's retry interval
 * so the first attempt after the guest starts listening comes within ~retryMs.
 *
 * Throws: ERR_PROTO_INVALID (createGrpcClient), and through FunctionClient ERR_VALIDATION,
 * ERR_INVOKE, ERR_INVOKE_TIMEOUT, ERR_READY_TIMEOUT, ERR_ABORTED, ERR_DISPOSED.
 */
import { basename, resolve as resolvePath, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import {
  Client,
  Metadata,
  connectivityState,
  credentials,
  status,
  type ChannelOptions,
  type ServiceError,
} from "@grpc/grpc-js";
import {
  loadSync,
  type AnyDefinition,
  type MethodDefinition,
  type PackageDefinition,
  type ServiceDefinition,
} from "@grpc/proto-loader";
import { formatDuration } from "../shared/duration.js";
import { VhiveError, messageOf } from "../shared/errors.js";
import type { FunctionClient, InvokeOptions, InvokeResult, WaitReadyOptions } from "./index.js";
import { DEFAULT_INVOKE_TIMEOUT_MS, invokeTimeoutError } from "./timeout.js";
import { asTransportFailure } from "./transport.js";

export const DEFAULT_GRPC_METHOD = "helloworld.Greeter/SayHello";

/** Which method to call: `method` as "package.Service/Method", defined in the .proto at `protoPath`. */
export interface GrpcTarget {
  protoPath: string;
  method: string;
}

/** One field of a message type, as requestFromData and error messages need it. */
export interface FieldShape {
  /** The field's name as written in the .proto (keepCase). */
  name: string;
  /** Scalar type ("string", "int32", ...) or the message/enum type name. */
  type: string;
  repeated: boolean;
}

export interface MessageShape {
  /** Fully qualified where known, e.g. "helloworld.HelloRequest". */
  typeName: string;
  fields: readonly FieldShape[];
}

const DEFAULT_RETRY_MS = 50;

/** The decoding options InvokeResult.response documents; also used for requests. */
const LOAD_OPTIONS = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

/** "package.Service/Method"; the package may be absent or nested, a leading "/" (the wire path) is allowed. */
const METHOD_PATTERN = /^\/?((?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*)\/([A-Za-z_]\w*)$/;

/**
 * A method no function defines. A call to it on a channel in TRANSIENT_FAILURE fails locally
 * with the channel's last connection error; should the channel have just become READY, the
 * server answers UNIMPLEMENTED and nothing runs.
 */
const PROBE_PATH = "/vhive.ReadinessProbe/LastConnectionError";
const PROBE_TIMEOUT_MS = 200;

/** Absolute path of protos/helloworld.proto: this file is two levels below the package root in src/ and dist/. */
export function defaultProtoPath(): string {
  return fileURLToPath(new URL("../../protos/helloworld.proto", import.meta.url));
}

/**
 * A FunctionClient for `target` at `endpoint`. Loads and checks the .proto now; connects lazily
 * (on waitReady or invoke). `invokeTimeoutMs` is the deadline of a call that names none.
 *
 * Throws ERR_PROTO_INVALID when the .proto cannot be loaded, the method string is malformed,
 * the proto does not define the method (the message lists those it does), or the method streams.
 */
export function createGrpcClient(endpoint: { host: string; port: number }, target: GrpcTarget, options: { invokeTimeoutMs?: number } = {}): FunctionClient {
  return new GrpcFunctionClient(formatAddress(endpoint), resolveMethod(target), options.invokeTimeoutMs ?? DEFAULT_INVOKE_TIMEOUT_MS);
}

/**
 * How --data becomes the request message: a JSON object is the message itself (every key must
 * be a field of `request`, with a value of the field's type); otherwise, when the request
 * type's only field is a string, that field is set to `data` verbatim.
 *
 * Throws ERR_VALIDATION naming the request type's fields when neither applies, a JSON key is
 * not a field, or a value does not fit its field.
 */
export function requestFromData(data: string, request: MessageShape): Record<string, unknown> {
  const object = parseJsonObject(data);
  if (object !== undefined) {
    const known = new Set(request.fields.map((field) => field.name));
    const unknown = Object.keys(object).filter((key) => !known.has(key));
    if (unknown.length > 0) {
      // protobuf.js drops unknown keys silently; a misspelt field would be sent as its default.
      throw new VhiveError(
        "ERR_VALIDATION",
        `--data sets ${unknown.map((key) => JSON.stringify(key)).join(", ")}, which ${request.typeName} does not have; ` +
          `its fields are ${describeFields(request)}`,
      );
    }
    for (const field of request.fields) {
      if (!Object.hasOwn(object, field.name)) continue;
      const expected = misfit(field, object[field.name]);
      if (expected === undefined) continue;
      // protobuf.js would coerce it silently: "abc" for an int32 is sent as 0.
      throw new VhiveError(
        "ERR_VALIDATION",
        `--data field ${JSON.stringify(field.name)} is ${JSON.stringify(object[field.name])}, but ${request.typeName}.${field.name} is ` +
          `${field.repeated ? "repeated " : ""}${field.type}: expected ${expected}`,
        { remedy: `Pass --data as a JSON object with the fields of ${request.typeName}: ${describeFields(request)}.` },
      );
    }
    return object;
  }
  const field = soleStringField(request);
  if (field !== undefined) return { [field]: data };
  throw new VhiveError(
    "ERR_VALIDATION",
    `--data must be a JSON object for ${request.typeName}, whose fields are ${describeFields(request)}; ` +
      `plain text is only accepted when the request has a single string field`,
    { remedy: `Pass --data as a JSON object with the fields of ${request.typeName}.` },
  );
}

interface ResolvedMethod {
  /** "package.Service/Method", for messages. */
  name: string;
  /** "/package.Service/Method", the HTTP/2 path. */
  path: string;
  definition: MethodDefinition<object, object>;
  request: MessageShape;
  reply: MessageShape;
  /** The .proto it comes from, and every method that file defines, for messages. */
  protoPath: string;
  methods: string[];
}

class GrpcFunctionClient implements FunctionClient {
  readonly #address: string;
  readonly #method: ResolvedMethod;
  readonly #invokeTimeoutMs: number;
  #client: Client | undefined;
  /** The reconnect backoff #client was built with, in ms. */
  #clientBackoffMs = 0;
  #closed = false;

  constructor(address: string, method: ResolvedMethod, invokeTimeoutMs: number) {
    this.#address = address;
    this.#method = method;
    this.#invokeTimeoutMs = invokeTimeoutMs;
  }

  async waitReady({ timeoutMs, signal, retryMs = DEFAULT_RETRY_MS }: WaitReadyOptions): Promise<void> {
    this.#checkOpen("waitReady");
    if (signal?.aborted) throw abortedError(`waiting for ${this.#describe()}`, signal.reason);
    const backoffMs = backoffFor(retryMs);
    // Channel options are fixed at creation: rebuild a not-yet-ready channel whose backoff is
    // not the retry interval asked for.
    const current = this.#client;
    if (
      current !== undefined &&
      this.#clientBackoffMs !== backoffMs &&
      current.getChannel().getConnectivityState(false) !== connectivityState.READY
    ) {
      current.close();
      this.#client = undefined;
    }

    const startedMs = performance.now();
    const deadlineMs = startedMs + timeoutMs;
    let wake: (() => void) | undefined;
    const onAbort = () => wake?.();
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      for (;;) {
        if (this.#closed) throw abortedError(`waiting for ${this.#describe()} (client closed)`);
        if (signal?.aborted) throw abortedError(`waiting for ${this.#describe()}`, signal.reason);
        // Fetched each round: a concurrent waitReady with another retryMs may have replaced it.
        const channel = this.#clientFor(backoffMs).getChannel();
        // `true` starts a connection attempt when the channel is IDLE (new, or dropped by the server).
        const state = channel.getConnectivityState(true);
        if (state === connectivityState.READY) return;
        const nowMs = performance.now();
        if (nowMs >= deadlineMs) break;
        // Wake on any state change, after retryMs at most (to re-check abort and deadline).
        const waitMs = Math.max(1, Math.min(backoffMs, deadlineMs - nowMs));
        await new Promise<void>((resolve) => {
          wake = resolve;
          try {
            channel.watchConnectivityState(state, new Date(Date.now() + waitMs), () => resolve());
          } catch {
            // Shut down meanwhile (close() or a rebuild): the next round sees why.
            resolve();
          }
        });
        wake = undefined;
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }

    const waitedMs = performance.now() - startedMs;
    const lastError = await this.#lastConnectionError();
    throw new VhiveError(
      "ERR_READY_TIMEOUT",
      `${this.#describe()} did not complete an HTTP/2 handshake within ${formatDuration(waitedMs)} ` +
        `(timeout ${formatDuration(timeoutMs)}); last connection error: ${lastError}`,
      {
        remedy:
          "Check that the function listens on the guest port forwarded to this host port and that it speaks gRPC " +
          "(not plain HTTP); if it is just slow to start, raise the readiness timeout.",
      },
    );
  }

  async invoke(data: string, { timeoutMs = this.#invokeTimeoutMs, signal }: InvokeOptions = {}): Promise<InvokeResult> {
    this.#checkOpen("invoke");
    const method = this.#method;
    if (signal?.aborted) throw abortedError(method.name, signal.reason);
    const bytes = this.#encode(data);

    const client = this.#clientFor(backoffFor(DEFAULT_RETRY_MS));
    let onAbort: (() => void) | undefined;
    try {
      return await new Promise<InvokeResult>((resolve, reject) => {
        const startedMs = performance.now();
        const call = client.makeUnaryRequest<Buffer, Record<string, unknown>>(
          method.path,
          (buffer) => buffer,
          (buffer) => method.definition.responseDeserialize(buffer) as Record<string, unknown>,
          bytes,
          new Metadata(),
          { deadline: Date.now() + timeoutMs },
          (error, reply) => {
            const ms = performance.now() - startedMs;
            if (error) {
              reject(error);
              return;
            }
            const response = reply ?? {};
            resolve({ response, text: summarize(response, method.reply), ms });
          },
        );
        onAbort = () => call.cancel();
        signal?.addEventListener("abort", onAbort, { once: true });
      });
    } catch (error) {
      if (signal?.aborted) throw abortedError(method.name, error);
      throw callError(method, error, timeoutMs);
    } finally {
      if (onAbort) signal?.removeEventListener("abort", onAbort);
    }
  }

  checkRequest(data: string): void {
    this.#encode(data);
  }

  /** The request message for `data`, encoded up front so a bad value is ERR_VALIDATION, not a call failing INTERNAL. */
  #encode(data: string): Buffer {
    const request = this.#method.request;
    const message = requestFromData(data, request);
    try {
      return this.#method.definition.requestSerialize(message);
    } catch (error) {
      throw new VhiveError("ERR_VALIDATION", `--data does not fit ${request.typeName}: ${messageOf(error)}`, { cause: error });
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // grpc-js lets calls already started finish; only new ones are refused.
    this.#client?.close();
    this.#client = undefined;
  }

  /** The open client, built with `backoffMs` if there is none yet. */
  #clientFor(backoffMs: number): Client {
    if (this.#client !== undefined) return this.#client;
    this.#client = new Client(this.#address, credentials.createInsecure(), channelOptions(backoffMs));
    this.#clientBackoffMs = backoffMs;
    return this.#client;
  }

  /** grpc-js keeps the subchannel's last error private; a probe call surfaces it (see PROBE_PATH). */
  async #lastConnectionError(): Promise<string> {
    const client = this.#client;
    if (this.#closed || client === undefined) return "unknown (client closed)";
    const state = client.getChannel().getConnectivityState(false);
    if (state === connectivityState.CONNECTING) return "none yet (the first connection attempt is still in progress)";
    if (state !== connectivityState.TRANSIENT_FAILURE) return `none reported (channel ${connectivityState[state]})`;
    return new Promise<string>((resolve) => {
      client.makeUnaryRequest<Buffer, Buffer>(
        PROBE_PATH,
        (buffer) => buffer,
        (buffer) => buffer,
        Buffer.alloc(0),
        new Metadata(),
        { deadline: Date.now() + PROBE_TIMEOUT_MS },
        (error) => resolve(error ? lastErrorFrom(error) : "none (the channel has just become ready)"),
      );
    });
  }

  #describe(): string {
    return `${this.#method.name} at ${this.#address}`;
  }

  #checkOpen(operation: string): void {
    if (this.#closed) {
      throw new VhiveError("ERR_DISPOSED", `${operation} called on a closed gRPC client for ${this.#describe()}`);
    }
  }
}

function channelOptions(backoffMs: number): ChannelOptions {
  return {
    // The guest's server comes up at an unknown moment; retry at the caller's pace, not 1 s..120 s.
    "grpc.initial_reconnect_backoff_ms": backoffMs,
    "grpc.max_reconnect_backoff_ms": backoffMs,
    // The global pool would share the connection with other clients of the same address (a
    // VM restored onto a reused port) and keep it open after close().
    "grpc.use_local_subchannel_pool": 1,
  };
}

/** grpc-js treats a backoff of 0 as "use the default" (1 s), so never pass 0. */
function backoffFor(retryMs: number): number {
  return Math.max(1, Math.round(retryMs));
}

function formatAddress({ host, port }: { host: string; port: number }): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]:${port}` : `${host}:${port}`;
}

function resolveMethod(target: GrpcTarget): ResolvedMethod {
  const protoPath = resolvePath(target.protoPath);
  const match = METHOD_PATTERN.exec(target.method);
  if (match === null) {
    throw new VhiveError(
      "ERR_PROTO_INVALID",
      `method "${target.method}" is malformed: expected package.Service/Method, e.g. ${DEFAULT_GRPC_METHOD}`,
    );
  }
  const serviceName = match[1] ?? "";
  const methodName = match[2] ?? "";
  const name = `${serviceName}/${methodName}`;

  let pkg: PackageDefinition;
  try {
    // The file's own directory is the include path, so its `import`s resolve next to it.
    pkg = loadSync(protoPath, { ...LOAD_OPTIONS, includeDirs: [dirname(protoPath)] });
  } catch (error) {
    throw new VhiveError("ERR_PROTO_INVALID", `cannot load ${protoPath}: ${messageOf(error)}`, { cause: error });
  }

  const service = Object.hasOwn(pkg, serviceName) ? pkg[serviceName] : undefined;
  const definition =
    service !== undefined && isService(service) && Object.hasOwn(service, methodName) ? service[methodName] : undefined;
  if (definition === undefined) {
    const available = listMethods(pkg);
    throw new VhiveError(
      "ERR_PROTO_INVALID",
      `${protoPath} does not define ${name}; ` +
        (available.length > 0 ? `it defines ${available.join(", ")}` : "it defines no services"),
    );
  }
  if (definition.requestStream || definition.responseStream) {
    const kind = definition.requestStream && definition.responseStream ? "bidi" : definition.requestStream ? "client" : "server";
    throw new VhiveError(
      "ERR_PROTO_INVALID",
      `${name} in ${protoPath} is a ${kind}-streaming method; only unary methods can be invoked`,
    );
  }
  return {
    name,
    path: definition.path,
    definition,
    request: shapeOf(pkg, definition.requestType),
    reply: shapeOf(pkg, definition.responseType),
    protoPath,
    methods: listMethods(pkg),
  };
}

function isService(definition: AnyDefinition): definition is ServiceDefinition {
  // Message and enum definitions carry a `format` string; in a service every value is a method.
  return typeof (definition as { format?: unknown }).format !== "string";
}

function listMethods(pkg: PackageDefinition): string[] {
  const methods: string[] = [];
  for (const [serviceName, definition] of Object.entries(pkg)) {
    if (isService(definition)) for (const methodName of Object.keys(definition)) methods.push(`${serviceName}/${methodName}`);
  }
  return methods;
}

/** The parts of a google.protobuf.FieldDescriptorProto that proto-loader puts in `type.field`. */
interface RawField {
  name: string;
  label: string;
  type: string;
  typeName: string;
}

function shapeOf(pkg: PackageDefinition, definition: { type: object }): MessageShape {
  const descriptor = definition.type as { name?: string; field?: RawField[] };
  const shortName = descriptor.name ?? "message";
  // The descriptor knows only its short name; the package definition is keyed by full names.
  const fullNames = Object.keys(pkg).filter((key) => key === shortName || key.endsWith(`.${shortName}`));
  const typeName = fullNames.length === 1 && fullNames[0] !== undefined ? fullNames[0] : shortName;
  const fields = (descriptor.field ?? []).map((field) => ({
    name: field.name,
    type:
      field.type === "TYPE_MESSAGE" || field.type === "TYPE_ENUM"
        ? field.typeName.replace(/^\./, "")
        : field.type.replace(/^TYPE_/, "").toLowerCase(),
    repeated: field.label === "LABEL_REPEATED",
  }));
  return { typeName, fields };
}

const INTEGER_TYPES = new Set(["int32", "uint32", "sint32", "fixed32", "sfixed32", "int64", "uint64", "sint64", "fixed64", "sfixed64"]);

/** What a JSON value of `field` must be, when `value` is not that; undefined when it fits. */
function misfit(field: FieldShape, value: unknown): string | undefined {
  if (value === null) return undefined; // unset: the field's default
  if (field.repeated) {
    if (!Array.isArray(value)) return "an array";
    const bad = value.map((item) => misfit({ ...field, repeated: false }, item)).find((expected) => expected !== undefined);
    return bad === undefined ? undefined : `an array whose items are each ${bad}`;
  }
  if (INTEGER_TYPES.has(field.type)) {
    // 64-bit integers may come as strings (protobuf's JSON mapping), as they come back (longs: String).
    const ok = Number.isInteger(value) || (typeof value === "string" && /^-?\d+$/.test(value));
    return ok ? undefined : "an integer";
  }
  switch (field.type) {
    case "string":
    case "bytes": // base64
      return typeof value === "string" ? undefined : "a string";
    case "bool":
      return typeof value === "boolean" ? undefined : "true or false";
    case "double":
    case "float":
      return typeof value === "number" ? undefined : "a number";
    default:
      // A message (an object) or an enum (its name or number): the shape does not say which.
      return typeof value === "object" || typeof value === "string" || Number.isInteger(value) ? undefined : "an object (a message) or an enum value";
  }
}

function soleStringField(shape: MessageShape): string | undefined {
  const [only, ...rest] = shape.fields;
  return only !== undefined && rest.length === 0 && only.type === "string" && !only.repeated ? only.name : undefined;
}

function describeFields(shape: MessageShape): string {
  if (shape.fields.length === 0) return "{} (none)";
  const fields = shape.fields.map((field) => `${field.name}: ${field.repeated ? "repeated " : ""}${field.type}`);
  return `{ ${fields.join(", ")} }`;
}

function parseJsonObject(data: string): Record<string, unknown> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return undefined;
  }
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/** InvokeResult.text: the lone string of a one-string-field reply (a greeting), else JSON. */
function summarize(reply: Record<string, unknown>, shape: MessageShape): string {
  const field = soleStringField(shape);
  const value = field === undefined ? undefined : reply[field];
  if (typeof value === "string") return value;
  // In the .proto's field order: protobuf.js puts repeated fields first.
  const ordered = Object.fromEntries(shape.fields.filter((f) => Object.hasOwn(reply, f.name)).map((f) => [f.name, reply[f.name]]));
  return JSON.stringify({ ...ordered, ...reply });
}

function isServiceError(error: unknown): error is ServiceError {
  return error instanceof Error && typeof (error as Partial<ServiceError>).code === "number" && "details" in error;
}

function callError(method: ResolvedMethod, error: unknown, timeoutMs: number): VhiveError {
  const methodName = method.name;
  if (!isServiceError(error)) {
    return new VhiveError("ERR_INVOKE", `${methodName} failed: ${messageOf(error)}`, { cause: error });
  }
  if (error.code === status.DEADLINE_EXCEEDED) return invokeTimeoutError(methodName, timeoutMs, error);
  if (error.code === status.UNIMPLEMENTED) return unimplementedError(method, error);
  const statusName = status[error.code] ?? `status ${error.code}`;
  const failure = new VhiveError("ERR_INVOKE", `${methodName} failed: ${statusName}: ${tidyDetails(error.details)}`, {
    cause: error,
  });
  // UNAVAILABLE is grpc-js's status for a connection refused, reset or dropped mid-call.
  return error.code === status.UNAVAILABLE ? asTransportFailure(failure) : failure;
}

/**
 * The server does not serve the method called: most often a function with its own service
 * (vSwarm's standalone functions) called as helloworld.Greeter/SayHello, the default.
 */
function unimplementedError(method: ResolvedMethod, error: ServiceError): VhiveError {
  const others = method.methods.filter((name) => name !== method.name);
  const proto = basename(method.protoPath);
  const defines = others.length > 0 ? `${proto} also defines ${others.join(", ")}` : `${proto} defines no other method`;
  return new VhiveError(
    "ERR_INVOKE",
    `${method.name} failed: UNIMPLEMENTED: the function does not serve ${method.name} (${tidyDetails(error.details)}); ${defines}`,
    {
      remedy:
        "call the method the function serves: --method package.Service/Method with a --proto that defines it " +
        "(vhive run, snapshot create/restore, image import, deploy), or set the recipe's method and proto",
      cause: error,
    },
  );
}

/** The subchannel error inside grpc-js's "No connection established. Last error: X. Resolution note: Y". */
function lastErrorFrom(error: ServiceError): string {
  const match = /Last error: (.*?)(?:\. Resolution note:.*)?$/s.exec(error.details);
  if (match?.[1] === undefined) return `${status[error.code] ?? error.code}: ${tidyDetails(error.details)}`;
  // grpc-js appends a timestamp, and says only "Failed to connect" when the socket closed
  // before the server's HTTP/2 SETTINGS arrived: what slirp does while the guest is not listening.
  const lastError = match[1].replace(/ \(\d{4}-\d\d-\d\dT[\d:.]+Z\)$/, "");
  return lastError === "Failed to connect"
    ? "the connection was closed before the HTTP/2 handshake completed (the port accepts TCP but no gRPC server answered)"
    : lastError;
}

/** grpc-js's UNAVAILABLE details end in an often empty "Resolution note: "; drop it when empty. */
function tidyDetails(details: string): string {
  return details.replace(/\. Resolution note: ?$/, "");
}

function abortedError(what: string, cause?: unknown): VhiveError {
  return new VhiveError("ERR_ABORTED", `${what} was cancelled`, cause === undefined ? {} : { cause });
}
