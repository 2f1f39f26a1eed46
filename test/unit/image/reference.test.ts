import { describe, expect, it } from "vitest";
import { parseImageReference } from "../../../src/image/reference.js";

describe("image references", () => {
  it("adds vhive.local/ to a name without a domain and :latest to one without a tag", () => {
    expect(parseImageReference("helloworld")).toEqual({ name: "vhive.local/helloworld", tag: "latest", full: "vhive.local/helloworld:latest" });
    expect(parseImageReference("team/hello:v2").full).toBe("vhive.local/team/hello:v2");
    expect(parseImageReference("json_serdes").full).toBe("vhive.local/json_serdes:latest");
  });

  it("keeps a domain, with or without a port, and localhost", () => {
    expect(parseImageReference("registry.example:5000/hello").full).toBe("registry.example:5000/hello:latest");
    expect(parseImageReference("localhost/hello:1.0").full).toBe("localhost/hello:1.0");
    expect(parseImageReference("vhive.local/helloworld:latest").full).toBe("vhive.local/helloworld:latest");
  });

  it("refuses what containerd and docker would not take as a name", () => {
    for (const bad of ["Hello", "hello:", "hello:-x", "hello@sha256:abc", "a//b", "-a", "hello-", "bad_domain.com:x/a", ""]) {
      expect(() => parseImageReference(bad, "--name"), bad).toThrow(expect.objectContaining({ code: "ERR_VALIDATION", message: expect.stringContaining(`--name "${bad}"`) }));
    }
  });
});
