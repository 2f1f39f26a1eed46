/**
 * The daemon's Prometheus metrics (GET /metrics), in a registry of its own:
 *
 *   vhive_invocations_total{function,start,status}        counter
 *   vhive_invocation_duration_seconds{function,start}     histogram of request to reply
 *   vhive_instances{function,state}                       gauge (starting, idle, busy, retiring)
 *   vhive_queue_length{function}                          gauge
 *   vhive_pooled_vmms{function,state}                     gauge (ready, starting): pre-started VMMs
 *   vhive_pooled_vmm_memory_mib{function}                 gauge: what they hold (measured), or reserve while starting
 *   vhive_memory_budget_mib, vhive_memory_reserved_mib    gauges
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Functions, InvocationObserver } from "../orchestrator/index.js";
import type { StartKind } from "../store/index.js";

export class DaemonMetrics implements InvocationObserver {
  readonly registry = new Registry();
  readonly #invocations: Counter<"function" | "start" | "status">;
  readonly #duration: Histogram<"function" | "start">;
  #functions: Functions | undefined;

  constructor() {
    const registers = [this.registry];
    this.#invocations = new Counter({ name: "vhive_invocations_total", help: "Invocations by function, start kind and outcome", labelNames: ["function", "start", "status"], registers });
    this.#duration = new Histogram({
      name: "vhive_invocation_duration_seconds",
      help: "Request arrival to reply, by function and start kind",
      labelNames: ["function", "start"],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    const metrics = this;
    new Gauge({
      name: "vhive_instances",
      help: "Function instances by state",
      labelNames: ["function", "state"],
      registers,
      collect() {
        this.reset();
        for (const instance of metrics.#functions?.instances() ?? []) this.inc({ function: instance.function, state: instance.state });
      },
    });
    new Gauge({
      name: "vhive_queue_length",
      help: "Requests waiting for an instance",
      labelNames: ["function"],
      registers,
      collect() {
        this.reset();
        for (const [fn, length] of Object.entries(metrics.#functions?.queueLengths() ?? {})) this.set({ function: fn }, length);
      },
    });
    new Gauge({
      name: "vhive_pooled_vmms",
      help: "Pre-started VMMs kept for cold starts, by state",
      labelNames: ["function", "state"],
      registers,
      collect() {
        this.reset();
        for (const [fn, pool] of Object.entries(metrics.#functions?.vmmPools() ?? {})) {
          this.set({ function: fn, state: "ready" }, pool.ready);
          this.set({ function: fn, state: "starting" }, pool.starting);
        }
      },
    });
    new Gauge({
      name: "vhive_pooled_vmm_memory_mib",
      help: "Memory the pre-started VMMs hold (measured PSS), or reserve while they start",
      labelNames: ["function"],
      registers,
      collect() {
        this.reset();
        for (const [fn, pool] of Object.entries(metrics.#functions?.vmmPools() ?? {})) this.set({ function: fn }, pool.heldMib);
      },
    });
    new Gauge({
      name: "vhive_memory_budget_mib",
      help: "Host memory instances may use",
      registers,
      collect() {
        this.set(metrics.#functions?.budget.totalMib ?? 0);
      },
    });
    new Gauge({
      name: "vhive_memory_reserved_mib",
      help: "Host memory reserved by running instances and pooled VMMs",
      registers,
      collect() {
        this.set(metrics.#functions?.budget.reservedMib ?? 0);
      },
    });
  }

  /** The registry the gauges read at scrape time. */
  bind(functions: Functions): void {
    this.#functions = functions;
  }

  invoked(fn: string, start: StartKind | null, status: "ok" | "error", totalMs: number): void {
    this.#invocations.inc({ function: fn, start: start ?? "none", status });
    if (status === "ok") this.#duration.observe({ function: fn, start: start ?? "none" }, totalMs / 1000);
  }
}
