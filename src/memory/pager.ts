/**
 * The pager process of one restored VM (native/pager/vhive-pager), driven over its stdio:
 * commands on stdin, one JSON event per line on stdout. Events: listening, attached,
 * prefetch-done (with stats), stats, ws-written, corrupt, error, exit. A prefetch pager started
 * with `deferPrefetch` reads and installs its working set only when startPrefetch() says so (a
 * pooled VMM's, src/start/vmm-pool.ts).
 *
 * The pager serves guest RAM, so if it dies the guest hangs: `failure` resolves then, and the
 * owner must end the VM. A page that fails its checksum ends it too, with a
 * SnapshotCorruptError naming the file. It exits by itself when QEMU exits (its exit event
 * says "qemu exited"); that end is QEMU's, not the pager's, so it is no failure: the VM reports
 * how QEMU ended.
 */
import { createInterface } from "node:readline";
import { ChildHandle } from "../shared/child.js";
import { VhiveError, type SnapshotPart } from "../shared/errors.js";
import type { Log } from "../shared/log.js";
import { assertNativeBuilt, nativePath } from "../shared/native.js";
import { makeTempDir, type TempDir } from "../shared/tmp.js";
import { damagedFile } from "../snapshot/index.js";
import type { WrittenEncoding, WsCodec } from "./working-set.js";

export type PagerMode = "lazy" | "record" | "prefetch" | "all";

/**
 * How the pager reads a working set: `direct` with O_DIRECT, as REAP does, so the host holds no
 * second copy of it in the page cache; `cached` through the page cache, so that concurrent
 * restores of one snapshot read it from disk once (the first pager's reads fill the cache, the
 * others find it there), at the cost of the cache keeping it until memory is needed.
 */
export const WS_READS = ["direct", "cached"] as const;
export type WsRead = (typeof WS_READS)[number];
/** Chosen by measurement (README): see WS_READS. */
export const DEFAULT_WS_READ: WsRead = "cached";

/** What the pager counted, as it prints it. */
export interface PagerStats {
  mode: PagerMode;
  faults: number;
  faultCopies: number;
  faultZeroPages: number;
  faultEexist: number;
  faultServeUs: number;
  /** Working-set pages installed with UFFDIO_COPY, and its zero pages with UFFDIO_ZEROPAGE. */
  prefetchPages: number;
  prefetchZeroPages: number;
  prefetchSkipped: number;
  /** Pages in the working set, zero pages included. */
  wsPages: number;
  wsZeroPages: number;
  /** Bytes of the working set's pages file, as stored (compressed, zero pages left out). */
  wsStoredBytes: number;
  wsCodec: WsCodec;
  wsRead: WsRead;
  fetchUs: number;
  /** Checking and decoding the working set's blocks (part of verifyUs). */
  decodeUs: number;
  installUs: number;
  bytesRead: number;
  directIo: boolean;
  prefetchDone: boolean;
  pageSize: number;
  /** Time checking pages against their checksums, and how many (every page read from disk). */
  verifyUs: number;
  pagesVerified: number;
}

export interface WorkingSetFiles {
  pagesPath: string;
  indexPath: string;
}

/** The working set a prefetch reads, and how. */
export interface PrefetchFiles extends WorkingSetFiles {
  read: WsRead;
}

/** How record mode writes the working set. */
export interface RecordEncoding {
  codec: WsCodec;
  /** The codec's level (lz4: 1 fast, 2-12 LZ4HC; zstd: 1-19); the pager's default if absent. */
  level?: number;
  blockPages?: number;
}

export interface PagerOptions {
  mode: PagerMode;
  memPath: string;
  /** The page checksums of memPath (mem.sums); every page read is checked against them. */
  memSumsPath: string;
  /** The snapshot the files belong to, for messages. */
  snapshotId: string;
  /** Required for prefetch. */
  workingSet?: PrefetchFiles;
  /** Install pages unchecked (default false): only a benchmark measuring what checking costs. */
  noVerify?: boolean;
  /** Prefetch: read and install the working set only on startPrefetch(), not as soon as it can. */
  deferPrefetch?: boolean;
  log: Log;
}

