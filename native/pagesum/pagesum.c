/*
 * vhive-pagesum: page checksums of snapshot files (format: include/vhive_sums.h).
 *
 *   vhive-pagesum write MEM SUMS
 *       hash every page of the memory file MEM into SUMS (when a snapshot is saved). Holes in
 *       the file (pages the guest never touched) are skipped with SEEK_DATA and get the hash of
 *       a zero page, so a 256 MiB guest that touched 100 MiB reads 100 MiB.
 *   vhive-pagesum verify MEM SUMS [WS_PAGES WS_INDEX]...
 *       check every page of MEM against SUMS, and of each working set (format 3,
 *       include/vhive_ws.h: each block and each page it decodes to) against its index, and the
 *       index against SUMS (a working set of another memory file is refused too). A working set
 *       of an older format is reported as unreadable: vhive records a new one instead.
 *
 * Output: JSON lines on stdout. write prints {"event":"sums-written",...}; verify prints one
 * {"event":"checked","role":...,"file":...,"pages":N,"bad":K,"badOffsets":[...]} per file, where
 * badOffsets are byte offsets into that file (at most 8; in ws.pages, where the damaged block
 * starts), then {"event":"verified","ok":...}.
 * Exit status: 0 all good, 3 something is damaged, 1 an error (a file cannot be read), 2 usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vhive_sums.h"
#include "vhive_ws.h"

#define CHUNK (2u << 20)
#define MAX_REPORTED 8

static uint64_t page_size;

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void json_escape(const char *in, char *out, size_t size)
{
	size_t j = 0;
	for (size_t i = 0; in[i] && j + 2 < size; i++) {
		if (in[i] == '"' || in[i] == '\\') out[j++] = '\\';
		out[j++] = (in[i] >= ' ') ? in[i] : ' ';
	}
	out[j] = '\0';
}

static void die(const char *what, const char *path)
{
	char message[4600], escaped[9300];
	snprintf(message, sizeof message, "%s %s: %s", what, path, errno ? strerror(errno) : "failed");
	json_escape(message, escaped, sizeof escaped);
	printf("{\"event\":\"error\",\"message\":\"%s\"}\n", escaped);
	fprintf(stderr, "vhive-pagesum: %s\n", message);
	exit(1);
}

static void *buffer(size_t size)
{
	void *buf = NULL;
	if (posix_memalign(&buf, (size_t)page_size, size) != 0) {
		errno = ENOMEM;
		die("allocating a buffer for", "pages");
	}
	return buf;
}

/* Read exactly len bytes at offset; false at end of file (errno 0), dies on an I/O error. */
static bool read_at(int fd, void *buf, size_t len, off_t offset, const char *path)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, offset + (off_t)done);
		if (n < 0 && errno == EINTR) continue;
		if (n < 0) die("reading", path);
		if (n == 0) return false;
		done += (size_t)n;
	}
	return true;
}

/*
 * Call visit(page index, hash) for every page of the file, reading only chunks that hold data:
 * a chunk SEEK_DATA says is a hole gets the zero page's hash without a read.
 */
static void hash_pages(int fd, uint64_t pages, const char *path, void (*visit)(uint64_t, uint64_t, void *), void *ctx)
{
	uint8_t *buf = buffer(CHUNK);
	uint8_t *zero = calloc(1, (size_t)page_size);
	if (!zero) die("allocating a zero page for", path);
	uint64_t zero_hash = vhive_page_hash(zero, (size_t)page_size);
	uint64_t file_bytes = pages * page_size;
	for (uint64_t at = 0; at < file_bytes; at += CHUNK) {
		size_t len = (size_t)(file_bytes - at < CHUNK ? file_bytes - at : CHUNK);
		off_t data = lseek(fd, (off_t)at, SEEK_DATA);
		bool hole = (data < 0 && errno == ENXIO) || (data >= 0 && (uint64_t)data >= at + len);
		if (!hole && !read_at(fd, buf, len, (off_t)at, path)) {
			errno = 0;
			die("unexpected end of", path);
		}
		for (size_t p = 0; p < len; p += page_size)
			visit((at + p) / page_size, hole ? zero_hash : vhive_page_hash(buf + p, (size_t)page_size), ctx);
	}
	free(zero);
	free(buf);
}

