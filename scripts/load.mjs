#!/usr/bin/env node
// Load test of a function deployed on a vhive daemon, bounded in time: N concurrent clients
// each invoke the function back to back for a fixed duration (no retries, no think time), then
// print throughput and latency percentiles (request sent to reply received, as the client sees
// it) and every error by code. Loopback only: it refuses a daemon URL that is not on this machine.
//
//   node scripts/load.mjs helloworld [--clients 16] [--duration 60] [--data STR] [--url URL] [--json]
//
// The daemon URL and token come from --url / VHIVE_URL (default http://127.0.0.1:8970) and
// VHIVE_TOKEN. One invocation is made first so the run measures a warm function.
import { parseArgs } from "node:util";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    clients: { type: "string", default: "16" },
    duration: { type: "string", default: "60" },
    data: { type: "string" },
    url: { type: "string", default: process.env.VHIVE_URL || "http://127.0.0.1:8970" },
    json: { type: "boolean", default: false },
  },
});
const fn = positionals[0];
if (!fn) {
  console.error("usage: node scripts/load.mjs <function> [--clients 16] [--duration 60] [--data STR] [--url URL] [--json]");
  process.exit(2);
}
const clients = Number(values.clients);
const durationMs = Number(values.duration) * 1000;
if (!(clients >= 1 && clients <= 1024) || !(durationMs > 0 && durationMs <= 3_600_000)) {
  console.error("--clients must be 1..1024 and --duration 1..3600 seconds");
  process.exit(2);
}
const base = values.url.replace(/\/+$/, "");
const { hostname } = new URL(base);
if (!["127.0.0.1", "localhost", "[::1]", "::1"].includes(hostname) && !hostname.startsWith("127.")) {
  console.error(`refusing to load ${base}: this script only targets a daemon on this machine (loopback)`);
  process.exit(2);
}
const headers = { "content-type": "application/json" };
if (process.env.VHIVE_TOKEN) headers.authorization = `Bearer ${process.env.VHIVE_TOKEN}`;
const body = JSON.stringify(values.data === undefined ? {} : { data: values.data });
const url = `${base}/functions/${encodeURIComponent(fn)}/invoke`;

async function invokeOnce() {
  const started = performance.now();
  try {
    const response = await fetch(url, { method: "POST", headers, body, signal: AbortSignal.timeout(120_000) });
    const reply = await response.json().catch(() => ({}));
    const ms = performance.now() - started;
    return response.ok ? { ok: true, ms, start: reply.start } : { ok: false, ms, code: reply.code ?? `HTTP ${response.status}` };
  } catch (error) {
    return { ok: false, ms: performance.now() - started, code: error?.cause?.code ?? error?.name ?? "FETCH_FAILED" };
  }
}

const warm = await invokeOnce();
if (!warm.ok) {
  console.error(`the warm-up invocation failed: ${warm.code}`);
  process.exit(1);
}

const latencies = [];
const errors = {};
const starts = {};
const began = performance.now();
const deadline = began + durationMs;
await Promise.all(
  Array.from({ length: clients }, async () => {
    while (performance.now() < deadline) {
      const result = await invokeOnce();
      if (result.ok) {
        latencies.push(result.ms);
        starts[result.start] = (starts[result.start] ?? 0) + 1;
      } else {
        errors[result.code] = (errors[result.code] ?? 0) + 1;
      }
    }
  }),
);
const elapsedS = (performance.now() - began) / 1000;
latencies.sort((a, b) => a - b);
const pct = (p) => (latencies.length === 0 ? NaN : latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]);
const round = (x) => Math.round(x * 10) / 10;
const errorCount = Object.values(errors).reduce((a, b) => a + b, 0);
const report = {
  function: fn,
  clients,
  durationS: round(elapsedS),
  requests: latencies.length + errorCount,
  ok: latencies.length,
  errors,
  starts,
  throughputPerS: round(latencies.length / elapsedS),
  p50Ms: round(pct(50)),
  p90Ms: round(pct(90)),
  p99Ms: round(pct(99)),
  maxMs: round(latencies.at(-1) ?? NaN),
};
if (values.json) console.log(JSON.stringify(report, null, 2));
else {
  console.log(`${fn}: ${clients} clients for ${report.durationS} s: ${report.ok} ok, ${errorCount} errors${errorCount ? " " + JSON.stringify(errors) : ""}`);
  console.log(`throughput ${report.throughputPerS} req/s; latency p50 ${report.p50Ms} ms, p90 ${report.p90Ms} ms, p99 ${report.p99Ms} ms, max ${report.maxMs} ms`);
  console.log(`start kinds: ${JSON.stringify(starts)}`);
}
process.exitCode = errorCount > 0 ? 1 : 0;
