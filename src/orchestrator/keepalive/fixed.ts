/**
 * Fixed keep-alive, the state of the practice (AWS Lambda keeps an instance 10 minutes after its
 * last request, Azure Functions 20): an idle instance is kept `keepaliveMs`, whatever the
 * function's pattern, and nothing is pre-warmed.
 */
import type { IdleDecision, KeepalivePolicy } from "./policy.js";

export class FixedKeepalive implements KeepalivePolicy {
  readonly name = "fixed";
  readonly #keepaliveMs: number;

  constructor(keepaliveMs: number) {
    this.#keepaliveMs = keepaliveMs;
  }

  observeIdleTime(_idleMs: number): void {}

  decide(): IdleDecision {
    return { prewarmMs: 0, keepAliveMs: this.#keepaliveMs, rule: "fixed" };
  }

  describe(): Record<string, unknown> {
    return { policy: this.name, keepaliveMs: this.#keepaliveMs };
  }
}
