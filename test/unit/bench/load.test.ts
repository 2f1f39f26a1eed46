import { status } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { loadRowsCsv } from "../../../src/bench/csv.js";
import { addressTarget, arrivalTimes, runLoad, seededRandom, summarizeLoad, type LoadReply, type LoadReport, type LoadRow } from "../../../src/bench/load.js";
import { buildReport } from "../../../src/bench/report.js";
import { percentile } from "../../../src/bench/stats.js";
import { addressClient, parseFunctionAddress } from "../../../src/invoke/index.js";
import { VhiveError } from "../../../src/shared/errors.js";
import { greet, startGreeter, startHttpServer } from "../invoke/fixtures.js";
import { Cleanups } from "../test-shared/cleanups.js";

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

const delay = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(new VhiveError("ERR_ABORTED", "cancelled"));
    });
  });

const reply = (start: LoadReply["start"], totalMs: number): LoadReply => ({
  start,
  instance: "i-1",
  totalMs,
  breakdown: start === "warm" ? { queueMs: 0, invokeMs: totalMs } : { queueMs: 2, loadVmmMs: totalMs - 12, invokeMs: 10 },
});

function row(seq: number, latencyMs: number, start: LoadRow["start"], error: string | null = null): LoadRow {
  return { seq, dueMs: seq * 100, lagMs: 0.5, latencyMs, status: error ? "error" : "ok", start, instance: error ? null : "i-1", serverMs: error ? null : latencyMs - 1, queueMs: error ? null : 0, startMs: start && start !== "warm" ? latencyMs - 20 : null, invokeMs: error ? null : 10, error };
}

function report(rows: LoadRow[]): LoadReport {
  return {
    experiment: "load",
    url: "http://127.0.0.1:8970",
    function: "helloworld",
    deployment: { imageRef: "functions/helloworld", memMib: 256, vcpus: 1, start: "reap", keepaliveMs: 60_000, minInstances: 0, maxInstances: 8, concurrency: 1 },
    accel: "tcg",
    startedAt: "2026-11-27T00:00:00.000Z",
    arrival: "poisson",
    rps: 10,
    seed: 7,
    clients: null,
    durationMs: 1000,
    timeoutMs: 5000,
    data: null,
    rows,
  };
}

describe("arrival times", () => {
  it("uniform arrivals are evenly spaced from time 0", () => {
    expect(arrivalTimes("uniform", 4, 1000, Math.random)).toEqual([0, 250, 500, 750]);
  });

  it("poisson arrivals average the rate, with exponential gaps, and repeat for the same seed", () => {
    const times = arrivalTimes("poisson", 50, 200_000, seededRandom(42));
    expect(times.length / 200).toBeGreaterThan(48);
    expect(times.length / 200).toBeLessThan(52);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    // An exponential distribution's median is ln 2 times its mean (20 ms here).
    expect(percentile(gaps, 50)).toBeGreaterThan(20 * Math.LN2 * 0.9);
    expect(percentile(gaps, 50)).toBeLessThan(20 * Math.LN2 * 1.1);
    expect(times.every((t) => t >= 0 && t < 200_000)).toBe(true);
    expect(arrivalTimes("poisson", 50, 5000, seededRandom(42))).toEqual(times.filter((t) => t < 5000));
    expect(arrivalTimes("poisson", 50, 5000, seededRandom(43))).not.toEqual(times.filter((t) => t < 5000));
  });

  it("refuses a rate of zero", () => {
    expect(() => arrivalTimes("uniform", 0, 1000, Math.random)).toThrow(/--rps 0/);
  });
});

