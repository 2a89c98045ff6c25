/* slow-fsync.c — an LD_PRELOAD shim for tests: fsync() first sleeps $DBREG_SLOW_FSYNC
 * seconds, so that a test can signal dbreg while a report is half written. */
#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

int fsync(int fd);

int fsync(int fd)
{
	static int (*real)(int);
	const char *delay = getenv("DBREG_SLOW_FSYNC");

	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	if (delay)
		sleep((unsigned)atoi(delay));
	return real ? real(fd) : 0;
}
