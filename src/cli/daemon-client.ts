/** The daemon client for a CLI command: VHIVE_URL and VHIVE_TOKEN, cancelled by Ctrl-C. */
import { clientOptionsFromEnv, DaemonClient } from "../daemon/index.js";
import type { CliContext } from "./context.js";

export function daemonClient(context: CliContext): DaemonClient {
  return new DaemonClient({ ...clientOptionsFromEnv(), signal: context.signal });
}
