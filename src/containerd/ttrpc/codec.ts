/**
 * The ttrpc wire format (containerd/ttrpc channel.go), and nothing else: frames, a streaming
 * frame parser, and the Request and Response messages (generated from .proto files).
 *
 * A connection carries frames both ways. Each frame is a 10-byte header and a payload:
 *
 *    0        4        8    9    10                 10 + length
 *    +--------+--------+----+----+--------------------+
 *    | length | stream | ty | fl | payload            |
 *    +--------+--------+----+----+--------------------+
 *      u32 BE   u32 BE   u8   u8   `length` bytes (not counting the header)
 *
 *  - stream: the call's id. A client numbers its calls 1, 3, 5, ... (odd: client-initiated);
 *    the answer carries the id of the request.
 *  - ty: 1 Request (client to server), 2 Response (server to client). ttrpc 1.2 adds 3 (Data)
 *    for streaming calls, which containerd's task and events services do not use.
 *  - fl: flags; 0 on Request and Response.
 *  - payload: a protobuf `ttrpc.Request {service, method, payload, timeout_nano, metadata}` or
 *    `ttrpc.Response {google.rpc.Status status, payload}`, whose own payload is the method's
 *    request or response message.
 *
 * A payload over MAX_MESSAGE_BYTES (4 MiB) is never sent, and one received is skipped unread:
 * the receiver answers (server) or fails (client) that stream with RESOURCE_EXHAUSTED and
 * keeps the connection, as Go's ttrpc does.
 *
 * Throws ERR_TTRPC_PROTOCOL for a payload that does not decode or a frame of the wrong type,
 * and ERR_TTRPC_STATUS (RESOURCE_EXHAUSTED) for a payload too large to send.
 */
import { VhiveError, messageOf } from "../../shared/errors.js";
import { Request, Response } from "../generated/ttrpc/request.js";
import { GrpcCode, TtrpcStatusError } from "./status.js";

export { Request, Response };

export const HEADER_BYTES = 10;
/** messageLengthMax in ttrpc's channel.go: the largest payload, not counting the header. */
export const MAX_MESSAGE_BYTES = 4 << 20;

export const MessageType = { REQUEST: 1, RESPONSE: 2 } as const;

export interface Frame {
  streamId: number;
  type: number;
  flags: number;
  payload: Buffer;
}

/** What the parser yields: a whole frame, or the header of one too large to read. */
export type ParsedFrame =
  | { kind: "frame"; frame: Frame }
  | { kind: "oversize"; streamId: number; type: number; lengthBytes: number };

export function oversizeError(lengthBytes: number): TtrpcStatusError {
  // Go's wording, so logs read the same on both sides.
  return new TtrpcStatusError(
    GrpcCode.RESOURCE_EXHAUSTED,
    `message length ${lengthBytes} exceed maximum message size of ${MAX_MESSAGE_BYTES}`,
  );
}

export function encodeFrame(streamId: number, type: number, payload: Uint8Array, flags = 0): Buffer {
  if (payload.length > MAX_MESSAGE_BYTES) throw oversizeError(payload.length);
  const frame = Buffer.allocUnsafe(HEADER_BYTES + payload.length);
  frame.writeUInt32BE(payload.length, 0);
  frame.writeUInt32BE(streamId, 4);
  frame.writeUInt8(type, 8);
  frame.writeUInt8(flags, 9);
  frame.set(payload, HEADER_BYTES);
  return frame;
}

/**
 * Cuts a byte stream into frames, whatever the socket's chunking: a frame may arrive in many
 * chunks and a chunk may hold many frames. Chunks are kept as they come and joined once per
 * frame, so a 4 MiB frame in 64 KiB reads is copied once, not 64 times.
 */
export class FrameParser {
  #chunks: Buffer[] = [];
  #bufferedBytes = 0;
  #header: { streamId: number; type: number; flags: number; lengthBytes: number } | undefined;
  /** Bytes of an oversized payload still to be thrown away. */
  #skipBytes = 0;

  /** Bytes received and not yet returned in a frame. */
  get bufferedBytes(): number {
    return this.#bufferedBytes;
  }

