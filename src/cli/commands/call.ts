import { addressClient, parseFunctionAddress } from "../../invoke/index.js";
import { defineCommand } from "../command.js";
import { invokeTimeoutOf, timeoutOption } from "../function-options.js";
import { parseDurationMs } from "../duration.js";

export const callCommand = defineCommand({
  command: "call <address>",
  describe: "call a function at any address (a pod IP, a Knative route, a container's port): host:port or grpc://host:port for gRPC, http://host:port/path for HTTP",
  builder: (yargs) =>
    timeoutOption(yargs)
      .positional("address", { type: "string", demandOption: true, describe: "host:port, grpc://host:port or http://host:port/path" })
      .option("data", { type: "string", default: "world", describe: "request data: the gRPC request's string field, a JSON message, or the HTTP body" })
      .option("method", { type: "string", describe: "gRPC method, package.Service/Method (default helloworld.Greeter/SayHello)" })
      .option("proto", { type: "string", describe: ".proto file that defines the method (default vhive's helloworld.proto)" })
      .option("wait", { type: "string", default: "0s", describe: "wait up to this long for the function to answer first (it may still be starting), e.g. 30s" })
      .option("json", { type: "boolean", default: false, describe: "print one JSON object: response, text, ms" }),
  run: async (args, context) => {
    const client = addressClient(parseFunctionAddress(args.address), { method: args.method, protoPath: args.proto, invokeTimeoutMs: invokeTimeoutOf(args) });
    try {
      const waitMs = parseDurationMs(args.wait, "wait");
      if (waitMs > 0) await client.waitReady({ timeoutMs: waitMs, signal: context.signal });
      const result = await client.invoke(args.data, { signal: context.signal });
      if (args.json) context.printJson({ response: result.response, text: result.text, ms: Math.round(result.ms * 10) / 10 });
      else context.print(result.text);
    } finally {
      client.close();
    }
  },
});
