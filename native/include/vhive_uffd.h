/*
 * The handshake between the QEMU memory shim (native/qemu-uffd) and the pager (native/pager).
 *
 * The pager listens on a Unix stream socket. The shim, inside QEMU, maps guest RAM as
 * anonymous memory, registers it with a new userfaultfd (MISSING mode), connects, and sends one
 * struct vhive_uffd_hello with the userfaultfd attached as SCM_RIGHTS. The pager answers with
 * one byte, VHIVE_UFFD_ACK, once it serves faults; the shim blocks until then, so QEMU touches
 * no guest page before it can be served.
 *
 * Who closes what: the shim keeps its copy of the userfaultfd and the socket open for QEMU's
 * whole life. Keeping the uffd open means a dead pager leaves faults unserved (QEMU hangs and
 * vhive kills it) instead of the kernel unregistering the range and handing the guest zero
 * pages. Keeping the socket open lets the pager see QEMU exit as end-of-file.
 *
 * Offsets: guest RAM is the whole memory file mapped at offset 0, so a fault at address A is
 * file offset A - base.
 */
#ifndef VHIVE_UFFD_H
#define VHIVE_UFFD_H

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#define VHIVE_UFFD_MAGIC 0x46554856u /* "VHUF" little-endian */
#define VHIVE_UFFD_VERSION 1u
#define VHIVE_UFFD_ACK 'A'

struct vhive_uffd_hello {
	uint32_t magic;
	uint32_t version;
	uint64_t base;      /* address of guest RAM in QEMU */
	uint64_t length;    /* bytes */
	uint64_t page_size; /* bytes */
};

/*
 * Working-set index and trace files share one format, all little-endian:
 *   8 bytes  magic "VHWSIDX1"
 *   4 bytes  page size
 *   4 bytes  reserved (0)
 *   8 bytes  count
 *   count x 8 bytes  page offsets into the memory file, in bytes
 * In a working-set index the offsets are sorted ascending and ws.pages holds the pages in that
 * order, contiguously. In a trace they are in the order the pages first faulted.
 */
#define VHIVE_WS_MAGIC "VHWSIDX1"

struct vhive_ws_header {
	char magic[8];
	uint32_t page_size;
	uint32_t reserved;
	uint64_t count;
};

/* The pager's socket address, for bind() and connect(); -1 with ENAMETOOLONG if `path` does not fit. */
static inline int vhive_socket_address(struct sockaddr_un *addr, const char *path)
{
	memset(addr, 0, sizeof *addr);
	addr->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof addr->sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(addr->sun_path, path);
	return 0;
}

#endif
