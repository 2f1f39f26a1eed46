/*
 * Working sets of format 3 (include/vhive_ws.h): reading and checking the index, decoding a
 * block, writing a working set. Shared by the pager, vhive-pagesum and vhive-wspack.
 */
#define _GNU_SOURCE
#include "vhive_ws.h"

#include <errno.h>
#include <fcntl.h>
#include <lz4.h>
#include <lz4hc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

const char *const vhive_ws_codec_names[VHIVE_WS_CODECS] = { "raw", "lz4", "zstd" };

int vhive_ws_codec_by_name(const char *name)
{
	for (int c = 0; c < VHIVE_WS_CODECS; c++)
		if (strcmp(name, vhive_ws_codec_names[c]) == 0) return c;
	return -1;
}

int vhive_ws_default_level(enum vhive_ws_codec codec)
{
	switch (codec) {
	case VHIVE_WS_LZ4: return 9;  /* LZ4HC: what 12 gains over 9 is <1% here, at 3x the record time */
	case VHIVE_WS_ZSTD: return 3; /* zstd's own default */
	default: return 0;
	}
}

uint64_t vhive_ws_zero_hash(uint64_t page_size)
{
	void *zero = calloc(1, (size_t)page_size);
	if (!zero) abort();
	uint64_t hash = vhive_page_hash(zero, (size_t)page_size);
	free(zero);
	return hash;
}

/* XXH3-64 of the header's first 40 bytes, then the entries. */
static uint64_t index_hash(const struct vhive_ws3_header *header, const void *body, size_t body_bytes)
{
	XXH3_state_t *state = XXH3_createState();
	if (!state) abort();
	XXH3_64bits_reset(state);
	XXH3_64bits_update(state, header, offsetof(struct vhive_ws3_header, hash));
	XXH3_64bits_update(state, body, body_bytes);
	uint64_t hash = (uint64_t)XXH3_64bits_digest(state);
	XXH3_freeState(state);
	return hash;
}

void vhive_ws_free_index(struct vhive_ws_index *index)
{
	free(index->entries);
	free(index->blocks);
	free(index->block_at);
	free(index->block_first);
	memset(index, 0, sizeof *index);
}

static bool read_exactly(int fd, void *buf, size_t len, off_t offset)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, offset + (off_t)done);
		if (n < 0 && errno == EINTR) continue;
		if (n <= 0) {
			if (n == 0) errno = 0;
			return false;
		}
		done += (size_t)n;
	}
	return true;
}

