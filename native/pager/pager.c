/*
 * vhive-pager: the userfaultfd page-fault handler of one restored VM (REAP).
 *
 * It listens on a Unix socket for the QEMU memory shim (see include/vhive_uffd.h), receives
 * the userfaultfd of guest RAM, and serves every missing-page fault from the snapshot's memory
 * file. Modes:
 *   lazy      each fault: one page read from the memory file, UFFDIO_COPY (UFFDIO_ZEROPAGE if
 *             the page is all zero)
 *   record    lazy, and remember each faulting page in order; on "write-ws" write the trace
 *             and a working set (format 3, include/vhive_ws.h: the pages in first-touch order,
 *             zero pages named but not stored, the rest in blocks, raw or compressed)
 *   prefetch  read the whole ws.pages in one sequential pass as soon as the pager starts (while
 *             QEMU starts too), check and decode it block by block, and once the fd arrives
 *             install it in first-touch order (UFFDIO_COPY in contiguous runs, UFFDIO_ZEROPAGE
 *             for zero pages) as blocks are decoded, serving other faults meanwhile; then print
 *             "prefetch-done", so vhive resumes the vCPUs only then. The file is read with
 *             O_DIRECT, or through the page cache with --ws-read cached (shared by concurrent
 *             restores of one snapshot)
 *   all       every page of the memory file installed before the shim is acknowledged (zero
 *             pages with UFFDIO_ZEROPAGE), so QEMU waits in mmap, nothing overlaps the install
 *             and no page faults later: the `floor`, whose install time vhive reports apart
 *
 * --defer-prefetch (mode prefetch): read and install nothing until the command "prefetch"; the
 * pager serves faults meanwhile. A pooled VMM (vhive's restore mode `pool`) waits with its
 * pager attached but its working set neither read nor installed, so while idle it holds none of
 * the working set's memory; the cold start that takes it sends "prefetch".
 *
 * Every page read from disk is checked against its checksum before it is installed (formats:
 * include/vhive_sums.h, include/vhive_ws.h): memory-file pages against mem.sums (--mem-sums),
 * working-set blocks and pages against ws.index, whose entries are checked against mem.sums.
 * A mismatch, or a checksum file that is itself damaged, missing or of an unknown format,
 * prints {"event":"corrupt","role":...,"file":...,"offset":...} and exits with status 3, so no
 * damaged page ever reaches the guest; vhive ends the VM and names the file.
 *
 * Control: JSON lines on stdout (events), commands on stdin ("stats",
 * "write-ws PAGES INDEX TRACE [CODEC [LEVEL [BLOCK_PAGES]]]", "prefetch"). Commands are read
 * only once the shim is attached.
 * It exits when QEMU exits (the shim's socket closes) or when stdin closes (vhive is gone; then
 * it also removes the empty vhive-pager-* directory vhive made for its socket).
 *
 * usage: vhive-pager --socket PATH --mem FILE --mem-sums FILE --mode MODE
 *                    [--ws-pages F --ws-index F [--ws-read direct|cached] [--defer-prefetch]]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "vhive_sums.h"
#include "vhive_uffd.h"
#include "vhive_ws.h"

#define LOG_PREFIX "vhive-pager: "

enum mode { MODE_LAZY, MODE_RECORD, MODE_PREFETCH, MODE_ALL };
static const char *mode_names[] = { "lazy", "record", "prefetch", "all" };

struct stats {
	uint64_t faults;          /* page-fault messages served */
	uint64_t fault_copies;    /* of which installed with UFFDIO_COPY */
	uint64_t fault_zero;      /* of which installed with UFFDIO_ZEROPAGE */
	uint64_t fault_eexist;    /* of which the page was already there (prefetch won the race) */
	uint64_t fault_us;        /* time spent serving faults */
	uint64_t prefetch_pages;  /* pages installed by prefetch with UFFDIO_COPY */
	uint64_t prefetch_zero;   /* zero pages of the working set installed with UFFDIO_ZEROPAGE */
	uint64_t prefetch_skipped;/* pages prefetch found already installed */
	uint64_t ws_pages;        /* pages in the working set read, zero pages included */
	uint64_t ws_zero_pages;   /* of which zero pages (not stored) */
	uint64_t ws_stored_bytes; /* bytes of ws.pages read */
	enum vhive_ws_codec ws_codec;
	uint64_t decode_us;       /* time checking and decoding its blocks (within verify_us) */
	uint64_t fetch_us;        /* time to read the working set (or the memory file, mode all) */
	uint64_t install_us;      /* time to install it */
	uint64_t bytes_read;      /* from the memory file and the working set */
	uint64_t verify_us;       /* time spent checking pages against their checksums */
	uint64_t pages_verified;  /* pages checked (every page read from disk) */
	bool prefetch_done;
	bool direct_io;           /* the working set was read with O_DIRECT */
};

