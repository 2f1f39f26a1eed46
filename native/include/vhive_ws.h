/*
 * Working sets, format 3: the pages one invocation touched, as the pager prefetches them
 * (native/ws/ws.c reads and writes them; the pager, vhive-pagesum and vhive-wspack use it).
 *
 * Two files, both little-endian. The index says which pages the working set holds, in the
 * order the guest first touched them, and how ws.pages stores them:
 *
 *   ws.index
 *     48 bytes  header
 *       8  magic "VHWSIDX3" (the format number is its last character)
 *       4  page size
 *       4  codec: 0 raw, 1 lz4, 2 zstd
 *       8  count of page entries
 *       8  count of block entries
 *       4  most stored pages in one block
 *       4  reserved (0)
 *       8  XXH3-64 of the header's first 40 bytes, then every entry that follows, so a damaged
 *          header or entry is refused, never misread
 *     page entries, count x 16 bytes, in first-touch order:
 *       8  offset of the page in the memory file
 *       8  XXH3-64 of the page (the same as its entry in mem.sums, which the pager checks)
 *     block entries, count x 16 bytes:
 *       4  bytes the block takes in ws.pages
 *       4  pages it holds
 *       8  XXH3-64 of those bytes as stored
 *
 *   ws.pages
 *     the blocks back to back from offset 0. Block b holds the next `pages` non-zero pages of
 *     the index, in index order; every block but the last holds the header's most: raw, one LZ4 block (LZ4_compress_HC) or one zstd frame each.
 *     A page whose checksum is the zero page's is zero and not stored at all: the pager
 *     installs it with UFFDIO_ZEROPAGE.
 *
 * Blocks are decoded independently, so the pager checks, decompresses and installs one block
 * while the next is still being read. A reader refuses any other magic: format 2 ("VHWSIDX2",
 * every page stored raw in offset order) counts as no working set at all (vhive records a new
 * one), and an unknown format is refused as damage.
 */
#ifndef VHIVE_WS_H
#define VHIVE_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vhive_sums.h"

#define VHIVE_WS_FORMAT 3
#define VHIVE_WS_INDEX3_MAGIC "VHWSIDX3"

enum vhive_ws_codec { VHIVE_WS_RAW = 0, VHIVE_WS_LZ4 = 1, VHIVE_WS_ZSTD = 2 };
#define VHIVE_WS_CODECS 3
extern const char *const vhive_ws_codec_names[VHIVE_WS_CODECS];

/* What a working set is recorded with unless told otherwise: chosen by measurement (README). */
#define VHIVE_WS_DEFAULT_CODEC VHIVE_WS_LZ4
/* Stored pages per block unless told otherwise (the measurements in the README). */
#define VHIVE_WS_BLOCK_PAGES 64
#define VHIVE_WS_MAX_BLOCK_PAGES 4096

struct vhive_ws3_header {
	char magic[8];
	uint32_t page_size;
	uint32_t codec;
	uint64_t pages;
	uint64_t blocks;
	uint32_t block_pages;
	uint32_t reserved;
	uint64_t hash;
};

struct vhive_ws_block {
	uint32_t stored_bytes;
	uint32_t pages;
	uint64_t hash;
};

/* An index read whole and checked (vhive_ws_read_index). */
struct vhive_ws_index {
	uint64_t page_size;
	enum vhive_ws_codec codec;
	uint32_t block_pages;
	uint64_t count;                 /* page entries */
	struct vhive_ws_entry *entries; /* first-touch order */
	uint64_t block_count;
	struct vhive_ws_block *blocks;
	uint64_t *block_at;   /* where block b starts in ws.pages */
	uint64_t *block_first;/* index into entries of block b's first stored page */
	uint64_t stored_pages;/* entries that are not zero pages */
	uint64_t zero_pages;
	uint64_t file_bytes;  /* what ws.pages must hold: the blocks' bytes summed */
	uint64_t zero_hash;   /* the checksum of a zero page */
};

/* The checksum of a page of zeros of this size. */
uint64_t vhive_ws_zero_hash(uint64_t page_size);

/*
 * Read and check ws.index: its header (magic, page size, codec), its own checksum, and that
 * its blocks account for exactly its non-zero pages. Returns NULL and fills *index, or a static
 * description of what is wrong (errno set for a system error, else 0), with *bad_offset the
 * byte offset into the file of the part at fault. The caller checks the entries against
 * mem.sums. *old_format is set when the file is a working set of an older format.
 */
const char *vhive_ws_read_index(const char *path, uint64_t page_size, struct vhive_ws_index *index, uint64_t *bad_offset,
				bool *old_format);
void vhive_ws_free_index(struct vhive_ws_index *index);
/* Whether entry i of the index is a zero page (not stored). */
static inline bool vhive_ws_is_zero(const struct vhive_ws_index *index, uint64_t i)
{
	return index->entries[i].hash == index->zero_hash;
}

