/**
 * `vhive bench density`: how many idle instances of a function a host holds, per start mode.
 *
 * For each mode, N instances are started one after another (restored from the function's
 * snapshot in a memory mode, or booted as a reference) and kept running; once all N are up,
 * each is invoked once to check that it answers, and then the memory each holds is read from
 * /proc (src/vm/proc-memory.ts): PSS and private bytes of QEMU and of its pager, and of QEMU's guest
 * RAM mapping. All N are stopped before the next mode. The first start of a mode has the
 * snapshot's (boot: the image's) files evicted from the page cache; the others find them there,
 * as on a busy host.
 *
 * What the comparison shows: vanilla maps the snapshot's memory file privately, so every page
 * the guest only reads stays one page-cache page shared by all N instances (PSS counts 1/N of it
 * in each), while the userfaultfd modes (lazy, prefetch, floor) and boot hold a private
 * anonymous copy of every page in each instance.
 *
 * The host is guarded: the first instance of a mode is measured (its PSS and what MemAvailable
 * dropped by, whichever is larger), and a run of N that would not fit in MemAvailable, keeping
 * HEADROOM free, is refused with ERR_HOST_MEMORY before the other N - 1 start; before each later
 * start MemAvailable is checked again. On any error, and on Ctrl-C, every instance is ended.
 *
 * :raise ERR_HOST_MEMORY: N instances would not fit, or the host ran low meanwhile
 * :raise ERR_VALIDATION: an unknown mode or a bad --instances
 */
import type { StoredImage } from "../image/index.js";
import { memMibFor, bootInstance, defaultRequestData, restoreInstance, usableSnapshot, type Host, type Instance, type MemoryMode } from "../start/index.js";
import { roundMs } from "../metrics/index.js";
import { VhiveError, messageOf } from "../shared/errors.js";
import { evictFromPageCache, type StoredSnapshot } from "../snapshot/index.js";
import { ensureWorkingSet, type ProgressListener } from "./experiments.js";
import { procMemoryProbe, type MemoryProbe } from "../vm/index.js";
import { median, summarize, type Summary } from "./stats.js";

/** Restore modes that many instances can run at once (record would race to write one working set), and boot. */
export const DENSITY_MODES = ["vanilla", "vanilla-4k", "lazy", "prefetch", "floor", "boot"] as const satisfies readonly (MemoryMode | "boot")[];
export type DensityMode = (typeof DENSITY_MODES)[number];

const MIB = 1024 * 1024;
export const MAX_INSTANCES = 10_000;

/** Memory kept free for everything else on the host: 5% of it, at least 512 MiB. */
export function headroomBytes(totalBytes: number): number {
  return Math.max(512 * MIB, 0.05 * totalBytes);
}

/** One idle instance, measured once all N of its mode were up and had answered. */
export interface DensityRow {
  function: string;
  mode: DensityMode;
  /** 1-based, in start order. */
  instance: number;
  /** QEMU spawn until the function answered, ms. */
  startMs: number;
  /** The check call once all N were up, ms. */
  invokeMs: number;
  reply: string;
  /** QEMU and its pager together. */
  pssBytes: number;
  privateBytes: number;
  rssBytes: number;
  /** QEMU alone. */
  qemuPssBytes: number;
  qemuPrivateBytes: number;
  qemuPssAnonBytes: number;
  qemuPssFileBytes: number;
  /** Of QEMU's guest RAM mapping (null if it could not be told apart). */
  guestPssBytes: number | null;
  guestPrivateBytes: number | null;
  /** Anonymous pages of guest RAM: written by the guest (vanilla), or every page (other modes). */
  guestAnonBytes: number | null;
  /** Page-cache pages of guest RAM, Pss: vanilla's shared snapshot file. */
  guestPageCachePssBytes: number | null;
  /** QEMU outside guest RAM (its code, heaps, device state, TCG's translation buffer). */
  otherPssBytes: number | null;
  /** The userfaultfd pager, for lazy, prefetch and floor. */
  pagerPssBytes: number | null;
  pagerPrivateBytes: number | null;
}