static struct {
	enum mode mode;
	const char *socket_path;
	const char *mem_path;
	const char *mem_sums_path;
	const char *ws_pages_path;
	const char *ws_index_path;
	bool ws_cached;       /* --ws-read cached: the working set through the page cache */
	bool no_verify;       /* --no-verify: pages installed unchecked, only to measure what checking costs */
	bool defer_prefetch;  /* --defer-prefetch: the working set waits for the "prefetch" command */
	bool prefetch_started;
	int mem_fd;
	int uffd;
	int conn;
	uint64_t base, length, page_size;
	uint64_t *sums;       /* XXH3-64 of each page of the memory file */
	uint64_t sums_count;
	struct stats stats;
	pthread_mutex_t lock; /* stats, the trace, and stdout */
	uint64_t *trace;      /* record mode: page offsets in first-fault order */
	size_t trace_len, trace_cap;
	uint8_t *seen;        /* record mode: one byte per page, set once traced */
} pager = { .mem_fd = -1, .uffd = -1, .conn = -1, .lock = PTHREAD_MUTEX_INITIALIZER };

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* One JSON line on stdout; callers hold no lock. */
static void emit(const char *fmt, ...)
{
	va_list ap;
	pthread_mutex_lock(&pager.lock);
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
	pthread_mutex_unlock(&pager.lock);
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

static void die(const char *what)
{
	char message[512], escaped[1024];
	snprintf(message, sizeof message, "%s: %s", what, errno ? strerror(errno) : "failed");
	json_escape(message, escaped, sizeof escaped);
	emit("{\"event\":\"error\",\"message\":\"%s\"}", escaped);
	fprintf(stderr, LOG_PREFIX "%s\n", message);
	exit(1);
}

/*
 * A file that fails its checksum: say which (role: memory, checksums, working-set pages,
 * working-set index), where (a byte offset into that file) and why, and exit before any of it
 * is installed. Status 3 tells vhive it is damage, not a pager failure.
 */
static void corrupt(const char *role, const char *path, uint64_t offset, const char *problem)
{
	char file[8200], why[600];
	json_escape(path, file, sizeof file);
	json_escape(problem, why, sizeof why);
	emit("{\"event\":\"corrupt\",\"role\":\"%s\",\"file\":\"%s\",\"offset\":%lu,\"problem\":\"%s\"}", role, file, offset, why);
	fprintf(stderr, LOG_PREFIX "%s %s is damaged at offset %lu: %s\n", role, path, offset, problem);
	/* _exit: another thread may be installing or serving; nothing may run after this verdict. */
	_exit(3);
}

/* Check one page read from the memory file at `offset` against mem.sums. */
static void verify_memory_page(const uint8_t *page, uint64_t offset)
{
	if (pager.no_verify) return;
	uint64_t started = now_us();
	uint64_t index = offset / pager.page_size;
	if (index >= pager.sums_count || vhive_page_hash(page, pager.page_size) != pager.sums[index])
		corrupt("memory", pager.mem_path, offset, "the page does not match its checksum in mem.sums");
	pthread_mutex_lock(&pager.lock);
	pager.stats.verify_us += now_us() - started;
	pager.stats.pages_verified++;
	pthread_mutex_unlock(&pager.lock);
}

static void load_sums(void)
{
	const char *problem = NULL;
	pager.sums = vhive_read_checked(pager.mem_sums_path, VHIVE_SUMS_MAGIC, pager.page_size, sizeof *pager.sums,
					&pager.sums_count, &problem);
	if (!pager.sums) corrupt("checksums", pager.mem_sums_path, 0, problem);
}

static void emit_stats(const char *event)
{
	pthread_mutex_lock(&pager.lock);
	struct stats s = pager.stats;
	pthread_mutex_unlock(&pager.lock);
	emit("{\"event\":\"%s\",\"mode\":\"%s\",\"faults\":%lu,\"faultCopies\":%lu,\"faultZeroPages\":%lu,"
	     "\"faultEexist\":%lu,\"faultServeUs\":%lu,\"prefetchPages\":%lu,\"prefetchZeroPages\":%lu,\"prefetchSkipped\":%lu,"
	     "\"wsPages\":%lu,\"wsZeroPages\":%lu,\"wsStoredBytes\":%lu,\"wsCodec\":\"%s\",\"wsRead\":\"%s\","
	     "\"fetchUs\":%lu,\"decodeUs\":%lu,\"installUs\":%lu,\"bytesRead\":%lu,\"directIo\":%s,"
	     "\"prefetchDone\":%s,\"pageSize\":%lu,\"verifyUs\":%lu,\"pagesVerified\":%lu}",
	     event, mode_names[pager.mode], s.faults, s.fault_copies, s.fault_zero, s.fault_eexist,
	     s.fault_us, s.prefetch_pages, s.prefetch_zero, s.prefetch_skipped, s.ws_pages, s.ws_zero_pages, s.ws_stored_bytes,
	     vhive_ws_codec_names[s.ws_codec], pager.ws_cached ? "cached" : "direct", s.fetch_us, s.decode_us, s.install_us,
	     s.bytes_read, s.direct_io ? "true" : "false", s.prefetch_done ? "true" : "false",
	     pager.page_size, s.verify_us, s.pages_verified);
}

static bool all_zero(const uint8_t *page, size_t size)
{
	const uint64_t *words = (const uint64_t *)page;
	for (size_t i = 0; i < size / sizeof(uint64_t); i++)
		if (words[i]) return false;
	return true;
}

/* pread exactly len bytes, or die naming the file. */
static void read_full(int fd, void *buf, size_t len, off_t offset, const char *what)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, offset + (off_t)done);
		if (n < 0 && errno == EINTR) continue;
		if (n <= 0) {
			if (n == 0) errno = 0;
			die(what);
		}
		done += (size_t)n;
	}
}

