import { Duplex } from "node:stream";
import { describe, expect, it } from "vitest";
import { GuestAgent, parseReply } from "../../../src/vm/agent.js";

/** The host's end of the agent's port: what the host wrote, and a way to answer as the guest. */
function port(): { host: Duplex; written: string[]; answer: (line: string) => void; close: () => void } {
  const written: string[] = [];
  const host = new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, done) {
      written.push(chunk.toString());
      done();
    },
  });
  return { host, written, answer: (line) => host.push(line + "\n"), close: () => host.push(null) };
}

describe("the guest agent's host end", () => {
  it("hands the guest fresh entropy in hex, different every time, and reads its answer", async () => {
    const p = port();
    const agent = new GuestAgent(p.host);
    const first = agent.restored({ timeoutMs: 1000 });
    p.answer("restored 1 1 420 80");
    expect(await first).toEqual({ hooks: 1, hooksAnswered: 1, reseedUs: 420, hooksUs: 80 });
    const second = agent.restored({ timeoutMs: 1000 });
    p.answer("restored 0 0 400 1");
    await second;
    expect(p.written).toHaveLength(2);
    expect(p.written[0]).toMatch(/^restore [0-9a-f]{128}\n$/);
    expect(p.written[0]).not.toBe(p.written[1]);
  });

  it("fails with the agent's own error, a timeout, or a closed port", async () => {
    expect(() => parseReply("error RNDADDENTROPY failed: Operation not permitted")).toThrow(/the guest agent said: RNDADDENTROPY failed/);
    const p = port();
    await expect(new GuestAgent(p.host).restored({ timeoutMs: 20 })).rejects.toMatchObject({ code: "ERR_RESTORE", message: expect.stringContaining("did not answer within 20 ms") });
    const closed = port();
    const agent = new GuestAgent(closed.host);
    const reply = agent.restored({ timeoutMs: 1000 });
    closed.close();
    await expect(reply).rejects.toMatchObject({ code: "ERR_RESTORE" });
  });
});
