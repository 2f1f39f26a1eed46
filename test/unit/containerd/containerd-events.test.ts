/**
 * The event publisher against a real containerd (Debian's 1.6, a private instance: its own
 * config, root, state and sockets in a temp dir). `ctr events` prints what containerd's event
 * exchange received, decoded by containerd's own type registry, so a wrong type_url, topic or
 * envelope shows here. Needs root and the containerd package; boots no VM, takes about a second.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { events } from "../../../src/containerd/api.js";
import { EventPublisher } from "../../../src/containerd/publisher.js";
import { ChildHandle } from "../../../src/shared/child.js";
import { Cleanups } from "../test-shared/cleanups.js";
import { lineMatching, startContainerd } from "../test-shared/containerd.js";

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

describe("the event publisher against containerd", () => {
  it("delivers a TaskExit that containerd decodes and hands to its subscribers", async () => {
    const { address: grpcAddress, ttrpcAddress } = await startContainerd(cleanups);

    const printed: string[] = [];
    const subscriber = new ChildHandle("ctr events", "ctr", ["--address", grpcAddress, "events"], { stdio: ["ignore", "pipe", "pipe"] });
    cleanups.push(() => subscriber.stop());
    // ctr says nothing when its subscription starts: an event of containerd's own, caused
    // here, shows that it is listening. One made before it subscribed is never seen, so make
    // another until one is.
    let listening = false;
    const ready = lineMatching(subscriber.process.stdout!, subscriber, /\/namespaces\/create/, printed).then(() => (listening = true));
    for (let probe = 0; !listening && probe < 100; probe++) {
      const created = new ChildHandle("ctr namespaces create", "ctr", ["--address", grpcAddress, "namespaces", "create", `vhive-probe-${probe}`], { stdio: "ignore" });
      cleanups.push(() => created.destroy());
      await created.exited;
      await Promise.race([ready, sleep(200)]);
    }
    await ready;

    const exited = lineMatching(subscriber.process.stdout!, subscriber, /\/tasks\/exit/, printed);
    const publisher = new EventPublisher({ address: ttrpcAddress, namespace: "vhive-test" });
    cleanups.push(() => publisher.destroy());
    await publisher.publish(events.TaskExit, {
      containerId: "c1",
      id: "c1",
      pid: 4242,
      exitStatus: 137,
      exitedAt: new Date("2024-05-01T10:00:00.123Z"),
    });
    const line = await exited;
    const match = /^\S+ \S+ \S+ \S+ (\S+) (\/tasks\/exit) (\{.*\})$/.exec(line);
    expect(match, line).not.toBeNull();
    expect(match![1]).toBe("vhive-test");
    expect(JSON.parse(match![3]!)).toEqual({ container_id: "c1", id: "c1", pid: 4242, exit_status: 137, exited_at: "2024-05-01T10:00:00.123Z" });
    await publisher.close();
  });
});