/*
 * Install len bytes at base+offset from src. Returns pages installed; pages that were already
 * present (EEXIST: a fault or the other thread got there first) are skipped and counted.
 */
static uint64_t copy_run(uint64_t offset, const uint8_t *src, uint64_t len, uint64_t *skipped)
{
	uint64_t installed = 0;
	while (len > 0) {
		struct uffdio_copy copy = {
			.dst = pager.base + offset, .src = (uint64_t)(uintptr_t)src, .len = len, .mode = 0,
		};
		if (ioctl(pager.uffd, UFFDIO_COPY, &copy) == 0) {
			installed += len / pager.page_size;
			break;
		}
		/* A partial copy reports the bytes it did install in copy.copy (or -errno). */
		int64_t done = copy.copy > 0 ? copy.copy : 0;
		installed += (uint64_t)done / pager.page_size;
		offset += (uint64_t)done;
		src += done;
		len -= (uint64_t)done;
		if (errno == EAGAIN) continue; /* the mapping changed under us: retry */
		if (errno == EEXIST) {         /* this page is already there: step over it */
			(*skipped)++;
			offset += pager.page_size;
			src += pager.page_size;
			len -= pager.page_size;
			continue;
		}
		if (errno == ENOENT || errno == ESRCH) return installed; /* QEMU is gone */
		die("UFFDIO_COPY");
	}
	return installed;
}

static void record_page(uint64_t offset)
{
	uint64_t page = offset / pager.page_size;
	if (pager.seen[page]) return;
	pager.seen[page] = 1;
	if (pager.trace_len == pager.trace_cap) {
		pager.trace_cap = pager.trace_cap ? pager.trace_cap * 2 : 4096;
		pager.trace = realloc(pager.trace, pager.trace_cap * sizeof *pager.trace);
		if (!pager.trace) die("growing the trace");
	}
	pager.trace[pager.trace_len++] = offset;
}

static void serve_fault(uint64_t address, uint8_t *page_buf)
{
	uint64_t started = now_us();
	uint64_t offset = (address - pager.base) & ~(pager.page_size - 1);
	read_full(pager.mem_fd, page_buf, pager.page_size, (off_t)offset, "reading the memory file");
	verify_memory_page(page_buf, offset);
	bool zero = all_zero(page_buf, pager.page_size);
	bool eexist = false;
	if (zero) {
		struct uffdio_zeropage zp = { .range = { .start = pager.base + offset, .len = pager.page_size } };
		if (ioctl(pager.uffd, UFFDIO_ZEROPAGE, &zp) != 0) {
			if (errno != EEXIST) die("UFFDIO_ZEROPAGE");
			eexist = true;
		}
	} else {
		/* copy_run's errno policy: EAGAIN retried, EEXIST skipped, QEMU gone is not an error. */
		uint64_t skipped = 0;
		copy_run(offset, page_buf, pager.page_size, &skipped);
		eexist = skipped > 0;
	}
	if (eexist) {
		/* Installed by prefetch meanwhile; the faulting thread still sleeps until woken. */
		struct uffdio_range range = { .start = pager.base + offset, .len = pager.page_size };
		if (ioctl(pager.uffd, UFFDIO_WAKE, &range) != 0) die("UFFDIO_WAKE");
	}
	pthread_mutex_lock(&pager.lock);
	pager.stats.faults++;
	pager.stats.bytes_read += pager.page_size;
	if (eexist) pager.stats.fault_eexist++;
	else if (zero) pager.stats.fault_zero++;
	else pager.stats.fault_copies++;
	if (pager.mode == MODE_RECORD) record_page(offset);
	pager.stats.fault_us += now_us() - started;
	pthread_mutex_unlock(&pager.lock);
}

static void *aligned_buffer(size_t size)
{
	void *buf = NULL;
	/* O_DIRECT needs the buffer aligned to the logical block size; a page is enough. */
	if (posix_memalign(&buf, (size_t)pager.page_size, size ? size : pager.page_size) != 0) die("allocating a buffer");
	return buf;
}

/* Where the run of contiguous pages that starts at sorted offsets[i] ends. */
static uint64_t run_end(const uint64_t *offsets, uint64_t count, uint64_t i)
{
	uint64_t j = i + 1;
	while (j < count && offsets[j] == offsets[j - 1] + pager.page_size) j++;
	return j;
}

/* Install offsets[0..count) whose contents lie contiguously in pages, in contiguous runs. */
static void install_runs(const uint64_t *offsets, uint64_t count, const uint8_t *pages)
{
	uint64_t installed = 0, skipped = 0;
	for (uint64_t i = 0; i < count;) {
		uint64_t j = run_end(offsets, count, i);
		installed += copy_run(offsets[i], pages + i * pager.page_size, (j - i) * pager.page_size, &skipped);
		i = j;
	}
	pthread_mutex_lock(&pager.lock);
	pager.stats.prefetch_pages += installed;
	pager.stats.prefetch_skipped += skipped;
	pthread_mutex_unlock(&pager.lock);
}

