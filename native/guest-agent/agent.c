/*
 * vhive-agent: the guest side of a restore, in every function microVM (a static binary in the
 * initramfs, started by init.sh outside the function's chroot, as root).
 *
 * Why: a restored VM resumes with the kernel CRNG state and every process's PRNG state of the
 * snapshot, so clones of one snapshot would hand out the same random numbers (Brooker et al.,
 * "Restoring Uniqueness in MicroVM Snapshots", 2021). QEMU 7.2's microvm has no VM generation
 * ID device (vmgenid needs the ACPI tables of the pc/q35 machines) and the Debian 6.1 guest
 * kernel is built without CONFIG_VMGENID, and a virtio-rng device only feeds the pool on the
 * kernel's own schedule; so vhive hands fresh host entropy in itself, over a virtio-serial port,
 * and this agent credits it and forces a reseed before the function serves anything.
 *
 * Channel to the host: the virtio-serial port named by --port (/dev/vportNpM, found through
 * /sys/class/virtio-ports/<port>/name), line based:
 *   host -> agent   restore <hex entropy>\n     (16..512 bytes of entropy, hex)
 *   agent -> host   restored <hooks> <hooks-ok> <reseed-us> <hooks-us>\n
 *                   error <message>\n
 * On "restore" the agent adds the entropy with RNDADDENTROPY (credited), forces a CRNG reseed
 * with RNDRESEEDCRNG, then tells every after-restore hook and waits for them (up to
 * HOOK_TIMEOUT_MS), then answers. The host lets no request in before the answer.
 *
 * After-restore hooks: processes in the guest connect to the Unix stream socket --hooks (inside
 * the function's root it is /run/vhive/restore.sock). The agent greets each with "hello\n" (a
 * hook is registered once it has read that) and, after each restore, sends "restored\n" once
 * the kernel is reseeded; the hook refreshes its own state (a userspace PRNG, a cached token)
 * and answers "ok\n".
 *
 * usage: vhive-agent --port NAME --hooks SOCKET_PATH
 * It sets up the port and the socket, then forks: the parent exits 0 once the child serves (so
 * init can fail the boot on a non-zero status), the child runs until the VM ends.
 *
 * usage: vhive-agent --run-as UID:GID -- COMMAND [ARGS...]
 * Runs COMMAND as that user and group, with no supplementary groups: the entry script uses it
 * for a container whose OCI spec names a user (the initramfs's busybox has no chpst or
 * setuidgid, and su needs the user in /etc/passwd).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <grp.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/random.h>
#include <poll.h>
#include <signal.h>
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

#define LOG_PREFIX "vhive-agent: "
#define MAX_HOOKS 64
#define MAX_ENTROPY 512
#define HOOK_TIMEOUT_MS 2000

struct hook {
	int fd;
	bool answered;
};

static struct {
	int port;
	int listener;
	struct hook hooks[MAX_HOOKS];
	int hook_count;
	char line[4096];
	size_t line_len;
} agent = { .port = -1, .listener = -1 };

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void fail(const char *what)
{
	fprintf(stderr, LOG_PREFIX "%s: %s\n", what, errno ? strerror(errno) : "failed");
	exit(1);
}

static void write_all(int fd, const char *text)
{
	size_t len = strlen(text), done = 0;
	while (done < len) {
		ssize_t n = write(fd, text + done, len - done);
		if (n < 0 && errno == EINTR) continue;
		if (n <= 0) return; /* the peer is gone: nothing to tell */
		done += (size_t)n;
	}
}

/* The /dev node of the virtio-serial port whose name is `name`. */
static int open_port(const char *name)
{
	DIR *dir = opendir("/sys/class/virtio-ports");
	if (!dir) fail("no /sys/class/virtio-ports (is virtio_console loaded?)");
	struct dirent *entry;
	while ((entry = readdir(dir))) {
		if (entry->d_name[0] == '.') continue;
		char path[512], found[128] = "";
		snprintf(path, sizeof path, "/sys/class/virtio-ports/%s/name", entry->d_name);
		FILE *f = fopen(path, "r");
		if (!f) continue;
		bool match = fgets(found, sizeof found, f) && (found[strcspn(found, "\n")] = '\0', strcmp(found, name) == 0);
		fclose(f);
		if (!match) continue;
		snprintf(path, sizeof path, "/dev/%s", entry->d_name);
		closedir(dir);
		int fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0) fail("opening the agent port");
		return fd;
	}
	closedir(dir);
	errno = 0;
	fail("no virtio-serial port with the agent's name");
	return -1;
}

