/**
 * CSV output (RFC 4180: comma-separated, CRLF-free "\n" lines, fields with a comma, quote or
 * newline quoted, quotes doubled). Null and undefined are empty fields.
 */
import type { DensityRow } from "./density.js";
import type { LoadRow } from "./load.js";
import { ALL_PHASES, type BenchRow } from "./rows.js";

export type CsvValue = string | number | boolean | null | undefined;

function field(value: CsvValue): string {
  if (value === null || value === undefined) return "";
  const text = String(value);
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** One record as a CSV line, without its newline: for files written line by line. */
export function csvLine(record: readonly CsvValue[]): string {
  return record.map(field).join(",");
}

export function toCsv(header: readonly string[], records: readonly (readonly CsvValue[])[]): string {
  return [header, ...records].map(csvLine).join("\n") + "\n";
}

/** Bench rows as CSV, one column per phase present in any row (empty where a start has no such phase). */
export function benchRowsCsv(rows: readonly BenchRow[]): string {
  const phases = ALL_PHASES.filter((phase) => rows.some((row) => phase in row.breakdown));
  const header = ["function", "mode", "rep", "concurrency", "accel", "totalMs", ...phases, "faults", "majorFaults", "bytesRead", "pagerBytesRead", "wsPages", "wsBytes", "wsDiskBytes", "wsCodec", "wsRead", "fetchWsMs", "installWsMs", "verifyMs", "qemuCpuMs", "qemuWaitMs", "poolIdlePssBytes", "poolIdlePrivateBytes", "reply"];
  const records = rows.map((row) => [
    row.function,
    row.mode,
    row.rep,
    row.concurrency,
    row.accel,
    row.totalMs,
    ...phases.map((phase) => row.breakdown[phase]),
    row.faults,
    row.majorFaults,
    row.bytesRead,
    row.pagerBytesRead,
    row.wsPages,
    row.wsBytes,
    row.wsDiskBytes,
    row.wsCodec,
    row.wsRead,
    row.fetchWsMs,
    row.installWsMs,
    row.verifyMs,
    row.qemuCpuMs,
    row.qemuWaitMs,
    row.poolIdlePssBytes,
    row.poolIdlePrivateBytes,
    row.reply,
  ]);
  return toCsv(header, records);
}

/** Load rows as CSV, one line per request in send order. */
export function loadRowsCsv(rows: readonly LoadRow[]): string {
  const header = ["seq", "dueMs", "lagMs", "latencyMs", "status", "start", "instance", "serverMs", "queueMs", "startMs", "invokeMs", "error"] as const;
  return toCsv(header, rows.map((row) => header.map((key) => row[key])));
}

/** Density rows as CSV, one line per instance, bytes as they were measured. */
export function densityRowsCsv(rows: readonly DensityRow[]): string {
  const header = [
    "function",
    "mode",
    "instance",
    "startMs",
    "invokeMs",
    "pssBytes",
    "privateBytes",
    "rssBytes",
    "qemuPssBytes",
    "qemuPrivateBytes",
    "qemuPssAnonBytes",
    "qemuPssFileBytes",
    "guestPssBytes",
    "guestPrivateBytes",
    "guestAnonBytes",
    "guestPageCachePssBytes",
    "otherPssBytes",
    "pagerPssBytes",
    "pagerPrivateBytes",
    "reply",
  ] as const satisfies readonly (keyof DensityRow)[];
  return toCsv(header, rows.map((row) => header.map((key) => row[key])));
}