interface PagerEvent {
  event: string;
  [key: string]: unknown;
}

const MILESTONES = new Set(["listening", "attached", "prefetch-done"]);
/** The reason of the exit event when the pager ends because QEMU closed the shim's socket. */
const QEMU_EXITED = "qemu exited";

/** The pager's names for what it checks, as parts of a snapshot. */
const CORRUPT_ROLES: Record<string, SnapshotPart> = {
  memory: "memory",
  checksums: "checksums",
  "working-set pages": "working-set",
  "working-set index": "working-set",
};

/** Environment that preloads the shim into QEMU for guest RAM mapped from `memPath`. */
export function shimEnv(memPath: string, extra: Record<string, string>): Record<string, string> {
  return { LD_PRELOAD: nativePath("libvhive-qemu-uffd.so"), VHIVE_MEM_PATH: memPath, ...extra };
}

export class Pager implements AsyncDisposable {
  readonly socketPath: string;
  readonly mode: PagerMode;
  /** Resolves if the pager fails or exits before it is stopped, QEMU still running; never rejects. */
  readonly failure: Promise<VhiveError>;
  /** Resolves once the pager has exited, however; what a wait for one of its events fails with. */
  readonly #ended: Promise<VhiveError>;
  readonly #child: ChildHandle;
  readonly #dir: TempDir;
  readonly #waiters: { match: (event: PagerEvent) => boolean; resolve: (event: PagerEvent) => void }[] = [];
  /** Events that happen once, kept so that a wait that starts late still sees them. */
  readonly #milestones: PagerEvent[] = [];
  readonly #log: Log;
  readonly #snapshotId: string;
  #stopping = false;
  #lastError: string | undefined;
  /** Set when the pager found a page that fails its checksum: the failure to report. */
  #corrupt: VhiveError | undefined;
  /** The reason of the pager's exit event, once it has printed one. */
  #exitReason: string | undefined;

  private constructor(options: PagerOptions, dir: TempDir) {
    this.mode = options.mode;
    this.#dir = dir;
    this.#log = options.log;
    // A short path: Unix socket paths are limited to 108 bytes.
    this.socketPath = `${dir.path}/pager.sock`;
    const args = ["--socket", this.socketPath, "--mem", options.memPath, "--mem-sums", options.memSumsPath, "--mode", options.mode];
    if (options.workingSet) args.push("--ws-pages", options.workingSet.pagesPath, "--ws-index", options.workingSet.indexPath, "--ws-read", options.workingSet.read);
    if (options.noVerify) args.push("--no-verify");
    if (options.deferPrefetch) args.push("--defer-prefetch");
    this.#child = new ChildHandle("pager", nativePath("vhive-pager"), args, { stdio: ["pipe", "pipe", "pipe"] });
    this.#child.process.stdin?.on("error", () => {}); // a dead pager is reported through `failure`
    this.#child.process.stderr?.resume();
    createInterface({ input: this.#child.process.stdout! }).on("line", (line) => this.#onLine(line));
    this.#snapshotId = options.snapshotId;
    this.#ended = this.#child.exited.then((exit) => {
      if (this.#corrupt) return this.#corrupt;
      const how = exit.signal ? `was killed by ${exit.signal}` : `exited with status ${exit.code}`;
      const why = this.#lastError ?? (this.#exitReason === QEMU_EXITED ? "QEMU exited" : undefined);
      return new VhiveError("ERR_PAGER", `the pager ${how}${why ? `: ${why}` : ""}`);
    });
    this.failure = this.#ended.then((error) => {
      // QEMU went first (the shim's socket closed): the VM reports how QEMU ended.
      const qemuWentFirst = this.#exitReason === QEMU_EXITED && this.#child.exitInfo?.code === 0;
      if (!this.#corrupt && (this.#stopping || qemuWentFirst) && this.#lastError === undefined) return new Promise<VhiveError>(() => {});
      return error;
    });
  }