/* Map len bytes at base+offset to the zero page; as copy_run, pages already there are skipped. */
static uint64_t zero_run(uint64_t offset, uint64_t len, uint64_t *skipped)
{
	uint64_t zeroed = 0;
	while (len > 0) {
		struct uffdio_zeropage zp = { .range = { .start = pager.base + offset, .len = len }, .mode = 0 };
		if (ioctl(pager.uffd, UFFDIO_ZEROPAGE, &zp) == 0) {
			zeroed += len / pager.page_size;
			break;
		}
		int64_t done = zp.zeropage > 0 ? zp.zeropage : 0;
		zeroed += (uint64_t)done / pager.page_size;
		offset += (uint64_t)done;
		len -= (uint64_t)done;
		if (errno == EAGAIN) continue;
		if (errno == EEXIST) {
			(*skipped)++;
			offset += pager.page_size;
			len -= pager.page_size;
			continue;
		}
		if (errno == ENOENT || errno == ESRCH) return zeroed;
		die("UFFDIO_ZEROPAGE");
	}
	return zeroed;
}

/*
 * The working set (format 3, include/vhive_ws.h), prefetched in three stages that overlap:
 *   reader   reads ws.pages in one sequential pass, WS_READ_CHUNK at a time, from the moment
 *            the pager starts (while QEMU starts too)
 *   decoder  checks each block against its checksum once its bytes are in, decodes it and
 *            checks every page of it against its own
 *   install  once the shim's userfaultfd has arrived: the pages in first-touch order, each
 *            block as soon as it is decoded, zero pages with UFFDIO_ZEROPAGE
 * so no page is installed before it and its block matched their checksums. The file is read
 * with O_DIRECT (REAP: the host keeps no second copy of it in the page cache) or, with
 * --ws-read cached, through the page cache, so that concurrent restores of one snapshot read it
 * from disk once: the first pager's reads fill the page cache, the others find it there.
 */
#define WS_READ_CHUNK (2u << 20)

static struct {
	pthread_t reader, decoder;
	pthread_mutex_t lock;
	pthread_cond_t progress;
	struct vhive_ws_index index;
	bool index_ready;
	uint8_t *stored;            /* ws.pages as read */
	uint8_t *decoded;           /* the stored pages decoded, in index order (raw: stored itself) */
	uint64_t bytes_in;          /* of ws.pages read so far */
	uint64_t blocks_decoded;
	bool direct;
	uint64_t fetch_us, decode_us;
} ws = { .lock = PTHREAD_MUTEX_INITIALIZER, .progress = PTHREAD_COND_INITIALIZER };

static void ws_publish(uint64_t *counter, uint64_t value)
{
	pthread_mutex_lock(&ws.lock);
	*counter = value;
	pthread_cond_broadcast(&ws.progress);
	pthread_mutex_unlock(&ws.lock);
}

static void ws_wait(const uint64_t *counter, uint64_t at_least)
{
	pthread_mutex_lock(&ws.lock);
	while (*counter < at_least) pthread_cond_wait(&ws.progress, &ws.lock);
	pthread_mutex_unlock(&ws.lock);
}

static void ws_wait_index(void)
{
	pthread_mutex_lock(&ws.lock);
	while (!ws.index_ready) pthread_cond_wait(&ws.progress, &ws.lock);
	pthread_mutex_unlock(&ws.lock);
}

static void *ws_reader_thread(void *arg)
{
	(void)arg;
	uint64_t started = now_us();
	struct vhive_ws_index index;
	uint64_t bad = 0, bad_entry = 0;
	bool old_format = false;
	const char *problem = vhive_ws_read_index(pager.ws_index_path, pager.page_size, &index, &bad, &old_format);
	if (problem) corrupt("working-set index", pager.ws_index_path, bad, problem);
	/* Each entry against mem.sums: a page the memory file does not hold, or a working set of
	 * another memory file, is damage too. */
	if (vhive_ws_check_entries(&index, pager.sums, pager.sums_count, &bad_entry, 1) > 0)
		corrupt("working-set index", pager.ws_index_path, vhive_ws_entry_offset(bad_entry),
			"an entry names a page the snapshot's memory file does not hold");
	ws.direct = !pager.ws_cached;
	int fd = open(pager.ws_pages_path, O_RDONLY | O_CLOEXEC | (ws.direct ? O_DIRECT : 0));
	if (fd < 0 && ws.direct && errno == EINVAL) { /* tmpfs and some others refuse O_DIRECT */
		ws.direct = false;
		fd = open(pager.ws_pages_path, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0) corrupt("working-set pages", pager.ws_pages_path, 0, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0) die("stat of the working-set pages");
	if ((uint64_t)st.st_size != index.file_bytes)
		corrupt("working-set pages", pager.ws_pages_path, (uint64_t)st.st_size < index.file_bytes ? (uint64_t)st.st_size : index.file_bytes,
			"the file's size does not match its index (truncated?)");
	if (!ws.direct) posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL); /* a larger readahead window */
	/* O_DIRECT reads whole blocks: the buffer is rounded up to a page, the last read is short. */
	uint64_t buffer_bytes = (index.file_bytes + pager.page_size - 1) / pager.page_size * pager.page_size;
	ws.stored = aligned_buffer(buffer_bytes);
	ws.decoded = index.codec == VHIVE_WS_RAW ? ws.stored : aligned_buffer(index.stored_pages * pager.page_size);
	pthread_mutex_lock(&ws.lock);
	ws.index = index;
	ws.index_ready = true;
	pthread_cond_broadcast(&ws.progress);
	pthread_mutex_unlock(&ws.lock);
	for (uint64_t at = 0; at < index.file_bytes;) {
		size_t len = (size_t)(buffer_bytes - at < WS_READ_CHUNK ? buffer_bytes - at : WS_READ_CHUNK);
		ssize_t n = pread(fd, ws.stored + at, len, (off_t)at);
		if (n < 0 && errno == EINTR) continue;
		if (n < 0) die("reading the working-set pages");
		if (n == 0) corrupt("working-set pages", pager.ws_pages_path, at, "the file ends before its index says (truncated)");
		at += (uint64_t)n;
		ws_publish(&ws.bytes_in, at < index.file_bytes ? at : index.file_bytes);
	}
	close(fd);
	ws.fetch_us = now_us() - started;
	return NULL;
}

