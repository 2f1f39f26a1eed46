/**
 * The shim's command line as containerd writes it (runtime/v2/shim/util.go Command, and the
 * flags of runtime/v2/shim/shim.go): Go's flag syntax, so `-name value`, `--name value` and
 * `-name=value`, boolean flags bare, then the action:
 *
 *   containerd-shim-vhive-v2 -namespace NS -address ADDR -publish-binary BIN -id ID [-debug] start
 *   containerd-shim-vhive-v2 -namespace NS -address ADDR -publish-binary BIN -id ID -bundle DIR delete
 *   containerd-shim-vhive-v2 -namespace NS -address ADDR -id ID -socket PATH [-debug]   (the server)
 *     [-sandbox-id ID -sandbox-shim BOOTSTRAP]   (a pod's: its sandbox runs in runc's shim at BOOTSTRAP)
 *
 * No argument parser on npm speaks Go's single-dash long flags, hence these few lines.
 */
import { VhiveError } from "../../shared/errors.js";
import { RUNTIME_TYPE, SHIM_BINARY } from "./names.js";

export type ShimAction = "start" | "delete" | "serve";

export interface ShimFlags {
  namespace: string;
  id: string;
  /** containerd's gRPC socket. */
  address: string;
  publishBinary: string | undefined;
  /** The bundle directory, when it is not the working directory (delete). */
  bundle: string | undefined;
  /** The socket the server listens on (given by start to the server it spawns). */
  socket: string | undefined;
  /** A pod's sandbox, which the server forwards to runc's shim (sandbox-proxy.ts). */
  sandboxId: string | undefined;
  /** What runc's shim printed at its start for the sandbox (its address). */
  sandboxShim: string | undefined;
  debug: boolean;
  version: boolean;
  /** containerd 2 asks a runtime for its RuntimeInfo (`-info`) before it starts pods on it. */
  info: boolean;
  action: ShimAction;
}

const STRING_FLAGS = { namespace: "namespace", id: "id", address: "address", "publish-binary": "publishBinary", bundle: "bundle", socket: "socket", "sandbox-id": "sandboxId", "sandbox-shim": "sandboxShim" } as const;
const BOOLEAN_FLAGS = { debug: "debug", v: "version", info: "info" } as const;

export function parseShimFlags(argv: readonly string[]): ShimFlags {
  const strings: Partial<Record<(typeof STRING_FLAGS)[keyof typeof STRING_FLAGS], string>> = {};
  const booleans: Partial<Record<(typeof BOOLEAN_FLAGS)[keyof typeof BOOLEAN_FLAGS], boolean>> = {};
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      i++;
      break;
    }
    if (!arg.startsWith("-") || arg === "-") break;
    const [name, inline] = arg.replace(/^--?/, "").split(/=(.*)/s, 2) as [string, string | undefined];
    if (name in BOOLEAN_FLAGS) {
      booleans[BOOLEAN_FLAGS[name as keyof typeof BOOLEAN_FLAGS]] = inline === undefined ? true : inline === "true";
      continue;
    }
    if (!(name in STRING_FLAGS)) throw usage(`unknown flag -${name}`);
    const value = inline ?? argv[++i];
    if (value === undefined) throw usage(`flag -${name} needs a value`);
    strings[STRING_FLAGS[name as keyof typeof STRING_FLAGS]] = value;
  }
  const action = argv[i] ?? "serve";
  if (action !== "start" && action !== "delete" && action !== "serve") throw usage(`unknown action ${action}`);
  const bare = booleans.version || booleans.info;
  if (!bare && !strings.namespace) throw usage("shim namespace cannot be empty (-namespace)");
  if (!bare && !strings.id) throw usage("the task id is missing (-id)");
  return {
    namespace: strings.namespace ?? "",
    id: strings.id ?? "",
    address: strings.address ?? "",
    publishBinary: strings.publishBinary,
    bundle: strings.bundle,
    socket: strings.socket,
    sandboxId: strings.sandboxId,
    sandboxShim: strings.sandboxShim,
    debug: booleans.debug ?? false,
    version: booleans.version ?? false,
    info: booleans.info ?? false,
    action,
  };
}

function usage(problem: string): VhiveError {
  return new VhiveError("ERR_VALIDATION", `${SHIM_BINARY}: ${problem}`, {
    remedy: `the shim is started by containerd (runtime ${RUNTIME_TYPE}); see the README's containerd section`,
  });
}
