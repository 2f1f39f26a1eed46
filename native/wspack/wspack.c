/*
 * vhive-wspack: working sets of format 3 (include/vhive_ws.h) from a recording's trace.
 *
 *   vhive-wspack pack MEM SUMS TRACE PAGES INDEX [--codec raw|lz4|zstd] [--level N] [--block-pages N]
 *       write the working set of the pages the trace names (first-touch order) with a codec:
 *       how vhive makes a working set in another encoding than the one recorded. Every page is
 *       checked against SUMS as it is read from MEM.
 *   vhive-wspack measure MEM SUMS TRACE [--reps N] [--configs lz4:1,lz4:9,...] [--block-pages 16,64,...]
 *       encode the trace's pages with each codec and level, block size and page order (first
 *       touch, or offset order as format 2 stored them), and decode them back --reps times:
 *       the bytes each stores and how fast it decodes on this host, to choose a codec by.
 *
 * Output: JSON lines on stdout. pack prints {"event":"ws-written",...}; measure prints
 * {"event":"measured",...} per configuration. Exit status: 0 done, 3 the memory file does not
 * match its checksums, 1 an error, 2 usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vhive_sums.h"
#include "vhive_uffd.h"
#include "vhive_ws.h"

static uint64_t page_size;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
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

static void fail(int status, const char *what, const char *path)
{
	char message[4600], escaped[9300];
	snprintf(message, sizeof message, "%s %s%s%s", what, path, errno ? ": " : "", errno ? strerror(errno) : "");
	json_escape(message, escaped, sizeof escaped);
	printf("{\"event\":\"%s\",\"message\":\"%s\"}\n", status == 3 ? "corrupt" : "error", escaped);
	fprintf(stderr, "vhive-wspack: %s\n", message);
	exit(status);
}

/* The trace (format 1, include/vhive_uffd.h): page offsets in first-touch order. */
static uint64_t *read_trace(const char *path, uint64_t *count)
{
	FILE *f = fopen(path, "rbe");
	if (!f) fail(1, "cannot open", path);
	struct vhive_ws_header header;
	errno = 0;
	if (fread(&header, sizeof header, 1, f) != 1 || memcmp(header.magic, VHIVE_WS_MAGIC, 8) != 0 || header.page_size != page_size ||
	    header.count > (uint64_t)1 << 32)
		fail(3, "not a trace of this page size:", path);
	uint64_t *offsets = malloc(header.count * sizeof *offsets + 1);
	if (!offsets) fail(1, "out of memory for", path);
	if (fread(offsets, sizeof *offsets, header.count, f) != header.count) fail(3, "truncated trace:", path);
	fclose(f);
	*count = header.count;
	return offsets;
}

struct inputs {
	int mem_fd;
	uint64_t *sums, sums_count, *trace, count;
};

static void load_inputs(struct inputs *in, const char *mem, const char *sums, const char *trace)
{
	in->mem_fd = open(mem, O_RDONLY | O_CLOEXEC);
	if (in->mem_fd < 0) fail(1, "cannot open", mem);
	const char *problem = NULL;
	in->sums = vhive_read_checked(sums, VHIVE_SUMS_MAGIC, page_size, sizeof *in->sums, &in->sums_count, &problem);
	if (!in->sums) fail(3, problem, sums);
	in->trace = read_trace(trace, &in->count);
}