static uint64_t file_pages(int fd, const char *path)
{
	struct stat st;
	if (fstat(fd, &st) != 0) die("stat of", path);
	if ((uint64_t)st.st_size % page_size != 0) {
		errno = 0;
		die("size is not a whole number of pages:", path);
	}
	return (uint64_t)st.st_size / page_size;
}

static void store_hash(uint64_t page, uint64_t hash, void *ctx)
{
	((uint64_t *)ctx)[page] = hash;
}

static int write_sums(const char *mem_path, const char *sums_path)
{
	uint64_t started = now_us();
	int fd = open(mem_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) die("opening", mem_path);
	uint64_t pages = file_pages(fd, mem_path);
	uint64_t *sums = malloc(pages * sizeof *sums + 1);
	if (!sums) die("allocating checksums for", mem_path);
	hash_pages(fd, pages, mem_path, store_hash, sums);
	close(fd);
	if (!vhive_write_checked(sums_path, VHIVE_SUMS_MAGIC, page_size, sums, pages, sizeof *sums))
		die("writing", sums_path);
	free(sums);
	printf("{\"event\":\"sums-written\",\"pages\":%lu,\"pageSize\":%lu,\"us\":%lu}\n", pages, page_size, now_us() - started);
	return 0;
}

/* Mismatches found in one file, with the first few byte offsets. */
struct damage {
	const uint64_t *expected; /* verify_memory: the sums */
	uint64_t bad;
	uint64_t offsets[MAX_REPORTED];
};

static void note_bad(struct damage *d, uint64_t offset)
{
	if (d->bad < MAX_REPORTED) d->offsets[d->bad] = offset;
	d->bad++;
}

static void report(const char *role, const char *path, uint64_t pages, const struct damage *d)
{
	char escaped[9000];
	json_escape(path, escaped, sizeof escaped);
	printf("{\"event\":\"checked\",\"role\":\"%s\",\"file\":\"%s\",\"pages\":%lu,\"bad\":%lu,\"badOffsets\":[", role, escaped, pages,
	       d->bad);
	for (uint64_t i = 0; i < d->bad && i < MAX_REPORTED; i++) printf("%s%lu", i ? "," : "", d->offsets[i]);
	printf("]}\n");
}

/* A checksum file that cannot be trusted: reported as one damaged file of its own. */
static void report_unreadable(const char *role, const char *path, const char *problem)
{
	char escaped[9000], why[400];
	json_escape(path, escaped, sizeof escaped);
	json_escape(problem, why, sizeof why);
	printf("{\"event\":\"checked\",\"role\":\"%s\",\"file\":\"%s\",\"pages\":0,\"bad\":1,\"badOffsets\":[],\"problem\":\"%s\"}\n", role,
	       escaped, why);
}

static void compare_hash(uint64_t page, uint64_t hash, void *ctx)
{
	struct damage *d = ctx;
	if (hash != d->expected[page]) note_bad(d, page * page_size);
}

static bool verify_memory(const char *mem_path, const uint64_t *sums, uint64_t count)
{
	int fd = open(mem_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) die("opening", mem_path);
	uint64_t pages = file_pages(fd, mem_path);
	struct damage d = { .expected = sums };
	if (pages != count) {
		/* Every page past the shorter of the two is unaccounted for: report where they start. */
		note_bad(&d, (pages < count ? pages : count) * page_size);
		pages = pages < count ? pages : count;
	}
	hash_pages(fd, pages, mem_path, compare_hash, &d);
	close(fd);
	report("memory", mem_path, pages, &d);
	return d.bad == 0;
}

