import { afterEach, describe, expect, it } from "vitest";
import Fastify from "fastify";
import { DaemonClient, clientOptionsFromEnv, DEFAULT_URL } from "../../../src/daemon/index.js";
import { freeLoopbackPort } from "../../../src/vm/index.js";
import { Cleanups } from "../test-shared/cleanups.js";

const closers = new Cleanups();
afterEach(() => closers.run());

describe("the CLI's daemon client", () => {
  it("takes VHIVE_URL and VHIVE_TOKEN from the environment, defaulting to the local daemon", () => {
    expect(clientOptionsFromEnv({})).toEqual({ url: DEFAULT_URL, token: undefined });
    expect(DEFAULT_URL).toBe("http://127.0.0.1:8970");
    expect(clientOptionsFromEnv({ VHIVE_URL: "http://127.0.0.1:1", VHIVE_TOKEN: "t" })).toEqual({ url: "http://127.0.0.1:1", token: "t" });
  });

  it("turns an error answer into the VhiveError it describes, and sends the token", async () => {
    const app = Fastify();
    let authorization: string | undefined;
    app.get("/functions/x", async (request, reply) => {
      authorization = request.headers.authorization;
      return reply.status(404).send({ code: "ERR_FUNCTION_NOT_FOUND", message: "no function x is deployed", statusCode: 404, remedy: "deploy it" });
    });
    const url = await app.listen({ host: "127.0.0.1", port: 0 });
    closers.push(() => app.close());
    const client = new DaemonClient({ url, token: "s3cret" });
    await expect(client.request("GET", "/functions/x")).rejects.toMatchObject({ code: "ERR_FUNCTION_NOT_FOUND", message: "no function x is deployed", remedy: "deploy it" });
    expect(authorization).toBe("Bearer s3cret");
  });

  it("a daemon that is not running is ERR_DAEMON_UNREACHABLE, saying how to start one", async () => {
    const client = new DaemonClient({ url: `http://127.0.0.1:${await freeLoopbackPort()}` });
    await expect(client.request("GET", "/functions")).rejects.toMatchObject({ code: "ERR_DAEMON_UNREACHABLE", remedy: expect.stringContaining("vhive serve") });
  });
});