/** What a mode's run measured beyond its rows. */
export interface DensityModeResult {
  mode: DensityMode;
  instances: number;
  /** Starting all N one after another: the sum of their start calls, ms. */
  startAllMs: number;
  /** MemAvailable before the first start and with all N up. */
  memAvailableBeforeBytes: number;
  memAvailableAfterBytes: number;
}

export interface DensityReport {
  experiment: "density";
  accel: string;
  startedAt: string;
  function: string;
  imageId: string;
  /** Undefined when only boot ran. */
  snapshotId?: string;
  input: string;
  memMib: number;
  instances: number;
  modes: DensityMode[];
  memTotalBytes: number;
  results: DensityModeResult[];
  rows: DensityRow[];
}

export interface DensityOptions {
  instances: number;
  modes: readonly DensityMode[];
  signal?: AbortSignal;
  onProgress?: ProgressListener;
  /** /proc, unless a test fakes it. */
  probe?: MemoryProbe;
}

export function parseDensityModes(text: string): DensityMode[] {
  const modes = text.split(",").filter(Boolean);
  const bad = modes.filter((mode) => !(DENSITY_MODES as readonly string[]).includes(mode));
  if (bad.length > 0 || modes.length === 0) {
    throw new VhiveError("ERR_VALIDATION", `modes for density: ${bad.join(", ") || "none given"}`, { remedy: `choose from ${DENSITY_MODES.join(", ")}` });
  }
  return DENSITY_MODES.filter((mode) => modes.includes(mode));
}

export function checkInstances(instances: number): number {
  if (!Number.isInteger(instances) || instances < 1 || instances > MAX_INSTANCES) {
    throw new VhiveError("ERR_VALIDATION", `--instances ${instances}: expected a whole number from 1 to ${MAX_INSTANCES}`);
  }
  return instances;
}

const fmtMib = (bytes: number) => `${Math.round(bytes / MIB)} MiB`;

function assertNotAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new VhiveError("ERR_ABORTED", `the density bench was cancelled ${what}`);
}

interface Measured {
  instance: Instance;
  startMs: number;
}

async function measureRow(fn: string, mode: DensityMode, index: number, m: Measured, invoke: { ms: number; text: string }, memBytes: number, probe: MemoryProbe): Promise<DensityRow> {
  const { vm, pager } = m.instance;
  const qemu = await probe.process(vm.pid!);
  const guest = await probe.guestRam(vm.pid!, memBytes);
  const pagerMemory = pager?.pid === undefined ? undefined : await probe.process(pager.pid);
  return {
    function: fn,
    mode,
    instance: index,
    startMs: roundMs(m.startMs),
    invokeMs: roundMs(invoke.ms),
    reply: invoke.text,
    pssBytes: qemu.pssBytes + (pagerMemory?.pssBytes ?? 0),
    privateBytes: qemu.privateBytes + (pagerMemory?.privateBytes ?? 0),
    rssBytes: qemu.rssBytes + (pagerMemory?.rssBytes ?? 0),
    qemuPssBytes: qemu.pssBytes,
    qemuPrivateBytes: qemu.privateBytes,
    qemuPssAnonBytes: qemu.pssAnonBytes,
    qemuPssFileBytes: qemu.pssFileBytes,
    guestPssBytes: guest?.pssBytes ?? null,
    guestPrivateBytes: guest?.privateBytes ?? null,
    guestAnonBytes: guest?.anonymousBytes ?? null,
    guestPageCachePssBytes: guest?.pageCachePssBytes ?? null,
    otherPssBytes: guest ? qemu.pssBytes - guest.pssBytes : null,
    pagerPssBytes: pagerMemory?.pssBytes ?? null,
    pagerPrivateBytes: pagerMemory?.privateBytes ?? null,
  };
}

/** End every instance: gracefully after a run, at once (SIGKILL) after an error. */
async function stopAll(instances: readonly Measured[], graceful: boolean): Promise<void> {
  await Promise.allSettled(instances.map(({ instance }) => (graceful ? instance.stop() : instance.destroy())));
}