describe("runLoad", () => {
  /** A warm function that answers after `ms`, counting the most requests it had at once. */
  function slowFunction(ms: number) {
    let inFlight = 0;
    const seen = { most: 0 };
    const target = async (signal: AbortSignal) => {
      seen.most = Math.max(seen.most, ++inFlight);
      await delay(ms, signal);
      inFlight--;
      return reply("warm", ms);
    };
    return { target, seen };
  }

  it("open loop sends on schedule even while earlier requests are still out", async () => {
    const { target, seen } = slowFunction(300);
    const rows = await runLoad(target, { shape: { kind: "open", arrival: "uniform", rps: 20, seed: 1 }, durationMs: 500, timeoutMs: 5000 });
    expect(rows.map((r) => r.seq)).toEqual([...Array(10).keys()]);
    // Ten requests due 50 ms apart, each taking 300 ms: a closed loop would have sent two.
    expect(seen.most).toBeGreaterThanOrEqual(5);
    expect(rows.every((r) => r.status === "ok" && r.latencyMs >= 290 && r.lagMs < 100)).toBe(true);
  });

  it("closed loop keeps N clients busy back to back", async () => {
    const { target, seen } = slowFunction(40);
    const rows = await runLoad(target, { shape: { kind: "closed", clients: 2 }, durationMs: 300, timeoutMs: 5000 });
    expect(seen.most).toBe(2);
    expect(rows.length).toBeGreaterThanOrEqual(10);
    expect(rows.length).toBeLessThanOrEqual(18);
  });

  it("records the daemon's errors by code and abandons requests past the timeout", async () => {
    let n = 0;
    const rows = await runLoad(
      async (signal) => {
        n++;
        if (n === 1) throw new VhiveError("ERR_CAPACITY", "no memory");
        if (n === 2) await delay(10_000, signal);
        return reply("prefetch", 120);
      },
      { shape: { kind: "open", arrival: "uniform", rps: 10, seed: 1 }, durationMs: 300, timeoutMs: 200 },
    );
    expect(rows.map((r) => r.error)).toEqual(["ERR_CAPACITY", "timeout", null]);
    expect(rows[2]).toMatchObject({ status: "ok", start: "prefetch", serverMs: 120, queueMs: 2, startMs: 108, invokeMs: 10 });
  });

  it("stops sending and reports ERR_ABORTED when cancelled", async () => {
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 150);
    await expect(
      runLoad(async (signal) => (await delay(1000, signal), reply("warm", 1)), { shape: { kind: "open", arrival: "uniform", rps: 20, seed: 1 }, durationMs: 10_000, timeoutMs: 5000, signal: abort.signal }),
    ).rejects.toMatchObject({ code: "ERR_ABORTED" });
  });
});

describe("load summary, CSV and report", () => {
  const rows = [row(0, 900, "prefetch"), ...Array.from({ length: 8 }, (_, i) => row(i + 1, 10 + i, "warm")), row(9, 5, null, "ERR_CAPACITY")];

  it("summarises latency overall and per start kind, and counts errors", () => {
    const summary = summarizeLoad(report(rows));
    expect(summary).toMatchObject({ sent: 10, ok: 9, errors: { ERR_CAPACITY: 1 }, offeredRps: 10, maxLagMs: 0.5 });
    expect(summary.latency.map((f) => [f.start, f.requests])).toEqual([["all", 9], ["warm", 8], ["prefetch", 1]]);
    expect(summary.latency[1]).toMatchObject({ p50: 13.5, max: 17, startMs: null });
    expect(summary.latency[2]).toMatchObject({ p50: 900, startMs: 880 });
    expect(summary.achievedRps).toBeCloseTo(9 / 1.0, 5);
  });

  it("writes one CSV line per request and a report section with its chart", async () => {
    const csv = loadRowsCsv(rows).trim().split("\n");
    expect(csv[0]).toBe("seq,dueMs,lagMs,latencyMs,status,start,instance,serverMs,queueMs,startMs,invokeMs,error");
    expect(csv).toHaveLength(11);
    expect(csv[10]).toBe("9,900,0.5,5,error,,,,,,,ERR_CAPACITY");
    const built = await buildReport({ load: report(rows) }, "test machine");
    expect(built.markdown).toContain("## Load");
    expect(built.markdown).toContain("poisson arrivals at 10 req/s for 1 s (seed 7)");
    expect(built.markdown).toMatch(/\| prefetch \| 1 \| 11\.1% \| 900 \|/);
    expect(built.svgs.get("load-latency.svg")).toMatch(/^<svg/);
  });
});

