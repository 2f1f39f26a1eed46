import { describe, expect, it } from "vitest";
import {
  FrameParser,
  HEADER_BYTES,
  MAX_MESSAGE_BYTES,
  MessageType,
  decodeRequest,
  decodeResponse,
  encodeFrame,
  requestFrame,
  responseFrame,
  type Frame,
  type ParsedFrame,
  type Request,
  type Response,
} from "../../../src/containerd/ttrpc/codec.js";
import { GrpcCode, TtrpcStatusError, statusFromError } from "../../../src/containerd/ttrpc/status.js";
import { VhiveError } from "../../../src/shared/errors.js";

const request: Request = {
  service: "containerd.task.v2.Task",
  method: "State",
  payload: Buffer.from([0x0a, 0x02, 0x69, 0x64]),
  timeoutNano: 5_000_000_000,
  metadata: [
    { key: "containerd-namespace-ttrpc", value: "default" },
    { key: "x", value: "1" },
  ],
};

function frames(parsed: ParsedFrame[]): Frame[] {
  return parsed.map((p) => {
    if (p.kind !== "frame") throw new Error(`expected a frame, got ${p.kind}`);
    return p.frame;
  });
}

function expectVhiveError(fn: () => unknown, code: string): VhiveError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(VhiveError);
    expect((error as VhiveError).code).toBe(code);
    return error as VhiveError;
  }
  throw new Error(`expected ${code}, nothing was thrown`);
}

describe("ttrpc frames", () => {
  it("have a 10-byte big-endian header: length, stream id, type, flags", () => {
    const frame = encodeFrame(0x01020305, MessageType.RESPONSE, Uint8Array.from([9, 8, 7]), 0x04);
    expect([...frame]).toEqual([0, 0, 0, 3, 0x01, 0x02, 0x03, 0x05, 2, 4, 9, 8, 7]);
    expect(HEADER_BYTES).toBe(10);
  });

  it("carry a Request that decodes to what was sent", () => {
    const [frame] = frames(new FrameParser().push(requestFrame(7, request)));
    expect(frame!.streamId).toBe(7);
    expect(frame!.type).toBe(MessageType.REQUEST);
    expect(decodeRequest(frame!)).toEqual(request);
  });

  it("carry a Response with a google.rpc.Status and its details", () => {
    const response: Response = {
      status: {
        code: GrpcCode.NOT_FOUND,
        message: "container x: not found",
        details: [{ typeUrl: "type.googleapis.com/google.rpc.DebugInfo", value: Buffer.from([1, 2]) }],
      },
      payload: new Uint8Array(0), // absent on the wire: decodes to the default
    };
    const [frame] = frames(new FrameParser().push(responseFrame(3, response)));
    expect(decodeResponse(frame!)).toEqual(response);
  });

  it("encode Request and Response fields with ttrpc's field numbers (the bytes Go ttrpc writes)", () => {
    // Request{service:"a", method:"b", timeout_nano:1}: fields 1 and 2 (length-delimited), 4 (varint).
    const goRequest = Buffer.from([0x0a, 0x01, 0x61, 0x12, 0x01, 0x62, 0x20, 0x01]);
    expect(Buffer.from(requestFrame(1, { service: "a", method: "b", payload: new Uint8Array(0), timeoutNano: 1, metadata: [] }).subarray(HEADER_BYTES))).toEqual(goRequest);
    // Response{status:{code:5, message:"x"}, payload:"\x01"}: status is field 1, payload field 2.
    const goResponse = Buffer.from([0x0a, 0x05, 0x08, 0x05, 0x12, 0x01, 0x78, 0x12, 0x01, 0x01]);
    const decoded = decodeResponse({ streamId: 1, type: MessageType.RESPONSE, flags: 0, payload: goResponse });
    expect(decoded.status).toEqual({ code: 5, message: "x", details: [] });
    expect([...decoded.payload]).toEqual([1]);
  });

  it("come out whole when a frame arrives one byte at a time", () => {
    const parser = new FrameParser();
    const bytes = requestFrame(1, request);
    const out: ParsedFrame[] = [];
    for (let i = 0; i < bytes.length; i++) {
      const parsed = parser.push(bytes.subarray(i, i + 1));
      if (i < bytes.length - 1) expect(parsed).toEqual([]);
      out.push(...parsed);
    }
    expect(frames(out).map(decodeRequest)).toEqual([request]);
    expect(parser.bufferedBytes).toBe(0);
  });

  it("come out one by one when many are packed into one chunk, the last one split", () => {
    const parser = new FrameParser();
    const all = Buffer.concat([1, 3, 5, 7].map((id) => requestFrame(id, { ...request, method: `M${id}` })));
    const cut = all.length - 5;
    const first = frames(parser.push(all.subarray(0, cut)));
    expect(first.map((f) => [f.streamId, decodeRequest(f).method])).toEqual([
      [1, "M1"],
      [3, "M3"],
      [5, "M5"],
    ]);
    expect(parser.bufferedBytes).toBeGreaterThan(0);
    const last = frames(parser.push(all.subarray(cut)));
    expect(last.map((f) => decodeRequest(f).method)).toEqual(["M7"]);
  });

  it("may have an empty payload (an Empty message)", () => {
    const [frame] = frames(new FrameParser().push(encodeFrame(9, MessageType.RESPONSE, new Uint8Array(0))));
    expect(frame!.payload.length).toBe(0);
    expect(decodeResponse(frame!)).toEqual({ status: undefined, payload: new Uint8Array(0) });
  });

  it("up to 4 MiB are taken, and one larger is skipped unread and reported with its stream id", () => {
    expect(MAX_MESSAGE_BYTES).toBe(4 * 1024 * 1024);
    const parser = new FrameParser();
    const atLimit = encodeFrame(1, MessageType.REQUEST, new Uint8Array(MAX_MESSAGE_BYTES));
    const oversizeHeader = Buffer.alloc(HEADER_BYTES);
    oversizeHeader.writeUInt32BE(MAX_MESSAGE_BYTES + 1, 0);
    oversizeHeader.writeUInt32BE(3, 4);
    oversizeHeader.writeUInt8(MessageType.REQUEST, 8);
    const oversizeBody = Buffer.alloc(MAX_MESSAGE_BYTES + 1, 0xaa);
    const after = requestFrame(5, request);
    // Fed in 64 KiB chunks, as a socket would: the skip spans many chunks and ends inside one.
    const stream = Buffer.concat([atLimit, oversizeHeader, oversizeBody, after]);
    const out: ParsedFrame[] = [];
    for (let offset = 0; offset < stream.length; offset += 65_536) out.push(...parser.push(stream.subarray(offset, offset + 65_536)));
    expect(out.map((p) => (p.kind === "frame" ? ["frame", p.frame.streamId, p.frame.payload.length] : [p.kind, p.streamId, p.lengthBytes]))).toEqual([
      ["frame", 1, MAX_MESSAGE_BYTES],
      ["oversize", 3, MAX_MESSAGE_BYTES + 1],
      ["frame", 5, after.length - HEADER_BYTES],
    ]);
    expect(parser.bufferedBytes).toBe(0);
  });

  it("over 4 MiB are refused when sent, with RESOURCE_EXHAUSTED", () => {
    const error = expectVhiveError(() => encodeFrame(1, MessageType.REQUEST, new Uint8Array(MAX_MESSAGE_BYTES + 1)), "ERR_TTRPC_STATUS");
    expect((error as TtrpcStatusError).grpcCode).toBe(GrpcCode.RESOURCE_EXHAUSTED);
    expect(error.message).toContain(`message length ${MAX_MESSAGE_BYTES + 1} exceed maximum message size of ${MAX_MESSAGE_BYTES}`);
  });

  it("of the wrong type, or with a payload that is not the message, are protocol errors", () => {
    const asResponse = frames(new FrameParser().push(encodeFrame(1, MessageType.RESPONSE, new Uint8Array(0))))[0]!;
    expect(expectVhiveError(() => decodeRequest(asResponse), "ERR_TTRPC_PROTOCOL").message).toMatch(/expected a request frame \(type 1\), got type 2/);
    const dataFrame = frames(new FrameParser().push(encodeFrame(1, 3, new Uint8Array(0))))[0]!;
    expect(expectVhiveError(() => decodeResponse(dataFrame), "ERR_TTRPC_PROTOCOL").message).toMatch(/got type 3/);
    // Field 1, length 5, but one byte follows.
    const truncated: Frame = { streamId: 1, type: MessageType.REQUEST, flags: 0, payload: Buffer.from([0x0a, 0x05, 0x61]) };
    expect(expectVhiveError(() => decodeRequest(truncated), "ERR_TTRPC_PROTOCOL").message).toMatch(/stream 1: the request does not decode/);
  });
});