/* Where entry `entry` of a raw block b lies in ws.pages, for a message. */
static uint64_t raw_page_offset(const struct vhive_ws_index *index, uint64_t b, uint64_t entry)
{
	uint64_t at = index->block_at[b];
	for (uint64_t i = index->block_first[b]; i < entry; i++)
		if (!vhive_ws_is_zero(index, i)) at += index->page_size;
	return at;
}

static void *ws_decoder_thread(void *arg)
{
	(void)arg;
	ws_wait_index();
	const struct vhive_ws_index *index = &ws.index;
	struct vhive_ws_decoder *decoder = vhive_ws_decoder_new();
	uint64_t busy_us = 0;
	for (uint64_t b = 0; b < index->block_count; b++) {
		ws_wait(&ws.bytes_in, index->block_at[b] + index->blocks[b].stored_bytes);
		uint64_t started = now_us(), bad_page;
		const uint8_t *stored = ws.stored + index->block_at[b];
		uint8_t *decoded = ws.decoded + b * index->block_pages * pager.page_size;
		const char *problem;
		if (pager.no_verify) {
			bad_page = UINT64_MAX;
			problem = vhive_ws_decode(decoder, index->codec, stored, index->blocks[b].stored_bytes, decoded,
						  (size_t)index->blocks[b].pages * pager.page_size)
					  ? NULL
					  : "the block does not decode to its pages";
		} else {
			problem = vhive_ws_decode_block(decoder, index, b, stored, decoded, &bad_page);
		}
		if (problem) {
			bool in_place = index->codec == VHIVE_WS_RAW && bad_page != UINT64_MAX;
			corrupt("working-set pages", pager.ws_pages_path, in_place ? raw_page_offset(index, b, bad_page) : index->block_at[b], problem);
		}
		busy_us += now_us() - started;
		ws_publish(&ws.blocks_decoded, b + 1);
	}
	vhive_ws_decoder_free(decoder);
	ws.decode_us = busy_us;
	return NULL;
}

static void start_ws_prefetch(void)
{
	if (pthread_create(&ws.reader, NULL, ws_reader_thread, NULL) != 0 || pthread_create(&ws.decoder, NULL, ws_decoder_thread, NULL) != 0)
		die("starting the working-set read");
}

static bool contiguous(const struct vhive_ws_index *index, uint64_t i)
{
	return index->entries[i].offset == index->entries[i - 1].offset + pager.page_size;
}

/* Install the working set in first-touch order, in runs of contiguous pages within a block. */
static void prefetch_ws(void)
{
	ws_wait_index();
	uint64_t started = now_us();
	const struct vhive_ws_index *index = &ws.index;
	uint64_t installed = 0, zeroed = 0, skipped = 0, stored = 0; /* stored: pages of `decoded` passed */
	for (uint64_t i = 0; i < index->count;) {
		uint64_t j = i + 1;
		if (vhive_ws_is_zero(index, i)) {
			while (j < index->count && vhive_ws_is_zero(index, j) && contiguous(index, j)) j++;
			zeroed += zero_run(index->entries[i].offset, (j - i) * pager.page_size, &skipped);
		} else {
			uint64_t block = stored / index->block_pages, block_end = (block + 1) * index->block_pages, next = stored + 1;
			while (j < index->count && next < block_end && !vhive_ws_is_zero(index, j) && contiguous(index, j)) j++, next++;
			ws_wait(&ws.blocks_decoded, block + 1);
			installed += copy_run(index->entries[i].offset, ws.decoded + stored * pager.page_size, (j - i) * pager.page_size, &skipped);
			stored = next;
		}
		i = j;
	}
	uint64_t done = now_us();
	if (pthread_join(ws.reader, NULL) != 0 || pthread_join(ws.decoder, NULL) != 0) die("waiting for the working-set read");
	pthread_mutex_lock(&pager.lock);
	pager.stats.prefetch_pages += installed;
	pager.stats.prefetch_zero += zeroed;
	pager.stats.prefetch_skipped += skipped;
	pager.stats.ws_pages = index->count;
	pager.stats.ws_zero_pages = index->zero_pages;
	pager.stats.ws_stored_bytes = index->file_bytes;
	pager.stats.ws_codec = index->codec;
	pager.stats.bytes_read += index->file_bytes;
	pager.stats.fetch_us = ws.fetch_us;
	pager.stats.decode_us = ws.decode_us;
	pager.stats.install_us = done - started;
	pager.stats.direct_io = ws.direct;
	if (!pager.no_verify) {
		pager.stats.pages_verified += index->stored_pages;
		pager.stats.verify_us += ws.decode_us;
	}
	pthread_mutex_unlock(&pager.lock);
	if (ws.decoded != ws.stored) free(ws.decoded);
	free(ws.stored);
	vhive_ws_free_index(&ws.index);
}