describe("load against a function at an address (--url)", () => {
  const open = { kind: "open", arrival: "uniform", rps: 40, seed: 1 } as const;

  function client(address: string) {
    const created = addressClient(parseFunctionAddress(address), { invokeTimeoutMs: 5000 });
    cleanups.push(() => created.close());
    return created;
  }

  it("calls a gRPC function with the request data on schedule; each row has latency and no start kind", async () => {
    const names: string[] = [];
    const port = await startGreeter(cleanups, (call, callback) => {
      names.push(call.request.name);
      greet(call, callback);
    });
    const rows = await runLoad(addressTarget(client(`127.0.0.1:${port}`), "load"), { shape: open, durationMs: 250, timeoutMs: 5000 });
    expect(rows).toHaveLength(10);
    expect(names).toEqual(Array(10).fill("load"));
    for (const row of rows) {
      expect(row).toMatchObject({ status: "ok", start: null, instance: null, serverMs: null, queueMs: null, startMs: null, invokeMs: null, error: null });
      expect(row.latencyMs).toBeGreaterThan(0);
    }
  });

  it("POSTs the data to an HTTP function's path, or GETs it without data", async () => {
    const seen: string[] = [];
    const port = await startHttpServer(cleanups, (request, body, response) => {
      seen.push(`${request.method} ${request.url} ${body}`);
      response.end("ok");
    });
    const target = client(`http://127.0.0.1:${port}/fn?x=1`);
    expect((await runLoad(addressTarget(target, "payload"), { shape: { ...open, rps: 20 }, durationMs: 100, timeoutMs: 5000 })).map((r) => r.status)).toEqual(["ok", "ok"]);
    expect((await runLoad(addressTarget(target, ""), { shape: { ...open, rps: 20 }, durationMs: 50, timeoutMs: 5000 })).map((r) => r.status)).toEqual(["ok"]);
    expect(seen).toEqual(["POST /fn?x=1 payload", "POST /fn?x=1 payload", "GET /fn?x=1 "]);
  });

  it("counts the function's errors and its silence past the timeout as error rows", async () => {
    let n = 0;
    const port = await startGreeter(cleanups, (call, callback) => {
      n++;
      if (n === 1) callback({ code: status.INTERNAL, details: "function failed" });
      else if (n === 2) setTimeout(() => greet(call, callback), 1000);
      else greet(call, callback);
    });
    const rows = await runLoad(addressTarget(client(`grpc://127.0.0.1:${port}`), "x"), { shape: { ...open, rps: 10 }, durationMs: 300, timeoutMs: 300 });
    expect(rows.map((r) => r.error)).toEqual(["ERR_INVOKE", "timeout", null]);
  });

  it("reports no start kinds and says why, with latency overall", async () => {
    const rows = Array.from({ length: 4 }, (_, i) => row(i, 10 + i, null));
    const atAddress: LoadReport = { ...report(rows), url: "grpc://10.209.0.7:50051", function: "helloworld-pod", deployment: null, accel: null, method: "helloworld.Greeter/SayHello" };
    const summary = summarizeLoad(atAddress);
    expect(summary.latency.map((f) => [f.start, f.requests])).toEqual([["all", 4]]);
    const built = await buildReport({ load: atAddress }, "test machine");
    expect(built.markdown).toContain("helloworld-pod at grpc://10.209.0.7:50051 (gRPC helloworld.Greeter/SayHello)");
    expect(built.markdown).toContain("Start kinds are unknown");
    expect(built.markdown).not.toContain("on the daemon");
    expect(built.svgs.get("load-latency.svg")).toContain("unknown");
  });
});

describe("percentile", () => {
  it("interpolates between ranks", () => {
    expect(percentile([1, 2, 3, 4], 50)).toBe(2.5);
    expect(percentile([5, 1, 3], 0)).toBe(1);
    expect(percentile([5, 1, 3], 100)).toBe(5);
    expect(percentile([0, 10], 90)).toBe(9);
    expect(percentile([], 50)).toBeNaN();
  });
});
