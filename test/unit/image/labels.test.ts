import { describe, expect, it } from "vitest";
import type { FunctionConfig } from "../../../src/image/index.js";
import { functionLabels, readFunctionLabels } from "../../../src/image/labels.js";

const GRPC: FunctionConfig = {
  argv: ["python3", "/app/server.py"],
  env: {},
  workdir: "/app",
  port: 50051,
  protocol: "grpc",
  method: "helloworld.Greeter/SayHello",
  proto: "helloworld.proto",
  memMib: 512,
  inputs: ["world", "vhive"],
};
const PROTO = 'syntax = "proto3";\n';

function labelsWith(changes: Record<string, string | undefined>): Record<string, string> {
  const labels: Record<string, string | undefined> = { ...functionLabels(GRPC, PROTO), ...changes };
  return Object.fromEntries(Object.entries(labels).filter((entry): entry is [string, string] => entry[1] !== undefined));
}

describe("vhive image labels", () => {
  it("read back what they were written from, with the .proto's name and text", () => {
    expect(readFunctionLabels(functionLabels(GRPC, PROTO), "img")).toEqual({
      protocol: "grpc",
      port: 50051,
      method: "helloworld.Greeter/SayHello",
      httpPath: undefined,
      memMib: 512,
      inputs: ["world", "vhive"],
      proto: { name: "helloworld.proto", text: PROTO },
    });
  });

  it("set only what the function has", () => {
    const http: FunctionConfig = { argv: ["srv"], env: {}, workdir: "/", port: 8080, protocol: "http" };
    expect(functionLabels(http, undefined)).toEqual({ "dev.vhive.schema": "1", "dev.vhive.protocol": "http", "dev.vhive.port": "8080" });
  });

  it("an image without vhive labels has none to read, whatever other labels it has", () => {
    expect(readFunctionLabels({ "org.opencontainers.image.title": "x" }, "img")).toBeUndefined();
  });

  it("a wrong, unknown or half-present label is refused, naming it", () => {
    const cases: [Record<string, string | undefined>, string][] = [
      [{ "dev.vhive.port": "0" }, "label dev.vhive.port"],
      [{ "dev.vhive.port": "80a" }, "must be a decimal number"],
      [{ "dev.vhive.protocol": "tcp" }, "label dev.vhive.protocol"],
      [{ "dev.vhive.inputs": "world" }, "must be a JSON array of strings"],
      [{ "dev.vhive.inputs": "[1]" }, "label dev.vhive.inputs"],
      [{ "dev.vhive.proto.name": "../etc/passwd" }, "must be a bare file name"],
      [{ "dev.vhive.proto": undefined }, "only one of the labels dev.vhive.proto.name and dev.vhive.proto"],
      [{ "dev.vhive.schema": "2" }, "label dev.vhive.schema"],
      [{ "dev.vhive.colour": "blue" }, "unknown label dev.vhive.colour"],
    ];
    for (const [changes, expected] of cases) {
      expect(() => readFunctionLabels(labelsWith(changes), "the image config of x.tar"), expected).toThrow(
        expect.objectContaining({ code: "ERR_IMAGE_INVALID", message: expect.stringContaining(expected) }),
      );
    }
  });
});