const char *vhive_ws_read_index(const char *path, uint64_t page_size, struct vhive_ws_index *index, uint64_t *bad_offset,
				bool *old_format)
{
	memset(index, 0, sizeof *index);
	*bad_offset = 0;
	*old_format = false;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) return "cannot be opened";
	const char *problem = NULL;
	struct vhive_ws3_header header;
	void *body = NULL;
	errno = 0;
	if (!read_exactly(fd, &header, sizeof header, 0) || memcmp(header.magic, "VHWSIDX", 7) != 0) {
		problem = errno ? "cannot be read" : "has no working-set header (not a vhive working set)";
		goto out;
	}
	if (header.magic[7] != '0' + VHIVE_WS_FORMAT) {
		*old_format = header.magic[7] >= '1' && header.magic[7] < '0' + VHIVE_WS_FORMAT;
		problem = *old_format ? "is a working set of an older format (it is recorded again)"
				      : "is a working set of a format this vhive does not know";
		goto out;
	}
	errno = 0;
	if (header.page_size != page_size) {
		problem = "was made with another page size";
		goto out;
	}
	if (header.codec >= VHIVE_WS_CODECS) {
		*bad_offset = offsetof(struct vhive_ws3_header, codec);
		problem = "names a codec this vhive does not know";
		goto out;
	}
	if (header.pages > (uint64_t)1 << 32 || header.blocks > header.pages || header.block_pages == 0 ||
	    header.block_pages > VHIVE_WS_MAX_BLOCK_PAGES || header.reserved != 0) {
		problem = "has an impossible header";
		goto out;
	}
	size_t entries_bytes = (size_t)header.pages * sizeof(struct vhive_ws_entry);
	size_t blocks_bytes = (size_t)header.blocks * sizeof(struct vhive_ws_block);
	body = malloc(entries_bytes + blocks_bytes + 1);
	if (!body) {
		problem = "is too large to read";
		goto out;
	}
	errno = 0;
	if (!read_exactly(fd, body, entries_bytes + blocks_bytes, sizeof header)) {
		problem = errno ? "cannot be read" : "is shorter than its header says (truncated)";
		goto out;
	}
	char extra;
	if (pread(fd, &extra, 1, (off_t)(sizeof header + entries_bytes + blocks_bytes)) != 0) {
		errno = 0;
		problem = "is longer than its header says";
		goto out;
	}
	errno = 0;
	if (index_hash(&header, body, entries_bytes + blocks_bytes) != header.hash) {
		problem = "does not match its own checksum (damaged)";
		goto out;
	}
	index->page_size = page_size;
	index->codec = (enum vhive_ws_codec)header.codec;
	index->block_pages = header.block_pages;
	index->count = header.pages;
	index->block_count = header.blocks;
	index->zero_hash = vhive_ws_zero_hash(page_size);
	index->entries = malloc(entries_bytes + 1);
	index->blocks = malloc(blocks_bytes + 1);
	index->block_at = malloc(header.blocks * sizeof(uint64_t) + 1);
	index->block_first = malloc(header.blocks * sizeof(uint64_t) + 1);
	if (!index->entries || !index->blocks || !index->block_at || !index->block_first) abort();
	memcpy(index->entries, body, entries_bytes);
	memcpy(index->blocks, (char *)body + entries_bytes, blocks_bytes);
	for (uint64_t i = 0; i < index->count; i++)
		if (vhive_ws_is_zero(index, i)) index->zero_pages++;
	index->stored_pages = index->count - index->zero_pages;
	/* Blocks must account for every stored page, in order, each within the codec's bound. */
	uint64_t at = 0, entry = 0;
	for (uint64_t b = 0; b < index->block_count; b++) {
		const struct vhive_ws_block *block = &index->blocks[b];
		uint64_t raw = (uint64_t)block->pages * page_size;
		/* Every block but the last is full, so stored page k is in block k / block_pages. */
		bool full = b + 1 == index->block_count || block->pages == header.block_pages;
		bool fits = full && block->pages > 0 && block->pages <= header.block_pages && block->stored_bytes > 0 &&
			    block->stored_bytes <= vhive_ws_block_bound(index->codec, raw) &&
			    (index->codec != VHIVE_WS_RAW || block->stored_bytes == raw);
		while (entry < index->count && vhive_ws_is_zero(index, entry)) entry++;
		if (!fits || entry == index->count) {
			*bad_offset = sizeof header + entries_bytes + b * sizeof *block;
			problem = "has a block that does not fit its pages";
			goto out;
		}
		index->block_at[b] = at;
		index->block_first[b] = entry;
		at += block->stored_bytes;
		/* Step over this block's stored pages (and the zero pages among them). */
		for (uint32_t p = 0; p < block->pages; entry++) {
			if (entry == index->count) {
				*bad_offset = sizeof header + entries_bytes + b * sizeof *block;
				problem = "has blocks that hold more pages than its entries";
				goto out;
			}
			if (!vhive_ws_is_zero(index, entry)) p++;
		}
	}
	while (entry < index->count && vhive_ws_is_zero(index, entry)) entry++;
	if (entry != index->count) {
		*bad_offset = sizeof header + entries_bytes;
		problem = "has pages that no block holds";
		goto out;
	}
	index->file_bytes = at;
out:
	if (problem) vhive_ws_free_index(index);
	free(body);
	int saved = errno;
	close(fd);
	errno = saved;
	return problem;
}

