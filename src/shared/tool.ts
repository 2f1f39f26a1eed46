/**
 * Running host programs (mmdebstrap, mkfs.ext4, lz4, cpio, umoci) to completion. A missing
 * program becomes ERR_TOOL_MISSING naming the Debian package; a failure keeps the tail of
 * stderr so the user sees what the tool said.
 */
import { ChildHandle } from "./child.js";
import { VhiveError, type VhiveErrorCode } from "./errors.js";

/** Debian package that provides each host program vhive runs. */
export const TOOL_PACKAGES: Record<string, string> = {
  "qemu-system-x86_64": "qemu-system-x86",
  mmdebstrap: "mmdebstrap",
  "mkfs.ext4": "e2fsprogs",
  debugfs: "e2fsprogs",
  lz4: "lz4",
  cpio: "cpio",
  umoci: "umoci",
  busybox: "busybox-static",
};

export function toolMissing(tool: string): VhiveError {
  const pkg = TOOL_PACKAGES[tool] ?? tool;
  return new VhiveError("ERR_TOOL_MISSING", `${tool} is not installed`, {
    remedy: `apt-get install ${pkg} (or run scripts/setup.sh, which installs everything vhive needs)`,
  });
}

export interface RunToolOptions {
  /** Error code when the tool exits non-zero. */
  failCode: VhiveErrorCode;
  /** What the step was, for the message: "mkfs.ext4 of the root filesystem". */
  step: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: Buffer | string;
  signal?: AbortSignal;
  /** Called with each line of stdout and stderr as it arrives (progress displays). */
  onLine?: (line: string) => void;
  /** Stream stdout here instead of keeping it (large outputs). */
  stdout?: NodeJS.WritableStream;
  /** Exit statuses besides 0 that are answers, not failures (a checker's "found damage"). */
  acceptCodes?: readonly number[];
}

export interface RunToolResult {
  stdout: string;
  stderr: string;
  code: number;
}

const TAIL_LINES = 20;

export async function runTool(tool: string, args: readonly string[], options: RunToolOptions): Promise<RunToolResult> {
  if (options.signal?.aborted) throw new VhiveError("ERR_ABORTED", `${options.step} was cancelled`);
  const child = new ChildHandle(tool, tool, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
  });
  let spawnError: NodeJS.ErrnoException | undefined;
  child.process.once("error", (error: NodeJS.ErrnoException) => {
    spawnError = error;
  });
  const onAbort = () => void child.stop();
  options.signal?.addEventListener("abort", onAbort, { once: true });

  const stdoutChunks: Buffer[] = [];
  const stderrLines: string[] = [];
  let stderrAll = "";
  const lineSplitter = (keep: (line: string) => void) => {
    let partial = "";
    return (chunk: Buffer) => {
      const text = partial + chunk.toString("utf8");
      const lines = text.split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) keep(line);
    };
  };
  child.process.stdout?.on(
    "data",
    (chunk: Buffer) => {
      if (options.stdout) options.stdout.write(chunk);
      else stdoutChunks.push(chunk);
    },
  );
  if (options.onLine) child.process.stdout?.on("data", lineSplitter(options.onLine));
  child.process.stderr?.on(
    "data",
    lineSplitter((line) => {
      stderrAll += line + "\n";
      stderrLines.push(line);
      if (stderrLines.length > TAIL_LINES) stderrLines.shift();
      options.onLine?.(line);
    }),
  );
  if (options.input !== undefined) child.process.stdin?.end(options.input);

  try {
    const exit = await child.exited;
    if (spawnError?.code === "ENOENT") throw toolMissing(tool);
    if (spawnError) throw new VhiveError(options.failCode, `${options.step}: could not start ${tool}: ${spawnError.message}`, { cause: spawnError });
    if (options.signal?.aborted) throw new VhiveError("ERR_ABORTED", `${options.step} was cancelled`);
    if (exit.code !== 0 && !(exit.code !== null && options.acceptCodes?.includes(exit.code))) {
      const how = exit.signal ? `was killed by ${exit.signal}` : `exited with status ${exit.code}`;
      throw new VhiveError(options.failCode, `${options.step} failed: ${tool} ${how}`, {
        details: stderrLines.join("\n"),
      });
    }
    return { stdout: Buffer.concat(stdoutChunks).toString("utf8"), stderr: stderrAll, code: exit.code ?? 0 };
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
  }
}
