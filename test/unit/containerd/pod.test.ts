import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { claimPod, podRole, readPodClaim, releasePod } from "../../../src/containerd/shim/pod.js";

const sandbox = { "io.kubernetes.cri.container-type": "sandbox" };
const container = (name: string, extra: Record<string, string> = {}) => ({ "io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.container-name": name, ...extra });
const fresh = { claimedBy: undefined };

describe("podRole", () => {
  it("hands the sandbox to runc and keeps a container outside any pod", () => {
    expect(podRole(sandbox, fresh)).toBe("runc");
    expect(podRole({}, fresh)).toBe("function");
  });

  it("makes the first container the function, and the rest runc's", () => {
    expect(podRole(container("user-container"), fresh)).toBe("function");
    expect(podRole(container("queue-proxy"), { claimedBy: "user-container" })).toBe("runc");
  });

  it("keeps the claim across a function container that failed or exited: its restart is the function again", () => {
    expect(podRole(container("sleeper"), { claimedBy: "user-container" })).toBe("runc");
    expect(podRole(container("user-container"), { claimedBy: "user-container" })).toBe("function");
  });

  it("follows the annotation, and refuses one that names no container the pod starts first", () => {
    const named = { "dev.vhive.function-container": "fn" };
    expect(podRole(container("fn", named), fresh)).toBe("function");
    expect(podRole(container("sidecar", named), { claimedBy: "fn" })).toBe("runc");
    expect(() => podRole(container("sidecar", named), fresh)).toThrow(/dev.vhive.function-container=fn names no container the pod has started: its first container is sidecar/);
  });
});

describe("the pod's claim file", () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("holds the function container's name until released", async () => {
    dir = await mkdtemp(join(tmpdir(), "vhive-pod-"));
    const socket = join(dir, "vhive-abc");
    expect(await readPodClaim(socket)).toBeUndefined();
    await claimPod(socket, "user-container");
    expect(await readPodClaim(socket)).toBe("user-container");
    await releasePod(socket);
    expect(await readPodClaim(socket)).toBeUndefined();
  });
});
