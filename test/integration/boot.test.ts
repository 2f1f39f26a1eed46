/** Booting the helloworld image in a real microVM (TCG here) and calling it over gRPC. */
import { createServer, type Server } from "node:net";
import { afterEach, describe, expect, inject, it } from "vitest";
import { ImageStore } from "../../src/image/index.js";
import { runOnce } from "../../src/start/index.js";
import { StatePaths } from "../../src/shared/paths.js";
import { expectNothingLeft, runCli, stateDir, testHost } from "./harness.js";

const helloworld = () => new ImageStore(new StatePaths(stateDir())).resolve(inject("helloworldId"));

describe("booting a function", () => {
  afterEach(expectNothingLeft);

  it("vhive run --json boots helloworld, returns its reply and a boot breakdown that adds up", async () => {
    const { code, stdout, stderr } = await runCli(["run", "helloworld", "--json"]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const result = JSON.parse(stdout);
    expect(result.response).toEqual({ message: "Hello, world!" });
    expect(["kvm", "tcg"]).toContain(result.accel);
    const { qemuStartMs, kernelBootMs, initMs, functionReadyMs, invokeMs } = result.breakdown;
    for (const phase of [qemuStartMs, kernelBootMs, initMs, functionReadyMs, invokeMs]) expect(phase).toBeGreaterThan(0);
    // bootMs is spawn to ready; the phases leave out only the QMP 'cont' round trip.
    expect(Math.abs(result.bootMs - (qemuStartMs + kernelBootMs + initMs + functionReadyMs))).toBeLessThan(50);
    expect(result.invokeMs).toBe(invokeMs);
  });

  it("passes the request data to the function", async () => {
    const result = await runOnce(await testHost(), await helloworld(), "vhive");
    expect(result.text).toBe("Hello, vhive!");
  });

  it("refuses a host port that is already taken, before starting QEMU", async () => {
    const server: Server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as { port: number }).port;
    try {
      await expect(runOnce(await testHost(), await helloworld(), "x", { hostPort: port })).rejects.toMatchObject({
        code: "ERR_PORT_IN_USE",
        message: expect.stringContaining(String(port)),
      });
    } finally {
      server.close();
    }
  });

  it("Ctrl-C during vhive run stops QEMU and exits 130", async () => {
    let sent = false;
    const { code, stderr } = await runCli(["--log-level", "debug", "run", "helloworld"], {
      onStderr: (soFar, child) => {
        if (!sent && soFar.includes('"msg":"qemu started"')) {
          sent = true;
          child.kill("SIGINT");
        }
      },
    });
    expect(sent).toBe(true);
    expect(code).toBe(130);
    expect(stderr).toContain("ERR_ABORTED");
  });

  it("an unknown image is refused with a remedy", async () => {
    const { code, stderr } = await runCli(["run", "no-such-image"]);
    expect(code).toBe(1);
    expect(stderr).toContain("error [ERR_IMAGE_NOT_FOUND]: no image named no-such-image");
    expect(stderr).toContain("what to do: build one with `vhive image build");
  });
});