  push(chunk: Buffer): ParsedFrame[] {
    const out: ParsedFrame[] = [];
    if (this.#skipBytes > 0) {
      const skipped = Math.min(this.#skipBytes, chunk.length);
      this.#skipBytes -= skipped;
      chunk = chunk.subarray(skipped);
    }
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#bufferedBytes += chunk.length;
    }
    for (;;) {
      if (this.#header === undefined) {
        if (this.#bufferedBytes < HEADER_BYTES) break;
        const bytes = this.#take(HEADER_BYTES);
        const header = {
          lengthBytes: bytes.readUInt32BE(0),
          streamId: bytes.readUInt32BE(4),
          type: bytes.readUInt8(8),
          flags: bytes.readUInt8(9),
        };
        if (header.lengthBytes > MAX_MESSAGE_BYTES) {
          out.push({ kind: "oversize", streamId: header.streamId, type: header.type, lengthBytes: header.lengthBytes });
          const skipped = Math.min(header.lengthBytes, this.#bufferedBytes);
          this.#take(skipped);
          this.#skipBytes = header.lengthBytes - skipped;
          if (this.#skipBytes > 0) break;
          continue;
        }
        this.#header = header;
      }
      const header = this.#header;
      if (this.#bufferedBytes < header.lengthBytes) break;
      const payload = this.#take(header.lengthBytes);
      this.#header = undefined;
      out.push({ kind: "frame", frame: { streamId: header.streamId, type: header.type, flags: header.flags, payload } });
    }
    return out;
  }

  /** The next `length` buffered bytes (length <= bufferedBytes). */
  #take(length: number): Buffer {
    if (length === 0) return Buffer.alloc(0);
    const first = this.#chunks[0]!;
    let taken: Buffer;
    if (first.length >= length) {
      taken = first.subarray(0, length);
      if (first.length === length) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(length);
    } else {
      taken = Buffer.allocUnsafe(length);
      let filled = 0;
      while (filled < length) {
        const chunk = this.#chunks[0]!;
        const used = Math.min(chunk.length, length - filled);
        chunk.copy(taken, filled, 0, used);
        filled += used;
        if (used === chunk.length) this.#chunks.shift();
        else this.#chunks[0] = chunk.subarray(used);
      }
    }
    this.#bufferedBytes -= length;
    return taken;
  }
}

export function encodeRequest(request: Request): Uint8Array {
  return Request.encode(request).finish();
}

export function encodeResponse(response: Response): Uint8Array {
  return Response.encode(response).finish();
}

/** The Request in a frame; throws ERR_TTRPC_PROTOCOL if it is not one. */
export function decodeRequest(frame: Frame): Request {
  if (frame.type !== MessageType.REQUEST) {
    throw new VhiveError("ERR_TTRPC_PROTOCOL", `stream ${frame.streamId}: expected a request frame (type 1), got type ${frame.type}`);
  }
  try {
    return Request.decode(frame.payload);
  } catch (error) {
    throw new VhiveError("ERR_TTRPC_PROTOCOL", `stream ${frame.streamId}: the request does not decode: ${messageOf(error)}`, { cause: error });
  }
}

/** The Response in a frame; throws ERR_TTRPC_PROTOCOL if it is not one. */
export function decodeResponse(frame: Frame): Response {
  if (frame.type !== MessageType.RESPONSE) {
    throw new VhiveError("ERR_TTRPC_PROTOCOL", `stream ${frame.streamId}: expected a response frame (type 2), got type ${frame.type}`);
  }
  try {
    return Response.decode(frame.payload);
  } catch (error) {
    throw new VhiveError("ERR_TTRPC_PROTOCOL", `stream ${frame.streamId}: the response does not decode: ${messageOf(error)}`, { cause: error });
  }
}

export function requestFrame(streamId: number, request: Request): Buffer {
  return encodeFrame(streamId, MessageType.REQUEST, encodeRequest(request));
}

export function responseFrame(streamId: number, response: Response): Buffer {
  return encodeFrame(streamId, MessageType.RESPONSE, encodeResponse(response));
}
