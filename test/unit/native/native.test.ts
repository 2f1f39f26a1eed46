/**
 * The native helpers' own C tests (native/tests/test_native.c): the pager and the QEMU shim
 * together, with a child process that maps memory the way QEMU does. Then the Pager class over
 * the real pager, with that child playing QEMU. Needs root.
 */
import { execFileSync, spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { Pager } from "../../../src/memory/index.js";
import { NoOpLog } from "../../../src/shared/log.js";
import { packagePath } from "../../../src/shared/package-root.js";
import { makeTempDir } from "../../../src/shared/tmp.js";
import { writePageSums } from "../../../src/snapshot/index.js";
import { rejection } from "../invoke/fixtures.js";
import { Cleanups } from "../test-shared/cleanups.js";

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

// Built here, not in parallel by two test files: both need build/test-native.
beforeAll(() => {
  execFileSync("make", ["-s", "-C", packagePath("native"), "all", "build/test-native"], { stdio: ["ignore", "pipe", "pipe"] });
});

describe("native pager and shim", () => {
  it("pass their C tests: lazy, record, prefetch, deferred prefetch, all, unchecked pages, bad handshake, owner death, random advice, working sets of every codec and read, damaged pages, blocks, indexes and formats, checksums", () => {
    const output = execFileSync("make", ["-s", "-C", packagePath("native"), "test"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    expect(output).toMatch(/^19 passed, 0 failed$/m);
    expect(output).not.toMatch(/^FAIL/m);
  });
});

/** A pager serving `memPath` lazily, and test-native's child mapping it as QEMU would, attached. */
async function pagerWithQemu(): Promise<{ pager: Pager; qemu: ReturnType<typeof spawn> }> {
  const dir = await makeTempDir("pager-test");
  cleanups.push(() => dir.remove());
  const memPath = join(dir.path, "mem");
  await writeFile(memPath, Buffer.alloc(2 * 1024 * 1024));
  const memSumsPath = join(dir.path, "mem.sums");
  await writePageSums(memPath, memSumsPath);
  const pager = await Pager.start({ mode: "lazy", memPath, memSumsPath, snapshotId: "test", log: new NoOpLog() });
  cleanups.push(() => pager.destroy());
  const qemu = spawn(packagePath("native", "build", "test-native"), ["--child", memPath, "1", ""], {
    env: { ...process.env, ...pager.qemuEnv(memPath) },
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = new Promise((resolve) => qemu.once("exit", resolve));
  cleanups.push(async () => {
    if (qemu.exitCode === null && qemu.signalCode === null) qemu.kill("SIGKILL");
    await exited;
  });
  // "mapped" comes after the shim has handed guest RAM to the pager and had its ack.
  await new Promise<void>((resolve, reject) => {
    qemu.stdout!.on("data", (chunk: Buffer) => chunk.toString().includes("mapped") && resolve());
    qemu.once("exit", (code) => reject(new Error(`the child exited with ${code} before mapping guest RAM`)));
  });
  return { pager, qemu };
}

/** "failed" if `failure` has resolved by now (after a turn of the event loop), else "none". */
async function failedYet(pager: Pager): Promise<string> {
  return Promise.race([pager.failure.then((error) => `failed: ${error.message}`), sleep(50).then(() => "none")]);
}

describe("Pager", () => {
  it("does not report a failure when it exits because QEMU exited", async () => {
    const { pager, qemu } = await pagerWithQemu();
    qemu.kill("SIGKILL");
    // A wait for an event ends when the pager has exited, saying why.
    const ended = await rejection(pager.prefetchDone());
    expect(ended.code).toBe("ERR_PAGER");
    expect(ended.message).toBe("the pager exited with status 0: QEMU exited");
    expect(await failedYet(pager)).toBe("none");
  });

  it("ends a wait for an event when it is destroyed meanwhile", async () => {
    const { pager } = await pagerWithQemu();
    const waiting = rejection(pager.prefetchDone());
    await pager.destroy();
    expect((await waiting).message).toBe("the pager was killed by SIGKILL");
  });

  it("reports a failure when it dies while QEMU runs", async () => {
    const { pager } = await pagerWithQemu();
    process.kill(pager.pid!, "SIGKILL");
    const failure = await pager.failure;
    expect(failure.code).toBe("ERR_PAGER");
    expect(failure.message).toBe("the pager was killed by SIGKILL");
  });
});
