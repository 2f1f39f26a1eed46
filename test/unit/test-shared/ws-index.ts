/** Working-set index and trace files as the pager writes them (native/include/vhive_uffd.h, vhive_sums.h). */
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
 * A working-set index (format 2): offsets with a checksum each. The checksums here are zero:
 * TypeScript only reads the offsets; the pager and vhive-pagesum check the rest.
 */
export function indexFile(offsets: readonly number[], pageSize = PAGE): Buffer {
  const data = Buffer.alloc(32 + 16 * offsets.length);
  data.write("VHWSIDX2", 0, "latin1");
  data.writeUInt32LE(pageSize, 8);
  data.writeBigUInt64LE(BigInt(offsets.length), 16);
  offsets.forEach((offset, i) => data.writeBigUInt64LE(BigInt(offset), 32 + 16 * i));
  return data;
}