/* Map offsets[0..count) (sorted) to the zero page, in contiguous runs. */
static void zero_runs(const uint64_t *offsets, uint64_t count)
{
	uint64_t zeroed = 0, skipped = 0;
	for (uint64_t i = 0; i < count;) {
		uint64_t j = run_end(offsets, count, i);
		zeroed += zero_run(offsets[i], (j - i) * pager.page_size, &skipped);
		i = j;
	}
	pthread_mutex_lock(&pager.lock);
	pager.stats.prefetch_zero += zeroed;
	pager.stats.prefetch_skipped += skipped;
	pthread_mutex_unlock(&pager.lock);
}

/*
 * The floor: every page of the memory file, read in large chunks, the non-zero ones copied and
 * the zero ones mapped to the zero page as prefetch maps a working set's, so that no page the
 * guest touches ever faults to the pager: a missing zero page would cost the floor a round trip
 * that prefetch, whose working set names its zero pages, does not pay.
 */
static void prefetch_all(void)
{
	const size_t chunk = 2u << 20;
	uint8_t *buf = aligned_buffer(chunk);
	uint64_t *offsets = malloc(chunk / pager.page_size * sizeof *offsets);
	uint64_t *zeros = malloc(chunk / pager.page_size * sizeof *zeros);
	if (!offsets || !zeros) die("allocating offsets");
	uint64_t fetch_us = 0, install_us = 0;
	for (uint64_t at = 0; at < pager.length; at += chunk) {
		size_t len = (size_t)(pager.length - at < chunk ? pager.length - at : chunk);
		uint64_t t0 = now_us();
		read_full(pager.mem_fd, buf, len, (off_t)at, "reading the memory file");
		uint64_t t1 = now_us();
		/* Pack the non-zero pages to the front of buf, remembering where each belongs. */
		uint64_t count = 0, zero_count = 0;
		for (size_t p = 0; p < len; p += pager.page_size) {
			verify_memory_page(buf + p, at + p);
			if (all_zero(buf + p, pager.page_size)) {
				zeros[zero_count++] = at + p;
				continue;
			}
			if (count * pager.page_size != p) memmove(buf + count * pager.page_size, buf + p, pager.page_size);
			offsets[count++] = at + p;
		}
		install_runs(offsets, count, buf);
		zero_runs(zeros, zero_count);
		fetch_us += t1 - t0;
		install_us += now_us() - t1;
		pthread_mutex_lock(&pager.lock);
		pager.stats.bytes_read += len;
		pager.stats.ws_pages += count;
		pthread_mutex_unlock(&pager.lock);
	}
	pthread_mutex_lock(&pager.lock);
	pager.stats.fetch_us = fetch_us;
	pager.stats.install_us = install_us;
	pthread_mutex_unlock(&pager.lock);
	free(zeros);
	free(offsets);
	free(buf);
}

static void *prefetch_thread(void *arg)
{
	(void)arg;
	if (pager.mode == MODE_PREFETCH) prefetch_ws();
	else prefetch_all();
	pthread_mutex_lock(&pager.lock);
	pager.stats.prefetch_done = true;
	pthread_mutex_unlock(&pager.lock);
	emit_stats("prefetch-done");
	return NULL;
}

/* Prefetch mode, once the shim is attached: install the working set as it is decoded. */
static void start_ws_install(void)
{
	pthread_t prefetcher;
	if (pthread_create(&prefetcher, NULL, prefetch_thread, NULL) != 0) die("starting the prefetch thread");
	pthread_detach(prefetcher);
}

/* The trace: offsets in first-fault order, format 1 (include/vhive_uffd.h). */
static void write_trace(const char *path, const uint64_t *offsets, uint64_t count)
{
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.partial", path);
	FILE *f = fopen(tmp, "wbe");
	if (!f) die("creating an index file");
	struct vhive_ws_header header = { .page_size = (uint32_t)pager.page_size, .count = count };
	memcpy(header.magic, VHIVE_WS_MAGIC, 8);
	if (fwrite(&header, sizeof header, 1, f) != 1 || fwrite(offsets, sizeof *offsets, count, f) != count ||
	    fflush(f) != 0 || fsync(fileno(f)) != 0)
		die("writing an index file");
	fclose(f);
	if (rename(tmp, path) != 0) die("renaming an index file");
}

/*
 * record mode: write the trace (fault order) and the working set (format 3: first-touch order,
 * zero pages in the index only, blocks encoded with `codec`). The pages come from the memory
 * file, the snapshot's content, not the guest's: the memory file is never written.
 */
