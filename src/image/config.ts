/**
 * What a function image runs and how it is reached. Stored in image.json; written into the
 * image as /.vhive/run, the script the guest's init executes.
 */
import shellQuote from "shell-quote";

export type Protocol = "grpc" | "http";

export interface FunctionConfig {
  /** argv of the function process. */
  argv: string[];
  env: Record<string, string>;
  workdir: string;
  /** TCP port the function listens on inside the guest. */
  port: number;
  protocol: Protocol;
  /** gRPC method, "package.Service/Method"; defaults to helloworld.Greeter/SayHello. */
  method?: string;
  /** File name of the image's .proto, kept next to image.json. */
  proto?: string;
  /** HTTP path requests go to; default "/". */
  httpPath?: string;
  /** Guest memory the function needs, MiB; the default for run and snapshot (256 if unset). */
  memMib?: number;
  /** Request data the function accepts, the first being the default (e.g. input selectors). */
  inputs?: string[];
  /** Run the entrypoint as this user and group (a container's OCI spec); root if unset. */
  user?: { uid: number; gid: number };
}

export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/**
 * The guest-side entry script. It runs under the initramfs's busybox (copied to /.vhive/busybox
 * by init), so it works in images without a shell; `env -i` gives the function exactly the
 * image's environment.
 */
export function entryScript(config: Pick<FunctionConfig, "argv" | "env" | "workdir" | "user">): string {
  const env = { PATH: DEFAULT_PATH, HOME: "/root", ...config.env };
  const assignments = Object.entries(env).map(([key, value]) => `${key}=${value}`);
  const asUser = config.user ? `/.vhive/vhive-agent --run-as ${config.user.uid}:${config.user.gid} -- ` : "";
  return [
    "# Written by vhive: the function's entrypoint, run by the guest's init.",
    `cd ${shellQuote.quote([config.workdir])} || exit 127`,
    `exec ${asUser}/.vhive/busybox env -i ${shellQuote.quote(assignments)} ${shellQuote.quote(config.argv)}`,
    "",
  ].join("\n");
}
