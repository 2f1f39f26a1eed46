/**
 * The vhive daemon: claims the state directory, cleans up after a crashed predecessor, opens
 * the host and the database, loads the deployed functions and serves the API. close() is the
 * graceful shutdown: no new requests, requests in flight finish, every instance is retired
 * (snapshot instances are saved), the database is closed.
 */
import { mkdir } from "node:fs/promises";
import { freemem } from "node:os";
import { join, resolve } from "node:path";
import { isIP } from "node:net";
import type { FastifyInstance } from "fastify";
import { ImageStore } from "../image/index.js";
import { loadWorkingSet } from "../memory/index.js";
import { claimStateDir, Functions, MemoryBudget, recoverState, VmStarter, type InstanceStarter, type RecoveryReport } from "../orchestrator/index.js";
import { openHost, type Host } from "../start/index.js";
import { VhiveError, messageOf } from "../shared/errors.js";
import type { Log } from "../shared/log.js";
import { StatePaths } from "../shared/paths.js";
import { UndoStack } from "../shared/undo.js";
import { SnapshotStore } from "../snapshot/index.js";
import { Store } from "../store/index.js";
import type { AccelRequest } from "../vm/index.js";
import { buildApp } from "./app.js";
import { DaemonMetrics } from "./metrics.js";

export const DEFAULT_LISTEN = "127.0.0.1:8970";

export interface DaemonOptions {
  stateDir: string;
  /** host:port; default 127.0.0.1:8970 (port 0 picks a free one). */
  listen?: string;
  /** Required unless listening on loopback. */
  token?: string;
  /** Default: 75% of the memory free at start-up. */
  memoryBudgetMib?: number;
  accel?: AccelRequest;
  log: Log;
  queueTimeoutMs?: number;
  invokeTimeoutMs?: number;
  /** For tests: start instances with this instead of microVMs (the host is then not opened). */
  starter?: InstanceStarter;
}

export interface Daemon {
  /** http://host:port */
  readonly url: string;
  readonly app: FastifyInstance;
  readonly functions: Functions;
  readonly recovery: RecoveryReport;
  /** Graceful shutdown; idempotent. */
  close(): Promise<void>;
}

/** Split "host:port" ("[::1]:8970" for IPv6). Throws ERR_VALIDATION naming --listen. */
export function parseListen(listen: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(listen);
  const port = Number(match?.[3]);
  if (!match || port > 65535) throw new VhiveError("ERR_VALIDATION", `--listen ${listen}: expected host:port, such as 127.0.0.1:8970`);
  return { host: (match[1] ?? match[2])!, port };
}

export function isLoopback(host: string): boolean {
  if (host === "localhost") return true;
  if (isIP(host) === 4) return host.startsWith("127.");
  return host === "::1";
}

export async function startDaemon(options: DaemonOptions): Promise<Daemon> {
  const { host: listenHost, port } = parseListen(options.listen ?? DEFAULT_LISTEN);
  if (!isLoopback(listenHost) && !options.token) {
    throw new VhiveError("ERR_VALIDATION", `--listen ${listenHost}: listening beyond loopback needs a bearer token`, {
      remedy: "pass --token (or set VHIVE_TOKEN); clients then send it as Authorization: Bearer <token>",
    });
  }
  const log = options.log;
  const paths = new StatePaths(resolve(options.stateDir));
  await mkdir(paths.vmsDir, { recursive: true });
  const release = await claimStateDir(paths);
  const undo = new UndoStack();
  undo.defer("release the state directory", release);
  try {
    const recovery = await recoverState(paths, log);
    let host: Host | undefined;
    if (!options.starter) host = await openHost({ stateDir: paths.root, accel: options.accel ?? "auto", log });
    const store = Store.open(join(paths.root, "vhive.db"));
    undo.defer("close the store", () => store.close());
    const budget = new MemoryBudget(options.memoryBudgetMib ?? Math.floor((freemem() / 1024 / 1024) * 0.75));
    const metrics = new DaemonMetrics();
    const images = new ImageStore(paths);
    const functions = new Functions({
      store,
      starter: options.starter ?? new VmStarter(host!),
      budget,
      images: {
        resolve: async (ref) => {
          const image = await images.resolve(ref);
          return { id: image.id, name: image.name, memMib: image.config.memMib };
        },
      },
      log,
      observer: metrics,
      pool: { queueTimeoutMs: options.queueTimeoutMs, invokeTimeoutMs: options.invokeTimeoutMs },
    });
    metrics.bind(functions);
    undo.defer("stop the functions", () => functions.close());
    const loaded = functions.load();
    const app = await buildApp({
      functions,
      metrics,
      log,
      token: options.token,
      snapshots: (fn) => snapshotsOf(paths, fn),
      health: host ? { accel: host.accel, qemu: host.qemu.version, stateDir: paths.root } : { stateDir: paths.root },
    });
    undo.defer("close the server", () => app.close());
    await app.listen({ host: listenHost, port });
    const address = app.server.address();
    const boundPort = typeof address === "object" && address ? address.port : port;
    const url = `http://${listenHost.includes(":") ? `[${listenHost}]` : listenHost}:${boundPort}`;
    log.info("daemon listening", { url, functions: loaded.length, memoryBudgetMib: budget.totalMib });
    let closed: Promise<void> | undefined;
    return {
      url,
      app,
      functions,
      recovery,
      close: () => {
        closed ??= (async () => {
          log.info("daemon shutting down");
          // Pools first (queued requests fail, in-flight ones finish), while the server stops taking new ones.
          await Promise.all([functions.close(), app.close()]);
          store.close();
          await release();
        })();
        return closed;
      },
    };
  } catch (error) {
    await undo.unwind(log);
    throw error;
  }
}

/** A function's snapshots with their working sets, newest first; damaged ones too. */
async function snapshotsOf(paths: StatePaths, fn: string): Promise<unknown[]> {
  const { snapshots, damaged } = await new SnapshotStore(paths).list();
  const views: unknown[] = [];
  for (const snapshot of snapshots.filter((s) => s.meta.function === fn)) {
    const { meta } = snapshot;
    const ws = await loadWorkingSet(snapshot).then(
      (set) =>
        set
          ? {
              pages: set.meta.pages,
              bytes: set.meta.pages * set.meta.pageSize,
              zeroPages: set.meta.zeroPages,
              onDisk: Object.fromEntries(set.encodings.map((encoding) => [encoding.codec, encoding.bytes])),
              recordedAt: set.meta.recordedAt,
              input: set.meta.input,
            }
          : null,
      (error: unknown) => ({ damaged: messageOf(error) }),
    );
    views.push({ id: meta.id, imageId: meta.imageId, createdAt: meta.createdAt, memMib: meta.fingerprint.memMib, vcpus: meta.fingerprint.vcpus, accel: meta.fingerprint.accel, memBytes: meta.files.mem.bytes, dir: snapshot.dir, workingSet: ws });
  }
  for (const broken of damaged.filter((d) => d.function === fn)) views.push({ id: broken.id, damaged: broken.problem, dir: broken.dir });
  return views;
}
