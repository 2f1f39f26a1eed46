import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { QmpClient } from "../../../src/vm/qmp.js";

/** A fake QEMU monitor: what the client writes arrives on `sent`, replies go to `reply`. */
function fakeMonitor() {
  const toClient = new PassThrough();
  const fromClient = new PassThrough();
  const sent: Record<string, unknown>[] = [];
  fromClient.on("data", (chunk: Buffer) => {
    for (const line of chunk.toString().split("\n").filter(Boolean)) sent.push(JSON.parse(line));
  });
  const client = new QmpClient(toClient, fromClient);
  const reply = (message: unknown) => toClient.write(JSON.stringify(message) + "\r\n");
  const greet = () => reply({ QMP: { version: { qemu: { major: 7, minor: 2, micro: 22 } }, capabilities: [] } });
  return { client, sent, reply, greet, close: () => toClient.end() };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("QMP client", () => {
  it("negotiates capabilities after the greeting", async () => {
    const monitor = fakeMonitor();
    const negotiated = monitor.client.negotiate();
    monitor.greet();
    await tick();
    expect(monitor.sent).toEqual([{ execute: "qmp_capabilities", id: "vhive-0" }]);
    monitor.reply({ return: {}, id: "vhive-0" });
    expect(await negotiated).toMatchObject({ version: { qemu: { major: 7 } } });
  });

  it("rejects a greeting that is not QMP", async () => {
    const monitor = fakeMonitor();
    const negotiated = monitor.client.negotiate();
    monitor.reply({ hello: 1 });
    await expect(negotiated).rejects.toMatchObject({ code: "ERR_QMP_GREETING" });
  });

  it("matches replies to commands by id, even out of order, and passes events on", async () => {
    const monitor = fakeMonitor();
    monitor.greet();
    const first = monitor.client.execute("query-status");
    const second = monitor.client.execute("query-name");
    const stopped = monitor.client.waitEvent("STOP");
    await tick();
    monitor.reply({ event: "STOP", timestamp: { seconds: 1, microseconds: 2 } });
    monitor.reply({ return: { name: "vm" }, id: "vhive-1" });
    monitor.reply({ return: { status: "paused" }, id: "vhive-0" });
    expect(await first).toEqual({ status: "paused" });
    expect(await second).toEqual({ name: "vm" });
    expect((await stopped).event).toBe("STOP");
  });

  it("a rejected command carries the QMP error class and the message sent", async () => {
    const monitor = fakeMonitor();
    monitor.greet();
    const failed = monitor.client.execute("migrate", { uri: "exec:false" });
    await tick();
    monitor.reply({ error: { class: "GenericError", desc: "no migration" }, id: "vhive-0" });
    await expect(failed).rejects.toMatchObject({
      code: "ERR_QMP_COMMAND",
      message: "QMP migrate failed: GenericError: no migration",
      details: expect.stringContaining('"uri":"exec:false"'),
    });
  });

  it("a dropped link rejects every command in flight, and later ones", async () => {
    const monitor = fakeMonitor();
    monitor.greet();
    const inFlight = monitor.client.execute("cont");
    await tick();
    monitor.close();
    await expect(inFlight).rejects.toMatchObject({ code: "ERR_QMP_DISCONNECTED", message: expect.stringContaining("while cont was in flight") });
    await expect(monitor.client.execute("stop")).rejects.toMatchObject({ code: "ERR_QMP_DISCONNECTED" });
  });
});
