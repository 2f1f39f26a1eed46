/** Persistence of the daemon: SQLite for functions and invocation records. */
export { Store } from "./db.js";
export { START_POLICIES, KEEPALIVE_POLICIES, type KeepalivePolicyName, type StartPolicy, type StartKind, type FunctionRecord, type InvocationRecord, type NewInvocation } from "./types.js";
