/**
 * The guest's serial console: every byte goes to a log file, and each line is timestamped and
 * parsed for the markers init.sh prints ("vhive-init: ...") and for kernel panics. The last
 * lines are kept in memory so errors can show them.
 */
import { EventEmitter } from "node:events";
import { createWriteStream, type WriteStream } from "node:fs";
import type { Readable } from "node:stream";

export type GuestEvent =
  | { kind: "init-start"; atMs: number }
  | { kind: "probe-ok"; atMs: number }
  | { kind: "exec"; atMs: number }
  | { kind: "exit"; atMs: number; status: number }
  | { kind: "init-error"; atMs: number; message: string }
  | { kind: "panic"; atMs: number; message: string };

const MARKER = "vhive-init: ";

/** Parse one console line into a guest event, if it is one. */
export function parseConsoleLine(line: string, atMs: number): GuestEvent | undefined {
  const panic = /Kernel panic - not syncing: (.*)$/.exec(line);
  if (panic) return { kind: "panic", atMs, message: panic[1]!.trim() };
  const at = line.indexOf(MARKER);
  if (at < 0) return undefined;
  const [word = "", ...rest] = line.slice(at + MARKER.length).trim().split(" ");
  const detail = rest.join(" ");
  switch (word) {
    case "start":
      return { kind: "init-start", atMs };
    case "probe-ok":
      return { kind: "probe-ok", atMs };
    case "exec":
      return { kind: "exec", atMs };
    case "exit":
      return { kind: "exit", atMs, status: Number.parseInt(detail, 10) };
    case "error":
      return { kind: "init-error", atMs, message: detail };
    default:
      return undefined;
  }
}

export class SerialConsole {
  readonly logPath: string;
  readonly #log: WriteStream;
  readonly #tail: string[] = [];
  readonly #tailLines: number;
  readonly #events = new EventEmitter();
  readonly #seen: GuestEvent[] = [];
  readonly #closed: Promise<void>;
  #partial = "";

  constructor(input: Readable, logPath: string, tailLines = 20) {
    this.logPath = logPath;
    this.#tailLines = tailLines;
    this.#log = createWriteStream(logPath);
    this.#log.on("error", () => {}); // a full disk must not take the VM down; the tail stays in memory
    input.on("data", (chunk: Buffer) => this.#onData(chunk));
    this.#closed = new Promise((resolve) => {
      input.once("close", () => {
        if (this.#partial) this.#onLine(this.#partial);
        this.#partial = "";
        this.#log.end(() => resolve());
      });
    });
  }

  /** Guest events seen so far, in order. */
  get events(): readonly GuestEvent[] {
    return this.#seen;
  }

  /** The last lines printed (carriage returns and escape codes removed). */
  tail(): string {
    return this.#tail.join("\n");
  }

  onEvent(listener: (event: GuestEvent) => void): () => void {
    this.#events.on("event", listener);
    return () => this.#events.off("event", listener);
  }

  /**
   * The function's output from now on: every line but init's markers, and in a boot only from
   * the entrypoint's start (init's own set-up is not the function's); a restored guest's from
   * its first line.
   */
  onLine(listener: (line: string) => void): () => void {
    this.#events.on("line", listener);
    return () => this.#events.off("line", listener);
  }

  /** Resolves when the console's pipe has closed and the log file is flushed. */
  closed(): Promise<void> {
    return this.#closed;
  }

  #onData(chunk: Buffer): void {
    this.#log.write(chunk);
    const lines = (this.#partial + chunk.toString("utf8")).split("\n");
    this.#partial = lines.pop() ?? "";
    for (const line of lines) this.#onLine(line);
  }

  #onLine(raw: string): void {
    // eslint-disable-next-line no-control-regex
    const line = raw.replace(/\r/g, "").replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "");
    this.#tail.push(line);
    if (this.#tail.length > this.#tailLines) this.#tail.shift();
    const event = parseConsoleLine(line, performance.now());
    if (event) {
      this.#seen.push(event);
      this.#events.emit("event", event);
    } else if (!line.includes(MARKER) && (!this.#seen.some((seen) => seen.kind === "init-start") || this.#seen.some((seen) => seen.kind === "exec"))) {
      this.#events.emit("line", line);
    }
  }
}