interface ModeRun {
  host: Host;
  image: StoredImage;
  snapshot: StoredSnapshot | undefined;
  mode: DensityMode;
  input: string;
  memMib: number;
  options: DensityOptions;
  probe: MemoryProbe;
  step: (what: string) => void;
}

async function runMode(run: ModeRun): Promise<{ result: DensityModeResult; rows: DensityRow[] }> {
  const { host, image, snapshot, mode, input, options, probe } = run;
  const n = options.instances;
  const memBytes = run.memMib * MIB;
  const started: Measured[] = [];
  let ok = false;
  try {
    const before = await probe.host();
    const headroom = headroomBytes(before.totalBytes);
    if (before.availableBytes - headroom < memBytes) {
      throw new VhiveError("ERR_HOST_MEMORY", `not even one ${mode} instance of ${image.name} (${run.memMib} MiB of guest memory) fits: ${fmtMib(before.availableBytes)} is available and ${fmtMib(headroom)} is kept free`, {
        remedy: "free memory on the host (stop other VMs), or give the function less memory",
      });
    }
    let perInstanceBytes = 0;
    let startAllMs = 0;
    for (let i = 1; i <= n; i++) {
      assertNotAborted(options.signal, `while starting ${mode} instances`);
      if (i > 1) {
        const now = await probe.host();
        if (now.availableBytes < perInstanceBytes + headroom) {
          throw new VhiveError("ERR_HOST_MEMORY", `the host ran low on memory after ${i - 1} ${mode} instances of ${image.name}: ${fmtMib(now.availableBytes)} available, ${fmtMib(perInstanceBytes)} more needed and ${fmtMib(headroom)} kept free`, {
            remedy: `use --instances ${i - 1} or fewer, or free memory on the host; every instance was stopped`,
          });
        }
      }
      run.step(`${image.name} ${mode}: starting ${i}/${n}`);
      const callStart = performance.now();
      const instance: Instance =
        mode === "boot"
          ? await bootInstance(host, image, { memMib: run.memMib, signal: options.signal })
          : await restoreInstance(host, snapshot!, { mode, evict: i === 1, signal: options.signal });
      const readyAt = performance.now();
      startAllMs += readyAt - callStart;
      started.push({ instance, startMs: readyAt - instance.vm.timeline.spawnAt });
      if (i === 1 && n > 1) {
        // Estimate from the first, once it has answered: the larger of what it holds and what the host lost.
        await instance.invoke(input, { signal: options.signal });
        const first = await measureRow(image.name, mode, 1, started[0]!, { ms: 0, text: "" }, memBytes, probe);
        const now = await probe.host();
        perInstanceBytes = Math.max(first.pssBytes, before.availableBytes - now.availableBytes);
        const neededBytes = (n - 1) * perInstanceBytes + headroom;
        if (neededBytes > now.availableBytes) {
          const fits = 1 + Math.max(0, Math.floor((now.availableBytes - headroom) / perInstanceBytes));
          throw new VhiveError("ERR_HOST_MEMORY", `${n} ${mode} instances of ${image.name} would not fit: about ${fmtMib(perInstanceBytes)} each (measured on the first), and with the first up ${fmtMib(now.availableBytes)} is available for the other ${n - 1}, ${fmtMib(headroom)} of it kept free`, {
            remedy: `use --instances ${fits} or fewer, or free memory on the host`,
          });
        }
      }
    }
    const answers: { ms: number; text: string }[] = [];
    for (const [index, m] of started.entries()) {
      assertNotAborted(options.signal, `while checking the ${mode} instances`);
      run.step(`${image.name} ${mode}: invoking ${index + 1}/${n}`);
      try {
        answers.push(await m.instance.invoke(input, { signal: options.signal }));
      } catch (error) {
        throw new VhiveError(error instanceof VhiveError ? error.code : "ERR_INVOKE", `${mode} instance ${index + 1} of ${n} (${image.name}) did not answer with all ${n} up: ${messageOf(error)}`, { cause: error });
      }
    }
    // Measured after every instance has answered, so each holds what an idle, used instance holds.
    const rows: DensityRow[] = [];
    for (const [index, m] of started.entries()) rows.push(await measureRow(image.name, mode, index + 1, m, answers[index]!, memBytes, probe));
    const after = await probe.host();
    ok = true;
    return {
      result: { mode, instances: n, startAllMs: roundMs(startAllMs), memAvailableBeforeBytes: before.availableBytes, memAvailableAfterBytes: after.availableBytes },
      rows,
    };
  } finally {
    run.step(`${image.name} ${mode}: stopping ${started.length} instances`);
    await stopAll(started, ok);
  }
}

