/*
 * testprobe.c — disk-probe, a test helper: performs the file operations
 * named on its command line, one per argument, and prints one line per
 * operation, so that a test can run it with libwalsim-disk.so preloaded and
 * compare what each call returned.
 *
 *   open:PATH:FLAGS        FLAGS from r w c t x s d (read, write, create,
 *                          truncate, exclusive, O_SYNC, directory/read-only)
 *   close:PATH             write:PATH:LEN:BYTE      pwrite:PATH:OFF:LEN:BYTE
 *   pwritev:PATH:OFF:LEN:BYTE (two halves)          read:PATH:LEN
 *   pread:PATH:OFF:LEN     preadv:PATH:OFF:LEN      fsync:PATH   fdatasync:PATH
 *   sfr:PATH:FLAGS         (sync_file_range of the whole file; FLAGS w, a = wait after)
 *   ftruncate:PATH:LEN     truncate:PATH:LEN        fallocate:PATH:OFF:LEN
 *   pfallocate:PATH:OFF:LEN (posix_fallocate)       rename:FROM:TO   unlink:PATH
 *   chdir:PATH             pause:PATH  (wait, at most 30 s, until PATH exists)
 *   children:N             (run the remaining operations in N
 *                          forked children, one after the other)
 *
 * Output: "OP -> ok N", "OP -> err ENAME" or "OP -> data HEX" (reads: the
 * bytes read as hex, at most 64 of them, then "+" if there were more).
 * PATH names an open file by the string given to open:.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "disk.h"

#define MAX_OPEN 64
#define MAX_LEN (1 << 20)

static struct
{
	char		path[512];
	int			fd;
}			opened[MAX_OPEN];
static int	nopened;
static unsigned char buf[MAX_LEN];

static int
fd_of(const char *path)
{
	for (int i = 0; i < nopened; i++)
		if (strcmp(opened[i].path, path) == 0)
			return opened[i].fd;
	return -1;
}

static void
forget(const char *path)
{
	for (int i = 0; i < nopened; i++)
		if (strcmp(opened[i].path, path) == 0)
		{
			opened[i] = opened[--nopened];
			return;
		}
}

static void
report(const char *op, long rc, bool ok)
{
	const char *name;

	if (ok)
	{
		printf("%s -> ok %ld\n", op, rc);
		return;
	}
	name = disk_errno_name(errno);
	if (name)
		printf("%s -> err %s\n", op, name);
	else
		printf("%s -> err %d\n", op, errno);
}

static void
report_data(const char *op, ssize_t n)
{
	if (n < 0)
	{
		report(op, n, false);
		return;
	}
	printf("%s -> data ", op);
	for (ssize_t i = 0; i < n && i < 64; i++)
		printf("%02x", buf[i]);
	printf("%s\n", n > 64 ? "+" : "");
}

static int
open_flags(const char *s)
{
	bool		r = strchr(s, 'r') != NULL,
				w = strchr(s, 'w') != NULL;
	int			flags = r && w ? O_RDWR : w ? O_WRONLY : O_RDONLY;

	if (strchr(s, 'c'))
		flags |= O_CREAT;
	if (strchr(s, 't'))
		flags |= O_TRUNC;
	if (strchr(s, 'x'))
		flags |= O_EXCL;
	if (strchr(s, 's'))
		flags |= O_SYNC;
	return flags;
}

static long
num(const char *s)
{
	return s ? strtol(s, NULL, 0) : 0;
}

/* Run one "op:a:b:c:d" argument. */
static void
run(const char *arg)
{
	char		copy[1024];
	char	   *f[6] = {0};
	int			nf = 0;
	char	   *save = NULL;
	int			fd;
	long		rc;

	snprintf(copy, sizeof(copy), "%s", arg);
	for (char *t = strtok_r(copy, ":", &save); t && nf < 6; t = strtok_r(NULL, ":", &save))
		f[nf++] = t;
	if (nf == 0)
		return;
	fd = f[1] ? fd_of(f[1]) : -1;
	errno = 0;
	if (strcmp(f[0], "open") == 0)
	{
		rc = open(f[1], open_flags(f[2] ? f[2] : "r"), 0600);
		if (rc >= 0 && nopened < MAX_OPEN)
		{
			snprintf(opened[nopened].path, sizeof(opened[0].path), "%s", f[1]);
			opened[nopened++].fd = rc;
		}
		report(arg, rc >= 0 ? 0 : rc, rc >= 0);
	}
	else if (strcmp(f[0], "close") == 0)
	{
		rc = close(fd);
		forget(f[1]);
		report(arg, rc, rc == 0);
	}
	else if (strcmp(f[0], "write") == 0 || strcmp(f[0], "pwrite") == 0 ||
			 strcmp(f[0], "pwritev") == 0)
	{
		bool		positional = f[0][0] == 'p';
		long		len = num(f[positional ? 3 : 2]);
		int			byte = (int) num(f[positional ? 4 : 3]);

		if (len > MAX_LEN)
			len = MAX_LEN;
		memset(buf, byte, len);
		if (strcmp(f[0], "pwritev") == 0)
		{
			struct iovec iov[2] = {{buf, len / 2}, {buf + len / 2, len - len / 2}};

			rc = pwritev(fd, iov, 2, num(f[2]));
		}
		else if (positional)
			rc = pwrite(fd, buf, len, num(f[2]));
		else
			rc = write(fd, buf, len);
		report(arg, rc, rc >= 0);
	}
	else if (strcmp(f[0], "read") == 0 || strcmp(f[0], "pread") == 0 ||
			 strcmp(f[0], "preadv") == 0)
	{
		bool		positional = f[0][0] == 'p';
		long		len = num(f[positional ? 3 : 2]);

		if (len > MAX_LEN)
			len = MAX_LEN;
		memset(buf, 0, len);
		if (strcmp(f[0], "preadv") == 0)
		{
			struct iovec iov[2] = {{buf, len / 2}, {buf + len / 2, len - len / 2}};

			rc = preadv(fd, iov, 2, num(f[2]));
		}
		else if (positional)
			rc = pread(fd, buf, len, num(f[2]));
		else
			rc = read(fd, buf, len);
		report_data(arg, rc);
	}
	else if (strcmp(f[0], "fsync") == 0)
	{
		rc = fsync(fd);
		report(arg, rc, rc == 0);
	}
	else if (strcmp(f[0], "fdatasync") == 0)
	{
		rc = fdatasync(fd);
		report(arg, rc, rc == 0);
	}
	else if (strcmp(f[0], "sfr") == 0)
	{
		unsigned int flags = SYNC_FILE_RANGE_WRITE;

		if (f[2] && strchr(f[2], 'a'))
			flags |= SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WAIT_AFTER;
		rc = sync_file_range(fd, 0, 0, flags);
		report(arg, rc, rc == 0);
	}
	else if (strcmp(f[0], "ftruncate") == 0)
	{
		rc = ftruncate(fd, num(f[2]));
		report(arg, rc, rc == 0);
	}
	else if (strcmp(f[0], "truncate") == 0)
	{
		rc = truncate(f[1], num(f[2]));
		report(arg, rc, rc == 0);
	}
	else if (strcmp(f[0], "fallocate") == 0)
	{
		rc = fallocate(fd, 0, num(f[2]), num(f[3]));
		report(arg, rc, rc == 0);
	}
	else if (strcmp(f[0], "pfallocate") == 0)
	{
		rc = posix_fallocate(fd, num(f[2]), num(f[3]));
		if (rc != 0)
			errno = (int) rc;
		report(arg, rc, rc == 0);
	}
	else if (strcmp(f[0], "rename") == 0)
	{
		rc = rename(f[1], f[2]);
		report(arg, rc, rc == 0);
	}
	else if (strcmp(f[0], "unlink") == 0)
	{
		rc = unlink(f[1]);
		report(arg, rc, rc == 0);
	}
	else if (strcmp(f[0], "pwriten") == 0)
	{
		long		n = num(f[2]);
		long		len = num(f[3]);

		if (len > MAX_LEN)
			len = MAX_LEN;
		rc = 0;
		for (long i = 0; i < n && rc >= 0; i++)
			rc = pwrite(fd, buf, len, 0);
		report(arg, rc < 0 ? rc : n, rc >= 0);
	}
	else if (strcmp(f[0], "pause") == 0)
	{
		struct timespec tick = {0, 10 * 1000 * 1000};

		rc = -1;
		for (int i = 0; i < 3000 && (rc = access(f[1], F_OK)) != 0; i++)
			nanosleep(&tick, NULL);
		report(arg, rc, rc == 0);
	}
	else if (strcmp(f[0], "chdir") == 0)
	{
		rc = chdir(f[1]);
		report(arg, rc, rc == 0);
	}
	else
		printf("%s -> unknown operation\n", arg);
	fflush(stdout);
}

int
main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
	{
		if (strncmp(argv[i], "children:", 9) == 0)
		{
			int			n = atoi(argv[i] + 9);

			fflush(stdout);
			for (int c = 0; c < n; c++)
			{
				pid_t		pid = fork();
				int			status;

				if (pid == 0)
				{
					for (int j = i + 1; j < argc; j++)
						run(argv[j]);
					fflush(stdout);
					_exit(0);
				}
				if (pid < 0 || waitpid(pid, &status, 0) != pid)
					return 2;
			}
			return 0;
		}
		run(argv[i]);
	}
	return 0;
}