static void write_ws(const char *pages_path, const char *index_path, const char *trace_path, enum vhive_ws_codec codec,
		     int level, uint32_t block_pages)
{
	pthread_mutex_lock(&pager.lock);
	uint64_t count = pager.trace_len;
	uint64_t *trace = malloc(count * sizeof *trace + 1);
	if (!trace) die("copying the trace");
	memcpy(trace, pager.trace, count * sizeof *trace);
	pthread_mutex_unlock(&pager.lock);

	write_trace(trace_path, trace, count);
	struct vhive_ws_written written;
	bool memory_at_fault;
	uint64_t bad_offset = 0;
	const char *problem = vhive_ws_pack(pager.mem_fd, pager.sums, pager.sums_count, trace, count, pager.page_size, pages_path,
					    index_path, codec, level, block_pages, &written, &memory_at_fault, &bad_offset);
	if (problem && memory_at_fault && errno == 0) corrupt("memory", pager.mem_path, bad_offset, problem);
	if (problem) die(problem);
	free(trace);
	emit("{\"event\":\"ws-written\",\"pages\":%lu,\"zeroPages\":%lu,\"storedPages\":%lu,\"blocks\":%lu,\"bytes\":%lu,"
	     "\"pageSize\":%lu,\"codec\":\"%s\",\"level\":%d,\"blockPages\":%u}",
	     written.pages, written.zero_pages, written.stored_pages, written.blocks, written.file_bytes, pager.page_size,
	     vhive_ws_codec_names[codec], level, block_pages);
}

static void handle_command(char *line)
{
	line[strcspn(line, "\n")] = '\0';
	char pages[4096], index[4096], trace[4096], codec_name[16];
	int level = -1, block_pages = VHIVE_WS_BLOCK_PAGES, codec = VHIVE_WS_DEFAULT_CODEC;
	int fields = sscanf(line, "write-ws %4095s %4095s %4095s %15s %d %d", pages, index, trace, codec_name, &level, &block_pages);
	if (fields >= 4) codec = vhive_ws_codec_by_name(codec_name);
	if (strcmp(line, "stats") == 0) {
		emit_stats("stats");
	} else if (fields >= 3 && codec >= 0 && block_pages >= 1 && block_pages <= VHIVE_WS_MAX_BLOCK_PAGES) {
		if (level < 0) level = vhive_ws_default_level((enum vhive_ws_codec)codec);
		if (pager.mode != MODE_RECORD) emit("{\"event\":\"error\",\"message\":\"write-ws needs mode record\"}");
		else write_ws(pages, index, trace, (enum vhive_ws_codec)codec, level, (uint32_t)block_pages);
	} else if (strcmp(line, "prefetch") == 0) {
		if (!pager.defer_prefetch || pager.prefetch_started) {
			emit("{\"event\":\"error\",\"message\":\"prefetch needs --defer-prefetch, and is sent once\"}");
		} else {
			pager.prefetch_started = true;
			start_ws_prefetch();
			start_ws_install();
		}
	} else {
		char escaped[512];
		json_escape(line, escaped, sizeof escaped);
		emit("{\"event\":\"error\",\"message\":\"unknown command: %s\"}", escaped);
	}
}

/* Accept the shim and take its userfaultfd. */
static void attach(int listener)
{
	pager.conn = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
	if (pager.conn < 0) die("accepting the QEMU shim");
	struct vhive_uffd_hello hello;
	char control[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = &hello, .iov_len = sizeof hello };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
	ssize_t n = recvmsg(pager.conn, &msg, MSG_CMSG_CLOEXEC | MSG_WAITALL);
	if (n != (ssize_t)sizeof hello) {
		if (n >= 0) errno = 0;
		die("receiving the handshake");
	}
	struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
	if (hello.magic != VHIVE_UFFD_MAGIC || hello.version != VHIVE_UFFD_VERSION || !cmsg ||
	    cmsg->cmsg_type != SCM_RIGHTS) {
		errno = 0;
		die("the handshake is not a vhive shim's (bad magic, version, or no fd)");
	}
	memcpy(&pager.uffd, CMSG_DATA(cmsg), sizeof(int));
	pager.base = hello.base;
	pager.length = hello.length;
	if (hello.page_size != pager.page_size) {
		errno = 0;
		die("the shim's page size differs from the pager's");
	}
	struct stat st;
	if (fstat(pager.mem_fd, &st) != 0) die("stat of the memory file");
	if ((uint64_t)st.st_size < pager.length) {
		errno = 0;
		die("the memory file is smaller than guest RAM");
	}
	if (pager.sums_count * pager.page_size < pager.length)
		corrupt("checksums", pager.mem_sums_path, 0, "they cover fewer pages than guest RAM");
	if (pager.mode == MODE_RECORD) {
		pager.seen = calloc(pager.length / pager.page_size, 1);
		if (!pager.seen) die("allocating the record map");
	}
	emit("{\"event\":\"attached\",\"base\":%lu,\"length\":%lu,\"pageSize\":%lu}", pager.base, pager.length,
	     pager.page_size);
}

static int listen_on(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) die("socket");
	struct sockaddr_un addr;
	if (vhive_socket_address(&addr, path) != 0) die("the socket path");
	unlink(path);
	if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 1) != 0) die("listening on the socket");
	return fd;
}

static void usage(void)
{
	fprintf(stderr, "usage: vhive-pager --socket PATH --mem FILE --mem-sums FILE --mode lazy|record|prefetch|all"
			" [--ws-pages FILE --ws-index FILE [--ws-read direct|cached] [--defer-prefetch]] [--no-verify]\n");
	exit(2);
}

