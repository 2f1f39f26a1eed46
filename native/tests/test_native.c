/*
 * Tests of the pager and the QEMU shim together, without QEMU: a child process, started with
 * the shim preloaded, maps a memory file the way QEMU 7.2 maps file-backed guest RAM (reserve
 * PROT_NONE, then mmap64 MAP_FIXED|MAP_PRIVATE of the file) and reads pages; the pager serves
 * them, checking each against the checksums vhive-pagesum wrote. Also vhive-pagesum itself.
 * Prints one line per test and "N passed, N failed" last. Needs root (userfaultfd).
 *
 * usage: test-native BUILD_DIR
 *        test-native --child MEM_FILE PAGES TOUCH_LIST   (internal: the "QEMU" side)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vhive_sums.h"
#include "vhive_uffd.h"
#include "vhive_ws.h"

#define PAGES 64

static long page_size;
static int passed, failed;
static char build_dir[1024], work_dir[64];
/* Where the pager's socket goes (work_dir unless a test says otherwise). */
static char sock_dir[1024];
/* The memory file the pager and the child use, and the working set the pager prefetches
 * (damaged copies in the corruption tests). */
static const char *mem_name = "mem";
static const char *ws_pages_name = "ws.pages";
static const char *ws_index_name = "ws.index";
/* --ws-read for the pager, or NULL for its default (direct). */
static const char *ws_read;
/* Start the prefetch pager with --defer-prefetch (a pooled VMM's). */
static bool defer_prefetch;
static bool no_verify; /* start pagers with --no-verify */

/* Page i of the memory file: zero for every fourth page (a hole), else filled with i+1. */
static bool page_is_zero(int i) { return i % 4 == 3; }
static uint8_t page_byte(int i) { return page_is_zero(i) ? 0 : (uint8_t)(i + 1); }

#define CHECK(cond, ...)                                        \
	do {                                                    \
		if (!(cond)) {                                  \
			fprintf(stderr, "    check failed: %s: ", #cond); \
			fprintf(stderr, __VA_ARGS__);           \
			fprintf(stderr, "\n");                  \
			return false;                           \
		}                                               \
	} while (0)

/* ---- the child: plays QEMU ---- */

static int child_main(const char *mem_path, int pages, const char *touch)
{
	int fd = open(mem_path, O_RDWR);
	if (fd < 0) return 10;
	size_t len = (size_t)pages * (size_t)page_size;
	void *reserved = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (reserved == MAP_FAILED) return 11;
	uint8_t *ram = mmap64(reserved, len, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE, fd, 0);
	if (ram == MAP_FAILED) return 12;
	madvise(ram, len, MADV_HUGEPAGE); /* as QEMU does; the shim decides what to keep */
	printf("mapped\n");
	fflush(stdout);
	/* Wait for "go" so the parent can let a prefetch finish first. */
	char go;
	if (read(STDIN_FILENO, &go, 1) != 1) return 13;
	for (const char *p = touch; *p;) {
		int i = (int)strtol(p, (char **)&p, 10);
		if (*p == ',') p++;
		for (long b = 0; b < page_size; b += 512)
			if (ram[(long)i * page_size + b] != page_byte(i)) return 20;
	}
	ram[0] = 0xee; /* a private write: must never reach the file */
	printf("verified\n");
	fflush(stdout);
	if (read(STDIN_FILENO, &go, 1) != 1) return 14; /* stay alive until released */
	return 0;
}

/* ---- the parent: runs the pager and the child ---- */

struct proc {
	pid_t pid;
	int in;   /* write end of its stdin */
	FILE *out; /* its stdout */
};

static struct proc spawn(char *const argv[], char *const envp[])
{
	int in[2], out[2];
	/* Close-on-exec, so no other process inherits an end and keeps a pipe open. */
	if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) abort();
	pid_t pid = fork();
	if (pid == 0) {
		signal(SIGPIPE, SIG_DFL); /* as Node (libuv) starts its children, not as this test runs */
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[1]);
		close(out[0]);
		execve(argv[0], argv, envp);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	return (struct proc){ .pid = pid, .in = in[1], .out = fdopen(out[0], "r") };
}

/* Next line of a process's stdout that contains `want`, or NULL at end of output. */
static char *line_with(struct proc *p, const char *want)
{
	static char line[8192];
	while (fgets(line, sizeof line, p->out))
		if (strstr(line, want)) return line;
	return NULL;
}

static long json_number(const char *line, const char *key)
{
	char pattern[128];
	snprintf(pattern, sizeof pattern, "\"%s\":", key);
	const char *at = strstr(line, pattern);
	return at ? strtol(at + strlen(pattern), NULL, 10) : -1;
}

