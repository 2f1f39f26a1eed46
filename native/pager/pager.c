/*
 * vhive-pager: the userfaultfd page-fault handler of one restored VM (REAP).
 *
 * It listens on a Unix socket for the QEMU memory shim (see include/vhive_uffd.h), receives
 * the userfaultfd of guest RAM, and serves every missing-page fault from the snapshot's memory
 * file. Modes:
 *   lazy      each fault: one page read from the memory file, UFFDIO_COPY (UFFDIO_ZEROPAGE if
 *             the page is all zero)
 *   record    lazy, and remember each faulting page in order; on "write-ws" write the trace
 *             and a working set: the pages contiguously (ws.pages) with their offsets (ws.index)
 *   prefetch  read the whole ws.pages with one O_DIRECT read as soon as the pager starts (while
 *             QEMU starts too), and once the fd arrives install it with UFFDIO_COPY in contiguous
 *             runs, serving other faults meanwhile; then print "prefetch-done", so vhive resumes
 *             the vCPUs only then
 *   all       every non-zero page of the memory file installed before the shim is acknowledged,
 *             so QEMU waits in mmap and nothing overlaps the install: the `floor`, whose
 *             install time vhive reports apart
 *
 * Every page read from disk is checked against its checksum before it is installed (format:
 * include/vhive_sums.h): memory-file pages against mem.sums (--mem-sums), working-set pages
 * against ws.index. A mismatch, or a checksum file that is itself damaged or missing, prints
 * {"event":"corrupt","role":...,"file":...,"offset":...} and exits with status 3, so no damaged
 * page ever reaches the guest; vhive ends the VM and names the file.
 *
 * Control: JSON lines on stdout (events), commands on stdin ("stats", "write-ws P I T").
 * It exits when QEMU exits (the shim's socket closes) or when stdin closes (vhive is gone; then
 * it also removes the empty vhive-pager-* directory vhive made for its socket).
 *
 * usage: vhive-pager --socket PATH --mem FILE --mem-sums FILE --mode MODE [--ws-pages F --ws-index F]
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

#define LOG_PREFIX "vhive-pager: "

enum mode { MODE_LAZY, MODE_RECORD, MODE_PREFETCH, MODE_ALL };
static const char *mode_names[] = { "lazy", "record", "prefetch", "all" };

struct stats {
	uint64_t faults;          /* page-fault messages served */
	uint64_t fault_copies;    /* of which installed with UFFDIO_COPY */
	uint64_t fault_zero;      /* of which installed with UFFDIO_ZEROPAGE */
	uint64_t fault_eexist;    /* of which the page was already there (prefetch won the race) */
	uint64_t fault_us;        /* time spent serving faults */
	uint64_t prefetch_pages;  /* pages installed by prefetch */
	uint64_t prefetch_skipped;/* pages prefetch found already installed */
	uint64_t ws_pages;        /* pages in the working set read */
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
	     "\"faultEexist\":%lu,\"faultServeUs\":%lu,\"prefetchPages\":%lu,\"prefetchSkipped\":%lu,"
	     "\"wsPages\":%lu,\"fetchUs\":%lu,\"installUs\":%lu,\"bytesRead\":%lu,\"directIo\":%s,"
	     "\"prefetchDone\":%s,\"pageSize\":%lu,\"verifyUs\":%lu,\"pagesVerified\":%lu}",
	     event, mode_names[pager.mode], s.faults, s.fault_copies, s.fault_zero, s.fault_eexist,
	     s.fault_us, s.prefetch_pages, s.prefetch_skipped, s.ws_pages, s.fetch_us, s.install_us,
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

/*
 * The working-set index (format 2, include/vhive_sums.h), checked whole: its own checksum, and
 * each entry against mem.sums (a page the memory file does not hold, or a working set of
 * another memory file, is damage too). Returns the offsets; *hashes gets the pages' checksums.
 */
