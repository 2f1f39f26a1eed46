/**
 * One-shot starts for the CLI and the experiments: `vhive run` (boot an image, invoke it once,
 * stop it) and `vhive snapshot restore` (restore a snapshot, invoke it once, stop it), each
 * returning the reply and the start's breakdown.
 */
import type { StoredImage } from "../image/index.js";
import type { PagerStats, WsCodec, WsRead } from "../memory/index.js";
import { roundMs, type BootBreakdown, type RestoreBreakdown } from "../metrics/index.js";
import type { StoredSnapshot } from "../snapshot/index.js";
import { processIo, type AgentRestoreReply } from "../vm/index.js";
import { bootInstance, type BootOptions } from "./boot.js";
import type { Host } from "./host.js";
import { defaultRequestData, type MemoryMode } from "./instance.js";
import { restoreInstance, saveRecordedWorkingSet, type RestoreOptions } from "./restore.js";

export interface RunResult {
  image: { id: string; name: string };
  accel: string;
  /** The decoded reply. */
  response: Record<string, unknown>;
  /** A one-line summary of the reply. */
  text: string;
  /** QEMU spawn until the reply arrived: the cold start as a client sees it. */
  totalMs: number;
  /** QEMU spawn until the function answered. */
  bootMs: number;
  invokeMs: number;
  breakdown: BootBreakdown;
}

export async function runOnce(host: Host, image: StoredImage, data?: string, options: BootOptions = {}): Promise<RunResult> {
  const input = data ?? defaultRequestData(image);
  await using instance = await bootInstance(host, image, { ...options, firstRequest: () => input });
  const result = await instance.invoke(input, { signal: options.signal });
  const totalMs = performance.now() - instance.vm.timeline.spawnAt;
  const { qemuStartMs, kernelBootMs, initMs, functionReadyMs, bootMs } = instance.start.times;
  return {
    image: { id: image.id, name: image.name },
    accel: host.accel,
    response: result.response,
    text: result.text,
    totalMs: roundMs(totalMs),
    bootMs: roundMs(bootMs),
    invokeMs: roundMs(result.ms),
    breakdown: {
      qemuStartMs: roundMs(qemuStartMs),
      kernelBootMs: roundMs(kernelBootMs),
      initMs: roundMs(initMs),
      functionReadyMs: roundMs(functionReadyMs),
      invokeMs: roundMs(result.ms),
    },
  };
}

export interface RestoreResult {
  snapshot: { id: string; function: string };
  /** The memory mode used (reap shows as record or prefetch). */
  mode: MemoryMode;
  accel: string;
  response: Record<string, unknown>;
  text: string;
  /** QEMU spawn until the reply arrived: the cold start as a client sees it (floor: minus reading and installing its pages). */
  totalMs: number;
  breakdown: RestoreBreakdown;
  /** Reading the working set (prefetch), or the non-zero pages of the memory file (floor). */
  fetchWsMs: number;
  /** Installing those pages into guest memory. */
  installWsMs: number;
  /** The pager checking every page it read against its checksum (within the two above); null without a pager. */
  verifyMs: number | null;
  /** Page faults that read guest memory: served by the pager (userfaultfd modes), else QEMU's major faults. */
  faults: number;
  /** Pages prefetched (prefetch, floor) or recorded (record), zero pages included. */
  wsPages: number;
  /** Those pages' bytes in memory (wsPages x page size): what working-set format 2 stored on disk. */
  wsBytes: number;
  /** The working set's pages file as stored on disk: what prefetch read or record wrote (0 for other modes). */
  wsDiskBytes: number;
  /** prefetch and record: the working set's encoding; prefetch: how it was read. */
  wsCodec?: WsCodec;
  wsRead?: WsRead;
  /** Of the QEMU process, from its start to the reply. */
  majorFaults: number;
  /** Read from storage by QEMU and the pager (page-cache hits excluded). */
  bytesRead: number;
  /** Of which by the pager (userfaultfd modes), null otherwise. */
  pagerBytesRead: number | null;
  /** The pager's own counters, for userfaultfd modes. */
  pager?: PagerStats;
  /** What the guest agent said of the reseed: its hooks, and its own time on the reseed and on them. */
  agent: AgentRestoreReply;
}

export async function restoreOnce(host: Host, snapshot: StoredSnapshot, data?: string, options: RestoreOptions = {}): Promise<RestoreResult> {
  await using instance = await restoreInstance(host, snapshot, { ...options, firstRequest: (image) => data ?? defaultRequestData(image) });
  const input = data ?? defaultRequestData(instance.image);
  const result = await instance.invoke(input, { signal: options.signal });
  const wallMs = performance.now() - instance.vm.timeline.spawnAt;
  const io = await processIo(instance.vm.pid!);
  const pager = await instance.pager?.stats();
  const pagerIo = instance.pager?.pid === undefined ? undefined : await processIo(instance.pager.pid);
  const mode = instance.start.kind;
  let wsPages = pager ? pager.wsPages : 0;
  let ws: Pick<RestoreResult, "wsDiskBytes" | "wsCodec" | "wsRead"> = { wsDiskBytes: 0 };
  if (mode === "prefetch" && pager) ws = { wsDiskBytes: pager.wsStoredBytes, wsCodec: pager.wsCodec, wsRead: pager.wsRead };
  if (mode === "record") {
    const recorded = await saveRecordedWorkingSet(instance, snapshot, input, options.wsCodec);
    const encoding = recorded.encodings[0]!;
    wsPages = recorded.meta.pages;
    ws = { wsDiskBytes: encoding.bytes, wsCodec: encoding.codec };
  }
  const { restoreMs, resumeMs, reseedMs, connectMs } = instance.start.times;
  // The floor's pager reads and installs memory while QEMU waits for it in mmap, inside the
  // spawn phase: report that as the memory wait, and leave it out of totalMs.
  const floorInstallMs = mode === "floor" && pager ? (pager.fetchUs + pager.installUs) / 1000 : 0;
  const loadVmmMs = instance.start.times.loadVmmMs - floorInstallMs;
  const memoryWaitMs = instance.start.times.memoryWaitMs + floorInstallMs;
  return {
    snapshot: { id: snapshot.meta.id, function: snapshot.meta.function },
    mode,
    accel: host.accel,
    response: result.response,
    text: result.text,
    totalMs: roundMs(wallMs - floorInstallMs),
    breakdown: {
      loadVmmMs: roundMs(loadVmmMs),
      restoreMs: roundMs(restoreMs),
      memoryWaitMs: roundMs(memoryWaitMs),
      resumeMs: roundMs(resumeMs),
      reseedMs: roundMs(reseedMs),
      connectMs: roundMs(connectMs),
      functionMs: roundMs(result.ms),
    },
    fetchWsMs: roundMs((pager?.fetchUs ?? 0) / 1000),
    installWsMs: roundMs((pager?.installUs ?? 0) / 1000),
    verifyMs: pager ? roundMs(pager.verifyUs / 1000) : null,
    faults: pager ? pager.faults : io.majorFaults,
    wsPages,
    wsBytes: pager ? wsPages * pager.pageSize : 0,
    ...ws,
    majorFaults: io.majorFaults,
    bytesRead: io.bytesRead + (pagerIo?.bytesRead ?? 0),
    pagerBytesRead: pagerIo?.bytesRead ?? null,
    ...(pager ? { pager } : {}),
    agent: instance.start.reseed,
  };
}
