import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { NAMESPACE_METADATA_KEY, events, eventsService } from "../../../src/containerd/api.js";
import { EventPublisher, topicOf } from "../../../src/containerd/publisher.js";
import { GrpcCode, TtrpcServer, TtrpcStatusError, type CallContext } from "../../../src/containerd/ttrpc/index.js";
import { MemoryLog } from "../../../src/shared/log.js";
import { makeTempDir } from "../../../src/shared/tmp.js";
import { Cleanups } from "../test-shared/cleanups.js";

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

interface Forwarded {
  envelope: eventsService.Envelope;
  metadata: CallContext["metadata"];
}

/** containerd's side: an Events service on a ttrpc socket that records what it is sent. */
async function fakeContainerd(path: string, answer: () => void = () => {}): Promise<{ server: TtrpcServer; forwarded: Forwarded[] }> {
  const forwarded: Forwarded[] = [];
  const server = new TtrpcServer();
  server.register(eventsService.EventsDefinition, {
    forward: (request, context) => {
      answer();
      forwarded.push({ envelope: request.envelope!, metadata: context.metadata });
      return {};
    },
  });
  await server.listen({ path });
  cleanups.push(() => server.destroy());
  return { server, forwarded };
}

async function socketPath(): Promise<string> {
  const dir = await makeTempDir("publisher-test");
  cleanups.push(() => dir.remove());
  return join(dir.path, "containerd.sock.ttrpc");
}

function publisher(address: string, log = new MemoryLog()): EventPublisher {
  const publisher = new EventPublisher({ address, namespace: "k8s.io", log, retryDelayMs: 20, maxRetries: 2 });
  cleanups.push(() => publisher.destroy());
  return publisher;
}

describe("the event publisher", () => {
  it("forwards a task event in an Envelope, packed in an Any named by the event's full name, as containerd's shim does", async () => {
    const address = await socketPath();
    const { forwarded } = await fakeContainerd(address);
    const before = Date.now();
    const exitedAt = new Date("2024-05-01T10:00:00.123Z");
    await publisher(address).publish(events.TaskExit, { containerId: "c1", id: "c1", pid: 4242, exitStatus: 137, exitedAt });
    expect(forwarded).toHaveLength(1);
    const { envelope, metadata } = forwarded[0]!;
    expect(envelope.namespace).toBe("k8s.io");
    expect(envelope.topic).toBe("/tasks/exit");
    expect(envelope.timestamp!.getTime()).toBeGreaterThanOrEqual(before);
    expect(envelope.event!.typeUrl).toBe("containerd.events.TaskExit");
    expect(events.TaskExit.decode(envelope.event!.value)).toEqual({ containerId: "c1", id: "c1", pid: 4242, exitStatus: 137, exitedAt });
    expect(metadata.get(NAMESPACE_METADATA_KEY)).toEqual(["k8s.io"]);
  });

  it("names each task event's topic as containerd does", () => {
    expect(topicOf(events.TaskCreate)).toBe("/tasks/create");
    expect(topicOf(events.TaskStart)).toBe("/tasks/start");
    expect(topicOf(events.TaskDelete)).toBe("/tasks/delete");
    expect(topicOf(events.TaskOOM)).toBe("/tasks/oom");
    expect(topicOf(events.TaskExecAdded)).toBe("/tasks/exec-added");
    expect(topicOf(events.TaskExecStarted)).toBe("/tasks/exec-started");
    expect(topicOf(events.TaskPaused)).toBe("/tasks/paused");
    expect(topicOf(events.TaskResumed)).toBe("/tasks/resumed");
    expect(topicOf(events.TaskCheckpointed)).toBe("/tasks/checkpointed");
  });

  it("reconnects at once when containerd restarted since the last event", async () => {
    const address = await socketPath();
    const first = await fakeContainerd(address);
    const events_ = publisher(address);
    await events_.publish(events.TaskStart, { containerId: "c1", pid: 1 });
    await first.server.destroy();
    const second = await fakeContainerd(address);
    await events_.publish(events.TaskExit, { containerId: "c1", exitStatus: 0 });
    expect(first.forwarded.map((f) => f.envelope.topic)).toEqual(["/tasks/start"]);
    expect(second.forwarded.map((f) => f.envelope.topic)).toEqual(["/tasks/exit"]);
  });

  it("rejects when containerd cannot be reached, and delivers the event on a retry once it can", async () => {
    const address = await socketPath();
    const log = new MemoryLog();
    const events_ = publisher(address, log);
    await expect(events_.publish(events.TaskExit, { containerId: "c1" })).rejects.toMatchObject({ code: "ERR_TTRPC_CONNECT" });
    expect(events_.queuedCount).toBe(1);
    const { forwarded } = await fakeContainerd(address);
    await expect.poll(() => forwarded.length).toBe(1);
    expect(forwarded[0]!.envelope.topic).toBe("/tasks/exit");
    await expect.poll(() => log.lines.some((line) => line.msg === "event delivered on retry")).toBe(true);
  });

  it("drops an event after its retries, saying so in the log", async () => {
    const address = await socketPath();
    let calls = 0;
    await fakeContainerd(address, () => {
      calls++;
      throw new TtrpcStatusError(GrpcCode.UNAVAILABLE, "exchange is busy");
    });
    const log = new MemoryLog();
    await expect(publisher(address, log).publish(events.TaskOOM, { containerId: "c1" })).rejects.toMatchObject({ grpcCode: GrpcCode.UNAVAILABLE });
    await expect.poll(() => log.lines.some((line) => line.msg === "event dropped after retries")).toBe(true);
    expect(calls).toBe(3); // the first try and 2 retries
  });

  it("close() drops the retries not yet made; publishing after it is ERR_DISPOSED", async () => {
    const address = await socketPath();
    const log = new MemoryLog();
    const events_ = publisher(address, log);
    await expect(events_.publish(events.TaskExit, { containerId: "c1" })).rejects.toMatchObject({ code: "ERR_TTRPC_CONNECT" });
    await events_.close();
    expect(events_.queuedCount).toBe(0);
    expect(log.lines.map((line) => line.msg)).toContain("event dropped: the publisher closed before it was delivered");
    await expect(events_.publish(events.TaskExit, { containerId: "c1" })).rejects.toMatchObject({ code: "ERR_DISPOSED" });
  });
});