static uint64_t *read_index(const char *path, uint64_t *count, uint64_t **hashes)
{
	const char *problem = NULL;
	uint64_t n = 0;
	struct vhive_ws_entry *entries = vhive_read_checked(path, VHIVE_WS_INDEX2_MAGIC, pager.page_size, sizeof *entries, &n, &problem);
	if (!entries) corrupt("working-set index", path, 0, problem);
	uint64_t *offsets = malloc(n * sizeof *offsets + 1), *sums = malloc(n * sizeof *sums + 1);
	if (!offsets || !sums) die("allocating the working-set index");
	for (uint64_t i = 0; i < n; i++) {
		uint64_t page = entries[i].offset / pager.page_size;
		bool sorted = i == 0 || entries[i].offset > entries[i - 1].offset;
		if (entries[i].offset % pager.page_size != 0 || page >= pager.sums_count || !sorted || entries[i].hash != pager.sums[page])
			corrupt("working-set index", path, sizeof(struct vhive_sums_header) + i * sizeof *entries,
				"an entry names a page the snapshot's memory file does not hold");
		offsets[i] = entries[i].offset;
		sums[i] = entries[i].hash;
	}
	free(entries);
	*count = n;
	*hashes = sums;
	return offsets;
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

/* The working set, read by its own thread as soon as the pager starts (prefetch mode). */
static struct {
	pthread_t thread;
	uint64_t *offsets;
	uint64_t *hashes;
	uint64_t count;
	uint8_t *pages;
	bool direct;
	uint64_t fetch_us;
} fetched;

/*
 * One sequential read of the whole working set, bypassing the page cache (REAP). It runs
 * while QEMU is still starting, before the shim connects, so the read overlaps QEMU's start-up.
 */
static void *fetch_ws_thread(void *arg)
{
	(void)arg;
	uint64_t started = now_us();
	fetched.offsets = read_index(pager.ws_index_path, &fetched.count, &fetched.hashes);
	size_t bytes = fetched.count * pager.page_size;
	fetched.direct = true;
	int fd = open(pager.ws_pages_path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (fd < 0 && errno == EINVAL) { /* tmpfs and some others refuse O_DIRECT */
		fetched.direct = false;
		fd = open(pager.ws_pages_path, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0) corrupt("working-set pages", pager.ws_pages_path, 0, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0) die("stat of the working-set pages");
	if ((uint64_t)st.st_size != bytes)
		corrupt("working-set pages", pager.ws_pages_path, (uint64_t)st.st_size < bytes ? (uint64_t)st.st_size : bytes,
			"the file's size does not match its index (truncated?)");
	fetched.pages = aligned_buffer(bytes);
	read_full(fd, fetched.pages, bytes, 0, "reading the working-set pages");
	close(fd);
	fetched.fetch_us = now_us() - started;
	/* Checked here, while QEMU is still starting, so no damaged page is ever installed. */
	uint64_t verify_started = now_us();
	for (uint64_t i = 0; i < fetched.count; i++)
		if (vhive_page_hash(fetched.pages + i * pager.page_size, pager.page_size) != fetched.hashes[i])
			corrupt("working-set pages", pager.ws_pages_path, i * pager.page_size, "the page does not match its checksum in ws.index");
	pthread_mutex_lock(&pager.lock);
	pager.stats.verify_us += now_us() - verify_started;
	pager.stats.pages_verified += fetched.count;
	pthread_mutex_unlock(&pager.lock);
	return NULL;
}

static void prefetch_ws(void)
{
	if (pthread_join(fetched.thread, NULL) != 0) die("waiting for the working-set read");
	uint64_t started = now_us();
	install_runs(fetched.offsets, fetched.count, fetched.pages);
	uint64_t done = now_us();
	pthread_mutex_lock(&pager.lock);
	pager.stats.ws_pages = fetched.count;
	pager.stats.bytes_read += fetched.count * pager.page_size;
	pager.stats.fetch_us = fetched.fetch_us;
	pager.stats.install_us = done - started;
	pager.stats.direct_io = fetched.direct;
	pthread_mutex_unlock(&pager.lock);
	free(fetched.pages);
	free(fetched.offsets);
	free(fetched.hashes);
}

/* The floor: every non-zero page of the memory file, read in large chunks. */
static void prefetch_all(void)
{
	const size_t chunk = 2u << 20;
	uint8_t *buf = aligned_buffer(chunk);
	uint64_t *offsets = malloc(chunk / pager.page_size * sizeof *offsets);
	if (!offsets) die("allocating offsets");
	uint64_t fetch_us = 0, install_us = 0;
	for (uint64_t at = 0; at < pager.length; at += chunk) {
		size_t len = (size_t)(pager.length - at < chunk ? pager.length - at : chunk);
		uint64_t t0 = now_us();
		read_full(pager.mem_fd, buf, len, (off_t)at, "reading the memory file");
		uint64_t t1 = now_us();
		/* Pack the non-zero pages to the front of buf, remembering where each belongs. */
		uint64_t count = 0;
		for (size_t p = 0; p < len; p += pager.page_size) {
			verify_memory_page(buf + p, at + p);
			if (all_zero(buf + p, pager.page_size)) continue;
			if (count * pager.page_size != p) memmove(buf + count * pager.page_size, buf + p, pager.page_size);
			offsets[count++] = at + p;
		}
		install_runs(offsets, count, buf);
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

static int compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
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

/* record mode: write the trace (fault order) and the working set (sorted, contiguous pages). */
static void write_ws(const char *pages_path, const char *index_path, const char *trace_path)
{
	pthread_mutex_lock(&pager.lock);
	uint64_t count = pager.trace_len;
	uint64_t *trace = malloc(count * sizeof *trace + 1);
	if (!trace) die("copying the trace");
	memcpy(trace, pager.trace, count * sizeof *trace);
	pthread_mutex_unlock(&pager.lock);

	write_trace(trace_path, trace, count);
	qsort(trace, count, sizeof *trace, compare_u64);
	struct vhive_ws_entry *entries = malloc(count * sizeof *entries + 1);
	if (!entries) die("allocating the working-set index");

	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.partial", pages_path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) die("creating the working-set pages");
	/* A run of contiguous pages at a time (up to 2 MiB), not a read and a write per page. */
	const size_t chunk = 2u << 20;
	const uint64_t chunk_pages = chunk / pager.page_size;
	uint8_t *buf = aligned_buffer(chunk);
	for (uint64_t i = 0; i < count;) {
		uint64_t end = run_end(trace, count, i);
		if (end - i > chunk_pages) end = i + chunk_pages;
		size_t len = (size_t)((end - i) * pager.page_size);
		/* The snapshot's content, not the guest's: the memory file is never written. */
		read_full(pager.mem_fd, buf, len, (off_t)trace[i], "reading the memory file");
		for (uint64_t j = i; j < end; j++) {
			verify_memory_page(buf + (j - i) * pager.page_size, trace[j]);
			entries[j] = (struct vhive_ws_entry){ .offset = trace[j], .hash = pager.sums[trace[j] / pager.page_size] };
		}
		if (write(fd, buf, len) != (ssize_t)len) die("writing the working-set pages");
		i = end;
	}
	if (fsync(fd) != 0) die("syncing the working-set pages");
	close(fd);
	if (rename(tmp, pages_path) != 0) die("renaming the working-set pages");
	if (!vhive_write_checked(index_path, VHIVE_WS_INDEX2_MAGIC, pager.page_size, entries, count, sizeof *entries))
		die("writing the working-set index");
	free(entries);
	free(buf);
	free(trace);
	emit("{\"event\":\"ws-written\",\"pages\":%lu,\"bytes\":%lu,\"pageSize\":%lu}", count, count * pager.page_size, pager.page_size);
}

static void handle_command(char *line)
{
	line[strcspn(line, "\n")] = '\0';
	char pages[4096], index[4096], trace[4096];
	if (strcmp(line, "stats") == 0) {
		emit_stats("stats");
	} else if (sscanf(line, "write-ws %4095s %4095s %4095s", pages, index, trace) == 3) {
		if (pager.mode != MODE_RECORD) emit("{\"event\":\"error\",\"message\":\"write-ws needs mode record\"}");
		else write_ws(pages, index, trace);
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
			" [--ws-pages FILE --ws-index FILE]\n");
	exit(2);
}

static void parse_args(int argc, char **argv)
{
	static const struct option options[] = {
		{ "socket", required_argument, NULL, 's' }, { "mem", required_argument, NULL, 'm' },
		{ "mem-sums", required_argument, NULL, 'c' },
		{ "mode", required_argument, NULL, 'o' },   { "ws-pages", required_argument, NULL, 'p' },
		{ "ws-index", required_argument, NULL, 'i' }, { NULL, 0, NULL, 0 },
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
		default: usage();
		}
	}
	if (!pager.socket_path || !pager.mem_path || !pager.mem_sums_path || !mode) usage();
	for (int m = MODE_LAZY; m <= MODE_ALL; m++)
		if (strcmp(mode, mode_names[m]) == 0) pager.mode = (enum mode)m;
	if (strcmp(mode, mode_names[pager.mode]) != 0) usage();
	if (pager.mode == MODE_PREFETCH && (!pager.ws_pages_path || !pager.ws_index_path)) usage();
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
	if (pager.mode == MODE_PREFETCH && pthread_create(&fetched.thread, NULL, fetch_ws_thread, NULL) != 0)
		die("starting the working-set read");
	int listener = listen_on(pager.socket_path);
	emit("{\"event\":\"listening\",\"socket\":\"%s\"}", pager.socket_path);
	attach(listener);
	close(listener);
	unlink(pager.socket_path);

	pthread_t prefetcher;
	if (pager.mode == MODE_ALL) prefetch_thread(NULL); /* before the ack: see MODE_ALL above */
	if (pager.mode == MODE_PREFETCH && pthread_create(&prefetcher, NULL, prefetch_thread, NULL) != 0)
		die("starting the prefetch thread");
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
