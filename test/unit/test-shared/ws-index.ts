/** Working-set index and trace files as the pager writes them (native/include/vhive_uffd.h). */
export const PAGE = 4096;

export function indexFile(offsets: readonly number[], pageSize = PAGE): Buffer {
  const data = Buffer.alloc(24 + 8 * offsets.length);
  data.write("VHWSIDX1", 0, "latin1");
  data.writeUInt32LE(pageSize, 8);
  data.writeBigUInt64LE(BigInt(offsets.length), 16);
  offsets.forEach((offset, i) => data.writeBigUInt64LE(BigInt(offset), 24 + 8 * i));
  return data;
}