struct vhive_ws_decoder {
	ZSTD_DCtx *zstd;
};

struct vhive_ws_decoder *vhive_ws_decoder_new(void)
{
	struct vhive_ws_decoder *decoder = calloc(1, sizeof *decoder);
	if (!decoder) abort();
	decoder->zstd = ZSTD_createDCtx();
	if (!decoder->zstd) abort();
	return decoder;
}

void vhive_ws_decoder_free(struct vhive_ws_decoder *decoder)
{
	if (!decoder) return;
	ZSTD_freeDCtx(decoder->zstd);
	free(decoder);
}

size_t vhive_ws_block_bound(enum vhive_ws_codec codec, size_t raw_bytes)
{
	switch (codec) {
	case VHIVE_WS_LZ4: return (size_t)LZ4_compressBound((int)raw_bytes);
	case VHIVE_WS_ZSTD: return ZSTD_compressBound(raw_bytes);
	default: return raw_bytes;
	}
}

size_t vhive_ws_encode(enum vhive_ws_codec codec, int level, const uint8_t *in, size_t raw_bytes, uint8_t *out, size_t out_size)
{
	switch (codec) {
	case VHIVE_WS_LZ4: {
		int n = level <= 1 ? LZ4_compress_default((const char *)in, (char *)out, (int)raw_bytes, (int)out_size)
				   : LZ4_compress_HC((const char *)in, (char *)out, (int)raw_bytes, (int)out_size, level);
		return n > 0 ? (size_t)n : 0;
	}
	case VHIVE_WS_ZSTD: {
		size_t n = ZSTD_compress(out, out_size, in, raw_bytes, level);
		return ZSTD_isError(n) ? 0 : n;
	}
	default:
		if (out_size < raw_bytes) return 0;
		memcpy(out, in, raw_bytes);
		return raw_bytes;
	}
}

bool vhive_ws_decode(struct vhive_ws_decoder *decoder, enum vhive_ws_codec codec, const uint8_t *in, size_t stored_bytes,
		     uint8_t *out, size_t raw_bytes)
{
	switch (codec) {
	case VHIVE_WS_LZ4:
		/* The _safe variant never writes past out, whatever the input: a damaged block fails here. */
		return LZ4_decompress_safe((const char *)in, (char *)out, (int)stored_bytes, (int)raw_bytes) == (int)raw_bytes;
	case VHIVE_WS_ZSTD: {
		size_t n = ZSTD_decompressDCtx(decoder->zstd, out, raw_bytes, in, stored_bytes);
		return !ZSTD_isError(n) && n == raw_bytes;
	}
	default:
		if (stored_bytes != raw_bytes) return false;
		if (out != in) memcpy(out, in, raw_bytes);
		return true;
	}
}

static const char *check_block_pages(const struct vhive_ws_index *index, uint64_t b, const uint8_t *out, uint64_t *bad_page);

const char *vhive_ws_decode_block(struct vhive_ws_decoder *decoder, const struct vhive_ws_index *index, uint64_t b,
				  const uint8_t *stored, uint8_t *out, uint64_t *bad_page)
{
	const struct vhive_ws_block *block = &index->blocks[b];
	*bad_page = UINT64_MAX;
	/* A raw block's pages are checked first, so a damaged one is named to the page. */
	bool raw_codec = index->codec == VHIVE_WS_RAW;
	if (!raw_codec && (uint64_t)XXH3_64bits(stored, block->stored_bytes) != block->hash) return "the block does not match its checksum in ws.index";
	size_t raw = (size_t)block->pages * index->page_size;
	if (!vhive_ws_decode(decoder, index->codec, stored, block->stored_bytes, out, raw)) return "the block does not decode to its pages";
	const char *problem = check_block_pages(index, b, out, bad_page);
	if (!problem && raw_codec && (uint64_t)XXH3_64bits(stored, block->stored_bytes) != block->hash)
		return "the block does not match its checksum in ws.index";
	return problem;
}

