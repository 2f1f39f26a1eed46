/** Human output helpers: sizes, durations, aligned tables, errors. */
import { VhiveError } from "../shared/errors.js";

export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

export function formatMs(ms: number): string {
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(1)} ms`;
}

/** An ISO time as "2026-11-27 01:30:38" (".123" with milliseconds). */
export function formatTimestamp(iso: string, withMs = false): string {
  return iso.replace("T", " ").slice(0, withMs ? 23 : 19);
}

/** Rows of cells as aligned columns. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ")).join("\n");
}

/** The text the CLI prints for an error: what failed, details, and what to do. */
export function describeError(error: unknown): string {
  if (error instanceof VhiveError) {
    const lines = [`error [${error.code}]: ${error.message}`];
    if (error.details) lines.push(error.details.trimEnd());
    if (error.remedy) lines.push(`what to do: ${error.remedy}`);
    return lines.join("\n");
  }
  return `internal error (a bug in vhive, please report it):\n${error instanceof Error ? (error.stack ?? error.message) : String(error)}`;
}
