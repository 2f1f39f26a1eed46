import { describe, expect, it } from "vitest";
import { packagesNotFound } from "../../../src/image/apt-errors.js";

describe("packagesNotFound", () => {
  it("reads the packages apt could not find out of mmdebstrap's output", () => {
    // What mmdebstrap 1.3 printed for --include=python3-minimal,python3-grpcioo on Debian 12.
    const output = [
      "I: installing remaining packages inside the chroot...",
      "Reading package lists...",
      "Building dependency tree...",
      "E: Unable to locate package python3-grpcioo",
      "E: setup failed: E: apt-get -o Dir::Bin::dpkg=env ... --yes install python3-minimal python3-grpcioo failed",
      "E: mmdebstrap failed to run",
    ];
    expect(packagesNotFound(output)).toEqual(["python3-grpcioo"]);
  });

  it("knows apt's other ways of saying so, and names each package once", () => {
    const output = [
      "E: Package 'python3-torch-cuda' has no installation candidate",
      "E: Couldn't find any package by glob 'libfoo*'",
      "E: Version '9.9' for 'nodejs' was not found",
      "E: Unable to locate package python3-grpcioo",
      "E: Unable to locate package python3-grpcioo",
    ];
    expect(packagesNotFound(output)).toEqual(["python3-torch-cuda", "libfoo*", "nodejs", "python3-grpcioo"]);
  });

  it("finds nothing in a failure that is not about a package", () => {
    expect(packagesNotFound(["E: customize hook failed: chroot ... exited 1", "E: mmdebstrap failed to run"])).toEqual([]);
  });
});