/* Wait for a process to exit by itself (without closing its stdin first, as finish does). */
static int exit_status(struct proc *p)
{
	int status;
	waitpid(p->pid, &status, 0);
	close(p->in);
	fclose(p->out);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int finish(struct proc *p)
{
	close(p->in);
	fclose(p->out);
	int status;
	waitpid(p->pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void path_in_work(char *out, size_t size, const char *name)
{
	snprintf(out, size, "%s/%s", work_dir, name);
}

/* The pager, started; it may not be listening yet (and a damaged working set may stop it first). */
static struct proc spawn_pager(const char *mode, bool with_ws)
{
	static char pager[1100], sock[1100], mem[1100], sums[1100], pages[1100], index[1100];
	snprintf(pager, sizeof pager, "%s/vhive-pager", build_dir);
	snprintf(sock, sizeof sock, "%s/pager.sock", sock_dir);
	path_in_work(mem, sizeof mem, mem_name);
	path_in_work(sums, sizeof sums, "mem.sums");
	path_in_work(pages, sizeof pages, ws_pages_name);
	path_in_work(index, sizeof index, ws_index_name);
	char *argv[18] = { pager, "--socket", sock, "--mem", mem, "--mem-sums", sums, "--mode", (char *)mode };
	int argc = 9;
	if (with_ws) {
		argv[argc++] = "--ws-pages";
		argv[argc++] = pages;
		argv[argc++] = "--ws-index";
		argv[argc++] = index;
		if (ws_read) {
			argv[argc++] = "--ws-read";
			argv[argc++] = (char *)ws_read;
		}
		if (defer_prefetch) argv[argc++] = "--defer-prefetch";
	}
	if (no_verify) argv[argc++] = "--no-verify";
	argv[argc] = NULL;
	char *envp[] = { NULL };
	return spawn(argv, envp);
}

static struct proc start_pager(const char *mode, bool with_ws)
{
	struct proc p = spawn_pager(mode, with_ws);
	if (!line_with(&p, "\"listening\"")) fprintf(stderr, "    the pager did not start listening\n");
	return p;
}

static struct proc start_child(const char *touch, const char *advice)
{
	static char self[1100], shim[1100], mem[1100], env_mem[1200], env_sock[1200], env_preload[1200], env_advice[64];
	snprintf(self, sizeof self, "%s/test-native", build_dir);
	snprintf(shim, sizeof shim, "%s/libvhive-qemu-uffd.so", build_dir);
	path_in_work(mem, sizeof mem, mem_name);
	snprintf(env_preload, sizeof env_preload, "LD_PRELOAD=%s", shim);
	snprintf(env_mem, sizeof env_mem, "VHIVE_MEM_PATH=%s", mem);
	snprintf(env_sock, sizeof env_sock, "VHIVE_UFFD_SOCKET=%s/pager.sock", sock_dir);
	snprintf(env_advice, sizeof env_advice, "VHIVE_MEM_ADVICE=%s", advice ? advice : "");
	char pages[16];
	snprintf(pages, sizeof pages, "%d", PAGES);
	char *argv[] = { self, "--child", mem, pages, (char *)touch, NULL };
	char *envp[] = { env_preload, env_mem, advice ? env_advice : env_sock, NULL };
	return spawn(argv, envp);
}

static void write_memory_file(void)
{
	char mem[1100];
	path_in_work(mem, sizeof mem, "mem");
	int fd = open(mem, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	uint8_t *page = malloc((size_t)page_size);
	for (int i = 0; i < PAGES; i++) {
		memset(page, page_byte(i), (size_t)page_size);
		if (write(fd, page, (size_t)page_size) != page_size) abort();
	}
	free(page);
	close(fd);
}

/* mem.sums of the memory file, written by vhive-pagesum as a snapshot save does. */
static bool write_memory_sums(void)
{
	char tool[1100], mem[1100], sums[1100];
	snprintf(tool, sizeof tool, "%s/vhive-pagesum", build_dir);
	path_in_work(mem, sizeof mem, "mem");
	path_in_work(sums, sizeof sums, "mem.sums");
	char *argv[] = { tool, "write", mem, sums, NULL };
	char *envp[] = { NULL };
	struct proc p = spawn(argv, envp);
	bool written = line_with(&p, "sums-written") != NULL;
	return finish(&p) == 0 && written;
}

static void copy_file(const char *from, const char *to)
{
	char src[1100], dst[1100], command[2400];
	path_in_work(src, sizeof src, from);
	path_in_work(dst, sizeof dst, to);
	snprintf(command, sizeof command, "cp %s %s", src, dst);
	if (system(command) != 0) abort();
}

/* Damage a file as bit rot or a stray write would: one byte flipped at `offset`. */
static void flip_byte(const char *name, off_t offset)
{
	char path[1100];
	path_in_work(path, sizeof path, name);
	int fd = open(path, O_RDWR);
	uint8_t byte;
	if (fd < 0 || pread(fd, &byte, 1, offset) != 1) abort();
	byte ^= 0x5a;
	if (pwrite(fd, &byte, 1, offset) != 1) abort();
	close(fd);
}

static bool memory_file_untouched(void)
{
	char mem[1100];
	path_in_work(mem, sizeof mem, "mem");
	int fd = open(mem, O_RDONLY);
	uint8_t byte = 0;
	bool ok = pread(fd, &byte, 1, 0) == 1 && byte == page_byte(0);
	close(fd);
	return ok;
}

static uint64_t *read_offsets(const char *name, uint64_t *count)
{
	char path[1100];
	path_in_work(path, sizeof path, name);
	FILE *f = fopen(path, "rb");
	if (!f) return NULL;
	char magic[8];
	if (fread(magic, 8, 1, f) != 1) return NULL;
	rewind(f);
	uint64_t *offsets = NULL;
	if (memcmp(magic, VHIVE_WS_MAGIC, 8) == 0) { /* the trace, format 1 */
		struct vhive_ws_header header;
		if (fread(&header, sizeof header, 1, f) != 1) return NULL;
		offsets = calloc(header.count + 1, sizeof *offsets);
		if (fread(offsets, sizeof *offsets, header.count, f) != header.count) return NULL;
		*count = header.count;
	} else if (memcmp(magic, VHIVE_WS_INDEX3_MAGIC, 8) == 0) { /* the index, format 3 */
		struct vhive_ws3_header header;
		if (fread(&header, sizeof header, 1, f) != 1) return NULL;
		offsets = calloc(header.pages + 1, sizeof *offsets);
		for (uint64_t i = 0; i < header.pages; i++) {
			struct vhive_ws_entry entry;
			if (fread(&entry, sizeof entry, 1, f) != 1) return NULL;
			offsets[i] = entry.offset;
		}
		*count = header.pages;
	}
	fclose(f);
	return offsets;
}

static bool test_lazy_serves_every_page_and_zero_pages_apart(void)
{
	struct proc pager = start_pager("lazy", false);
	struct proc child = start_child("0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15", NULL);
	CHECK(line_with(&child, "mapped"), "the child did not map");
	CHECK(write(child.in, "g", 1) == 1, "go");
	CHECK(line_with(&child, "verified"), "the child saw wrong page contents");
	CHECK(write(pager.in, "stats\n", 6) == 6, "stats");
	char *stats = line_with(&pager, "\"event\":\"stats\"");
	CHECK(stats, "no stats");
	CHECK(json_number(stats, "faults") == 16, "faults %ld", json_number(stats, "faults"));
	CHECK(json_number(stats, "faultZeroPages") == 4, "zero pages %ld", json_number(stats, "faultZeroPages"));
	CHECK(json_number(stats, "faultCopies") == 12, "copies %ld", json_number(stats, "faultCopies"));
	CHECK(write(child.in, "x", 1) == 1, "release");
	CHECK(finish(&child) == 0, "child exit");
	CHECK(line_with(&pager, "\"reason\":\"qemu exited\""), "the pager did not notice the child exit");
	CHECK(finish(&pager) == 0, "pager exit");
	CHECK(memory_file_untouched(), "a private write reached the memory file");
	return true;
}

static bool test_record_writes_trace_and_working_set_in_fault_order_without_zero_pages(void)
{
	struct proc pager = start_pager("record", false);
	struct proc child = start_child("5,3,40,41,42,7", NULL);
	CHECK(line_with(&child, "mapped") && write(child.in, "g", 1) == 1, "start");
	CHECK(line_with(&child, "verified"), "wrong contents");
	char command[4000];
	snprintf(command, sizeof command, "write-ws %s/ws.pages %s/ws.index %s/trace\n", work_dir, work_dir, work_dir);
	CHECK(write(pager.in, command, strlen(command)) == (ssize_t)strlen(command), "write-ws");
	char *written = line_with(&pager, "ws-written");
	/* Six reads, then the child's private write to page 0: also a first touch. Pages 3 and 7
	 * are zero: named in the index, not stored. */
	CHECK(written && json_number(written, "pages") == 7, "ws-written: %s", written ? written : "none");
	CHECK(json_number(written, "zeroPages") == 2 && json_number(written, "storedPages") == 5, "zero pages: %s", written);
	CHECK(strstr(written, "\"codec\":\"lz4\"") && json_number(written, "blocks") == 1, "the default codec: %s", written);
	CHECK(json_number(written, "pageSize") == page_size, "ws-written page size: %s", written);
	long bytes = json_number(written, "bytes");
	CHECK(write(child.in, "x", 1) == 1 && finish(&child) == 0, "child");
	finish(&pager);

	uint64_t count = 0, *trace = read_offsets("trace", &count);
	const int fault_order[] = { 5, 3, 40, 41, 42, 7, 0 };
	CHECK(trace && count == 7, "trace count %lu", (unsigned long)count);
	for (int i = 0; i < 7; i++) CHECK(trace[i] == (uint64_t)fault_order[i] * (uint64_t)page_size, "trace[%d]", i);
	uint64_t *index = read_offsets("ws.index", &count);
	CHECK(index && count == 7, "index count");
	for (int i = 0; i < 7; i++) CHECK(index[i] == (uint64_t)fault_order[i] * (uint64_t)page_size, "index[%d]: first-touch order", i);

	char path[1100];
	path_in_work(path, sizeof path, "ws.pages");
	struct stat st;
	/* Pages of one repeated byte compress to almost nothing. */
	CHECK(stat(path, &st) == 0 && st.st_size == bytes && st.st_size < page_size, "ws.pages size %ld", (long)st.st_size);
	free(trace);
	free(index);
	return true;
}

static bool test_prefetch_installs_the_working_set_before_the_guest_runs(void)
{
	/* Uses the working set the record test wrote: pages 5,3,40,41,42,7,0, of which 3 and 7 zero. */
	struct proc pager = start_pager("prefetch", true);
	struct proc child = start_child("3,5,40,7,10", NULL);
	CHECK(line_with(&child, "mapped"), "map");
	char *done = line_with(&pager, "prefetch-done");
	CHECK(done, "no prefetch-done");
	CHECK(json_number(done, "wsPages") == 7 && json_number(done, "prefetchPages") == 5, "%s", done);
	CHECK(json_number(done, "wsZeroPages") == 2 && json_number(done, "prefetchZeroPages") == 2, "zero pages: %s", done);
	CHECK(strstr(done, "\"wsCodec\":\"lz4\"") && strstr(done, "\"wsRead\":\"direct\""), "codec and read: %s", done);
	CHECK(json_number(done, "fetchUs") >= 0 && json_number(done, "installUs") >= 0 && json_number(done, "pagesVerified") == 5, "times");
	CHECK(write(child.in, "g", 1) == 1 && line_with(&child, "verified"), "wrong contents");
	CHECK(write(pager.in, "stats\n", 6) == 6, "stats");
	char *stats = line_with(&pager, "\"event\":\"stats\"");
	/* Page 10 is outside the working set: the only fault. */
	CHECK(stats && json_number(stats, "faults") == 1, "faults: %s", stats ? stats : "none");
	CHECK(write(child.in, "x", 1) == 1 && finish(&child) == 0, "child");
	finish(&pager);
	return true;
}

/* vhive-wspack pack of the record test's trace into PAGES/INDEX (names in the work dir). */
static bool pack(const char *codec, const char *block_pages, const char *pages, const char *index, int *status)
{
	char tool[1100], mem[1100], sums[1100], trace[1100], pages_path[1100], index_path[1100];
	snprintf(tool, sizeof tool, "%s/vhive-wspack", build_dir);
	path_in_work(mem, sizeof mem, mem_name);
	path_in_work(sums, sizeof sums, "mem.sums");
	path_in_work(trace, sizeof trace, "trace");
	path_in_work(pages_path, sizeof pages_path, pages);
	path_in_work(index_path, sizeof index_path, index);
	char *argv[] = { tool, "pack", mem, sums, trace, pages_path, index_path, "--codec", (char *)codec, "--block-pages", (char *)block_pages, NULL };
	char *envp[] = { NULL };
	struct proc p = spawn(argv, envp);
	bool written = line_with(&p, "ws-written") != NULL;
	*status = finish(&p);
	return written;
}

static bool test_prefetch_reads_a_raw_working_set_through_the_page_cache(void)
{
	int status;
	CHECK(pack("raw", "64", "ws-raw.pages", "ws-raw.index", &status) && status == 0, "pack raw: status %d", status);
	char path[1100];
	path_in_work(path, sizeof path, "ws-raw.pages");
	struct stat st;
	CHECK(stat(path, &st) == 0 && st.st_size == 5 * page_size, "raw ws.pages holds the 5 non-zero pages: %ld", (long)st.st_size);
	ws_pages_name = "ws-raw.pages";
	ws_index_name = "ws-raw.index";
	ws_read = "cached";
	struct proc pager = start_pager("prefetch", true);
	ws_pages_name = "ws.pages";
	ws_index_name = "ws.index";
	ws_read = NULL;
	struct proc child = start_child("0,3,5,7,40,41,42", NULL);
	CHECK(line_with(&child, "mapped"), "map");
	char *done = line_with(&pager, "prefetch-done");
	CHECK(done && strstr(done, "\"wsCodec\":\"raw\"") && strstr(done, "\"directIo\":false") && strstr(done, "\"wsRead\":\"cached\""),
	      "%s", done ? done : "none");
	CHECK(json_number(done, "wsStoredBytes") == 5 * page_size, "%s", done);
	CHECK(write(child.in, "g", 1) == 1 && line_with(&child, "verified"), "wrong contents");
	CHECK(write(pager.in, "stats\n", 6) == 6, "stats");
	char *stats = line_with(&pager, "\"event\":\"stats\"");
	CHECK(stats && json_number(stats, "faults") == 0, "faults: %s", stats ? stats : "none");
	CHECK(write(child.in, "x", 1) == 1 && finish(&child) == 0, "child");
	finish(&pager);
	return true;
}

static bool test_prefetch_decodes_zstd_blocks_in_order(void)
{
	int status;
	CHECK(pack("zstd", "2", "ws-zstd.pages", "ws-zstd.index", &status) && status == 0, "pack zstd: status %d", status);
	ws_pages_name = "ws-zstd.pages";
	ws_index_name = "ws-zstd.index";
	struct proc pager = start_pager("prefetch", true);
	ws_pages_name = "ws.pages";
	ws_index_name = "ws.index";
	struct proc child = start_child("0,3,5,7,40,41,42", NULL);
	CHECK(line_with(&child, "mapped"), "map");
	char *done = line_with(&pager, "prefetch-done");
	CHECK(done && strstr(done, "\"wsCodec\":\"zstd\"") && json_number(done, "prefetchPages") == 5, "%s", done ? done : "none");
	CHECK(write(child.in, "g", 1) == 1 && line_with(&child, "verified"), "wrong contents");
	CHECK(write(child.in, "x", 1) == 1 && finish(&child) == 0, "child");
	finish(&pager);
	return true;
}

/* --defer-prefetch (a pooled VMM's pager): attached, it reads and installs nothing until told. */
static bool test_deferred_prefetch_installs_the_working_set_only_when_told(void)
{
	/* The working set the record test wrote: pages 5,3,40,41,42,7,0, of which 3 and 7 zero. */
	defer_prefetch = true;
	struct proc pager = start_pager("prefetch", true);
	defer_prefetch = false;
	struct proc child = start_child("3,5,40,10", NULL);
	CHECK(line_with(&child, "mapped"), "map");
	CHECK(line_with(&pager, "\"attached\""), "attach");
	/* Attached and idle: nothing read, nothing installed (stats answers in order, after any event). */
	CHECK(write(pager.in, "stats\n", 6) == 6, "stats");
	char *idle = line_with(&pager, "\"event\":\"stats\"");
	CHECK(idle && json_number(idle, "wsPages") == 0 && json_number(idle, "prefetchPages") == 0 && json_number(idle, "bytesRead") == 0 &&
		      strstr(idle, "\"prefetchDone\":false"),
	      "idle: %s", idle ? idle : "none");
	CHECK(write(pager.in, "prefetch\n", 9) == 9, "prefetch");
	char *done = line_with(&pager, "prefetch-done");
	CHECK(done && json_number(done, "wsPages") == 7 && json_number(done, "prefetchPages") == 5 && json_number(done, "prefetchZeroPages") == 2,
	      "%s", done ? done : "none");
	CHECK(write(child.in, "g", 1) == 1 && line_with(&child, "verified"), "wrong contents");
	/* Once is all: a second prefetch is refused, and the pager carries on. */
	CHECK(write(pager.in, "prefetch\nstats\n", 15) == 15, "again");
	char *refused = line_with(&pager, "\"event\":\"error\"");
	CHECK(refused && strstr(refused, "sent once"), "%s", refused ? refused : "none");
	char *stats = line_with(&pager, "\"event\":\"stats\"");
	/* Page 10 is outside the working set: the only fault. */
	CHECK(stats && json_number(stats, "faults") == 1, "faults: %s", stats ? stats : "none");
	CHECK(write(child.in, "x", 1) == 1 && finish(&child) == 0, "child");
	finish(&pager);
	return true;
}

static bool test_all_installs_every_page_so_nothing_faults(void)
{
	struct proc pager = start_pager("all", false);
	struct proc child = start_child("0,1,2,3,4,5,6,7,63", NULL);
	CHECK(line_with(&child, "mapped"), "map");
	char *done = line_with(&pager, "prefetch-done");
	CHECK(done && json_number(done, "prefetchPages") == PAGES * 3 / 4 && json_number(done, "prefetchZeroPages") == PAGES / 4, "%s", done ? done : "none");
	CHECK(write(child.in, "g", 1) == 1 && line_with(&child, "verified"), "wrong contents");
	CHECK(write(pager.in, "stats\n", 6) == 6, "stats");
	char *stats = line_with(&pager, "\"event\":\"stats\"");
	CHECK(stats && json_number(stats, "faults") == 0, "%s", stats ? stats : "none");
	CHECK(write(child.in, "x", 1) == 1 && finish(&child) == 0, "child");
	finish(&pager);
	return true;
}

static bool test_pager_refuses_a_handshake_that_is_not_the_shims(void)
{
	struct proc pager = start_pager("lazy", false);
	int sock = socket(AF_UNIX, SOCK_STREAM, 0);
	char path[1100];
	path_in_work(path, sizeof path, "pager.sock");
	struct sockaddr_un sun;
	CHECK(vhive_socket_address(&sun, path) == 0, "socket path");
	CHECK(connect(sock, (struct sockaddr *)&sun, sizeof sun) == 0, "connect");
	struct vhive_uffd_hello hello = { .magic = 0x12345678 };
	CHECK(write(sock, &hello, sizeof hello) == sizeof hello, "write");
	char *error = line_with(&pager, "\"error\"");
	CHECK(error && strstr(error, "handshake"), "error: %s", error ? error : "none");
	CHECK(finish(&pager) == 1, "the pager should exit 1");
	close(sock);
	return true;
}

static bool test_random_advice_drops_the_hugepage_hint(void)
{
	struct proc child = start_child("1,2", "random");
	CHECK(line_with(&child, "mapped"), "map");
	char smaps[64], line[512];
	snprintf(smaps, sizeof smaps, "/proc/%d/smaps", child.pid);
	FILE *f = fopen(smaps, "r");
	CHECK(f, "smaps");
	bool in_ram = false, random_read = false, huge = false;
	char mem[1100];
	path_in_work(mem, sizeof mem, "mem");
	while (fgets(line, sizeof line, f)) {
		if (strchr(line, '-') && strchr(line, ':') && line[0] != 'V') in_ram = strstr(line, mem) != NULL;
		if (in_ram && strncmp(line, "VmFlags:", 8) == 0) {
			random_read = strstr(line, " rr") != NULL;
			huge = strstr(line, " hg") != NULL;
		}
	}
	fclose(f);
	CHECK(random_read && !huge, "VmFlags of guest RAM: rr=%d hg=%d", random_read, huge);
	CHECK(write(child.in, "g", 1) == 1 && line_with(&child, "verified"), "contents");
	CHECK(write(child.in, "x", 1) == 1 && finish(&child) == 0, "child");
	return true;
}

static bool test_a_pager_whose_owner_died_removes_its_socket_dir(void)
{
	char dir[512];
	path_in_work(dir, sizeof dir, "vhive-pager-owner");
	CHECK(mkdir(dir, 0700) == 0, "mkdir %s", dir);
	snprintf(sock_dir, sizeof sock_dir, "%s", dir);
	struct proc pager = start_pager("lazy", false);
	struct proc child = start_child("1,2", NULL);
	snprintf(sock_dir, sizeof sock_dir, "%s", work_dir);
	CHECK(line_with(&child, "mapped"), "map");
	/* The owner is SIGKILLed: its end of the pager's stdout is gone by the time the pager sees
	 * stdin close, so the pager's last words go to a closed pipe; it must still clean up. */
	fclose(pager.out);
	close(pager.in);
	int status;
	waitpid(pager.pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the pager ended with status %#x", status);
	CHECK(access(dir, F_OK) != 0, "%s is still there", dir);
	kill(child.pid, SIGKILL); /* its memory has no pager now: it would wait forever */
	finish(&child);
	return true;
}

static bool test_lazy_refuses_a_memory_page_that_fails_its_checksum(void)
{
	copy_file("mem", "mem-damaged");
	flip_byte("mem-damaged", 5 * page_size + 17);
	mem_name = "mem-damaged";
	struct proc pager = start_pager("lazy", false);
	struct proc child = start_child("1,5", NULL);
	mem_name = "mem";
	CHECK(line_with(&child, "mapped") && write(child.in, "g", 1) == 1, "start");
	char *corrupt = line_with(&pager, "\"corrupt\"");
	CHECK(corrupt && strstr(corrupt, "\"role\":\"memory\"") && strstr(corrupt, "mem-damaged"), "event: %s", corrupt ? corrupt : "none");
	CHECK(json_number(corrupt, "offset") == 5 * page_size, "offset %ld", json_number(corrupt, "offset"));
	CHECK(exit_status(&pager) == 3, "the pager should exit 3 for damage");
	kill(child.pid, SIGKILL); /* its fault is never served: QEMU would be ended by vhive too */
	finish(&child);
	return true;
}

/* --no-verify (the bench's prefetch-unchecked, to measure what the checks cost): no page is checked. */
static bool test_no_verify_serves_pages_unchecked(void)
{
	copy_file("mem", "mem-damaged");
	flip_byte("mem-damaged", 5 * page_size + 17); /* a byte the child does not look at */
	mem_name = "mem-damaged";
	no_verify = true;
	struct proc pager = start_pager("lazy", false);
	struct proc child = start_child("1,5", NULL);
	no_verify = false;
	mem_name = "mem";
	CHECK(line_with(&child, "mapped") && write(child.in, "g", 1) == 1 && line_with(&child, "verified"), "the child's pages");
	CHECK(write(pager.in, "stats\n", 6) == 6, "stats");
	char *stats = line_with(&pager, "\"event\":\"stats\"");
	/* pages 1 and 5 read, page 0 written */
	CHECK(stats && json_number(stats, "faults") == 3 && json_number(stats, "pagesVerified") == 0, "%s", stats ? stats : "none");
	CHECK(write(child.in, "x", 1) == 1 && finish(&child) == 0, "child");
	CHECK(finish(&pager) == 0, "the pager should end normally");
	return true;
}

static bool test_all_refuses_a_damaged_memory_file_before_the_guest_runs(void)
{
	copy_file("mem", "mem-damaged");
	flip_byte("mem-damaged", 62 * page_size);
	mem_name = "mem-damaged";
	struct proc pager = start_pager("all", false);
	struct proc child = start_child("1", NULL);
	mem_name = "mem";
	char *corrupt = line_with(&pager, "\"corrupt\"");
	CHECK(corrupt && json_number(corrupt, "offset") == 62 * page_size, "event: %s", corrupt ? corrupt : "none");
	CHECK(exit_status(&pager) == 3, "exit 3");
	/* The shim was never acknowledged: the child ("QEMU") gives up by itself, having touched nothing. */
	CHECK(finish(&child) != 0, "the child should fail without a pager");
	return true;
}

/* Start a prefetch pager on PAGES/INDEX and expect it to refuse them: the corrupt event. */
static char *refused(const char *pages, const char *index, int *status)
{
	ws_pages_name = pages;
	ws_index_name = index;
	struct proc pager = spawn_pager("prefetch", true);
	ws_pages_name = "ws.pages";
	ws_index_name = "ws.index";
	struct proc child = start_child("3", NULL);
	static char event[8192];
	char *corrupt = line_with(&pager, "\"corrupt\"");
	snprintf(event, sizeof event, "%s", corrupt ? corrupt : "");
	*status = exit_status(&pager);
	kill(child.pid, SIGKILL); /* its fault is never served: QEMU would be ended by vhive too */
	finish(&child);
	return event;
}

static bool test_prefetch_refuses_a_damaged_working_set_before_installing_it(void)
{
	/* Raw, first-touch order 5,3,40,...: page 40 is the second page stored. */
	copy_file("ws-raw.pages", "ws.pages-damaged");
	flip_byte("ws.pages-damaged", 1 * page_size + 100);
	int status;
	char *corrupt = refused("ws.pages-damaged", "ws-raw.index", &status);
	CHECK(strstr(corrupt, "\"role\":\"working-set pages\"") && strstr(corrupt, "page does not match"), "event: %s", corrupt);
	CHECK(json_number(corrupt, "offset") == page_size, "offset %ld", json_number(corrupt, "offset"));
	CHECK(status == 3, "the pager should exit 3 for damage");
	/* Compressed: the block is refused before it is decoded. */
	copy_file("ws.pages", "ws.pages-damaged");
	flip_byte("ws.pages-damaged", 10);
	corrupt = refused("ws.pages-damaged", "ws.index", &status);
	CHECK(strstr(corrupt, "\"role\":\"working-set pages\"") && strstr(corrupt, "block does not match"), "event: %s", corrupt);
	CHECK(json_number(corrupt, "offset") == 0 && status == 3, "offset %ld, status %d", json_number(corrupt, "offset"), status);
	return true;
}

static bool test_prefetch_refuses_a_damaged_index(void)
{
	int status;
	copy_file("ws.index", "ws.index-damaged");
	flip_byte("ws.index-damaged", sizeof(struct vhive_ws3_header) + 16 + 3); /* the second entry's offset */
	char *corrupt = refused("ws.pages", "ws.index-damaged", &status);
	CHECK(strstr(corrupt, "\"role\":\"working-set index\"") && strstr(corrupt, "own checksum"), "entry: %s", corrupt);
	CHECK(status == 3, "exit 3");
	/* The header is under the checksum too: another codec is not tried on the same bytes. */
	copy_file("ws.index", "ws.index-damaged");
	flip_byte("ws.index-damaged", 12); /* lz4 (1) becomes another codec */
	corrupt = refused("ws.pages", "ws.index-damaged", &status);
	CHECK(strstr(corrupt, "\"role\":\"working-set index\"") && status == 3, "header: %s", corrupt);
	return true;
}

static bool test_prefetch_refuses_a_working_set_of_another_format(void)
{
	/* A format 2 index, and one of a format still to come: both refused, neither misread. */
	for (int version = 2; version <= 9; version += 7) {
		copy_file("ws.index", "ws.index-other");
		char path[1100];
		path_in_work(path, sizeof path, "ws.index-other");
		int fd = open(path, O_WRONLY);
		char digit = (char)('0' + version);
		CHECK(fd >= 0 && pwrite(fd, &digit, 1, 7) == 1, "rewrite the magic");
		close(fd);
		int status;
		char *corrupt = refused("ws.pages", "ws.index-other", &status);
		CHECK(strstr(corrupt, "\"role\":\"working-set index\"") && strstr(corrupt, version == 2 ? "older format" : "does not know"),
		      "format %d: %s", version, corrupt);
		CHECK(status == 3, "exit 3");
	}
	return true;
}

static bool test_pack_refuses_a_memory_page_that_fails_its_checksum(void)
{
	copy_file("mem", "mem-damaged");
	flip_byte("mem-damaged", 41 * page_size + 7);
	mem_name = "mem-damaged";
	int status;
	pack("lz4", "64", "ws-bad.pages", "ws-bad.index", &status);
	mem_name = "mem";
	char path[1100];
	path_in_work(path, sizeof path, "ws-bad.index");
	CHECK(status == 3 && access(path, F_OK) != 0, "status %d, and no working set is written", status);
	return true;
}

static bool test_a_damaged_checksum_file_is_refused_at_start(void)
{
	copy_file("mem.sums", "mem.sums.good");
	flip_byte("mem.sums", sizeof(struct vhive_sums_header) + 8); /* an entry */
	char pager_path[1100], sock[1100], mem[1100], sums[1100];
	snprintf(pager_path, sizeof pager_path, "%s/vhive-pager", build_dir);
	snprintf(sock, sizeof sock, "%s/pager.sock", sock_dir);
	path_in_work(mem, sizeof mem, "mem");
	path_in_work(sums, sizeof sums, "mem.sums");
	char *argv[] = { pager_path, "--socket", sock, "--mem", mem, "--mem-sums", sums, "--mode", "lazy", NULL };
	char *envp[] = { NULL };
	struct proc pager = spawn(argv, envp);
	char *corrupt = line_with(&pager, "\"corrupt\"");
	CHECK(corrupt && strstr(corrupt, "\"role\":\"checksums\"") && strstr(corrupt, "own checksum"), "event: %s", corrupt ? corrupt : "none");
	CHECK(exit_status(&pager) == 3, "exit 3");
	copy_file("mem.sums.good", "mem.sums");
	return true;
}

static bool test_pagesum_verify_finds_the_damaged_page(void)
{
	char tool[1100], mem[1100], sums[1100], pages[1100], index[1100], raw_pages[1100], raw_index[1100];
	snprintf(tool, sizeof tool, "%s/vhive-pagesum", build_dir);
	path_in_work(sums, sizeof sums, "mem.sums");
	path_in_work(pages, sizeof pages, "ws.pages");
	path_in_work(index, sizeof index, "ws.index");
	path_in_work(raw_pages, sizeof raw_pages, "ws-raw.pages");
	path_in_work(raw_index, sizeof raw_index, "ws-raw.index");
	char *envp[] = { NULL };
	path_in_work(mem, sizeof mem, "mem");
	char *good_argv[] = { tool, "verify", mem, sums, pages, index, raw_pages, raw_index, NULL };
	struct proc good = spawn(good_argv, envp);
	char *verdict = line_with(&good, "\"verified\"");
	CHECK(verdict && strstr(verdict, "\"ok\":true"), "whole snapshot: %s", verdict ? verdict : "none");
	CHECK(finish(&good) == 0, "exit 0 when whole");
	copy_file("mem", "mem-damaged");
	flip_byte("mem-damaged", 9 * page_size + 1);
	path_in_work(mem, sizeof mem, "mem-damaged");
	char *bad_argv[] = { tool, "verify", mem, sums, NULL };
	struct proc bad = spawn(bad_argv, envp);
	char *checked = line_with(&bad, "\"role\":\"memory\"");
	CHECK(checked && json_number(checked, "bad") == 1 && strstr(checked, "\"badOffsets\":[36864]"), "%s", checked ? checked : "none");
	CHECK(finish(&bad) == 3, "exit 3 when damaged");
	/* A damaged block of a compressed working set: found where the block starts. */
	copy_file("ws.pages", "ws.pages-damaged");
	flip_byte("ws.pages-damaged", 20);
	path_in_work(mem, sizeof mem, "mem");
	path_in_work(pages, sizeof pages, "ws.pages-damaged");
	char *ws_argv[] = { tool, "verify", mem, sums, pages, index, NULL };
	struct proc ws = spawn(ws_argv, envp);
	checked = line_with(&ws, "\"role\":\"working-set pages\"");
	CHECK(checked && json_number(checked, "bad") == 1 && strstr(checked, "\"badOffsets\":[0]"), "%s", checked ? checked : "none");
	CHECK(finish(&ws) == 3, "exit 3 when a working set is damaged");
	return true;
}

static void run(const char *name, bool (*test)(void))
{
	bool ok = test();
	printf("%s %s\n", ok ? "ok  " : "FAIL", name);
	fflush(stdout);
	if (ok) passed++;
	else failed++;
}

int main(int argc, char **argv)
{
	page_size = sysconf(_SC_PAGESIZE);
	if (argc == 5 && strcmp(argv[1], "--child") == 0) return child_main(argv[2], atoi(argv[3]), argv[4]);
	if (argc != 2) {
		fprintf(stderr, "usage: test-native BUILD_DIR\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (!realpath(argv[1], build_dir)) return 2;
	snprintf(work_dir, sizeof work_dir, "/tmp/vhive-native-test-XXXXXX");
	if (!mkdtemp(work_dir)) return 2;
	snprintf(sock_dir, sizeof sock_dir, "%s", work_dir);
	write_memory_file();
	if (!write_memory_sums()) {
		fprintf(stderr, "vhive-pagesum could not write mem.sums\n");
		return 1;
	}

	run("lazy serves every page, zero pages with UFFDIO_ZEROPAGE", test_lazy_serves_every_page_and_zero_pages_apart);
	run("record writes the trace and the working set in fault order, zero pages unstored",
	    test_record_writes_trace_and_working_set_in_fault_order_without_zero_pages);
	run("prefetch installs the working set before the guest runs", test_prefetch_installs_the_working_set_before_the_guest_runs);
	run("prefetch reads a raw working set through the page cache", test_prefetch_reads_a_raw_working_set_through_the_page_cache);
	run("prefetch decodes zstd blocks in order", test_prefetch_decodes_zstd_blocks_in_order);
	run("deferred prefetch installs the working set only when told", test_deferred_prefetch_installs_the_working_set_only_when_told);
	run("all installs every page, zero pages as the zero page; nothing faults", test_all_installs_every_page_so_nothing_faults);
	run("--no-verify serves pages without checking them", test_no_verify_serves_pages_unchecked);
	run("the pager refuses a handshake that is not the shim's", test_pager_refuses_a_handshake_that_is_not_the_shims);
	run("a pager whose owner died removes its socket directory", test_a_pager_whose_owner_died_removes_its_socket_dir);
	run("random advice drops the hugepage hint and advises MADV_RANDOM", test_random_advice_drops_the_hugepage_hint);
	run("lazy refuses a memory page that fails its checksum", test_lazy_refuses_a_memory_page_that_fails_its_checksum);
	run("all refuses a damaged memory file before the guest runs", test_all_refuses_a_damaged_memory_file_before_the_guest_runs);
	run("prefetch refuses a damaged working set before installing it", test_prefetch_refuses_a_damaged_working_set_before_installing_it);
	run("prefetch refuses a damaged working-set index", test_prefetch_refuses_a_damaged_index);
	run("prefetch refuses a working set of another format", test_prefetch_refuses_a_working_set_of_another_format);
	run("vhive-wspack pack refuses a memory page that fails its checksum", test_pack_refuses_a_memory_page_that_fails_its_checksum);
	run("a damaged checksum file is refused at start", test_a_damaged_checksum_file_is_refused_at_start);
	run("vhive-pagesum verify finds the damaged page", test_pagesum_verify_finds_the_damaged_page);

	char command[1200];
	snprintf(command, sizeof command, "rm -rf %s", work_dir);
	if (system(command) != 0) fprintf(stderr, "could not remove %s\n", work_dir);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
