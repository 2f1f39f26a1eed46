/**
 * An exported archive through containerd's own importer (Debian's 1.6, a private instance):
 * `ctr images import` names the image by its reference, stores the config vhive wrote, and
 * unpacks the layer into an overlayfs snapshot, where containerd's applier must have made the
 * setuid file, the owners, the hard link and the device node. Needs root and the containerd
 * package; boots no VM.
 */
import { lstat, readdir, readlink } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { exportImage } from "../../../src/image/index.js";
import { StatePaths } from "../../../src/shared/paths.js";
import { makeTempDir } from "../../../src/shared/tmp.js";
import { Cleanups } from "../test-shared/cleanups.js";
import { startContainerd } from "../test-shared/containerd.js";
import { TINY_CONFIG, makeTinyImage } from "../test-shared/tiny-image.js";

const cleanups = new Cleanups();
afterEach(() => cleanups.run());
const NAMESPACE = "vhive-export-test";

describe("an exported image in containerd", () => {
  it("ctr images import names it, keeps its config and unpacks its files as they were", async () => {
    const state = await makeTempDir("export-state");
    cleanups.push(() => state.remove());
    const paths = new StatePaths(state.path);
    await makeTinyImage(paths);
    const exported = await exportImage(paths, "tiny", join(state.path, "tiny.tar"));
    const containerd = await startContainerd(cleanups);
    const ctr = (...args: string[]) => containerd.ctr(["--namespace", NAMESPACE, ...args]);

    // The default snapshotter, overlayfs, unpacks it as part of the import.
    expect(await ctr("images", "import", exported.path)).toContain(`unpacking vhive.local/tiny:latest (${exported.manifestDigest})...done`);
    const listed = (await ctr("images", "ls")).split("\n").filter((line) => line.startsWith("vhive.local/tiny:latest "));
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatch(new RegExp(`application/vnd\\.oci\\.image\\.manifest\\.v1\\+json\\s+${exported.manifestDigest}\\s.*linux/amd64`));
    expect(await ctr("images", "check")).toMatch(/vhive\.local\/tiny:latest\s.*complete \(2\/2\).*\strue\s*$/m);

    // What containerd stored, read through its content store.
    const manifest = JSON.parse(await ctr("content", "get", exported.manifestDigest));
    const config = JSON.parse(await ctr("content", "get", manifest.config.digest));
    expect(config.config).toMatchObject({
      Entrypoint: TINY_CONFIG.argv,
      WorkingDir: "/app",
      ExposedPorts: { "8080/tcp": {} },
      Labels: { "dev.vhive.protocol": "http", "dev.vhive.port": "8080", "dev.vhive.inputs": '["one","two"]' },
    });
    expect(config.config.Env).toContain("GREETING=a=b");

    // The unpacked layer, as containerd's applier wrote it.
    const snapshots = join(containerd.root, "io.containerd.snapshotter.v1.overlayfs", "snapshots");
    const ids = await readdir(snapshots);
    expect(ids).toHaveLength(1);
    const fs = join(snapshots, ids[0]!, "fs");
    const at = (path: string) => lstat(join(fs, path));
    expect((await at("bin/setuid")).mode).toBe(0o104755);
    expect((await at("tmp")).mode).toBe(0o41777);
    expect(await at("etc/owned")).toMatchObject({ uid: 1234, gid: 5678, mode: 0o100640 });
    expect(await at("etc/big-ids")).toMatchObject({ uid: 300_000, gid: 300_001 });
    expect((await at("etc/hard-b")).ino).toBe((await at("etc/hard-a")).ino);
    const devNull = await at("dev/null");
    expect(devNull.isCharacterDevice()).toBe(true);
    expect(devNull.rdev).toBe((1 << 8) | 3);
    expect((await at("run/fifo")).isFIFO()).toBe(true);
    expect(await readlink(join(fs, "abs-link"))).toBe("/bin/busybox");
    expect((await readdir(fs)).sort()).toEqual([".vhive", "abs-link", "app", "bin", "deep", "dev", "etc", "run", "slow-link", "tmp"]);
  });
});
