/**
 * Durations in messages, rounded to what a reader needs: "450 ms", "2.5 s", "27 s". Times are
 * measured as fractions of a millisecond (performance.now) and deadlines computed from them, so
 * a message would otherwise read "timeout 26954.952683 ms".
 */

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return `${ms} ms`;
  if (Math.abs(ms) < 1000) return `${Math.round(ms)} ms`;
  const seconds = ms / 1000;
  // One decimal below 10 s (2.5 s), whole seconds above (27 s, 120 s).
  return Math.abs(seconds) < 10 ? `${Number(seconds.toFixed(1))} s` : `${Math.round(seconds)} s`;
}