describe("ttrpc statuses of errors", () => {
  it("map vhive's codes, errnos and explicit gRPC codes", () => {
    expect(statusFromError(new VhiveError("ERR_VALIDATION", "bad annotation", { remedy: "use boot" }))).toEqual({
      code: GrpcCode.INVALID_ARGUMENT,
      message: "[ERR_VALIDATION] bad annotation (what to do: use boot)",
      details: [],
    });
    expect(statusFromError(new VhiveError("ERR_IMAGE_NOT_FOUND", "x")).code).toBe(GrpcCode.NOT_FOUND);
    expect(statusFromError(new VhiveError("ERR_VM_EXITED", "x")).code).toBe(GrpcCode.UNKNOWN);
    expect(statusFromError(new VhiveError("ERR_DISPOSED", "x")).code).toBe(GrpcCode.INTERNAL);
    expect(statusFromError(new TtrpcStatusError(GrpcCode.FAILED_PRECONDITION, "as the runc shim said"))).toEqual({
      code: GrpcCode.FAILED_PRECONDITION,
      message: "as the runc shim said",
      details: [],
    });
    expect(statusFromError(Object.assign(new Error("ENOENT: no such file"), { code: "ENOENT" })).code).toBe(GrpcCode.NOT_FOUND);
    expect(statusFromError(new Error("bug")).code).toBe(GrpcCode.UNKNOWN);
    expect(statusFromError("a string").message).toBe("a string");
  });

  it("name the gRPC code in the error's message", () => {
    expect(new TtrpcStatusError(GrpcCode.NOT_FOUND, "container x").message).toBe("NOT_FOUND: container x");
    expect(new TtrpcStatusError(99, "from the future").message).toBe("99: from the future");
  });
});
