/** ttrpc addresses. A module of its own so that the shim's `start` reads one without loading the protocol. */
import { VhiveError } from "../../shared/errors.js";

/** The socket path of a ttrpc address: "unix:///run/x.sock" (a shim's) or a plain path (TTRPC_ADDRESS). */
export function socketPathOf(address: string): string {
  if (address.startsWith("unix://")) return address.slice("unix://".length);
  if (address.includes("://")) {
    throw new VhiveError("ERR_VALIDATION", `ttrpc address ${address} is not a Unix socket: give a path or unix://PATH`);
  }
  return address;
}
