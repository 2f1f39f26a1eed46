/**
 * ttrpc, containerd's RPC protocol (protobuf messages in small frames on a Unix socket), for
 * vhive's containerd shim: a server for the services the shim offers (containerd.task.v2.Task)
 * and a client for those it calls (containerd's events, another shim). Knows nothing of VMs.
 */
export { socketPathOf } from "./address.js";
export { MAX_MESSAGE_BYTES } from "./codec.js";
export { TtrpcServer, type ListenTarget, type TtrpcServerOptions } from "./server.js";
export {
  TtrpcClient,
  connectTtrpc,
  type CallOptions,
  type ConnectOptions,
  type Metadata,
  type ServiceClient,
} from "./client.js";
export type {
  CallContext,
  MethodDefinition,
  MethodHandler,
  RequestInit,
  RequestOf,
  ResponseInit,
  ResponseOf,
  ServiceDefinition,
  ServiceImplementation,
} from "./service.js";
export { GrpcCode, TtrpcStatusError, grpcCodeName, statusFromError, type Status } from "./status.js";
