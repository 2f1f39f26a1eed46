/** Free loopback ports for hostfwd. */
import { createServer } from "node:net";
import { VhiveError } from "../shared/errors.js";

/** A port the kernel just handed out on 127.0.0.1; another process may still take it first. */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/** Fails with ERR_PORT_IN_USE if something already listens on address:port (default 127.0.0.1). */
export function assertPortFree(port: number, address = "127.0.0.1"): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", (error: NodeJS.ErrnoException) =>
      reject(
        error.code === "EADDRINUSE"
          ? new VhiveError("ERR_PORT_IN_USE", `host port ${port} is already taken`, {
              remedy: "pick another port with --host-port, or leave it out to use a free one",
            })
          : error,
      ),
    );
    server.listen(port, address, () => server.close(() => resolve()));
  });
}