static void parse_args(int argc, char **argv)
{
	static const struct option options[] = {
		{ "socket", required_argument, NULL, 's' }, { "mem", required_argument, NULL, 'm' },
		{ "mem-sums", required_argument, NULL, 'c' },
		{ "mode", required_argument, NULL, 'o' },   { "ws-pages", required_argument, NULL, 'p' },
		{ "ws-index", required_argument, NULL, 'i' }, { "ws-read", required_argument, NULL, 'r' },
		{ "no-verify", no_argument, NULL, 'n' },
		{ "defer-prefetch", no_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	const char *mode = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 's': pager.socket_path = optarg; break;
		case 'm': pager.mem_path = optarg; break;
		case 'c': pager.mem_sums_path = optarg; break;
		case 'o': mode = optarg; break;
		case 'p': pager.ws_pages_path = optarg; break;
		case 'i': pager.ws_index_path = optarg; break;
		case 'n': pager.no_verify = true; break;
		case 'r':
			if (strcmp(optarg, "cached") != 0 && strcmp(optarg, "direct") != 0) usage();
			pager.ws_cached = strcmp(optarg, "cached") == 0;
			break;
		case 'd': pager.defer_prefetch = true; break;
		default: usage();
		}
	}
	if (!pager.socket_path || !pager.mem_path || !pager.mem_sums_path || !mode) usage();
	for (int m = MODE_LAZY; m <= MODE_ALL; m++)
		if (strcmp(mode, mode_names[m]) == 0) pager.mode = (enum mode)m;
	if (strcmp(mode, mode_names[pager.mode]) != 0) usage();
	if (pager.mode == MODE_PREFETCH && (!pager.ws_pages_path || !pager.ws_index_path)) usage();
	if (pager.defer_prefetch && pager.mode != MODE_PREFETCH) usage();
}

int main(int argc, char **argv)
{
	parse_args(argc, argv);
	/* An owner killed outright leaves stdout without a reader: a write must fail, not kill us
	 * before we clean up (Node starts children with SIGPIPE at its default). */
	signal(SIGPIPE, SIG_IGN);
	pager.page_size = (uint64_t)sysconf(_SC_PAGESIZE);
	pager.mem_fd = open(pager.mem_path, O_RDONLY | O_CLOEXEC);
	if (pager.mem_fd < 0) die("opening the memory file");
	load_sums();
	if (pager.mode == MODE_PREFETCH && !pager.defer_prefetch) start_ws_prefetch();
	int listener = listen_on(pager.socket_path);
	emit("{\"event\":\"listening\",\"socket\":\"%s\"}", pager.socket_path);
	attach(listener);
	close(listener);
	unlink(pager.socket_path);

	if (pager.mode == MODE_ALL) prefetch_thread(NULL); /* before the ack: see MODE_ALL above */
	if (pager.mode == MODE_PREFETCH && !pager.defer_prefetch) start_ws_install();
	/* Faults are served from here on, so QEMU may touch guest memory. */
	char ack = VHIVE_UFFD_ACK;
	if (write(pager.conn, &ack, 1) != 1) die("acknowledging the shim");

	uint8_t *page_buf = aligned_buffer(pager.page_size);
	char line[16384];
	size_t line_len = 0;
	struct pollfd fds[3] = {
		{ .fd = pager.uffd, .events = POLLIN },
		{ .fd = pager.conn, .events = POLLIN },
		{ .fd = STDIN_FILENO, .events = POLLIN },
	};
	const char *reason = NULL;
	while (!reason) {
		if (poll(fds, 3, -1) < 0) {
			if (errno == EINTR) continue;
			die("poll");
		}
		if (fds[0].revents & POLLIN) {
			struct uffd_msg msg;
			ssize_t n = read(pager.uffd, &msg, sizeof msg);
			if (n == (ssize_t)sizeof msg && msg.event == UFFD_EVENT_PAGEFAULT) serve_fault(msg.arg.pagefault.address, page_buf);
			else if (n < 0 && errno != EAGAIN && errno != EINTR) die("reading the userfaultfd");
		}
		if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			char byte;
			if (read(pager.conn, &byte, 1) <= 0) reason = "qemu exited";
		}
		if (fds[2].revents & (POLLIN | POLLHUP)) {
			ssize_t n = read(STDIN_FILENO, line + line_len, sizeof line - 1 - line_len);
			if (n <= 0) {
				reason = "stdin closed";
			} else {
				line_len += (size_t)n;
				line[line_len] = '\0';
				char *newline;
				while ((newline = strchr(line, '\n'))) {
					*newline = '\0';
					handle_command(line);
					size_t used = (size_t)(newline - line) + 1;
					memmove(line, newline + 1, line_len - used + 1);
					line_len -= used;
				}
				if (line_len == sizeof line - 1) line_len = 0; /* an overlong command is dropped */
			}
		}
	}
	emit_stats("stats");
	if (strcmp(reason, "stdin closed") == 0) {
		/* The owner died without cleaning up: remove the (empty) directory it made for the socket. */
		char dir[4096];
		snprintf(dir, sizeof dir, "%s", pager.socket_path);
		char *slash = strrchr(dir, '/');
		if (slash) {
			*slash = '\0';
			const char *name = strrchr(dir, '/');
			if (name && strncmp(name + 1, "vhive-pager-", 12) == 0) rmdir(dir);
		}
	}
	char escaped[64];
	json_escape(reason, escaped, sizeof escaped);
	emit("{\"event\":\"exit\",\"reason\":\"%s\"}", escaped);
	/* The prefetch thread may still be copying into a VM that is gone: do not wait for it. */
	_exit(0);
}
