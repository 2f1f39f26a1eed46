/**
 * The host end of the guest agent (native/guest-agent/agent.c), over the VM's virtio-serial
 * port (QEMU's chardev on fd AGENT_FD). A restore calls restored() before any request reaches
 * the function: the agent credits the fresh entropy to the guest kernel, forces a CRNG reseed,
 * runs the after-restore hooks of the function's processes, and answers.
 *
 *   host -> agent   restore <hex entropy>\n
 *   agent -> host   restored <hooks> <hooks-ok> <reseed-us> <hooks-us>\n  |  error <message>\n
 */
import { randomBytes } from "node:crypto";
import { createInterface } from "node:readline";
import type { Duplex } from "node:stream";
import { VhiveError } from "../shared/errors.js";

/** Bytes of host entropy handed to a restored guest: a full reseed of a 256-bit CRNG, twice over. */
export const RESTORE_ENTROPY_BYTES = 64;

export interface AgentRestoreReply {
  /** After-restore hooks registered in the guest, and how many answered in time. */
  hooks: number;
  hooksAnswered: number;
  /** In the guest: crediting the entropy and reseeding the CRNG; then running the hooks. */
  reseedUs: number;
  hooksUs: number;
}

export class GuestAgent {
  readonly #port: Duplex;
  readonly #replies: string[] = [];
  #waiter: ((line: string) => void) | undefined;
  #closed = false;

  constructor(port: Duplex) {
    this.#port = port;
    port.on("error", () => {}); // a dead VM is reported by the VM, not by its agent's socket
    const lines = createInterface({ input: port });
    lines.on("line", (line) => {
      if (this.#waiter) this.#waiter(line);
      else this.#replies.push(line);
    });
    lines.on("close", () => {
      this.#closed = true;
      this.#waiter?.("");
    });
  }

  /**
   * Hand the guest fresh entropy now (the VM may still be paused: the agent reads it as soon as
   * it runs) and resolve with the agent's answer. Throws ERR_RESTORE if the agent reports an
   * error, closes, or does not answer within timeoutMs; the caller races this with the VM's death.
   */
  restored(options: { timeoutMs: number; entropy?: Buffer }): Promise<AgentRestoreReply> {
    const entropy = options.entropy ?? randomBytes(RESTORE_ENTROPY_BYTES);
    const reply = this.#nextLine(options.timeoutMs);
    this.#port.write(`restore ${entropy.toString("hex")}\n`);
    entropy.fill(0);
    return reply.then(parseReply);
  }

  #nextLine(timeoutMs: number): Promise<string> {
    const queued = this.#replies.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.#closed) return Promise.reject(agentError("the guest agent's port is closed"));
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        reject(agentError(`the guest agent did not answer within ${Math.round(timeoutMs)} ms`));
      }, timeoutMs);
      this.#waiter = (line) => {
        clearTimeout(timer);
        this.#waiter = undefined;
        if (this.#closed && line === "") reject(agentError("the guest agent's port closed before it answered"));
        else resolve(line);
      };
    });
  }
}

function agentError(message: string): VhiveError {
  return new VhiveError("ERR_RESTORE", `reseeding the restored guest failed: ${message}`, {
    remedy: "the snapshot's guest may be hung or damaged: check it with `vhive snapshot verify`, or create a new snapshot",
  });
}

/** The agent's answer line, parsed; exported for tests. */
export function parseReply(line: string): AgentRestoreReply {
  const restored = /^restored (\d+) (\d+) (\d+) (\d+)$/.exec(line.trim());
  if (restored) {
    const [hooks, hooksAnswered, reseedUs, hooksUs] = restored.slice(1).map(Number) as [number, number, number, number];
    return { hooks, hooksAnswered, reseedUs, hooksUs };
  }
  const error = /^error (.*)$/.exec(line.trim());
  throw agentError(error ? `the guest agent said: ${error[1]}` : `the guest agent answered ${JSON.stringify(line.slice(0, 200))}`);
}
