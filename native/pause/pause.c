/*
 * vhive-pause: the init process of a pod sandbox, the program of the pause image that
 * containerd's CRI plugin starts first in every pod (its `sandbox_image`). It holds the pod's
 * namespaces open, reaps the zombies of the pod's other processes when the pod shares one PID
 * namespace, and exits 0 on SIGINT or SIGTERM, as Kubernetes' pause does
 * (kubernetes/build/pause/linux/pause.c); it is written here so the image builds offline from
 * Debian's compiler. Static: the image holds nothing else.
 *
 * `vhive-pause -v` prints its name and exits, so a build can check the binary runs.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define LOG_PREFIX "vhive-pause: "

static void on_stop(int signo)
{
	(void)signo;
	_exit(0);
}

static void on_child(int signo)
{
	(void)signo;
	/* Reap every child that has exited: several may end before one SIGCHLD is handled. */
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

static int install(int signo, void (*handler)(int), int flags)
{
	struct sigaction action;

	memset(&action, 0, sizeof(action));
	action.sa_handler = handler;
	action.sa_flags = flags;
	sigemptyset(&action.sa_mask);
	if (sigaction(signo, &action, NULL) < 0) {
		perror(LOG_PREFIX "sigaction");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "-v") == 0) {
		puts("vhive-pause");
		return 0;
	}
	if (getpid() != 1)
		/* Not an error: Kubernetes' pause warns the same way and keeps running. */
		fprintf(stderr, LOG_PREFIX "warning: not running as PID 1\n");

	if (install(SIGINT, on_stop, 0) < 0 || install(SIGTERM, on_stop, 0) < 0 ||
	    install(SIGCHLD, on_child, SA_NOCLDSTOP | SA_RESTART) < 0)
		return 1;

	for (;;)
		pause();
	return 42; /* unreachable */
}
