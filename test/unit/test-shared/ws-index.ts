/** Working-set index and trace files as the pager writes them (native/include/vhive_uffd.h, vhive_ws.h). */
export const PAGE = 4096;

/** A trace (format 1): offsets only. */
export function traceFile(offsets: readonly number[], pageSize = PAGE): Buffer {
  const data = Buffer.alloc(24 + 8 * offsets.length);
  data.write("VHWSIDX1", 0, "latin1");
  data.writeUInt32LE(pageSize, 8);
  data.writeBigUInt64LE(BigInt(offsets.length), 16);
  offsets.forEach((offset, i) => data.writeBigUInt64LE(BigInt(offset), 24 + 8 * i));
  return data;
}

/**
 * A working-set index (format 3): offsets with a checksum each, then `blocks` block entries.
 * The checksums here are zero: TypeScript only reads the offsets and sizes; the pager and
 * vhive-pagesum check the rest.
 */
export function indexFile(offsets: readonly number[], blocks = 1, pageSize = PAGE): Buffer {
  const data = Buffer.alloc(48 + 16 * offsets.length + 16 * blocks);
  data.write("VHWSIDX3", 0, "latin1");
  data.writeUInt32LE(pageSize, 8);
  data.writeUInt32LE(1, 12); // lz4
  data.writeBigUInt64LE(BigInt(offsets.length), 16);
  data.writeBigUInt64LE(BigInt(blocks), 24);
  data.writeUInt32LE(64, 32);
  offsets.forEach((offset, i) => data.writeBigUInt64LE(BigInt(offset), 48 + 16 * i));
  return data;
}