static int listen_hooks(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) fail("socket");
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof addr.sun_path) {
		errno = ENAMETOOLONG;
		fail("the hook socket path");
	}
	strcpy(addr.sun_path, path);
	unlink(path);
	if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, MAX_HOOKS) != 0) fail("listening for hooks");
	/* Functions may run as any user (an OCI image's USER): anyone in the guest may register. */
	if (chmod(path, 0666) != 0) fail("chmod of the hook socket");
	return fd;
}

static void drop_hook(int i)
{
	close(agent.hooks[i].fd);
	agent.hooks[i] = agent.hooks[--agent.hook_count];
}

static void accept_hook(void)
{
	int fd = accept4(agent.listener, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0) return;
	if (agent.hook_count == MAX_HOOKS) {
		close(fd);
		return;
	}
	agent.hooks[agent.hook_count++] = (struct hook){ .fd = fd };
	write_all(fd, "hello\n");
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

/* Credit the host's entropy to the input pool and reseed the CRNG from it. */
static const char *reseed(const char *hex)
{
	size_t len = strlen(hex);
	if (len % 2 != 0 || len / 2 < 16 || len / 2 > MAX_ENTROPY) return "the entropy must be 16..512 bytes of hex";
	struct {
		struct rand_pool_info info;
		uint8_t bytes[MAX_ENTROPY];
	} pool;
	for (size_t i = 0; i < len / 2; i++) {
		int high = hex_value(hex[2 * i]), low = hex_value(hex[2 * i + 1]);
		if (high < 0 || low < 0) return "the entropy is not hex";
		pool.bytes[i] = (uint8_t)(high << 4 | low);
	}
	pool.info.entropy_count = (int)(len / 2 * 8);
	pool.info.buf_size = (int)(len / 2);
	int fd = open("/dev/urandom", O_RDWR | O_CLOEXEC);
	if (fd < 0) return "cannot open /dev/urandom";
	const char *problem = NULL;
	if (ioctl(fd, RNDADDENTROPY, &pool) != 0) problem = "RNDADDENTROPY failed";
	else if (ioctl(fd, RNDRESEEDCRNG) != 0) problem = "RNDRESEEDCRNG failed";
	close(fd);
	explicit_bzero(&pool, sizeof pool);
	return problem;
}

/* Tell every hook the VM was restored; wait until each answered, left, or the time is up. */
static int notify_hooks(void)
{
	for (int i = 0; i < agent.hook_count; i++) agent.hooks[i].answered = false;
	for (int i = 0; i < agent.hook_count;) {
		if (write(agent.hooks[i].fd, "restored\n", 9) != 9) drop_hook(i);
		else i++;
	}
	uint64_t deadline = now_us() + HOOK_TIMEOUT_MS * 1000u;
	int answered = 0;
	while (answered < agent.hook_count) {
		uint64_t now = now_us();
		if (now >= deadline) break;
		struct pollfd fds[MAX_HOOKS];
		int map[MAX_HOOKS], n = 0;
		for (int i = 0; i < agent.hook_count; i++) {
			if (agent.hooks[i].answered) continue;
			fds[n] = (struct pollfd){ .fd = agent.hooks[i].fd, .events = POLLIN };
			map[n++] = i;
		}
		if (poll(fds, (nfds_t)n, (int)((deadline - now) / 1000) + 1) < 0 && errno != EINTR) break;
		for (int k = n - 1; k >= 0; k--) {
			if (!fds[k].revents) continue;
			char reply[64];
			ssize_t got = read(fds[k].fd, reply, sizeof reply);
			if (got <= 0) {
				drop_hook(map[k]); /* gone: it has no state left to refresh */
				continue;
			}
			agent.hooks[map[k]].answered = true;
			answered++;
		}
	}
	return answered;
}

static void handle_line(char *line)
{
	char reply[256];
	if (strncmp(line, "restore ", 8) != 0) {
		snprintf(reply, sizeof reply, "error unknown request\n");
		write_all(agent.port, reply);
		return;
	}
	uint64_t started = now_us();
	const char *problem = reseed(line + 8);
	if (problem) {
		snprintf(reply, sizeof reply, "error %s: %s\n", problem, strerror(errno));
		write_all(agent.port, reply);
		return;
	}
	uint64_t reseeded = now_us();
	int hooks = agent.hook_count;
	int answered = notify_hooks();
	snprintf(reply, sizeof reply, "restored %d %d %lu %lu\n", hooks, answered, reseeded - started, now_us() - reseeded);
	write_all(agent.port, reply);
}

static void read_port(void)
{
	ssize_t n = read(agent.port, agent.line + agent.line_len, sizeof agent.line - 1 - agent.line_len);
	if (n <= 0) return;
	agent.line_len += (size_t)n;
	agent.line[agent.line_len] = '\0';
	char *newline;
	while ((newline = strchr(agent.line, '\n'))) {
		*newline = '\0';
		handle_line(agent.line);
		size_t used = (size_t)(newline - agent.line) + 1;
		memmove(agent.line, newline + 1, agent.line_len - used + 1);
		agent.line_len -= used;
	}
	if (agent.line_len == sizeof agent.line - 1) agent.line_len = 0; /* an overlong line is dropped */
}

static void serve(void)
{
	for (;;) {
		struct pollfd fds[2 + MAX_HOOKS];
		fds[0] = (struct pollfd){ .fd = agent.port, .events = POLLIN };
		fds[1] = (struct pollfd){ .fd = agent.listener, .events = POLLIN };
		for (int i = 0; i < agent.hook_count; i++) fds[2 + i] = (struct pollfd){ .fd = agent.hooks[i].fd, .events = POLLIN };
		int hooks = agent.hook_count;
		if (poll(fds, (nfds_t)(2 + hooks), -1) < 0) {
			if (errno == EINTR) continue;
			fail("poll");
		}
		if (fds[0].revents & POLLIN) read_port();
		else if (fds[0].revents & POLLHUP) usleep(100000); /* no host on the port (between QEMUs): wait, do not spin */
		if (fds[1].revents & POLLIN) accept_hook();
		for (int i = hooks - 1; i >= 0; i--) {
			if (!fds[2 + i].revents) continue;
			char discard[64];
			if (read(fds[2 + i].fd, discard, sizeof discard) <= 0) drop_hook(i); /* a hook that left */
		}
	}
}

static int run_as(int argc, char **argv)
{
	unsigned uid, gid;
	char end;
	if (argc < 5 || strcmp(argv[3], "--") != 0 || sscanf(argv[2], "%u:%u%c", &uid, &gid, &end) != 2) {
		fprintf(stderr, "usage: vhive-agent --run-as UID:GID -- COMMAND [ARGS...]\n");
		return 2;
	}
	if (setgroups(0, NULL) != 0 || setgid((gid_t)gid) != 0 || setuid((uid_t)uid) != 0) fail("switching to the container's user");
	execvp(argv[4], argv + 4);
	fprintf(stderr, LOG_PREFIX "cannot run %s: %s\n", argv[4], strerror(errno));
	return 127;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--run-as") == 0) return run_as(argc, argv);
	static const struct option options[] = {
		{ "port", required_argument, NULL, 'p' }, { "hooks", required_argument, NULL, 'k' }, { NULL, 0, NULL, 0 },
	};
	const char *port = NULL, *hooks = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (c == 'p') port = optarg;
		else if (c == 'k') hooks = optarg;
		else return 2;
	}
	if (!port || !hooks) {
		fprintf(stderr, "usage: vhive-agent --port NAME --hooks SOCKET_PATH\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN); /* a hook that left must not end the agent */
	agent.port = open_port(port);
	agent.listener = listen_hooks(hooks);
	pid_t pid = fork();
	if (pid < 0) fail("fork");
	if (pid > 0) return 0;
	setsid();
	serve();
	return 0;
}