export async function benchDensity(host: Host, image: StoredImage, options: DensityOptions): Promise<DensityReport> {
  const n = checkInstances(options.instances);
  const modes = DENSITY_MODES.filter((mode) => options.modes.includes(mode));
  const probe = options.probe ?? procMemoryProbe;
  const input = defaultRequestData(image);
  const restores = modes.some((mode) => mode !== "boot");
  const snapshot = restores ? await usableSnapshot(host, image, { signal: options.signal }) : undefined;
  const memMib = snapshot?.meta.fingerprint.memMib ?? memMibFor(image);
  const host0 = await probe.host();
  const report: DensityReport = {
    experiment: "density",
    accel: host.accel,
    startedAt: new Date().toISOString(),
    function: image.name,
    imageId: image.id,
    ...(snapshot ? { snapshotId: snapshot.meta.id } : {}),
    input,
    memMib,
    instances: n,
    modes,
    memTotalBytes: host0.totalBytes,
    results: [],
    rows: [],
  };
  // starting, invoking and stopping count as steps: 2N + 1 per mode
  const total = modes.length * (2 * n + 1);
  let done = 0;
  const step = (what: string) => options.onProgress?.(done++, total, what);
  for (const mode of modes) {
    if (mode === "prefetch") await ensureWorkingSet(host, snapshot!, input, [mode], options.signal);
    if (mode === "boot") await evictFromPageCache([image.rootfsPath, host.guest.kernel.path, host.guest.initramfs.path]);
    const { result, rows } = await runMode({ host, image, snapshot, mode, input, memMib, options, probe, step });
    report.results.push(result);
    report.rows.push(...rows);
  }
  options.onProgress?.(total, total, "done");
  return report;
}

/** Per mode: medians per instance, sums over the N, and what the host lost. */
export interface DensitySummary extends DensityModeResult {
  startMs: Summary;
  /** Medians per instance, bytes (null where no instance had the figure). */
  pssBytes: number;
  privateBytes: number;
  guestPssBytes: number | null;
  guestAnonBytes: number | null;
  guestPageCachePssBytes: number | null;
  otherPssBytes: number | null;
  pagerPssBytes: number | null;
  /** Sum over the N instances: what they cost the host together. */
  totalPssBytes: number;
  /** MemAvailable before minus after, per instance. */
  memDropPerInstanceBytes: number;
}

function medianOrNull(values: readonly (number | null)[]): number | null {
  const present = values.filter((value): value is number => value !== null);
  return present.length === 0 ? null : median(present);
}

export function summarizeDensity(report: DensityReport): DensitySummary[] {
  return report.results.map((result) => {
    const rows = report.rows.filter((row) => row.mode === result.mode);
    const pick = (field: "guestPssBytes" | "guestAnonBytes" | "guestPageCachePssBytes" | "otherPssBytes" | "pagerPssBytes") => medianOrNull(rows.map((row) => row[field]));
    return {
      ...result,
      startMs: summarize(rows.map((row) => row.startMs)),
      pssBytes: median(rows.map((row) => row.pssBytes)),
      privateBytes: median(rows.map((row) => row.privateBytes)),
      guestPssBytes: pick("guestPssBytes"),
      guestAnonBytes: pick("guestAnonBytes"),
      guestPageCachePssBytes: pick("guestPageCachePssBytes"),
      otherPssBytes: pick("otherPssBytes"),
      pagerPssBytes: pick("pagerPssBytes"),
      totalPssBytes: rows.reduce((sum, row) => sum + row.pssBytes, 0),
      memDropPerInstanceBytes: (result.memAvailableBeforeBytes - result.memAvailableAfterBytes) / Math.max(1, result.instances),
    };
  });
}
