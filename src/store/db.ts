/**
 * The daemon's SQLite database (state/vhive.db, better-sqlite3): deployed functions and
 * invocation records. WAL journal, so a `kill -9` of the daemon loses nothing that was
 * committed; every write is one statement (or one transaction), so there is no half-written state.
 *
 *   functions(name PRIMARY KEY, record JSON, updated_at, keepalive_policy)
 *   invocations(id, function, instance, start, status, error_code, error_message, total_ms,
 *               breakdown JSON, at, note)
 *
 * Images, snapshots and working sets are files in the state directory, not rows here.
 *
 * The schema's version is SQLite's user_version; opening a database runs the migrations it has
 * not had yet, in one transaction each, so a database from an older vhive keeps its functions
 * and records (1: keepalive_policy, 'fixed' for every function deployed before; 2: an
 * invocation's note, what the daemon did to serve it, such as recovering from a damaged snapshot).
 */
import Database from "better-sqlite3";
import { VhiveError, messageOf } from "../shared/errors.js";
import type { FunctionRecord, InvocationRecord, NewInvocation } from "./types.js";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS functions (
  name TEXT PRIMARY KEY,
  record TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS invocations (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  function TEXT NOT NULL,
  instance TEXT,
  start TEXT,
  status TEXT NOT NULL,
  error_code TEXT,
  error_message TEXT,
  total_ms REAL NOT NULL,
  breakdown TEXT NOT NULL,
  at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS invocations_by_function ON invocations (function, id);
`;

/** Migration n takes the schema from version n to n + 1. */
const MIGRATIONS: readonly string[] = [
  "ALTER TABLE functions ADD COLUMN keepalive_policy TEXT NOT NULL DEFAULT 'fixed'",
  "ALTER TABLE invocations ADD COLUMN note TEXT",
];

function migrate(db: Database.Database): void {
  const version = db.pragma("user_version", { simple: true }) as number;
  for (let next = version; next < MIGRATIONS.length; next++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[next]!);
      db.pragma(`user_version = ${next + 1}`);
    })();
  }
}

interface FunctionRow {
  record: string;
  keepalive_policy: string;
}

function functionOf(row: FunctionRow): FunctionRecord {
  return { ...(JSON.parse(row.record) as FunctionRecord), keepalivePolicy: row.keepalive_policy as FunctionRecord["keepalivePolicy"] };
}

interface InvocationRow {
  id: number;
  function: string;
  instance: string | null;
  start: string | null;
  status: string;
  error_code: string | null;
  error_message: string | null;
  total_ms: number;
  breakdown: string;
  at: string;
  note: string | null;
}

function storeError(step: string, error: unknown): VhiveError {
  return new VhiveError("ERR_STORE", `${step}: ${messageOf(error)}`, { cause: error });
}

/** Every statement the store runs, prepared once when it opens (an invocation is recorded per request). */
function prepareStatements(db: Database.Database) {
  return {
    putFunction: db.prepare(
      "INSERT INTO functions (name, record, updated_at, keepalive_policy) VALUES (?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET record = excluded.record, updated_at = excluded.updated_at, keepalive_policy = excluded.keepalive_policy",
    ),
    getFunction: db.prepare("SELECT record, keepalive_policy FROM functions WHERE name = ?"),
    listFunctions: db.prepare("SELECT record, keepalive_policy FROM functions ORDER BY name"),
    deleteFunction: db.prepare("DELETE FROM functions WHERE name = ?"),
    addInvocation: db.prepare("INSERT INTO invocations (function, instance, start, status, error_code, error_message, total_ms, breakdown, at, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
    invocations: db.prepare("SELECT * FROM (SELECT * FROM invocations WHERE function = ? ORDER BY id DESC LIMIT ?) ORDER BY id"),
  };
}

export class Store {
  readonly #db: Database.Database;
  readonly #statements: ReturnType<typeof prepareStatements>;
  #closed = false;

  private constructor(db: Database.Database) {
    this.#db = db;
    this.#statements = prepareStatements(db);
  }

  /** Open (creating if needed) the database at `path`; ":memory:" for tests. Throws ERR_STORE. */
  static open(path: string): Store {
    try {
      const db = new Database(path);
      db.pragma("journal_mode = WAL");
      // NORMAL in WAL mode survives a crash of the process (not of the machine's power).
      db.pragma("synchronous = NORMAL");
      db.pragma("busy_timeout = 5000");
      db.exec(SCHEMA);
      migrate(db);
      return new Store(db);
    } catch (error) {
      throw storeError(`opening ${path}`, error);
    }
  }

  putFunction(record: FunctionRecord): void {
    this.#run("saving a function", () => this.#statements.putFunction.run(record.name, JSON.stringify(record), record.updatedAt, record.keepalivePolicy));
  }

  getFunction(name: string): FunctionRecord | undefined {
    const row = this.#run("reading a function", () => this.#statements.getFunction.get(name) as FunctionRow | undefined);
    return row ? functionOf(row) : undefined;
  }

  listFunctions(): FunctionRecord[] {
    const rows = this.#run("listing functions", () => this.#statements.listFunctions.all() as FunctionRow[]);
    return rows.map(functionOf);
  }

  /** Remove a function; its invocation records stay. Returns whether it existed. */
  deleteFunction(name: string): boolean {
    return this.#run("removing a function", () => this.#statements.deleteFunction.run(name).changes > 0);
  }

  addInvocation(invocation: NewInvocation): number {
    const info = this.#run("recording an invocation", () =>
      this.#statements.addInvocation.run(
        invocation.function,
        invocation.instance,
        invocation.start,
        invocation.status,
        invocation.errorCode,
        invocation.errorMessage,
        invocation.totalMs,
        JSON.stringify(invocation.breakdown),
        invocation.at,
        invocation.note ?? null,
      ),
    );
    return Number(info.lastInsertRowid);
  }

  /** The newest `limit` invocations of a function, oldest first. */
  invocations(fn: string, limit = 100): InvocationRecord[] {
    const rows = this.#run("reading invocations", () =>
      this.#statements.invocations.all(fn, limit) as InvocationRow[],
    );
    return rows.map((row) => ({
      id: row.id,
      function: row.function,
      instance: row.instance,
      start: row.start as InvocationRecord["start"],
      status: row.status as InvocationRecord["status"],
      errorCode: row.error_code,
      errorMessage: row.error_message,
      totalMs: row.total_ms,
      breakdown: JSON.parse(row.breakdown) as Record<string, number>,
      at: row.at,
      note: row.note,
    }));
  }

  /** Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }

  #run<T>(step: string, run: () => T): T {
    if (this.#closed) throw new VhiveError("ERR_DISPOSED", `the store is closed (${step})`);
    try {
      return run();
    } catch (error) {
      throw storeError(step, error);
    }
  }
}