/* A working set (format 3, include/vhive_ws.h): its index against SUMS, its blocks and pages against the index. */
static bool verify_working_set(const char *pages_path, const char *index_path, const uint64_t *sums, uint64_t sums_count)
{
	struct vhive_ws_index index;
	uint64_t bad_at = 0;
	bool old_format = false;
	const char *problem = vhive_ws_read_index(index_path, page_size, &index, &bad_at, &old_format);
	if (problem) {
		report_unreadable("working-set index", index_path, problem);
		return false;
	}
	struct damage index_damage = { 0 };
	if (sums) {
		uint64_t bad[MAX_REPORTED];
		index_damage.bad = vhive_ws_check_entries(&index, sums, sums_count, bad, MAX_REPORTED);
		for (uint64_t i = 0; i < index_damage.bad && i < MAX_REPORTED; i++) index_damage.offsets[i] = vhive_ws_entry_offset(bad[i]);
	}
	report("working-set index", index_path, index.count, &index_damage);

	int fd = open(pages_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) die("opening", pages_path);
	struct stat st;
	if (fstat(fd, &st) != 0) die("stat of", pages_path);
	struct damage d = { 0 };
	if ((uint64_t)st.st_size != index.file_bytes) note_bad(&d, (uint64_t)st.st_size < index.file_bytes ? (uint64_t)st.st_size : index.file_bytes);
	uint8_t *stored = buffer(vhive_ws_block_bound(index.codec, (size_t)index.block_pages * page_size) + page_size);
	uint8_t *decoded = buffer((size_t)index.block_pages * page_size);
	struct vhive_ws_decoder *decoder = vhive_ws_decoder_new();
	for (uint64_t b = 0; b < index.block_count; b++) {
		uint64_t at = index.block_at[b], bad_page;
		if (at + index.blocks[b].stored_bytes > (uint64_t)st.st_size) break; /* the size is already reported */
		if (!read_at(fd, stored, index.blocks[b].stored_bytes, (off_t)at, pages_path)) break;
		if (vhive_ws_decode_block(decoder, &index, b, stored, decoded, &bad_page)) note_bad(&d, at);
	}
	vhive_ws_decoder_free(decoder);
	free(decoded);
	free(stored);
	close(fd);
	report("working-set pages", pages_path, index.stored_pages, &d);
	vhive_ws_free_index(&index);
	return d.bad == 0 && index_damage.bad == 0;
}

static int verify(const char *mem_path, const char *sums_path, char **working_sets, int working_set_files)
{
	const char *problem = NULL;
	uint64_t count = 0;
	uint64_t *sums = vhive_read_checked(sums_path, VHIVE_SUMS_MAGIC, page_size, sizeof *sums, &count, &problem);
	bool ok = true;
	if (!sums) {
		report_unreadable("checksums", sums_path, problem);
		ok = false;
	} else {
		struct damage none = { 0 };
		report("checksums", sums_path, count, &none);
		ok = verify_memory(mem_path, sums, count);
	}
	for (int i = 0; i + 1 < working_set_files; i += 2)
		ok = verify_working_set(working_sets[i], working_sets[i + 1], sums, sums ? count : UINT64_MAX) && ok;
	free(sums);
	printf("{\"event\":\"verified\",\"ok\":%s}\n", ok ? "true" : "false");
	return ok ? 0 : 3;
}

static int usage(void)
{
	fprintf(stderr, "usage: vhive-pagesum write MEM SUMS\n"
			"       vhive-pagesum verify MEM SUMS [WS_PAGES WS_INDEX]...\n");
	return 2;
}

int main(int argc, char **argv)
{
	page_size = (uint64_t)sysconf(_SC_PAGESIZE);
	if (argc == 4 && strcmp(argv[1], "write") == 0) return write_sums(argv[2], argv[3]);
	if (argc >= 4 && argc % 2 == 0 && strcmp(argv[1], "verify") == 0) return verify(argv[2], argv[3], argv + 4, argc - 4);
	return usage();
}
