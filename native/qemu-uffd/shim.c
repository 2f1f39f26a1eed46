/*
 * libvhive-qemu-uffd.so: an LD_PRELOAD shim for qemu-system-x86_64 that hands guest RAM to
 * the vhive pager, or changes how QEMU's file-backed guest RAM is paged.
 *
 * Why a shim: QEMU 7.2 has no userfaultfd memory backend. It maps `-object
 * memory-backend-file,mem-path=M,share=off` with mmap64(MAP_FIXED | MAP_PRIVATE, fd of M) over
 * a reserved range. We recognise that call by the file's identity and, in uffd mode, map
 * anonymous memory there instead, register it with userfaultfd (MISSING), and pass the uffd to
 * the pager (protocol: include/vhive_uffd.h). QEMU then never reads M itself: every page comes
 * from the pager.
 *
 * Environment:
 *   VHIVE_MEM_PATH      the guest memory file to recognise (required for anything to happen)
 *   VHIVE_UFFD_SOCKET   the pager's socket: uffd mode
 *   VHIVE_MEM_ADVICE    "random": keep the file mapping but drop QEMU's MADV_HUGEPAGE on it and
 *                       advise MADV_RANDOM, so each fault reads one 4 KiB page (the paper's
 *                       baseline) instead of a 2 MiB huge-page's worth
 * Any failure prints a message and exits QEMU: a half-working memory path must not run a guest.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "vhive_uffd.h"

#define LOG_PREFIX "vhive-qemu-uffd: "

typedef void *(*mmap_fn)(void *, size_t, int, int, int, off_t);
typedef int (*madvise_fn)(void *, size_t, int);

/* The guest RAM mapping once recognised, so madvise calls on it can be adjusted. */
static void *ram_base;
static size_t ram_length;
static bool uffd_mode;

static void fail(const char *what)
{
	fprintf(stderr, LOG_PREFIX "%s: %s\n", what, errno ? strerror(errno) : "failed");
	_exit(1);
}

static mmap_fn real_mmap64(void)
{
	static mmap_fn fn;
	if (!fn) fn = (mmap_fn)dlsym(RTLD_NEXT, "mmap64");
	return fn;
}

static madvise_fn real_madvise(void)
{
	static madvise_fn fn;
	if (!fn) fn = (madvise_fn)dlsym(RTLD_NEXT, "madvise");
	return fn;
}

static bool random_advice(void)
{
	const char *advice = getenv("VHIVE_MEM_ADVICE");
	return advice && strcmp(advice, "random") == 0;
}

/* Is fd the guest memory file named by VHIVE_MEM_PATH? Compared by device and inode. */
static bool is_memory_file(int fd)
{
	const char *path = getenv("VHIVE_MEM_PATH");
	if (!path || fd < 0) return false;
	struct stat want, have;
	if (stat(path, &want) != 0 || fstat(fd, &have) != 0) return false;
	return want.st_dev == have.st_dev && want.st_ino == have.st_ino;
}

static int new_userfaultfd(void)
{
	/* The syscall, or /dev/userfaultfd where unprivileged use of the syscall is off. */
	int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0) {
		int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
		if (dev < 0) fail("userfaultfd and /dev/userfaultfd are both unavailable");
		uffd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
		close(dev);
		if (uffd < 0) fail("USERFAULTFD_IOC_NEW");
	}
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	if (ioctl(uffd, UFFDIO_API, &api) != 0) fail("UFFDIO_API");
	if (!(api.ioctls & (1ull << _UFFDIO_REGISTER))) {
		errno = 0;
		fail("the kernel's userfaultfd lacks UFFDIO_REGISTER");
	}
	return uffd;
}

/* Register [addr, addr+length) and hand it to the pager; returns once the pager serves faults. */
static void hand_to_pager(void *addr, size_t length)
{
	const char *socket_path = getenv("VHIVE_UFFD_SOCKET");
	int uffd = new_userfaultfd();
	struct uffdio_register reg = {
		.range = { .start = (uint64_t)(uintptr_t)addr, .len = length },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	if (ioctl(uffd, UFFDIO_REGISTER, &reg) != 0) fail("UFFDIO_REGISTER of guest RAM");
	if (!(reg.ioctls & (1ull << _UFFDIO_COPY))) {
		errno = 0;
		fail("guest RAM does not support UFFDIO_COPY");
	}

	int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock < 0) fail("socket");
	struct sockaddr_un sun;
	if (vhive_socket_address(&sun, socket_path) != 0) fail("VHIVE_UFFD_SOCKET");
	if (connect(sock, (struct sockaddr *)&sun, sizeof sun) != 0) fail("connecting to the pager");

	struct vhive_uffd_hello hello = {
		.magic = VHIVE_UFFD_MAGIC,
		.version = VHIVE_UFFD_VERSION,
		.base = (uint64_t)(uintptr_t)addr,
		.length = length,
		.page_size = (uint64_t)sysconf(_SC_PAGESIZE),
	};
	char control[CMSG_SPACE(sizeof(int))];
	memset(control, 0, sizeof control);
	struct iovec iov = { .iov_base = &hello, .iov_len = sizeof hello };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
	struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &uffd, sizeof(int));
	if (sendmsg(sock, &msg, 0) != (ssize_t)sizeof hello) fail("sending the userfaultfd to the pager");

	char ack = 0;
	ssize_t n;
	do n = read(sock, &ack, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1 || ack != VHIVE_UFFD_ACK) {
		if (n >= 0) errno = 0;
		fail("the pager did not acknowledge");
	}
	/* uffd and sock stay open for QEMU's lifetime on purpose: see include/vhive_uffd.h. */
}

void *mmap64(void *addr, size_t length, int prot, int flags, int fd, off_t offset)
{
	if (!(flags & MAP_ANONYMOUS) && offset == 0 && is_memory_file(fd)) {
		ram_base = NULL;
		ram_length = length;
		if (getenv("VHIVE_UFFD_SOCKET")) {
			uffd_mode = true;
			int anon_flags = (flags & MAP_FIXED) | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
			void *ram = real_mmap64()(addr, length, prot, anon_flags, -1, 0);
			if (ram == MAP_FAILED) return ram;
			ram_base = ram;
			hand_to_pager(ram, length);
			return ram;
		}
		void *ram = real_mmap64()(addr, length, prot, flags, fd, offset);
		if (ram == MAP_FAILED) return ram;
		ram_base = ram;
		if (random_advice() && real_madvise()(ram, length, MADV_RANDOM) != 0) fail("MADV_RANDOM on guest RAM");
		return ram;
	}
	return real_mmap64()(addr, length, prot, flags, fd, offset);
}

void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset)
{
	return mmap64(addr, length, prot, flags, fd, offset);
}

int madvise(void *addr, size_t length, int advice)
{
	uintptr_t start = (uintptr_t)addr, ram = (uintptr_t)ram_base;
	bool on_ram = ram_base && start >= ram && start + length <= ram + ram_length;
	/* uffd mode serves 4 KiB pages; random mode wants one 4 KiB read per fault. */
	if (on_ram && advice == MADV_HUGEPAGE && (uffd_mode || random_advice())) return 0;
	return real_madvise()(addr, length, advice);
}