static const char *check_block_pages(const struct vhive_ws_index *index, uint64_t b, const uint8_t *out, uint64_t *bad_page)
{
	const struct vhive_ws_block *block = &index->blocks[b];
	uint64_t entry = index->block_first[b];
	for (uint32_t p = 0; p < block->pages; entry++) {
		if (vhive_ws_is_zero(index, entry)) continue;
		if (vhive_page_hash(out + (size_t)p * index->page_size, (size_t)index->page_size) != index->entries[entry].hash) {
			*bad_page = entry;
			return "a page does not match its checksum in ws.index";
		}
		p++;
	}
	return NULL;
}

struct vhive_ws_writer {
	char pages_tmp[4200], pages_path[4096], index_path[4096];
	int fd;
	uint64_t page_size;
	enum vhive_ws_codec codec;
	int level;
	uint32_t block_pages;
	uint64_t zero_hash;
	uint8_t *raw, *encoded; /* the block being filled, and its encoding */
	size_t encoded_size;
	uint32_t in_block;
	struct vhive_ws_entry *entries;
	uint64_t count, cap;
	struct vhive_ws_block *blocks;
	uint64_t block_count, block_cap;
	uint64_t file_bytes, zero_pages;
};

struct vhive_ws_writer *vhive_ws_writer_open(const char *pages_path, const char *index_path, uint64_t page_size,
					     enum vhive_ws_codec codec, int level, uint32_t block_pages)
{
	if (block_pages == 0 || block_pages > VHIVE_WS_MAX_BLOCK_PAGES || strlen(pages_path) >= 4096 || strlen(index_path) >= 4096) {
		errno = EINVAL;
		return NULL;
	}
	struct vhive_ws_writer *w = calloc(1, sizeof *w);
	if (!w) return NULL;
	snprintf(w->pages_path, sizeof w->pages_path, "%s", pages_path);
	snprintf(w->index_path, sizeof w->index_path, "%s", index_path);
	snprintf(w->pages_tmp, sizeof w->pages_tmp, "%s.partial", pages_path);
	w->page_size = page_size;
	w->codec = codec;
	w->level = level;
	w->block_pages = block_pages;
	w->zero_hash = vhive_ws_zero_hash(page_size);
	size_t raw = (size_t)block_pages * page_size;
	w->encoded_size = vhive_ws_block_bound(codec, raw);
	w->raw = malloc(raw);
	w->encoded = malloc(w->encoded_size);
	w->fd = open(w->pages_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (!w->raw || !w->encoded || w->fd < 0) {
		int saved = errno;
		vhive_ws_writer_abort(w);
		errno = saved;
		return NULL;
	}
	return w;
}

static bool write_all(int fd, const void *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = write(fd, (const char *)buf + done, len - done);
		if (n < 0 && errno == EINTR) continue;
		if (n <= 0) return false;
		done += (size_t)n;
	}
	return true;
}

static bool flush_block(struct vhive_ws_writer *w)
{
	if (w->in_block == 0) return true;
	size_t raw = (size_t)w->in_block * w->page_size;
	size_t n = vhive_ws_encode(w->codec, w->level, w->raw, raw, w->encoded, w->encoded_size);
	if (n == 0) {
		errno = EIO;
		return false;
	}
	if (w->block_count == w->block_cap) {
		w->block_cap = w->block_cap ? w->block_cap * 2 : 256;
		void *grown = realloc(w->blocks, w->block_cap * sizeof *w->blocks);
		if (!grown) return false;
		w->blocks = grown;
	}
	w->blocks[w->block_count++] = (struct vhive_ws_block){
		.stored_bytes = (uint32_t)n, .pages = w->in_block, .hash = (uint64_t)XXH3_64bits(w->encoded, n),
	};
	if (!write_all(w->fd, w->encoded, n)) return false;
	w->file_bytes += n;
	w->in_block = 0;
	return true;
}

