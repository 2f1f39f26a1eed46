/**
 * One-shot starts for the CLI and the experiments: `vhive run` (boot an image, invoke it once,
 * stop it) and `vhive snapshot restore` (restore a snapshot, invoke it once, stop it), each
 * returning the reply and the start's breakdown. A restore in a pool mode pre-starts its pooled
 * VMM first (untimed) and times the cold start from when it is taken.
 */
import type { StoredImage } from "../image/index.js";
import { loadWorkingSet, type PagerStats, type WsCodec, type WsRead } from "../memory/index.js";
import { roundMs, type BootBreakdown, type RestoreBreakdown } from "../metrics/index.js";
import type { StoredSnapshot } from "../snapshot/index.js";
import { cpuBetween, processIo, threadsCpu, type AgentRestoreReply, type ProcessIo, type ThreadsCpu } from "../vm/index.js";
import { bootInstance, type BootOptions } from "./boot.js";
import type { Host } from "./host.js";
import { defaultRequestData, isPoolMode, POOL_MODES, type Instance, type MemoryMode, type RestoreStart } from "./instance.js";
import { dropCachesFor, restoreInstance, RESTORE_MODES, saveRecordedWorkingSet, type RestoreOptions } from "./restore.js";
import { prestartVmm, restorePooled, type PooledMemory } from "./vmm-pool.js";

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

/** Every mode `vhive snapshot restore` takes: the restore modes, and a pooled VMM's (pre-started first, untimed). */
export const RESTORE_ONCE_MODES = [...RESTORE_MODES, ...POOL_MODES] as const;
export type RestoreOnceMode = (typeof RESTORE_ONCE_MODES)[number];

export interface RestoreOnceOptions extends Omit<RestoreOptions, "mode"> {
  mode?: RestoreOnceMode;
}

/** What a pooled VMM did before the cold start (modes pool and pool-installed). */
export interface PooledRestoreFigures {
  /** QEMU spawn until the VMM was ready: not part of totalMs. */
  prestartMs: number;
  /** What it held while it waited, measured just before it was taken. */
  idle: PooledMemory;
}

export interface RestoreResult {
  snapshot: { id: string; function: string };
  /** The memory mode used (reap shows as record or prefetch). */
  mode: MemoryMode;
  accel: string;
  response: Record<string, unknown>;
  text: string;
  /**
   * QEMU spawn until the reply arrived: the cold start as a client sees it (floor: minus reading
   * and installing its pages; pool, pool-installed: from when the pooled VMM was taken).
   */
  totalMs: number;
  breakdown: RestoreBreakdown;
  /** Reading the working set (prefetch), or the whole memory file (floor); pool-installed: while the VMM waited. */
  fetchWsMs: number;
  /** Installing those pages into guest memory. */
  installWsMs: number;
  /** The pager checking every page it read against its checksum (within the two above); null without a pager. */
  verifyMs: number | null;
  /** Page faults that read guest memory: served by the pager (userfaultfd modes), else QEMU's major faults. */
  faults: number;
  /** Pages prefetched (prefetch and pool modes, zero pages included), recorded (record), or the non-zero pages the floor copied. */
  wsPages: number;
  /** Those pages' bytes in memory (wsPages x page size): what working-set format 2 stored on disk. */
  wsBytes: number;
  /** The working set's pages file as stored on disk: what prefetch (and the pool modes) read or record wrote (0 for other modes). */
  wsDiskBytes: number;
  /** prefetch, the pool modes and record: the working set's encoding; prefetch and the pool modes: how it was read. */
  wsCodec?: WsCodec;
  wsRead?: WsRead;
  /** Of the QEMU process, during the cold start: from its start to the reply (pool modes: from when the VMM was taken). */
  majorFaults: number;
  /** Read from storage by QEMU and the pager (page-cache hits excluded), during the cold start. */
  bytesRead: number;
  /** Of which by the pager (userfaultfd modes), null otherwise. */
  pagerBytesRead: number | null;
  /**
   * QEMU's threads during the cold start, ms: on a core, and runnable but waiting for one (the
   * vCPU thread's share of a core on a busy host). Threads that exited before the reply are left out.
   */
  qemuCpuMs: number;
  qemuWaitMs: number;
  /** The pager's own counters, for userfaultfd modes. */
  pager?: PagerStats;
  /** What the guest agent said of the reseed: its hooks, and its own time on the reseed and on them. */
  agent: AgentRestoreReply;
  /** Modes pool and pool-installed. */
  pooled?: PooledRestoreFigures;
}

