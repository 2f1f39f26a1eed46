/** Keep-alive policies: how long an idle instance stays, and when one is started ahead of a request. */
import type { FunctionRecord } from "../../store/index.js";
import { FixedKeepalive } from "./fixed.js";
import { HybridHistogramKeepalive } from "./hybrid.js";
import type { KeepalivePolicy } from "./policy.js";

export type { IdleDecision, KeepalivePolicy } from "./policy.js";
export { FixedKeepalive } from "./fixed.js";
export { HybridHistogramKeepalive, HYBRID_DEFAULTS, type HybridOptions } from "./hybrid.js";
export { forecastNext, MIN_ARIMA_SAMPLES } from "./forecast.js";

/** The policy a function was deployed with; a new one (no history) for each pool. */
export function createKeepalivePolicy(fn: Pick<FunctionRecord, "keepalivePolicy" | "keepaliveMs">): KeepalivePolicy {
  switch (fn.keepalivePolicy) {
    case "fixed":
      return new FixedKeepalive(fn.keepaliveMs);
    case "hybrid":
      return new HybridHistogramKeepalive();
  }
}
