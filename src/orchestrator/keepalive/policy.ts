/**
 * The interface every keep-alive policy implements. A policy is chosen per function at deploy
 * time (`keepalivePolicy`) and lives as long as the function's pool; it sees the function's
 * idle times and decides, each time an instance goes idle, how long to keep it and whether to
 * unload it and start one again before the next request is expected (pre-warm).
 *
 * To add a policy: write a class implementing KeepalivePolicy beside fixed.ts and hybrid.ts,
 * add its name to KEEPALIVE_POLICIES (src/store/types.ts) and a case to createKeepalivePolicy
 * (index.ts). The pool, the store, the API and `vhive deploy --keepalive-policy` take it from there.
 */

/** What to do with an instance that has just gone idle; times are from that moment. */
export interface IdleDecision {
  /**
   * 0: keep the instance warm. Above 0: retire it now and start one again this long from now,
   * ahead of the next request the policy expects (the pool skips the pre-warm if the function
   * then has an instance, or a request came first).
   */
  prewarmMs: number;
  /** Retire the idle instance (or the pre-warmed one) this long from now if no request came. */
  keepAliveMs: number;
  /** Which rule decided, for logs and the API ("fixed", "histogram", ...). */
  rule: string;
}

export interface KeepalivePolicy {
  readonly name: string;
  /**
   * One idle time of the function: from the moment it last had no request in flight to the
   * arrival of the next request, ms; 0 for a request that arrived while others were in flight.
   */
  observeIdleTime(idleMs: number): void;
  /** Called each time an instance goes idle. */
  decide(): IdleDecision;
  /** The policy's state as GET /functions/:name shows it. */
  describe(): Record<string, unknown>;
}