export async function restoreOnce(host: Host, snapshot: StoredSnapshot, data?: string, options: RestoreOnceOptions = {}): Promise<RestoreResult> {
  const firstRequest = (image: StoredImage) => data ?? defaultRequestData(image);
  const { mode, ...rest } = options;
  if (mode === undefined || !isPoolMode(mode)) {
    await using instance = await restoreInstance(host, snapshot, { ...rest, mode, firstRequest });
    return await invokeOnce(host, snapshot, instance, data, options); // awaited: `instance` is disposed as this block ends
  }
  // The pooled VMM starts first, untimed; caches are dropped after it is ready, so the cold
  // start that takes it reads the snapshot from disk as any other.
  await using pooled = await prestartVmm(host, snapshot, { ...rest, mode, firstRequest });
  const idle = await pooled.memory();
  await dropCachesFor(snapshot, pooled.image, await loadWorkingSet(snapshot), options);
  const before = await ioOf(pooled.pid!, pooled.pagerPid);
  await using instance = await restorePooled(host, pooled, rest);
  return { ...(await invokeOnce(host, snapshot, instance, data, options, before)), pooled: { prestartMs: roundMs(pooled.prestartMs), idle } };
}

/** QEMU's I/O counters and CPU time, and what its pager read from storage (0 without one). */
interface VmmIo {
  qemu: ProcessIo;
  qemuCpu: ThreadsCpu;
  pagerBytesRead: number;
}

async function ioOf(qemuPid: number, pagerPid: number | undefined): Promise<VmmIo> {
  const [qemu, qemuCpu] = await Promise.all([processIo(qemuPid), threadsCpu(qemuPid)]);
  const pager = pagerPid === undefined ? undefined : await processIo(pagerPid);
  return { qemu, qemuCpu, pagerBytesRead: pager?.bytesRead ?? 0 };
}

/** Invoke a restored instance once and report its cold start; `before`: I/O counters at its start, for a pooled VMM. */
async function invokeOnce(host: Host, snapshot: StoredSnapshot, instance: Instance<RestoreStart>, data: string | undefined, options: RestoreOnceOptions, before?: VmmIo): Promise<RestoreResult> {
  const input = data ?? defaultRequestData(instance.image);
  const result = await instance.invoke(input, { signal: options.signal });
  const wallMs = performance.now() - instance.start.coldStartAt;
  const after = await ioOf(instance.vm.pid!, instance.pager?.pid);
  const qemuCpu = cpuBetween(before?.qemuCpu, after.qemuCpu);
  const pager = await instance.pager?.stats();
  const mode = instance.start.kind;
  let wsPages = pager ? pager.wsPages : 0;
  let ws: Pick<RestoreResult, "wsDiskBytes" | "wsCodec" | "wsRead"> = { wsDiskBytes: 0 };
  if ((mode === "prefetch" || isPoolMode(mode)) && pager) ws = { wsDiskBytes: pager.wsStoredBytes, wsCodec: pager.wsCodec, wsRead: pager.wsRead };
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
    faults: pager ? pager.faults : after.qemu.majorFaults - (before?.qemu.majorFaults ?? 0),
    wsPages,
    wsBytes: pager ? wsPages * pager.pageSize : 0,
    ...ws,
    majorFaults: after.qemu.majorFaults - (before?.qemu.majorFaults ?? 0),
    bytesRead: after.qemu.bytesRead + after.pagerBytesRead - (before ? before.qemu.bytesRead + before.pagerBytesRead : 0),
    pagerBytesRead: instance.pager ? after.pagerBytesRead - (before?.pagerBytesRead ?? 0) : null,
    qemuCpuMs: roundMs(qemuCpu.runMs),
    qemuWaitMs: roundMs(qemuCpu.waitMs),
    ...(pager ? { pager } : {}),
    agent: instance.start.reseed,
  };
}