  /** Start a pager and wait until it listens for the shim. */
  static async start(options: PagerOptions): Promise<Pager> {
    await assertNativeBuilt();
    const dir = await makeTempDir("pager");
    const pager = new Pager(options, dir);
    try {
      await pager.#waitFor((event) => event.event === "listening");
      return pager;
    } catch (error) {
      await pager.destroy();
      throw error;
    }
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Environment for QEMU: preload the shim and point it at this pager. */
  qemuEnv(memPath: string): Record<string, string> {
    return shimEnv(memPath, { VHIVE_UFFD_SOCKET: this.socketPath });
  }

  /** Resolves once QEMU's shim has handed over guest RAM: from then on, faults are served. */
  async attached(): Promise<void> {
    await this.#waitFor((event) => event.event === "attached");
  }

  /** A deferred prefetch: read and install the working set now (prefetchDone() says when it is in). */
  startPrefetch(): void {
    this.#child.process.stdin?.write("prefetch\n");
  }

  /** Resolves once a prefetch (modes prefetch and all) has installed its pages, with the stats then. */
  async prefetchDone(): Promise<PagerStats> {
    return (await this.#waitFor((event) => event.event === "prefetch-done")) as unknown as PagerStats;
  }

  async stats(): Promise<PagerStats> {
    const reply = this.#waitFor((event) => event.event === "stats");
    this.#child.process.stdin?.write("stats\n");
    return (await reply) as unknown as PagerStats;
  }

  /** Record mode: write the trace and the working set (each via a rename, so readers see whole files). */
  async writeWorkingSet(files: WorkingSetFiles & { tracePath: string }, encoding: RecordEncoding): Promise<WrittenEncoding> {
    if (/\s/.test(files.pagesPath + files.indexPath + files.tracePath)) {
      throw new VhiveError("ERR_VALIDATION", "working-set paths may not contain white space", { remedy: "use a state directory without spaces in its path" });
    }
    const reply = this.#waitFor((event) => event.event === "ws-written");
    const level = encoding.level ?? -1; // -1: the codec's default
    const blockPages = encoding.blockPages ?? "";
    this.#child.process.stdin?.write(`write-ws ${files.pagesPath} ${files.indexPath} ${files.tracePath} ${encoding.codec} ${level} ${blockPages}`.trimEnd() + "\n");
    const event = await reply;
    return {
      pages: Number(event.pages),
      zeroPages: Number(event.zeroPages),
      pageSize: Number(event.pageSize),
      codec: event.codec as WsCodec,
      bytes: Number(event.bytes),
      blocks: Number(event.blocks),
      blockPages: Number(event.blockPages),
      level: Number(event.level),
    };
  }

  /** Close stdin (the pager then exits) and wait; SIGKILL after a grace period. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#child.process.stdin?.end();
    await this.#child.stop(2000);
    await this.#dir.remove();
  }

  async destroy(): Promise<void> {
    this.#stopping = true;
    await this.#child.destroy();
    await this.#dir.remove();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  #onLine(line: string): void {
    let event: PagerEvent;
    try {
      event = JSON.parse(line) as PagerEvent;
    } catch {
      this.#log.warn("pager printed a line that is not JSON", { line });
      return;
    }
    if (event.event === "error") this.#lastError = String(event.message);
    if (event.event === "exit") this.#exitReason = String(event.reason);
    if (event.event === "corrupt") {
      const part = CORRUPT_ROLES[String(event.role)] ?? "memory";
      this.#corrupt = damagedFile(this.#snapshotId, part, String(event.file), String(event.problem), Number(event.offset));
    }
    if (MILESTONES.has(event.event)) this.#milestones.push(event);
    for (const waiter of [...this.#waiters]) {
      if (!waiter.match(event)) continue;
      this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
      waiter.resolve(event);
    }
  }

  /** A milestone already seen, or the next event that matches; rejects if the pager exits first. */
  #waitFor(match: (event: PagerEvent) => boolean): Promise<PagerEvent> {
    const seen = this.#milestones.find(match);
    if (seen) return Promise.resolve(seen);
    return Promise.race([
      new Promise<PagerEvent>((resolve) => this.#waiters.push({ match, resolve })),
      this.#ended.then((error) => Promise.reject(error)),
    ]);
  }
}