bool vhive_ws_writer_add(struct vhive_ws_writer *w, uint64_t offset, const uint8_t *page, uint64_t hash)
{
	if (w->count == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 4096;
		void *grown = realloc(w->entries, w->cap * sizeof *w->entries);
		if (!grown) return false;
		w->entries = grown;
	}
	w->entries[w->count++] = (struct vhive_ws_entry){ .offset = offset, .hash = hash };
	if (hash == w->zero_hash) { /* a zero page: in the index, not in ws.pages */
		w->zero_pages++;
		return true;
	}
	memcpy(w->raw + (size_t)w->in_block * w->page_size, page, (size_t)w->page_size);
	if (++w->in_block == w->block_pages) return flush_block(w);
	return true;
}

void vhive_ws_writer_abort(struct vhive_ws_writer *w)
{
	if (!w) return;
	if (w->fd >= 0) {
		close(w->fd);
		unlink(w->pages_tmp);
	}
	free(w->raw);
	free(w->encoded);
	free(w->entries);
	free(w->blocks);
	free(w);
}

static bool write_index(struct vhive_ws_writer *w)
{
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.partial", w->index_path);
	struct vhive_ws3_header header = {
		.page_size = (uint32_t)w->page_size, .codec = (uint32_t)w->codec, .pages = w->count,
		.blocks = w->block_count, .block_pages = w->block_pages,
	};
	memcpy(header.magic, VHIVE_WS_INDEX3_MAGIC, 8);
	size_t entries_bytes = (size_t)w->count * sizeof *w->entries, blocks_bytes = (size_t)w->block_count * sizeof *w->blocks;
	uint8_t *body = malloc(entries_bytes + blocks_bytes + 1);
	if (!body) return false;
	if (entries_bytes) memcpy(body, w->entries, entries_bytes);
	if (blocks_bytes) memcpy(body + entries_bytes, w->blocks, blocks_bytes);
	header.hash = index_hash(&header, body, entries_bytes + blocks_bytes);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	bool ok = fd >= 0 && write_all(fd, &header, sizeof header) && write_all(fd, body, entries_bytes + blocks_bytes) && fsync(fd) == 0;
	int saved = errno;
	if (fd >= 0 && close(fd) != 0 && ok) {
		saved = errno;
		ok = false;
	}
	if (ok && rename(tmp, w->index_path) != 0) {
		saved = errno;
		ok = false;
	}
	if (!ok && fd >= 0) unlink(tmp);
	free(body);
	errno = saved;
	return ok;
}

bool vhive_ws_writer_close(struct vhive_ws_writer *w, struct vhive_ws_written *written)
{
	bool ok = flush_block(w) && fsync(w->fd) == 0;
	int saved = errno;
	if (close(w->fd) != 0 && ok) {
		saved = errno;
		ok = false;
	}
	w->fd = -1;
	/* The pages first, then the index: an index never names blocks its pages file lacks. */
	if (ok && rename(w->pages_tmp, w->pages_path) != 0) {
		saved = errno;
		ok = false;
	}
	if (ok && !write_index(w)) {
		saved = errno;
		ok = false;
	}
	if (!ok) unlink(w->pages_tmp);
	*written = (struct vhive_ws_written){
		.pages = w->count, .zero_pages = w->zero_pages, .stored_pages = w->count - w->zero_pages,
		.blocks = w->block_count, .file_bytes = w->file_bytes,
	};
	vhive_ws_writer_abort(w);
	errno = saved;
	return ok;
}

uint64_t vhive_ws_check_entries(const struct vhive_ws_index *index, const uint64_t *sums, uint64_t sums_count, uint64_t *bad,
				size_t max_bad)
{
	uint8_t *seen = calloc(sums_count + 1, 1);
	if (!seen) abort();
	uint64_t failed = 0;
	for (uint64_t i = 0; i < index->count; i++) {
		const struct vhive_ws_entry *e = &index->entries[i];
		uint64_t page = e->offset / index->page_size;
		bool fits = e->offset % index->page_size == 0 && page < sums_count && e->hash == sums[page] && !seen[page];
		if (fits) {
			seen[page] = 1;
			continue;
		}
		if (failed < max_bad) bad[failed] = i;
		failed++;
	}
	free(seen);
	return failed;
}

