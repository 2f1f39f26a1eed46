// Bundles the containerd shim (dist/containerd/shim/main.js and everything it imports) into
// dist/shim/. containerd runs the shim on every container start, twice over (`start`, then the
// server it spawns), and Node resolving and loading vhive's modules and their dependencies file
// by file took ~300 ms of each here; one chunk per action loads in a fraction of that.
// Kept out of the bundle: native addons, and protobufjs (with proto-loader, which hands it the
// .proto files), which finds `fs` through an eval'd require that a bundle does not have.
// dist/shim/ sits where dist/<component>/ does, so paths found relative to a module (the package
// root, protos/) still resolve; the guest's init.sh, found beside its module, is copied in.
import { copyFile, rm } from "node:fs/promises";
import { rolldown } from "rolldown";

const bundle = await rolldown({
  input: { main: "dist/containerd/shim/main.js" },
  platform: "node",
  external: [/\.node$/, "better-sqlite3", "protobufjs", /^protobufjs\//, "@grpc/proto-loader"],
  logLevel: "warn",
});
await rm("dist/shim", { recursive: true, force: true }); // chunks of an earlier build would stay beside the new ones
await bundle.write({ dir: "dist/shim", format: "esm", entryFileNames: "[name].js", chunkFileNames: "[name]-[hash].js" });
await bundle.close();
await copyFile("dist/guest/init.sh", "dist/shim/init.sh");
