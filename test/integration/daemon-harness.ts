/** Helpers for tests that drive a real daemon over HTTP. */
import { expect } from "vitest";
import { StatePaths } from "../../src/shared/paths.js";
import { SnapshotStore } from "../../src/snapshot/index.js";
import { stateDir } from "./harness.js";

export async function api<T = Record<string, any>>(base: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: T }> {
  const response = await fetch(base + path, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, json: (await response.json()) as T };
}

/** Invoke a deployed greeting function (helloworld) with `data`: it must answer 200 with "Hello, <data>!". */
export async function invokeGreeting(base: string, fn: string, data: string): Promise<Record<string, any>> {
  const { status, json } = await api(base, "POST", `/functions/${fn}/invoke`, { data });
  expect(status, JSON.stringify(json)).toBe(200);
  expect(json.text).toBe(`Hello, ${data}!`);
  return json;
}

/** Wait until the function has no instance left (keep-alive expired and the retire finished). */
export async function waitScaledToZero(base: string, fn: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const { json } = await api<{ instances: { function: string }[] }>(base, "GET", "/instances");
    if (!json.instances.some((instance) => instance.function === fn)) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`${fn} still has instances after ${timeoutMs} ms`);
}

/** Remove a test function's snapshots, so each run starts from nothing. */
export async function removeSnapshotsOf(fn: string): Promise<void> {
  const store = new SnapshotStore(new StatePaths(stateDir()));
  for (const snapshot of (await store.list()).snapshots.filter((s) => s.meta.function === fn)) await store.remove(snapshot.meta.id);
}

export const uniqueName = (prefix: string) => `${prefix}-${Date.now().toString(36)}`;

