/**
 * The shape of a ttrpc service, as ts-proto's `outputServices=generic-definitions` generates it
 * from a .proto `service` (TaskDefinition, EventsDefinition): its full name and, per method, the
 * wire name and the request and response message types. The server's handlers and the
 * client's stubs are typed from it, so a handler for Task/State takes a StateRequest and
 * returns a StateResponse.
 */

/** The encode/decode half of what ts-proto generates for each message. */
export interface MessageType<T = unknown, Init = unknown> {
  readonly $type: string;
  encode(message: T): { finish(): Uint8Array };
  decode(input: Uint8Array): T;
  /** A whole message from a partial one: unset fields get their protobuf defaults. */
  fromPartial(object: Init): T;
}

export interface MethodDefinition {
  /** The name on the wire, e.g. "State". */
  readonly name: string;
  // `any`: each method has its own message types; RequestOf and ResponseOf recover them.
  readonly requestType: MessageType<any, any>;
  readonly responseType: MessageType<any, any>;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
}

export interface ServiceDefinition {
  /** The name on the wire, e.g. "containerd.task.v2.Task". */
  readonly fullName: string;
  readonly methods: { readonly [key: string]: MethodDefinition };
}

export type RequestOf<M extends MethodDefinition> = ReturnType<M["requestType"]["decode"]>;
export type ResponseOf<M extends MethodDefinition> = ReturnType<M["responseType"]["decode"]>;
/** What a caller may pass for a message: any subset of its fields, the rest default. */
export type RequestInit<M extends MethodDefinition> = Parameters<M["requestType"]["fromPartial"]>[0];
export type ResponseInit<M extends MethodDefinition> = Parameters<M["responseType"]["fromPartial"]>[0];

/** Per call, what a server handler knows besides the request. */
export interface CallContext {
  readonly service: string;
  readonly method: string;
  /** The request's metadata, keys lower-cased (containerd sends its namespace here). */
  readonly metadata: ReadonlyMap<string, readonly string[]>;
  /** The caller's deadline from timeout_nano, in ms from when the request arrived; undefined if none. */
  readonly timeoutMs: number | undefined;
  /** Aborted at the deadline, when the connection drops, or when the server is destroyed. */
  readonly signal: AbortSignal;
}

export type MethodHandler<M extends MethodDefinition> = (
  request: RequestOf<M>,
  context: CallContext,
) => ResponseInit<M> | Promise<ResponseInit<M>>;

/** Handlers by the definition's method keys; a method left out answers UNIMPLEMENTED. */
export type ServiceImplementation<D extends ServiceDefinition> = {
  readonly [K in keyof D["methods"]]?: MethodHandler<D["methods"][K]>;
};
