/**
 * Logging: one Log interface injected everywhere. The CLI uses a pino logger that writes to
 * stderr (so --json output on stdout stays clean); tests use NoOpLog or an in-memory log.
 */
import { pino } from "pino";

export type LogFields = Record<string, unknown>;

export interface Log {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A log that adds `fields` to every line, as vHive's WithFields does. */
  child(fields: LogFields): Log;
}

export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

class PinoLog implements Log {
  readonly #logger: pino.Logger;
  constructor(logger: pino.Logger) {
    this.#logger = logger;
  }
  debug(msg: string, fields: LogFields = {}): void {
    this.#logger.debug(fields, msg);
  }
  info(msg: string, fields: LogFields = {}): void {
    this.#logger.info(fields, msg);
  }
  warn(msg: string, fields: LogFields = {}): void {
    this.#logger.warn(fields, msg);
  }
  error(msg: string, fields: LogFields = {}): void {
    this.#logger.error(fields, msg);
  }
  child(fields: LogFields): Log {
    return new PinoLog(this.#logger.child(fields));
  }
}

/** A pino log on stderr (fd 2), synchronous so lines are not lost when the CLI exits. */
export function createLog(level: LogLevel): Log {
  return new PinoLog(pino({ level, base: undefined }, pino.destination({ fd: 2, sync: true })));
}

export class NoOpLog implements Log {
  debug(): void {}
  info(): void {}
  warn(): void {}
  error(): void {}
  child(): Log {
    return this;
  }
}

/** Keeps lines in memory so tests can assert on what was logged. */
export class MemoryLog implements Log {
  readonly lines: { level: string; msg: string; fields: LogFields }[];
  readonly #fields: LogFields;
  constructor(lines: MemoryLog["lines"] = [], fields: LogFields = {}) {
    this.lines = lines;
    this.#fields = fields;
  }
  #push(level: string, msg: string, fields: LogFields = {}): void {
    this.lines.push({ level, msg, fields: { ...this.#fields, ...fields } });
  }
  debug(msg: string, fields?: LogFields): void {
    this.#push("debug", msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.#push("info", msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.#push("warn", msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.#push("error", msg, fields);
  }
  child(fields: LogFields): Log {
    return new MemoryLog(this.lines, { ...this.#fields, ...fields });
  }
}