static int pack(int argc, char **argv)
{
	enum vhive_ws_codec codec = VHIVE_WS_LZ4;
	int level = -1;
	long block_pages = VHIVE_WS_BLOCK_PAGES;
	static const struct option options[] = {
		{ "codec", required_argument, NULL, 'c' }, { "level", required_argument, NULL, 'l' },
		{ "block-pages", required_argument, NULL, 'b' }, { NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (c == 'c' && vhive_ws_codec_by_name(optarg) >= 0) codec = (enum vhive_ws_codec)vhive_ws_codec_by_name(optarg);
		else if (c == 'l') level = atoi(optarg);
		else if (c == 'b') block_pages = strtol(optarg, NULL, 10);
		else return 2;
	}
	if (argc - optind != 5 || block_pages < 1 || block_pages > VHIVE_WS_MAX_BLOCK_PAGES) return 2;
	if (level < 0) level = vhive_ws_default_level(codec);
	char **paths = argv + optind;
	struct inputs in;
	load_inputs(&in, paths[0], paths[1], paths[2]);
	uint64_t started = now_ns();
	struct vhive_ws_written written;
	bool memory_at_fault;
	uint64_t bad_offset = 0;
	const char *problem = vhive_ws_pack(in.mem_fd, in.sums, in.sums_count, in.trace, in.count, page_size, paths[3], paths[4], codec,
					    level, (uint32_t)block_pages, &written, &memory_at_fault, &bad_offset);
	if (problem && memory_at_fault) {
		char where[4400];
		snprintf(where, sizeof where, "%s at offset %lu", paths[0], bad_offset);
		fail(errno ? 1 : 3, problem, where);
	}
	if (problem) fail(1, problem, paths[3]);
	printf("{\"event\":\"ws-written\",\"pages\":%lu,\"zeroPages\":%lu,\"storedPages\":%lu,\"blocks\":%lu,\"bytes\":%lu,"
	       "\"pageSize\":%lu,\"codec\":\"%s\",\"level\":%d,\"blockPages\":%ld,\"us\":%lu}\n",
	       written.pages, written.zero_pages, written.stored_pages, written.blocks, written.file_bytes, page_size,
	       vhive_ws_codec_names[codec], level, block_pages, (now_ns() - started) / 1000);
	return 0;
}

static int compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Encode `pages` (count x page size, non-zero only) in blocks, decode them back reps times. */
static void measure_one(enum vhive_ws_codec codec, int level, uint32_t block_pages, const char *order, const uint8_t *pages,
			uint64_t count, uint64_t all_pages, uint64_t zero_pages, int reps)
{
	size_t block_raw = (size_t)block_pages * page_size, bound = vhive_ws_block_bound(codec, block_raw);
	uint64_t blocks = (count + block_pages - 1) / block_pages;
	uint8_t *stored = malloc(blocks * bound + 1), *out = malloc(block_raw);
	size_t *at = malloc((blocks + 1) * sizeof *at);
	if (!stored || !out || !at) fail(1, "out of memory for", "a measurement");
	uint64_t t0 = now_ns();
	at[0] = 0;
	for (uint64_t b = 0; b < blocks; b++) {
		size_t raw = (size_t)((b + 1 < blocks ? block_pages : count - b * block_pages) * page_size);
		size_t n = vhive_ws_encode(codec, level, pages + b * block_raw, raw, stored + at[b], bound);
		if (n == 0) fail(1, "encoding failed:", vhive_ws_codec_names[codec]);
		at[b + 1] = at[b] + n;
	}
	uint64_t encode_ns = now_ns() - t0;
	uint64_t *decode_ns = malloc((size_t)reps * sizeof *decode_ns);
	struct vhive_ws_decoder *decoder = vhive_ws_decoder_new();
	for (int r = 0; r < reps; r++) {
		uint64_t t = now_ns();
		for (uint64_t b = 0; b < blocks; b++) {
			size_t raw = (size_t)((b + 1 < blocks ? block_pages : count - b * block_pages) * page_size);
			if (!vhive_ws_decode(decoder, codec, stored + at[b], at[b + 1] - at[b], out, raw) ||
			    memcmp(out, pages + b * block_raw, raw) != 0)
				fail(1, "a block did not decode to its pages:", vhive_ws_codec_names[codec]);
		}
		decode_ns[r] = now_ns() - t;
	}
	qsort(decode_ns, (size_t)reps, sizeof *decode_ns, compare_u64);
	uint64_t median_ns = decode_ns[reps / 2];
	double raw_mb = (double)(count * page_size) / 1e6;
	uint64_t format2_bytes = all_pages * page_size;
	printf("{\"event\":\"measured\",\"codec\":\"%s\",\"level\":%d,\"blockPages\":%u,\"order\":\"%s\",\"pages\":%lu,"
	       "\"zeroPages\":%lu,\"format2Bytes\":%lu,\"storedBytes\":%zu,\"ofFormat2\":%.4f,\"encodeMBps\":%.1f,"
	       "\"decodeMs\":%.3f,\"decodeMBps\":%.1f}\n",
	       vhive_ws_codec_names[codec], level, block_pages, order, all_pages, zero_pages, format2_bytes, at[blocks],
	       (double)at[blocks] / (double)format2_bytes, raw_mb / ((double)encode_ns / 1e9), (double)median_ns / 1e6,
	       raw_mb / ((double)median_ns / 1e9));
	fflush(stdout);
	vhive_ws_decoder_free(decoder);
	free(decode_ns);
	free(at);
	free(out);
	free(stored);
}

static int measure(int argc, char **argv)
{
	int reps = 9;
	const char *configs = "raw:0,lz4:1,lz4:9,lz4:12,zstd:1,zstd:3,zstd:9,zstd:19";
	const char *block_list = "16,64,256";
	static const struct option options[] = {
		{ "reps", required_argument, NULL, 'r' }, { "configs", required_argument, NULL, 'c' },
		{ "block-pages", required_argument, NULL, 'b' }, { NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (c == 'r') reps = atoi(optarg);
		else if (c == 'c') configs = optarg;
		else if (c == 'b') block_list = optarg;
		else return 2;
	}
	if (argc - optind != 3 || reps < 1) return 2;
	char **paths = argv + optind;
	struct inputs in;
	load_inputs(&in, paths[0], paths[1], paths[2]);
	uint8_t *all = malloc((size_t)in.count * page_size + 1);
	if (!all) fail(1, "out of memory for", paths[2]);
	uint64_t bad = 0;
	const char *problem = vhive_ws_gather(in.mem_fd, in.trace, in.count, page_size, in.sums, in.sums_count, all, &bad);
	if (problem) fail(errno ? 1 : 3, problem, paths[0]);
	/* The non-zero pages in first-touch order, and in offset order (as format 2 stored them). */
	uint64_t zero_hash = vhive_ws_zero_hash(page_size), stored = 0;
	uint8_t *trace_order = malloc((size_t)in.count * page_size + 1), *sorted_order = malloc((size_t)in.count * page_size + 1);
	uint64_t *sorted_offsets = malloc(in.count * sizeof *sorted_offsets + 1);
	if (!trace_order || !sorted_order || !sorted_offsets) fail(1, "out of memory for", paths[2]);
	for (uint64_t i = 0; i < in.count; i++) {
		if (in.sums[in.trace[i] / page_size] == zero_hash) continue;
		memcpy(trace_order + stored * page_size, all + i * page_size, (size_t)page_size);
		sorted_offsets[stored++] = in.trace[i];
	}
	qsort(sorted_offsets, stored, sizeof *sorted_offsets, compare_u64);
	uint8_t *sorted_pages = malloc((size_t)stored * page_size + 1);
	if (!sorted_pages) fail(1, "out of memory for", paths[2]);
	problem = vhive_ws_gather(in.mem_fd, sorted_offsets, stored, page_size, in.sums, in.sums_count, sorted_pages, &bad);
	if (problem) fail(errno ? 1 : 3, problem, paths[0]);
	memcpy(sorted_order, sorted_pages, (size_t)stored * page_size);
	free(sorted_pages);

	char *config_copy = strdup(configs);
	for (char *save = NULL, *config = strtok_r(config_copy, ",", &save); config; config = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(config, ':');
		if (colon) *colon = '\0';
		int codec = vhive_ws_codec_by_name(config);
		if (codec < 0) return 2;
		int level = colon ? atoi(colon + 1) : vhive_ws_default_level((enum vhive_ws_codec)codec);
		char *blocks_copy = strdup(block_list);
		for (char *save2 = NULL, *b = strtok_r(blocks_copy, ",", &save2); b; b = strtok_r(NULL, ",", &save2)) {
			long block_pages = strtol(b, NULL, 10);
			if (block_pages < 1 || block_pages > VHIVE_WS_MAX_BLOCK_PAGES) return 2;
			measure_one((enum vhive_ws_codec)codec, level, (uint32_t)block_pages, "first-touch", trace_order, stored, in.count,
				    in.count - stored, reps);
			measure_one((enum vhive_ws_codec)codec, level, (uint32_t)block_pages, "offset", sorted_order, stored, in.count,
				    in.count - stored, reps);
		}
		free(blocks_copy);
	}
	free(config_copy);
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: vhive-wspack pack MEM SUMS TRACE PAGES INDEX [--codec raw|lz4|zstd] [--level N] [--block-pages N]\n"
			"       vhive-wspack measure MEM SUMS TRACE [--reps N] [--configs lz4:9,zstd:3,...] [--block-pages 16,64,...]\n");
	return 2;
}

int main(int argc, char **argv)
{
	page_size = (uint64_t)sysconf(_SC_PAGESIZE);
	if (argc < 2) return usage();
	int status = 2;
	if (strcmp(argv[1], "pack") == 0) status = pack(argc - 1, argv + 1);
	else if (strcmp(argv[1], "measure") == 0) status = measure(argc - 1, argv + 1);
	return status == 2 ? usage() : status;
}
