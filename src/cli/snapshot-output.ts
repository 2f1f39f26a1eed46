/** How the snapshot commands print snapshots and restores. */
import { SHORT_ID_LENGTH } from "../image/index.js";
import { RESTORE_PHASES, type RestorePhase } from "../metrics/index.js";
import type { RestoreResult } from "../start/index.js";
import type { StoredSnapshot } from "../snapshot/index.js";
import { formatBytes, formatMs, formatTimestamp, table } from "./format.js";

export function snapshotJson(snapshot: StoredSnapshot) {
  const { meta } = snapshot;
  return {
    id: meta.id,
    function: meta.function,
    imageId: meta.imageId,
    createdAt: meta.createdAt,
    createMs: meta.createMs,
    checksumMs: meta.checksumMs,
    memBytes: meta.files.mem.bytes,
    stateBytes: meta.files.state.bytes,
    dir: snapshot.dir,
    fingerprint: meta.fingerprint,
  };
}

export function snapshotLine(snapshot: StoredSnapshot): string[] {
  const { meta } = snapshot;
  return [
    meta.id,
    meta.function,
    meta.imageId.slice(0, SHORT_ID_LENGTH),
    `${meta.fingerprint.memMib} MiB`,
    formatBytes(meta.files.state.bytes),
    meta.fingerprint.accel,
    formatTimestamp(meta.createdAt),
  ];
}

export function describeRestore(result: RestoreResult): string {
  const phases = Object.keys(RESTORE_PHASES) as RestorePhase[];
  return [
    `reply: ${result.text}`,
    "",
    table([
      ["total", formatMs(result.totalMs), `${result.snapshot.function} snapshot ${result.snapshot.id}, mode ${result.mode}, under ${result.accel}`],
      ...phases.map((phase) => [`  ${phase}`, formatMs(result.breakdown[phase]), RESTORE_PHASES[phase]]),
      ["faults", String(result.faults), result.pager ? "page faults served by the pager" : "page faults of QEMU that needed I/O"],
      ["wsPages", `${result.wsPages} (${formatBytes(result.wsBytes)})`, result.mode === "record" ? "working set recorded" : "pages installed before resume"],
      ...(result.wsCodec
        ? [["wsDiskBytes", formatBytes(result.wsDiskBytes), `the working set on disk (${result.wsCodec}${result.wsRead ? `, read ${result.wsRead}` : ""}; zero pages not stored)`]]
        : []),
      ["fetchWsMs", formatMs(result.fetchWsMs), "reading the working set"],
      ["installWsMs", formatMs(result.installWsMs), "installing it (UFFDIO_COPY, UFFDIO_ZEROPAGE for zero pages)"],
      ...(result.verifyMs === null ? [] : [["verifyMs", formatMs(result.verifyMs), "checking the pages read against their checksums (within the two above)"]]),
      ["majorFaults", String(result.majorFaults), "page faults of QEMU that needed I/O"],
      ["bytesRead", formatBytes(result.bytesRead), "read from storage by QEMU and the pager (page-cache hits excluded)"],
      ...(result.pooled
        ? [
            ["prestartMs", formatMs(result.pooled.prestartMs), "pre-starting the pooled VMM, before the cold start (not in total)"],
            ["idle PSS", formatBytes(result.pooled.idle.pssBytes), `what the pooled VMM held while it waited: QEMU ${formatBytes(result.pooled.idle.qemuPssBytes)}, pager ${formatBytes(result.pooled.idle.pagerPssBytes)}`],
            ["idle private", formatBytes(result.pooled.idle.privateBytes), "of that, pages no other process maps"],
          ]
        : []),
    ]),
  ].join("\n");
}