static int compare_offsets(const void *a, const void *b)
{
	uint64_t x = **(const uint64_t *const *)a, y = **(const uint64_t *const *)b;
	return x < y ? -1 : x > y;
}

const char *vhive_ws_gather(int mem_fd, const uint64_t *offsets, uint64_t count, uint64_t page_size, const uint64_t *sums,
			    uint64_t sums_count, uint8_t *out, uint64_t *bad_offset)
{
	/* Sorted pointers into offsets: position in `out` is (pointer - offsets). */
	const uint64_t **sorted = malloc(count * sizeof *sorted + 1);
	const size_t chunk = 2u << 20;
	uint8_t *buf = malloc(chunk);
	if (!sorted || !buf) abort();
	for (uint64_t i = 0; i < count; i++) sorted[i] = &offsets[i];
	qsort(sorted, count, sizeof *sorted, compare_offsets);
	const char *problem = NULL;
	const uint64_t chunk_pages = chunk / page_size;
	for (uint64_t i = 0; i < count && !problem;) {
		uint64_t end = i + 1;
		while (end < count && end - i < chunk_pages && *sorted[end] == *sorted[end - 1] + page_size) end++;
		uint64_t at = *sorted[i];
		errno = 0;
		if (at % page_size != 0 || *sorted[end - 1] / page_size >= sums_count) {
			*bad_offset = at;
			problem = "the page is outside the memory file's checksums";
			break;
		}
		if (!read_exactly(mem_fd, buf, (size_t)((end - i) * page_size), (off_t)at)) {
			*bad_offset = at;
			problem = errno ? "the memory file cannot be read" : "the memory file is shorter than its checksums";
			break;
		}
		for (uint64_t j = i; j < end; j++) {
			const uint8_t *page = buf + (j - i) * page_size;
			if (vhive_page_hash(page, (size_t)page_size) != sums[*sorted[j] / page_size]) {
				*bad_offset = *sorted[j];
				problem = "the page does not match its checksum in mem.sums";
				break;
			}
			memcpy(out + (size_t)(sorted[j] - offsets) * page_size, page, (size_t)page_size);
		}
		i = end;
	}
	free(buf);
	free(sorted);
	return problem;
}

const char *vhive_ws_pack(int mem_fd, const uint64_t *sums, uint64_t sums_count, const uint64_t *trace, uint64_t count,
			  uint64_t page_size, const char *pages_path, const char *index_path, enum vhive_ws_codec codec,
			  int level, uint32_t block_pages, struct vhive_ws_written *written, bool *memory_at_fault,
			  uint64_t *bad_offset)
{
	*memory_at_fault = false;
	uint8_t *pages = malloc((size_t)count * page_size + 1);
	if (!pages) abort();
	const char *problem = vhive_ws_gather(mem_fd, trace, count, page_size, sums, sums_count, pages, bad_offset);
	if (problem) {
		*memory_at_fault = true;
		free(pages);
		return problem;
	}
	struct vhive_ws_writer *w = vhive_ws_writer_open(pages_path, index_path, page_size, codec, level, block_pages);
	if (!w) {
		free(pages);
		return "cannot create the working-set files";
	}
	for (uint64_t i = 0; i < count; i++) {
		if (!vhive_ws_writer_add(w, trace[i], pages + (size_t)i * page_size, sums[trace[i] / page_size])) {
			int saved = errno;
			vhive_ws_writer_abort(w);
			free(pages);
			errno = saved;
			return "cannot write the working-set pages";
		}
	}
	free(pages);
	if (!vhive_ws_writer_close(w, written)) return "cannot write the working set";
	return NULL;
}
