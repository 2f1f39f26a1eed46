/** `vhive run`: boot an image, invoke it once, stop it. */
import type { StoredImage } from "../image/index.js";
import { roundMs, type BootBreakdown } from "../metrics/index.js";
import { bootInstance, type BootOptions } from "./boot.js";
import type { Host } from "./host.js";

export interface RunResult {
  image: { id: string; name: string };
  accel: string;
  /** The decoded reply. */
  response: Record<string, unknown>;
  /** A one-line summary of the reply. */
  text: string;
  /** QEMU spawn until the reply arrived: the cold start as a client sees it. */
  totalMs: number;
  /** QEMU spawn until the function answered. */
  bootMs: number;
  invokeMs: number;
  breakdown: BootBreakdown;
}

/** Without --data: the image's first input, else a name to greet for gRPC, a plain GET for HTTP. */
export function defaultRequestData(image: StoredImage): string {
  return image.config.inputs?.[0] ?? (image.config.protocol === "grpc" ? "world" : "");
}

export async function runOnce(host: Host, image: StoredImage, data?: string, options: BootOptions & { invokeTimeoutMs?: number } = {}): Promise<RunResult> {
  await using instance = await bootInstance(host, image, options);
  const result = await instance.invoke(data ?? defaultRequestData(image), { timeoutMs: options.invokeTimeoutMs, signal: options.signal });
  const totalMs = performance.now() - instance.vm.timeline.spawnAt;
  const { qemuStartMs, kernelBootMs, initMs, functionReadyMs, bootMs } = instance.start.times;
  return {
    image: { id: image.id, name: image.name },
    accel: host.accel,
    response: result.response,
    text: result.text,
    totalMs: roundMs(totalMs),
    bootMs: roundMs(bootMs),
    invokeMs: roundMs(result.ms),
    breakdown: {
      qemuStartMs: roundMs(qemuStartMs),
      kernelBootMs: roundMs(kernelBootMs),
      initMs: roundMs(initMs),
      functionReadyMs: roundMs(functionReadyMs),
      invokeMs: roundMs(result.ms),
    },
  };
}
