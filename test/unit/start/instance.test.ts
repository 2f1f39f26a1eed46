import { describe, expect, it } from "vitest";
import type { StoredImage } from "../../../src/image/index.js";
import type { FunctionClient } from "../../../src/invoke/index.js";
import { asTransportFailure } from "../../../src/invoke/transport.js";
import { Instance } from "../../../src/start/index.js";
import { VhiveError } from "../../../src/shared/errors.js";
import type { MicroVm } from "../../../src/vm/index.js";
import { rejection } from "../invoke/fixtures.js";

/** A VM that fails with `error` when fail() is called, as MicroVm's failure and failed do. */
function fakeVm() {
  const controller = new AbortController();
  let fail!: (error: VhiveError) => void;
  const failure = new Promise<VhiveError>((resolve) => {
    fail = (error) => {
      controller.abort(error);
      resolve(error);
    };
  });
  const vm = { failed: controller.signal, failure, stop: async () => {}, destroy: async () => {} } as unknown as MicroVm;
  return { vm, fail };
}

/** A client whose every call rejects with `error`. */
function failingClient(error: VhiveError): FunctionClient {
  return { waitReady: async () => {}, invoke: async () => Promise.reject(error), checkRequest: () => {}, close: () => {} };
}

const image = { name: "fn", config: { protocol: "grpc", port: 50051 } } as unknown as StoredImage;
const start = { kind: "boot" as const, times: { qemuStartMs: 0, kernelBootMs: 0, initMs: 0, functionReadyMs: 0, bootMs: 0 } };

describe("Instance.invoke", () => {
  it("fails with the VM's own error when the call's connection drops as the VM dies", async () => {
    const { vm, fail } = fakeVm();
    const reset = asTransportFailure(new VhiveError("ERR_INVOKE", "helloworld.Greeter/SayHello failed: UNAVAILABLE: read ECONNRESET"));
    const instance = new Instance(vm, image, 1, failingClient(reset), start);
    // QEMU's exit lands a little after the connection reset.
    setTimeout(() => fail(new VhiveError("ERR_VM_EXITED", "QEMU was killed by SIGKILL while the VM was running")), 50);
    const error = await rejection(instance.invoke("x"));
    expect(error.code).toBe("ERR_VM_EXITED");
    expect(error.message).toContain("SIGKILL");
  });

  it("gives up waiting for the VM after a moment and reports the call's error", async () => {
    const { vm } = fakeVm();
    const reset = asTransportFailure(new VhiveError("ERR_INVOKE", "UNAVAILABLE: read ECONNRESET"));
    const startedMs = performance.now();
    const error = await rejection(new Instance(vm, image, 1, failingClient(reset), start).invoke("x"));
    expect(error).toBe(reset);
    expect(performance.now() - startedMs).toBeGreaterThanOrEqual(900);
  });

  it("reports the function's own error at once, without waiting for the VM", async () => {
    const { vm } = fakeVm();
    const answered = new VhiveError("ERR_INVOKE", "helloworld.Greeter/SayHello failed: INVALID_ARGUMENT: no such input");
    const startedMs = performance.now();
    const error = await rejection(new Instance(vm, image, 1, failingClient(answered), start).invoke("x"));
    expect(error).toBe(answered);
    expect(performance.now() - startedMs).toBeLessThan(100);
  });
});
