/** Durations on the command line: "60s", "2s", "500ms", "5m", "1h"; a bare number is seconds. */
import { VhiveError } from "../shared/errors.js";

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export function parseDurationMs(text: string, option: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!match) throw new VhiveError("ERR_VALIDATION", `--${option} ${text}: expected a duration such as 500ms, 60s, 5m or 1h`);
  return Math.round(Number(match[1]) * UNIT_MS[match[2] ?? "s"]!);
}