/* Per-thread decoding state (zstd's context). */
struct vhive_ws_decoder;
struct vhive_ws_decoder *vhive_ws_decoder_new(void);
void vhive_ws_decoder_free(struct vhive_ws_decoder *decoder);

/*
 * Block b of the index, its stored bytes at `stored`: check them against the block's checksum,
 * decode them into out (block.pages x page size bytes) and check every page against its entry.
 * NULL when all is well, else what is wrong, with *bad_page the index entry of a page that
 * failed (UINT64_MAX when the block as stored is at fault).
 */
const char *vhive_ws_decode_block(struct vhive_ws_decoder *decoder, const struct vhive_ws_index *index, uint64_t b,
				  const uint8_t *stored, uint8_t *out, uint64_t *bad_page);

/*
 * Writing a working set: pages are added in first-touch order, zero pages too; the writer
 * drops the zero pages, groups the rest in blocks, encodes them and writes ws.pages through
 * PATH.partial, then ws.index the same way. Each file is fsynced and renamed, so a reader sees
 * whole files or none.
 */
struct vhive_ws_writer;
struct vhive_ws_writer *vhive_ws_writer_open(const char *pages_path, const char *index_path, uint64_t page_size,
					     enum vhive_ws_codec codec, int level, uint32_t block_pages);
/* Add a page: offset in the memory file, its content, its checksum. false on error (errno). */
bool vhive_ws_writer_add(struct vhive_ws_writer *writer, uint64_t offset, const uint8_t *page, uint64_t hash);
/* Write the rest and the index; fills the counts. false on error (errno); the writer is freed either way. */
struct vhive_ws_written {
	uint64_t pages, zero_pages, stored_pages, blocks, file_bytes;
};
bool vhive_ws_writer_close(struct vhive_ws_writer *writer, struct vhive_ws_written *written);
/* Give up: remove the partial files and free the writer. */
void vhive_ws_writer_abort(struct vhive_ws_writer *writer);

/*
 * Check the index's entries against the memory file's checksums (mem.sums): each names a page
 * the file holds, once, with that page's checksum (a working set of another memory file is
 * refused too). Returns how many entries fail, the first max_bad of them in bad[].
 */
uint64_t vhive_ws_check_entries(const struct vhive_ws_index *index, const uint64_t *sums, uint64_t sums_count, uint64_t *bad,
				size_t max_bad);
/* Byte offset of page entry i in ws.index, for messages. */
static inline uint64_t vhive_ws_entry_offset(uint64_t i)
{
	return sizeof(struct vhive_ws3_header) + i * sizeof(struct vhive_ws_entry);
}

/*
 * Read the pages at offsets[0..count) (in any order, no repeats) from the memory file into out
 * (count x page size, in that order), a run of contiguous pages at a time, checking each
 * against sums. NULL, or what is wrong with *bad_offset the memory-file offset at fault
 * (errno set for a read error, else 0: the page does not match its checksum).
 */
const char *vhive_ws_gather(int mem_fd, const uint64_t *offsets, uint64_t count, uint64_t page_size, const uint64_t *sums,
			    uint64_t sums_count, uint8_t *out, uint64_t *bad_offset);

/*
 * A working set of the pages at trace[0..count) (first-touch order) of the memory file:
 * gathered, checked and written with the given codec. NULL, or what is wrong: *bad_offset is
 * then a memory-file offset when *memory_at_fault, else errno says what failed in writing.
 */
const char *vhive_ws_pack(int mem_fd, const uint64_t *sums, uint64_t sums_count, const uint64_t *trace, uint64_t count,
			  uint64_t page_size, const char *pages_path, const char *index_path, enum vhive_ws_codec codec,
			  int level, uint32_t block_pages, struct vhive_ws_written *written, bool *memory_at_fault,
			  uint64_t *bad_offset);

/* A codec by name ("raw", "lz4", "zstd"), -1 if unknown. */
int vhive_ws_codec_by_name(const char *name);
/* The default level of a codec: what `vhive-wspack measure` chose (native/README). */
int vhive_ws_default_level(enum vhive_ws_codec codec);

/*
 * Encode one block of `pages` pages (raw: a copy) into out, which holds at least
 * vhive_ws_block_bound bytes. Returns the encoded size, 0 on failure. For measurement and the
 * writer alike.
 */
size_t vhive_ws_block_bound(enum vhive_ws_codec codec, size_t raw_bytes);
size_t vhive_ws_encode(enum vhive_ws_codec codec, int level, const uint8_t *in, size_t raw_bytes, uint8_t *out, size_t out_size);
/* Decode one block into out (exactly raw_bytes); false if it does not decode to that size. */
bool vhive_ws_decode(struct vhive_ws_decoder *decoder, enum vhive_ws_codec codec, const uint8_t *in, size_t stored_bytes,
		     uint8_t *out, size_t raw_bytes);

#endif
