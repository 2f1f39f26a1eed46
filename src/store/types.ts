/** What the daemon persists: deployed functions and a record of every invocation. */

/** How a function's cold starts are made: always boot, or from a snapshot (plain or with REAP). */
export type StartPolicy = "boot" | "vanilla" | "reap";
export const START_POLICIES: readonly StartPolicy[] = ["boot", "vanilla", "reap"];

/**
 * How long idle instances are kept: `fixed` for keepaliveMs, or `hybrid`, the hybrid histogram
 * policy of Shahrad et al. (ATC'20), which learns the function's idle times (src/orchestrator/keepalive).
 */
export type KeepalivePolicyName = "fixed" | "hybrid";
export const KEEPALIVE_POLICIES: readonly KeepalivePolicyName[] = ["fixed", "hybrid"];

/**
 * How one request got its instance: an idle one (warm), or a new one started this way (pool,
 * pool-installed: restored on a pre-started VMM of the function's pool).
 */
export type StartKind = "warm" | "boot" | "vanilla" | "record" | "prefetch" | "pool" | "pool-installed";

/** A deployed function, as stored. */
export interface FunctionRecord {
  name: string;
  /** The image reference given at deploy time, and the image it resolved to then. */
  imageRef: string;
  imageId: string;
  memMib: number;
  vcpus: number;
  start: StartPolicy;
  /** An idle instance is stopped after this long (scale to zero), under the fixed policy. */
  keepaliveMs: number;
  keepalivePolicy: KeepalivePolicyName;
  /** Instances kept running even when idle. */
  minInstances: number;
  /** Instances at most; requests queue beyond. */
  maxInstances: number;
  /** Requests one instance serves at once. */
  concurrency: number;
  /**
   * Pre-started VMMs kept for the function's cold starts (reap only; 0: none), and whether
   * they hold the working set installed while they wait. Absent in records stored before
   * they were options: 0 and false.
   */
  poolDepth?: number;
  poolInstalled?: boolean;
  /** The gRPC method to call and the .proto defining it (an absolute path on the daemon's host), instead of the image's. */
  method?: string;
  protoPath?: string;
  /** How long one invocation may take (a request may ask for another); absent in records stored before it was an option: the daemon's default. */
  invokeTimeoutMs?: number;
  createdAt: string;
  updatedAt: string;
}

export interface InvocationRecord {
  id: number;
  function: string;
  /** The instance that served it, if one was reached. */
  instance: string | null;
  start: StartKind | null;
  status: "ok" | "error";
  errorCode: string | null;
  errorMessage: string | null;
  /** Request arrival to reply, ms. */
  totalMs: number;
  breakdown: Record<string, number>;
  at: string;
  /** What the daemon had to do to serve it (a damaged snapshot quarantined, a request retried), if anything. */
  note: string | null;
}

export type NewInvocation = Omit<InvocationRecord, "id" | "note"> & { note?: string | null };
