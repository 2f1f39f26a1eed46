/**
 * A function behind any address, not one vhive started: a pod IP, a Knative route, a port of
 * the host. `grpc://host:port` or a bare `host:port` is gRPC (the method and .proto given, else
 * helloworld.Greeter/SayHello); `http://host:port/path` is HTTP to that path.
 */
import { VhiveError } from "../shared/errors.js";
import { createGrpcClient, createHttpClient, defaultProtoPath, DEFAULT_GRPC_METHOD, type FunctionClient, type Protocol } from "./index.js";

export interface FunctionAddress {
  protocol: Protocol;
  host: string;
  port: number;
  /** HTTP: the path requests go to. */
  path: string;
}

export function parseFunctionAddress(address: string): FunctionAddress {
  const withScheme = /^[a-z]+:\/\//.test(address) ? address : `grpc://${address}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw invalid(address);
  }
  const protocol = url.protocol === "http:" ? "http" : url.protocol === "grpc:" ? "grpc" : undefined;
  const port = Number(url.port || (protocol === "http" ? 80 : NaN));
  if (!protocol || !url.hostname || !Number.isInteger(port)) throw invalid(address);
  return { protocol, host: url.hostname.replace(/^\[(.*)\]$/, "$1"), port, path: `${url.pathname}${url.search}` || "/" };
}

function invalid(address: string): VhiveError {
  return new VhiveError("ERR_VALIDATION", `${address} is not a function address`, {
    remedy: "give host:port or grpc://host:port for gRPC, http://host:port/path for HTTP",
  });
}

export interface AddressClientOptions {
  method?: string;
  protoPath?: string;
  invokeTimeoutMs?: number;
}

export function addressClient(address: FunctionAddress, options: AddressClientOptions = {}): FunctionClient {
  const endpoint = { host: address.host, port: address.port };
  if (address.protocol === "http") return createHttpClient(endpoint, { path: address.path, invokeTimeoutMs: options.invokeTimeoutMs });
  return createGrpcClient(endpoint, { protoPath: options.protoPath ?? defaultProtoPath(), method: options.method ?? DEFAULT_GRPC_METHOD }, { invokeTimeoutMs: options.invokeTimeoutMs });
}
