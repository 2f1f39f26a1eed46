/*
 * Page checksums of snapshot files, shared by the pager (which verifies every page it reads
 * from disk before installing it) and vhive-pagesum (which writes them when a snapshot is
 * saved, and checks whole files for `vhive snapshot verify`).
 *
 * The hash is XXH3-64 (libxxhash): ~20 GB/s, so a 4 KiB page costs ~0.2 us and a 256 MiB
 * memory file ~15 ms. It detects damage (bit rot, a stray write, a truncated copy), not an
 * attacker: whoever can write the snapshot can write its checksums too.
 *
 * Two files carry checksums, both little-endian, with the same 32-byte header:
 *
 *   8 bytes  magic: "VHSUMS01" (mem.sums) or "VHWSIDX2" (ws.index, working-set format 2)
 *   4 bytes  page size
 *   4 bytes  reserved (0)
 *   8 bytes  count of entries
 *   8 bytes  XXH3-64 of the entries that follow (so a damaged index is refused, not misread)
 *
 *   mem.sums entries: count x 8 bytes, the XXH3-64 of page i of the memory file
 *   ws.index entries: count x 16 bytes, { offset of the page in the memory file, XXH3-64 of it },
 *                     sorted by offset; ws.pages holds the pages in that order, contiguously
 *
 * The trace (first-fault order, for analysis) keeps format 1 (include/vhive_uffd.h).
 */
#ifndef VHIVE_SUMS_H
#define VHIVE_SUMS_H

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#define VHIVE_SUMS_MAGIC "VHSUMS01"
#define VHIVE_WS_INDEX2_MAGIC "VHWSIDX2"

struct vhive_sums_header {
	char magic[8];
	uint32_t page_size;
	uint32_t reserved;
	uint64_t count;
	uint64_t body_hash;
};

struct vhive_ws_entry {
	uint64_t offset;
	uint64_t hash;
};

static inline uint64_t vhive_page_hash(const void *page, size_t size)
{
	return (uint64_t)XXH3_64bits(page, size);
}

/*
 * Read a checksummed file (mem.sums or ws.index) whole: its header is checked against `magic`
 * and `page_size`, its entries against the header's hash. Returns the entries (malloc'd, the
 * caller frees) and sets *count; NULL with *problem set to a static description otherwise
 * (errno set for a system error, 0 for bad content).
 */
static inline void *vhive_read_checked(const char *path, const char *magic, uint64_t page_size, size_t entry_size,
				       uint64_t *count, const char **problem)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*problem = "cannot be opened";
		return NULL;
	}
	struct vhive_sums_header header;
	void *entries = NULL;
	ssize_t n = pread(fd, &header, sizeof header, 0);
	errno = 0;
	if (n != (ssize_t)sizeof header || memcmp(header.magic, magic, 8) != 0) {
		*problem = "has no valid header (not a vhive checksum file, or an older format)";
		goto fail;
	}
	if (header.page_size != page_size) {
		*problem = "was made with another page size";
		goto fail;
	}
	if (header.count > (uint64_t)1 << 40) {
		*problem = "has an impossible entry count";
		goto fail;
	}
	size_t bytes = (size_t)header.count * entry_size;
	entries = malloc(bytes + 1);
	if (!entries) {
		*problem = "is too large to read";
		goto fail;
	}
	size_t done = 0;
	while (done < bytes) {
		n = pread(fd, (char *)entries + done, bytes - done, (off_t)(sizeof header + done));
		if (n < 0 && errno == EINTR) continue;
		if (n <= 0) {
			if (n == 0) errno = 0;
			*problem = n == 0 ? "is shorter than its header says (truncated)" : "cannot be read";
			goto fail;
		}
		done += (size_t)n;
	}
	char extra;
	if (pread(fd, &extra, 1, (off_t)(sizeof header + bytes)) != 0) {
		errno = 0;
		*problem = "is longer than its header says";
		goto fail;
	}
	if ((uint64_t)XXH3_64bits(entries, bytes) != header.body_hash) {
		errno = 0;
		*problem = "does not match its own checksum (damaged)";
		goto fail;
	}
	close(fd);
	*count = header.count;
	return entries;
fail:
	free(entries);
	close(fd);
	return NULL;
}

/* Write a checksummed file through path.partial, fsync and rename; false on error (errno set). */
static inline bool vhive_write_checked(const char *path, const char *magic, uint64_t page_size, const void *entries,
				       uint64_t count, size_t entry_size)
{
	char tmp[4200];
	if (snprintf(tmp, sizeof tmp, "%s.partial", path) >= (int)sizeof tmp) {
		errno = ENAMETOOLONG;
		return false;
	}
	FILE *f = fopen(tmp, "wbe");
	if (!f) return false;
	size_t bytes = (size_t)count * entry_size;
	struct vhive_sums_header header = {
		.page_size = (uint32_t)page_size, .count = count, .body_hash = (uint64_t)XXH3_64bits(entries, bytes),
	};
	memcpy(header.magic, magic, 8);
	bool ok = fwrite(&header, sizeof header, 1, f) == 1 && (bytes == 0 || fwrite(entries, bytes, 1, f) == 1) &&
		  fflush(f) == 0 && fsync(fileno(f)) == 0;
	int saved = errno;
	if (fclose(f) != 0 && ok) {
		saved = errno;
		ok = false;
	}
	if (ok && rename(tmp, path) != 0) {
		saved = errno;
		ok = false;
	}
	if (!ok) unlink(tmp);
	errno = saved;
	return ok;
}

#endif
