/*
 * interpose.c — libwalsim-disk.so, loaded with LD_PRELOAD into a node's
 * postmaster (its children inherit it).
 *
 * It wraps the libc calls PostgreSQL 15 makes on its files (checked with
 * strace and nm on a running node: open, close, read, pread, write, pwrite,
 * pwritev, fsync, fdatasync, sync_file_range, rename, unlink, ftruncate,
 * truncate, posix_fallocate, plus their 64-bit and *at variants for other
 * programs).  A file descriptor opened on a path under the node's data
 * directory is tracked in a per-process table indexed by fd; every other
 * descriptor costs one bounds check and one byte load before the real call.
 *
 * Rules, counters, the trace and the undo journal are described in disk.h
 * and docs/disk.md.  Constraints this file keeps:
 *   - the real functions are resolved with dlsym(RTLD_NEXT) once;
 *   - no malloc, no stdio and no locks on any path (PostgreSQL's signal
 *     handlers write to self-pipes, so write() must be async-signal-safe);
 *     shared state is touched with atomics only, never across a real call;
 *   - errno is what the real call left, or the injected value, on return.
 * The process is assumed single-threaded, as PostgreSQL's processes are: the
 * fd table and the small scratch buffers are per process, not per thread.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "walsim/decision.h"
#include "walsim/json.h"
#include "disk.h"

#define EXPORT __attribute__((visibility("default")))
#define DISK_MAX_FD 4096
#define CHUNK 32768

typedef struct RealCalls
{
	int			(*open) (const char *, int, ...);
	int			(*openat) (int, const char *, int, ...);
	int			(*close) (int);
	ssize_t		(*read) (int, void *, size_t);
	ssize_t		(*pread) (int, void *, size_t, off_t);
	ssize_t		(*preadv) (int, const struct iovec *, int, off_t);
	ssize_t		(*write) (int, const void *, size_t);
	ssize_t		(*pwrite) (int, const void *, size_t, off_t);
	ssize_t		(*pwritev) (int, const struct iovec *, int, off_t);
	int			(*fsync) (int);
	int			(*fdatasync) (int);
	int			(*sync_file_range) (int, off_t, off_t, unsigned int);
	int			(*rename) (const char *, const char *);
	int			(*unlink) (const char *);
	int			(*ftruncate) (int, off_t);
	int			(*truncate) (const char *, off_t);
	int			(*fallocate) (int, int, off_t, off_t);
	int			(*posix_fallocate) (int, off_t, off_t);
	int			(*chdir) (const char *);
	int			(*fchdir) (int);
} RealCalls;

typedef struct FdEntry
{
	uint8_t		tracked;
	uint8_t		is_dir;
	uint8_t		sync_open;		/* O_SYNC / O_DSYNC: writes are durable */
	uint8_t		append;
	uint32_t	mask_gen;		/* region generation + 1 when mask was computed */
	uint32_t	mask;			/* rule slots whose glob matches rel */
	uint64_t	dev;
	uint64_t	ino;
	char		rel[DISK_REL_MAX];
} FdEntry;

/* What decide() found: the rule that fires and its coordinates. */
typedef struct Fired
{
	DiskRule	rule;
	uint64_t	count;
} Fired;

static RealCalls real;
static DiskRegion *region;
static FdEntry fdtab[DISK_MAX_FD];
static char cwd_cache[PATH_MAX];
static bool cwd_valid;
static int	journal_fd = -1;
static ino_t journal_ino;
static dev_t journal_dev;

/* ------------------------------------------------------------ set-up */

static void
resolve_real_calls(void)
{
	real.open = dlsym(RTLD_NEXT, "open");
	real.openat = dlsym(RTLD_NEXT, "openat");
	real.close = dlsym(RTLD_NEXT, "close");
	real.read = dlsym(RTLD_NEXT, "read");
	real.pread = dlsym(RTLD_NEXT, "pread");
	real.preadv = dlsym(RTLD_NEXT, "preadv");
	real.write = dlsym(RTLD_NEXT, "write");
	real.pwrite = dlsym(RTLD_NEXT, "pwrite");
	real.pwritev = dlsym(RTLD_NEXT, "pwritev");
	real.fsync = dlsym(RTLD_NEXT, "fsync");
	real.fdatasync = dlsym(RTLD_NEXT, "fdatasync");
	real.sync_file_range = dlsym(RTLD_NEXT, "sync_file_range");
	real.rename = dlsym(RTLD_NEXT, "rename");
	real.unlink = dlsym(RTLD_NEXT, "unlink");
	real.ftruncate = dlsym(RTLD_NEXT, "ftruncate");
	real.truncate = dlsym(RTLD_NEXT, "truncate");
	real.fallocate = dlsym(RTLD_NEXT, "fallocate");
	real.posix_fallocate = dlsym(RTLD_NEXT, "posix_fallocate");
	real.chdir = dlsym(RTLD_NEXT, "chdir");
	/* written last: callers test it to know the table is complete */
	__atomic_store_n(&real.fchdir, dlsym(RTLD_NEXT, "fchdir"), __ATOMIC_RELEASE);
}

/* Every wrapper calls this first; after the constructor it is one load. */
static inline void
ensure_real(void)
{
	if (__builtin_expect(__atomic_load_n(&real.fchdir, __ATOMIC_ACQUIRE) == NULL, 0))
		resolve_real_calls();
}

static void
say(const char *msg)
{
	/* one write, no stdio: the node log receives it whole */
	(void) real.write(STDERR_FILENO, msg, strlen(msg));
}

__attribute__((constructor))
static void
disk_init(void)
{
	const char *path;
	WalsimError err;

	ensure_real();
	path = getenv(DISK_REGION_ENV);
	if (path == NULL || *path == '\0')
		return;
	region = disk_region_map(path, &err);
	if (region == NULL)
	{
		char		line[WALSIM_ERROR_MAX + 96];

		snprintf(line, sizeof(line), "walsim-disk: %s; passing every call through\n",
				 err.message);
		say(line);
	}
}

/* ------------------------------------------------------------ paths */

/*
 * Normalise an absolute path in place: collapse "//", drop "." and resolve
 * ".." lexically (symbolic links are not followed, see docs/disk.md).
 */
static void
normalise(char *path)
{
	char	   *src = path;
	char	   *dst = path;

	while (*src)
	{
		while (*src == '/')
			src++;
		if (*src == '\0')
			break;
		if (src[0] == '.' && (src[1] == '/' || src[1] == '\0'))
		{
			src++;
			continue;
		}
		if (src[0] == '.' && src[1] == '.' && (src[2] == '/' || src[2] == '\0'))
		{
			src += 2;
			while (dst > path && *--dst != '/')
				;
			continue;
		}
		*dst++ = '/';
		while (*src && *src != '/')
			*dst++ = *src++;
	}
	if (dst == path)
		*dst++ = '/';
	*dst = '\0';
}

/*
 * The path relative to the data directory ("." for the directory itself) of
 * `path` as seen from dirfd; false when it is outside or too long.
 */
static bool
relative_path(int dirfd, const char *path, char *rel)
{
	char		full[PATH_MAX * 2];
	size_t		dlen,
				n;
	const char *base;

	if (path == NULL)
		return false;
	if (path[0] == '/')
	{
		/* quick reject: most absolute paths are nowhere near the data dir */
		if (strncmp(path, region->data_dir, strlen(region->data_dir)) != 0)
			return false;
		base = "";
	}
	else if (dirfd == AT_FDCWD)
	{
		if (!cwd_valid)
		{
			if (getcwd(cwd_cache, sizeof(cwd_cache)) == NULL)
				return false;
			cwd_valid = true;
		}
		base = cwd_cache;
	}
	else if (dirfd >= 0 && dirfd < DISK_MAX_FD && fdtab[dirfd].tracked)
	{
		n = snprintf(full, sizeof(full), "%s/%s/%s", region->data_dir,
					 fdtab[dirfd].rel, path);
		if (n >= sizeof(full))
			return false;
		goto compare;
	}
	else
		return false;
	n = snprintf(full, sizeof(full), "%s/%s", base, path);
	if (n >= sizeof(full))
		return false;
compare:
	normalise(full);
	dlen = strlen(region->data_dir);
	if (strncmp(full, region->data_dir, dlen) != 0 ||
		(full[dlen] != '/' && full[dlen] != '\0'))
		return false;
	if (full[dlen] == '\0' || full[dlen + 1] == '\0')
	{
		strcpy(rel, ".");
		return true;
	}
	if (strlen(full + dlen + 1) >= DISK_REL_MAX)
		return false;
	strcpy(rel, full + dlen + 1);
	return true;
}

static inline FdEntry *
tracked_fd(int fd)
{
	if (fd < 0 || fd >= DISK_MAX_FD || !fdtab[fd].tracked)
		return NULL;
	return &fdtab[fd];
}

/* ------------------------------------------------------------ rules */

static uint32_t
match_mask(const char *rel)
{
	uint32_t	mask = 0;
	DiskRule	rule;

	for (int i = 0; i < DISK_MAX_RULES; i++)
		if (disk_region_read_rule(region, i, &rule) && disk_glob_match(rule.glob, rel))
			mask |= 1u << i;
	return mask;
}

static uint32_t
fd_rule_mask(FdEntry *e)
{
	uint32_t	gen = __atomic_load_n(&region->generation, __ATOMIC_ACQUIRE) + 1;

	if (e->mask_gen != gen)
	{
		e->mask = match_mask(e->rel);
		e->mask_gen = gen;
	}
	return e->mask;
}

static inline bool
needs_slow_path(void)
{
	return region != NULL &&
		(__atomic_load_n(&region->nactive, __ATOMIC_RELAXED) != 0 ||
		 __atomic_load_n(&region->journal, __ATOMIC_RELAXED) != 0);
}

/*
 * Does a call on this tracked descriptor need more than the real call: a
 * rule that matches its path, or the journal?  A rule on other files costs
 * one generation check here, not a walk over the rules.
 */
static inline bool
fd_needs_work(FdEntry *e)
{
	if (region == NULL)
		return false;
	if (__atomic_load_n(&region->journal, __ATOMIC_RELAXED))
		return true;
	return __atomic_load_n(&region->nactive, __ATOMIC_RELAXED) != 0 && fd_rule_mask(e) != 0;
}

/* Rules only (reads and syncs do not journal data). */
static inline bool
fd_has_rules(FdEntry *e)
{
	return region != NULL && __atomic_load_n(&region->nactive, __ATOMIC_RELAXED) != 0 &&
		fd_rule_mask(e) != 0;
}

static uint64_t
rule_decision(const DiskRule *rule, const char *rel, uint64_t count, const char *what)
{
	Decision	d;

	decision_start(&d, region->seed, rule->id);
	decision_add_str(&d, rel);
	decision_add_u64(&d, count);
	if (what)
		decision_add_str(&d, what);
	return decision_value(&d);
}

/* Take one fire of a limited rule; false when the limit is reached. */
static bool
take_fire(DiskRuleSlot *slot, uint64_t limit)
{
	uint64_t	cur = __atomic_load_n(&slot->fired, __ATOMIC_RELAXED);

	do
	{
		if (limit != 0 && cur >= limit)
			return false;
	} while (!__atomic_compare_exchange_n(&slot->fired, &cur, cur + 1, false,
										  __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	return true;
}

/*
 * Count this call against every matching rule and pick the first rule (in
 * slot order) whose trigger fires.  off < 0 means "no byte range" (fsync...).
 */
static bool
decide(const char *rel, uint32_t mask, DiskOp op, int64_t off, uint64_t len, Fired *f)
{
	bool		fired = false;

	for (int i = 0; i < DISK_MAX_RULES && mask; i++)
	{
		DiskRuleSlot *slot = &region->slots[i];
		DiskRule	rule;
		uint64_t	count;
		bool		hit = false;

		if (!(mask & (1u << i)))
			continue;
		mask &= ~(1u << i);
		if (!disk_region_read_rule(region, i, &rule) || !(rule.ops & (1u << op)) ||
			!disk_glob_match(rule.glob, rel))
			continue;
		count = __atomic_add_fetch(&slot->calls, 1, __ATOMIC_RELAXED);
		if (fired)
			continue;			/* the first firing rule wins; others still count */
		switch ((DiskTrigger) rule.trigger)
		{
			case DISK_WHEN_NTH:
				hit = count == rule.n;
				break;
			case DISK_WHEN_AFTER:
				hit = count > rule.n;
				break;
			case DISK_WHEN_RANGE:
				hit = off >= 0 && (uint64_t) off < rule.range_hi &&
					(uint64_t) off + len > rule.range_lo;
				break;
			case DISK_WHEN_PROB:
				hit = decision_chance(rule_decision(&rule, rel, count, NULL), rule.prob);
				break;
		}
		if (hit && take_fire(slot, rule.limit))
		{
			fired = true;
			f->rule = rule;
			f->count = count;
		}
	}
	return fired;
}

/* ------------------------------------------------------------ trace */

/*
 * One JSON line per fault fired, appended to the trace file.  Built on the
 * stack with walsim/json.h (it neither allocates nor calls printf-family
 * functions for the numbers), big enough for the longest tracked path with
 * every byte escaped, so a line is never cut.
 */
static void
trace_fault(const Fired *f, DiskOp op, const char *rel, int64_t off, uint64_t len,
			const char *effect_detail)
{
	char		line[DISK_REL_MAX * 6 + 512];
	char		when[48];
	char		effect[64];
	struct timespec now;
	JsonBuf		j;
	int			fd,
				saved = errno;

	clock_gettime(CLOCK_REALTIME, &now);
	/* seconds with exactly six decimals, as the trace has always had them */
	snprintf(when, sizeof(when), "%lld.%06ld", (long long) now.tv_sec, now.tv_nsec / 1000);
	if (effect_detail)
		snprintf(effect, sizeof(effect), "%s", effect_detail);
	else
		disk_effect_format(&f->rule, effect, sizeof(effect));
	json_init(&j, line, sizeof(line) - 1);
	json_object_begin(&j, NULL);
	json_member_raw(&j, "time", when);
	json_str(&j, "rule", f->rule.id);
	json_i64(&j, "pid", (int64_t) getpid());
	json_str(&j, "op", disk_op_name(op));
	json_str(&j, "path", rel);
	json_i64(&j, "offset", off);
	json_u64(&j, "length", len);
	json_str(&j, "effect", effect);
	json_u64(&j, "count", f->count);
	json_object_end(&j);
	line[j.len++] = '\n';		/* room was kept for it */
	fd = real.open(region->trace_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0660);
	if (fd >= 0)
	{
		(void) real.write(fd, line, j.len);
		real.close(fd);
	}
	errno = saved;
}

static void
sleep_us(uint64_t us)
{
	struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};

	/* signals (PostgreSQL's latches) must not shorten an injected delay */
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ------------------------------------------------------------ journal */

static inline bool
journaling(void)
{
	return region != NULL && __atomic_load_n(&region->journal, __ATOMIC_RELAXED);
}

static uint64_t
journal_next_seq(void)
{
	return __atomic_fetch_add(&region->journal_seq, 1, __ATOMIC_RELAXED);
}

static void
journal_append(DiskJournalType type, uint64_t seq, uint64_t dev, uint64_t ino,
			   int64_t offset, int64_t old_size, const char *path, const char *path2,
			   const void *data, uint32_t datalen, bool backup)
{
	DiskJournalHeader h = {
		.magic = DISK_JOURNAL_MAGIC, .type = type, .seq = seq, .dev = dev, .ino = ino,
		.offset = offset, .old_size = old_size, .datalen = datalen,
		.pathlen = path ? strlen(path) : 0, .path2len = path2 ? strlen(path2) : 0,
		.pid = getpid(), .backup = backup ? 1 : 0
	};
	struct iovec iov[4];
	int			n = 0;
	int			saved = errno;

	/*
	 * The cached descriptor must still be our journal: a program may have
	 * closed it behind our back (close_range, dup2 over it) and reused the
	 * number for one of its own files, which must never receive our records.
	 */
	if (journal_fd >= 0)
	{
		struct stat st;

		if (fstat(journal_fd, &st) != 0 || st.st_ino != journal_ino || st.st_dev != journal_dev)
			journal_fd = -1;
	}
	if (journal_fd < 0)
	{
		struct stat st;

		journal_fd = real.open(region->journal_path,
							   O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0660);
		if (journal_fd >= 0 && fstat(journal_fd, &st) == 0)
		{
			journal_ino = st.st_ino;
			journal_dev = st.st_dev;
		}
		else if (journal_fd >= 0)
		{
			real.close(journal_fd);
			journal_fd = -1;
		}
	}
	if (journal_fd < 0)
	{
		errno = saved;
		return;
	}
	iov[n++] = (struct iovec) {&h, sizeof(h)};
	if (h.pathlen)
		iov[n++] = (struct iovec) {(void *) path, h.pathlen};
	if (h.path2len)
		iov[n++] = (struct iovec) {(void *) path2, h.path2len};
	if (datalen)
		iov[n++] = (struct iovec) {(void *) data, datalen};
	/* one O_APPEND writev: records of concurrent processes never interleave */
	(void) writev(journal_fd, iov, n);
	errno = saved;
}

/*
 * Record the bytes [off, off+len) of the open file fd (as far as they exist)
 * and its size, before they change.
 */
static void
journal_capture(int fd, const char *rel, int64_t off, uint64_t len)
{
	char		buf[CHUNK];
	struct stat st;
	uint64_t	done = 0;
	int			rfd = fd;
	int			saved = errno;

	if (fstat(fd, &st) != 0)
		goto out;
	if (off >= st.st_size || len == 0)
	{
		journal_append(DISK_J_DATA, journal_next_seq(), st.st_dev, st.st_ino, off,
					   st.st_size, rel, NULL, NULL, 0, false);
		goto out;
	}
	if ((uint64_t) (st.st_size - off) < len)
		len = st.st_size - off;
	while (done < len)
	{
		size_t		want = len - done < CHUNK ? len - done : CHUNK;
		ssize_t		got = real.pread(rfd, buf, want, off + done);

		if (got < 0 && errno == EBADF && rfd == fd)
		{
			/* write-only descriptor: read the bytes through the path */
			char		full[DISK_PATH_MAX + DISK_REL_MAX + 2];

			snprintf(full, sizeof(full), "%s/%s", region->data_dir, rel);
			rfd = real.open(full, O_RDONLY | O_CLOEXEC);
			if (rfd < 0)
				break;
			continue;
		}
		if (got <= 0)
			break;
		journal_append(DISK_J_DATA, journal_next_seq(), st.st_dev, st.st_ino,
					   off + done, st.st_size, rel, NULL, buf, got, false);
		done += got;
	}
	if (rfd != fd && rfd >= 0)
		real.close(rfd);
out:
	errno = saved;
}

/* Same for a file named by path (truncate(2), open with O_TRUNC). */
static void
journal_capture_path(const char *path, const char *rel, int64_t from)
{
	int			saved = errno;
	int			fd = real.open(path, O_RDONLY | O_CLOEXEC);

	if (fd >= 0)
	{
		journal_capture(fd, rel, from, UINT64_MAX / 2);
		real.close(fd);
	}
	errno = saved;
}

/* Keep the inode at path alive under the undo directory before it goes. */
static bool
journal_backup(const char *path, uint64_t seq)
{
	char		dst[DISK_PATH_MAX + 32];
	int			saved = errno;
	bool		ok;

	snprintf(dst, sizeof(dst), "%s/%" PRIu64, region->undo_dir, seq);
	ok = link(path, dst) == 0;
	errno = saved;
	return ok;
}

static void
journal_drop_backup(uint64_t seq)
{
	char		dst[DISK_PATH_MAX + 32];
	int			saved = errno;

	snprintf(dst, sizeof(dst), "%s/%" PRIu64, region->undo_dir, seq);
	(void) real.unlink(dst);
	errno = saved;
}

/* A successful fsync-like call: forget the file's undo, or its directory's. */
static void
journal_synced(FdEntry *e, uint64_t seq)
{
	if (e->is_dir)
		journal_append(DISK_J_DIRSYNC, seq, e->dev, e->ino, 0, 0, e->rel, NULL, NULL, 0,
					   false);
	else
		journal_append(DISK_J_SYNC, seq, e->dev, e->ino, 0, 0, e->rel, NULL, NULL, 0,
					   false);
}

/* ------------------------------------------------------------ open/close */

static void
track(int fd, const char *rel, int flags)
{
	FdEntry    *e;
	struct stat st;

	if (fd < 0 || fd >= DISK_MAX_FD)
		return;
	e = &fdtab[fd];
	memset(e, 0, offsetof(FdEntry, rel));
	strcpy(e->rel, rel);
	if (fstat(fd, &st) == 0)
	{
		e->dev = st.st_dev;
		e->ino = st.st_ino;
		e->is_dir = S_ISDIR(st.st_mode);
	}
	e->sync_open = (flags & (O_SYNC | O_DSYNC)) != 0;
	e->append = (flags & O_APPEND) != 0;
	e->tracked = 1;
}

static int
open_common(int dirfd, const char *path, int flags, mode_t mode)
{
	char		rel[DISK_REL_MAX];
	struct stat st;
	bool		existed = true;
	uint64_t	seq = 0;
	int			fd;
	Fired		f;

	if (region == NULL || !relative_path(dirfd, path, rel))
		return real.openat(dirfd, path, flags, mode);
	if (__atomic_load_n(&region->nactive, __ATOMIC_RELAXED) &&
		decide(rel, match_mask(rel), DISK_OP_OPEN, -1, 0, &f))
	{
		trace_fault(&f, DISK_OP_OPEN, rel, -1, 0, NULL);
		if (f.rule.effect == DISK_DO_ERRNO)
		{
			errno = f.rule.err;
			return -1;
		}
		if (f.rule.effect == DISK_DO_DELAY)
			sleep_us(f.rule.delay_us);
	}
	if (journaling() && (flags & (O_CREAT | O_TRUNC)))
	{
		existed = fstatat(dirfd, path, &st, 0) == 0;
		if (existed && (flags & O_TRUNC) && S_ISREG(st.st_mode) && st.st_size > 0 &&
			(flags & O_ACCMODE) != O_RDONLY)
		{
			int			cfd = real.openat(dirfd, path, O_RDONLY | O_CLOEXEC, 0);

			if (cfd >= 0)
			{
				journal_capture(cfd, rel, 0, st.st_size);
				real.close(cfd);
			}
		}
		if (!existed)
			seq = journal_next_seq();
	}
	fd = real.openat(dirfd, path, flags, mode);
	if (fd >= 0)
	{
		track(fd, rel, flags);
		if (!existed && (flags & O_CREAT))
		{
			/* the inode lets "fsync of the new file" make its entry durable */
			uint64_t	dev = 0,
						ino = 0;

			if (fd < DISK_MAX_FD)
			{
				dev = fdtab[fd].dev;
				ino = fdtab[fd].ino;
			}
			journal_append(DISK_J_CREATE, seq, dev, ino, 0, 0, rel, NULL, NULL, 0, false);
		}
	}
	return fd;
}

static mode_t
mode_arg(int flags, va_list ap)
{
	return (flags & (O_CREAT | __O_TMPFILE)) ? (mode_t) va_arg(ap, int) : 0;
}

EXPORT int
open(const char *path, int flags, ...)
{
	va_list		ap;
	mode_t		mode;

	ensure_real();
	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	if (region == NULL)
		return real.open(path, flags, mode);
	return open_common(AT_FDCWD, path, flags, mode);
}

EXPORT int
open64(const char *path, int flags, ...)
{
	va_list		ap;
	mode_t		mode;

	ensure_real();
	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	if (region == NULL)
		return real.open(path, flags, mode);
	return open_common(AT_FDCWD, path, flags, mode);
}

EXPORT int
openat(int dirfd, const char *path, int flags, ...)
{
	va_list		ap;
	mode_t		mode;

	ensure_real();
	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	if (region == NULL)
		return real.openat(dirfd, path, flags, mode);
	return open_common(dirfd, path, flags, mode);
}

EXPORT int
openat64(int dirfd, const char *path, int flags, ...)
{
	va_list		ap;
	mode_t		mode;

	ensure_real();
	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	if (region == NULL)
		return real.openat(dirfd, path, flags, mode);
	return open_common(dirfd, path, flags, mode);
}

EXPORT int
creat(const char *path, mode_t mode)
{
	return open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
}

EXPORT int
creat64(const char *path, mode_t mode)
{
	return open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
}

EXPORT int
close(int fd)
{
	FdEntry    *e;
	Fired		f;
	bool		fail = false;
	int			rc;

	ensure_real();
	e = tracked_fd(fd);
	if (e == NULL)
	{
		if (fd == journal_fd && fd >= 0)
			journal_fd = -1;	/* someone closes our descriptor: reopen later */
		return real.close(fd);
	}
	if (region && __atomic_load_n(&region->nactive, __ATOMIC_RELAXED) &&
		decide(e->rel, fd_rule_mask(e), DISK_OP_CLOSE, -1, 0, &f))
	{
		trace_fault(&f, DISK_OP_CLOSE, e->rel, -1, 0, NULL);
		if (f.rule.effect == DISK_DO_DELAY)
			sleep_us(f.rule.delay_us);
		fail = f.rule.effect == DISK_DO_ERRNO;
	}
	e->tracked = 0;
	rc = real.close(fd);
	/* Linux releases the descriptor even when close fails; so do we */
	if (fail)
	{
		errno = f.rule.err;
		return -1;
	}
	return rc;
}

EXPORT int
chdir(const char *path)
{
	ensure_real();
	cwd_valid = false;
	return real.chdir(path);
}

EXPORT int
fchdir(int fd)
{
	ensure_real();
	cwd_valid = false;
	return real.fchdir(fd);
}

/* ------------------------------------------------------------ read */

static void
flip_bit_in(const Fired *f, const char *rel, uint8_t *data, uint64_t n,
			uint64_t *byte, int *bit)
{
	if (f->rule.flip_byte >= 0)
		*byte = (uint64_t) f->rule.flip_byte % n;
	else
		*byte = decision_uniform(rule_decision(&f->rule, rel, f->count, "byte"), 0, n - 1);
	if (f->rule.flip_bit >= 0)
		*bit = f->rule.flip_bit;
	else
		*bit = (int) decision_uniform(rule_decision(&f->rule, rel, f->count, "bit"), 0, 7);
	if (data)
		data[*byte] ^= (uint8_t) (1u << *bit);
}

static uint64_t
iov_total(const struct iovec *iov, int iovcnt)
{
	uint64_t	n = 0;

	for (int i = 0; i < iovcnt; i++)
		n += iov[i].iov_len;
	return n;
}

/* Pointer to byte k of the data described by iov. */
static uint8_t *
iov_byte(const struct iovec *iov, int iovcnt, uint64_t k)
{
	for (int i = 0; i < iovcnt; i++)
	{
		if (k < iov[i].iov_len)
			return (uint8_t *) iov[i].iov_base + k;
		k -= iov[i].iov_len;
	}
	return NULL;
}

/*
 * A read of a tracked fd with rules present.  pos < 0: at the file offset
 * (read), else positional (pread/preadv).
 */
static ssize_t
faulty_read(int fd, FdEntry *e, const struct iovec *iov, int iovcnt, int64_t pos)
{
	uint64_t	len = iov_total(iov, iovcnt);
	int64_t		off = pos >= 0 ? pos : (int64_t) lseek(fd, 0, SEEK_CUR);
	ssize_t		got;
	Fired		f;
	char		detail[64];

	if (!decide(e->rel, fd_rule_mask(e), DISK_OP_READ, off, len, &f))
		goto real_call;
	switch ((DiskEffect) f.rule.effect)
	{
		case DISK_DO_ERRNO:
			trace_fault(&f, DISK_OP_READ, e->rel, off, len, NULL);
			errno = f.rule.err;
			return -1;
		case DISK_DO_DELAY:
			trace_fault(&f, DISK_OP_READ, e->rel, off, len, NULL);
			sleep_us(f.rule.delay_us);
			goto real_call;
		case DISK_DO_LIE:
			/* report the data as read, leave the buffer untouched */
			trace_fault(&f, DISK_OP_READ, e->rel, off, len, NULL);
			if (pos < 0)
				(void) lseek(fd, len, SEEK_CUR);
			return len;
		case DISK_DO_FLIP:
			{
				uint64_t	byte;
				int			bit;

				got = pos >= 0 ? real.preadv(fd, iov, iovcnt, pos) :
					(iovcnt == 1 ? real.read(fd, iov[0].iov_base, iov[0].iov_len) :
					 readv(fd, iov, iovcnt));
				if (got <= 0)
					return got;
				flip_bit_in(&f, e->rel, NULL, got, &byte, &bit);
				*iov_byte(iov, iovcnt, byte) ^= (uint8_t) (1u << bit);
				snprintf(detail, sizeof(detail), "flip:%" PRIu64 ".%d", byte, bit);
				trace_fault(&f, DISK_OP_READ, e->rel, off, got, detail);
				return got;
			}
		default:
			break;
	}
real_call:
	if (pos >= 0)
		return real.preadv(fd, iov, iovcnt, pos);
	return iovcnt == 1 ? real.read(fd, iov[0].iov_base, iov[0].iov_len) :
		readv(fd, iov, iovcnt);
}

static inline bool
rules_active(void)
{
	return region != NULL && __atomic_load_n(&region->nactive, __ATOMIC_RELAXED) != 0;
}

EXPORT ssize_t
read(int fd, void *buf, size_t n)
{
	FdEntry    *e;
	struct iovec iov = {buf, n};

	ensure_real();
	e = tracked_fd(fd);
	if (e == NULL || !fd_has_rules(e))
		return real.read(fd, buf, n);
	return faulty_read(fd, e, &iov, 1, -1);
}

EXPORT ssize_t
pread(int fd, void *buf, size_t n, off_t off)
{
	FdEntry    *e;
	struct iovec iov = {buf, n};

	ensure_real();
	e = tracked_fd(fd);
	if (e == NULL || !fd_has_rules(e) || off < 0)
		return real.pread(fd, buf, n, off);
	return faulty_read(fd, e, &iov, 1, off);
}

EXPORT ssize_t
pread64(int fd, void *buf, size_t n, off_t off)
{
	return pread(fd, buf, n, off);
}

EXPORT ssize_t
preadv(int fd, const struct iovec *iov, int iovcnt, off_t off)
{
	FdEntry    *e;

	ensure_real();
	e = tracked_fd(fd);
	if (e == NULL || !fd_has_rules(e) || off < 0)
		return real.preadv(fd, iov, iovcnt, off);
	return faulty_read(fd, e, iov, iovcnt, off);
}

EXPORT ssize_t
preadv64(int fd, const struct iovec *iov, int iovcnt, off_t off)
{
	return preadv(fd, iov, iovcnt, off);
}

/* ------------------------------------------------------------ write */

static ssize_t
write_iov(int fd, const struct iovec *iov, int iovcnt, int64_t pos)
{
	if (pos >= 0)
		return real.pwritev(fd, iov, iovcnt, pos);
	if (iovcnt == 1)
		return real.write(fd, iov[0].iov_base, iov[0].iov_len);
	return writev(fd, iov, iovcnt);
}

/* Write one span of bytes, at pos (positional) or the file offset. */
static ssize_t
write_span(int fd, const void *p, size_t n, int64_t pos)
{
	size_t		done = 0;

	while (done < n)
	{
		ssize_t		w = pos >= 0 ? real.pwrite(fd, (const char *) p + done, n - done,
											   pos + done) :
			real.write(fd, (const char *) p + done, n - done);

		if (w < 0)
			return done ? (ssize_t) done : -1;
		if (w == 0)
			break;
		done += w;
	}
	return done;
}

/*
 * Write the first `keep` bytes of iov, with bit `bit` of byte `flip` (if
 * flip < keep) inverted on the way.  Returns the bytes written or -1.
 */
static ssize_t
write_modified(int fd, const struct iovec *iov, int iovcnt, int64_t pos,
			   uint64_t keep, uint64_t flip, int bit)
{
	uint64_t	done = 0;

	for (int i = 0; i < iovcnt && done < keep; i++)
	{
		const uint8_t *p = iov[i].iov_base;
		uint64_t	n = iov[i].iov_len;

		if (n > keep - done)
			n = keep - done;
		for (uint64_t k = 0; k < n;)
		{
			uint64_t	span;
			ssize_t		w;
			uint8_t		one;

			if (done + k == flip)
			{
				one = p[k] ^ (uint8_t) (1u << bit);
				w = write_span(fd, &one, 1, pos >= 0 ? pos + (int64_t) (done + k) : -1);
				span = 1;
			}
			else
			{
				span = n - k;
				if (flip > done + k && flip < done + n)
					span = flip - (done + k);
				w = write_span(fd, p + k, span, pos >= 0 ? pos + (int64_t) (done + k) : -1);
			}
			if (w < 0)
				return done + k ? (ssize_t) (done + k) : -1;
			if ((uint64_t) w < span)
				return done + k + w;
			k += span;
		}
		done += n;
	}
	return done;
}

static int64_t
write_offset(int fd, FdEntry *e, int64_t pos)
{
	struct stat st;

	if (pos >= 0)
		return pos;
	if (e->append && fstat(fd, &st) == 0)
		return st.st_size;
	return lseek(fd, 0, SEEK_CUR);
}

static ssize_t
faulty_write(int fd, FdEntry *e, const struct iovec *iov, int iovcnt, int64_t pos)
{
	uint64_t	len = iov_total(iov, iovcnt);
	int64_t		off = write_offset(fd, e, pos);
	bool		rules = rules_active();
	Fired		f;
	uint64_t	keep;
	ssize_t		w;
	char		detail[64];

	if (!rules || !decide(e->rel, fd_rule_mask(e), DISK_OP_WRITE, off, len, &f))
	{
		uint64_t	seq = 0;

		if (journaling() && !e->sync_open && off >= 0)
			journal_capture(fd, e->rel, off, len);
		/* an O_SYNC/O_DSYNC write is a write plus a sync of the file */
		if (journaling() && e->sync_open)
			seq = journal_next_seq();
		w = write_iov(fd, iov, iovcnt, pos);
		if (w >= 0 && seq != 0)
			journal_synced(e, seq);
		return w;
	}
	switch ((DiskEffect) f.rule.effect)
	{
		case DISK_DO_ERRNO:
			trace_fault(&f, DISK_OP_WRITE, e->rel, off, len, NULL);
			errno = f.rule.err;
			return -1;
		case DISK_DO_LIE:
			/* a lost write: reported done, nothing reaches the file */
			trace_fault(&f, DISK_OP_WRITE, e->rel, off, len, NULL);
			if (pos < 0)
				(void) lseek(fd, len, SEEK_CUR);
			return len;
		case DISK_DO_DELAY:
			trace_fault(&f, DISK_OP_WRITE, e->rel, off, len, NULL);
			sleep_us(f.rule.delay_us);
			if (journaling() && !e->sync_open && off >= 0)
				journal_capture(fd, e->rel, off, len);
			return write_iov(fd, iov, iovcnt, pos);
		case DISK_DO_SHORT:
		case DISK_DO_TORN:
			keep = f.rule.keep >= 0 ? (uint64_t) f.rule.keep : len / 2;
			if (keep > len)
				keep = len;
			snprintf(detail, sizeof(detail), "%s:%" PRIu64,
					 f.rule.effect == DISK_DO_SHORT ? "short" : "torn", keep);
			trace_fault(&f, DISK_OP_WRITE, e->rel, off, len, detail);
			if (journaling() && !e->sync_open && off >= 0)
				journal_capture(fd, e->rel, off, keep);
			w = write_modified(fd, iov, iovcnt, pos, keep, UINT64_MAX, 0);
			if (w < 0 || f.rule.effect == DISK_DO_SHORT)
				return w;
			/* torn: the caller believes everything landed */
			if (pos < 0)
				(void) lseek(fd, len - w, SEEK_CUR);
			return len;
		case DISK_DO_FLIP:
			{
				uint64_t	byte;
				int			bit;

				if (len == 0)
					return write_iov(fd, iov, iovcnt, pos);
				flip_bit_in(&f, e->rel, NULL, len, &byte, &bit);
				snprintf(detail, sizeof(detail), "flip:%" PRIu64 ".%d", byte, bit);
				trace_fault(&f, DISK_OP_WRITE, e->rel, off, len, detail);
				if (journaling() && !e->sync_open && off >= 0)
					journal_capture(fd, e->rel, off, len);
				return write_modified(fd, iov, iovcnt, pos, len, byte, bit);
			}
	}
	return write_iov(fd, iov, iovcnt, pos);
}


EXPORT ssize_t
write(int fd, const void *buf, size_t n)
{
	FdEntry    *e;
	struct iovec iov = {(void *) buf, n};

	ensure_real();
	e = tracked_fd(fd);
	if (e == NULL || !fd_needs_work(e))
		return real.write(fd, buf, n);
	return faulty_write(fd, e, &iov, 1, -1);
}

EXPORT ssize_t
pwrite(int fd, const void *buf, size_t n, off_t off)
{
	FdEntry    *e;
	struct iovec iov = {(void *) buf, n};

	ensure_real();
	e = tracked_fd(fd);
	if (e == NULL || !fd_needs_work(e) || off < 0)
		return real.pwrite(fd, buf, n, off);
	return faulty_write(fd, e, &iov, 1, off);
}

EXPORT ssize_t
pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	return pwrite(fd, buf, n, off);
}

EXPORT ssize_t
pwritev(int fd, const struct iovec *iov, int iovcnt, off_t off)
{
	FdEntry    *e;

	ensure_real();
	e = tracked_fd(fd);
	if (e == NULL || !fd_needs_work(e) || off < 0)
		return real.pwritev(fd, iov, iovcnt, off);
	return faulty_write(fd, e, iov, iovcnt, off);
}

EXPORT ssize_t
pwritev64(int fd, const struct iovec *iov, int iovcnt, off_t off)
{
	return pwritev(fd, iov, iovcnt, off);
}

/* ------------------------------------------------------------ sync */

/*
 * fsync, fdatasync and (with wait flags) sync_file_range.  `durable` says
 * whether success makes the file's writes survive a power cut.
 */
static int
faulty_sync(int fd, FdEntry *e, DiskOp op, off_t a, off_t b, unsigned int flags,
			bool durable)
{
	uint64_t	seq = 0;
	int			rc;
	Fired		f;

	if (rules_active() && decide(e->rel, fd_rule_mask(e), op, -1, 0, &f))
	{
		trace_fault(&f, op, e->rel, -1, 0, NULL);
		switch ((DiskEffect) f.rule.effect)
		{
			case DISK_DO_ERRNO:
				errno = f.rule.err;
				return -1;
			case DISK_DO_LIE:
				return 0;		/* nothing synced: the undo journal stays */
			case DISK_DO_DELAY:
				sleep_us(f.rule.delay_us);
				break;
			default:
				break;
		}
	}
	/* writes that completed before the sync started are covered by it */
	if (durable && journaling())
		seq = journal_next_seq();
	if (op == DISK_OP_FSYNC)
		rc = real.fsync(fd);
	else if (op == DISK_OP_FDATASYNC)
		rc = real.fdatasync(fd);
	else
		rc = real.sync_file_range(fd, a, b, flags);
	if (rc == 0 && seq != 0)
		journal_synced(e, seq);
	return rc;
}

EXPORT int
fsync(int fd)
{
	FdEntry    *e;

	ensure_real();
	e = tracked_fd(fd);
	if (e == NULL || !fd_needs_work(e))
		return real.fsync(fd);
	return faulty_sync(fd, e, DISK_OP_FSYNC, 0, 0, 0, true);
}

EXPORT int
fdatasync(int fd)
{
	FdEntry    *e;

	ensure_real();
	e = tracked_fd(fd);
	if (e == NULL || !fd_needs_work(e))
		return real.fdatasync(fd);
	return faulty_sync(fd, e, DISK_OP_FDATASYNC, 0, 0, 0, true);
}

EXPORT int
sync_file_range(int fd, off_t off, off_t n, unsigned int flags)
{
	FdEntry    *e;
	bool		durable = (flags & SYNC_FILE_RANGE_WAIT_AFTER) &&
		(flags & SYNC_FILE_RANGE_WRITE) && off == 0 && n == 0;

	ensure_real();
	e = tracked_fd(fd);
	if (e == NULL || !fd_needs_work(e))
		return real.sync_file_range(fd, off, n, flags);
	return faulty_sync(fd, e, DISK_OP_SYNC_FILE_RANGE, off, n, flags, durable);
}

/* ------------------------------------------------------------ size */

static int
faulty_resize(int fd, FdEntry *e, DiskOp op, int mode, off_t off, off_t len,
			  bool posix)
{
	Fired		f;
	struct stat st;
	int			rc;

	if (rules_active() && decide(e->rel, fd_rule_mask(e), op, -1, 0, &f))
	{
		trace_fault(&f, op, e->rel, op == DISK_OP_TRUNCATE ? len : off,
					op == DISK_OP_TRUNCATE ? 0 : len, NULL);
		if (f.rule.effect == DISK_DO_ERRNO)
		{
			if (posix)
				return f.rule.err;	/* posix_fallocate returns the error */
			errno = f.rule.err;
			return -1;
		}
		if (f.rule.effect == DISK_DO_LIE)
			return 0;
		if (f.rule.effect == DISK_DO_DELAY)
			sleep_us(f.rule.delay_us);
	}
	if (journaling() && !e->sync_open && fstat(fd, &st) == 0)
	{
		if (op == DISK_OP_TRUNCATE)
			journal_capture(fd, e->rel, len, st.st_size > len ? st.st_size - len : 0);
		else if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
			journal_capture(fd, e->rel, off, len);
		else if (off + len > st.st_size && !(mode & FALLOC_FL_KEEP_SIZE))
			journal_capture(fd, e->rel, st.st_size, 0);
	}
	if (op == DISK_OP_TRUNCATE)
		rc = real.ftruncate(fd, len);
	else if (posix)
		rc = real.posix_fallocate(fd, off, len);
	else
		rc = real.fallocate(fd, mode, off, len);
	return rc;
}

EXPORT int
ftruncate(int fd, off_t len)
{
	FdEntry    *e;

	ensure_real();
	e = tracked_fd(fd);
	if (e == NULL || !fd_needs_work(e))
		return real.ftruncate(fd, len);
	return faulty_resize(fd, e, DISK_OP_TRUNCATE, 0, 0, len, false);
}

EXPORT int
ftruncate64(int fd, off_t len)
{
	return ftruncate(fd, len);
}

EXPORT int
fallocate(int fd, int mode, off_t off, off_t len)
{
	FdEntry    *e;

	ensure_real();
	e = tracked_fd(fd);
	if (e == NULL || !fd_needs_work(e))
		return real.fallocate(fd, mode, off, len);
	return faulty_resize(fd, e, DISK_OP_FALLOCATE, mode, off, len, false);
}

EXPORT int
fallocate64(int fd, int mode, off_t off, off_t len)
{
	return fallocate(fd, mode, off, len);
}

EXPORT int
posix_fallocate(int fd, off_t off, off_t len)
{
	FdEntry    *e;

	ensure_real();
	e = tracked_fd(fd);
	if (e == NULL || !fd_needs_work(e))
		return real.posix_fallocate(fd, off, len);
	return faulty_resize(fd, e, DISK_OP_FALLOCATE, 0, off, len, true);
}

EXPORT int
posix_fallocate64(int fd, off_t off, off_t len)
{
	return posix_fallocate(fd, off, len);
}

/* ------------------------------------------------------------ names */

/* Rules and journal of a call naming a path; true when it must fail. */
static bool
path_fault(const char *rel, DiskOp op, int64_t len)
{
	Fired		f;

	if (!rules_active() || !decide(rel, match_mask(rel), op, -1, 0, &f))
		return false;
	trace_fault(&f, op, rel, op == DISK_OP_TRUNCATE ? len : -1, 0, NULL);
	switch ((DiskEffect) f.rule.effect)
	{
		case DISK_DO_ERRNO:
			errno = f.rule.err;
			return true;
		case DISK_DO_DELAY:
			sleep_us(f.rule.delay_us);
			return false;
		case DISK_DO_LIE:
			errno = 0;
			return true;		/* caller returns 0 without acting */
		default:
			return false;
	}
}

EXPORT int
truncate(const char *path, off_t len)
{
	char		rel[DISK_REL_MAX];

	ensure_real();
	if (!needs_slow_path() || !relative_path(AT_FDCWD, path, rel))
		return real.truncate(path, len);
	if (path_fault(rel, DISK_OP_TRUNCATE, len))
		return errno ? -1 : 0;
	if (journaling())
		journal_capture_path(path, rel, len);
	return real.truncate(path, len);
}

EXPORT int
truncate64(const char *path, off_t len)
{
	return truncate(path, len);
}

EXPORT int
unlink(const char *path)
{
	char		rel[DISK_REL_MAX];
	uint64_t	seq;
	bool		backup;
	int			rc;

	ensure_real();
	if (!needs_slow_path() || !relative_path(AT_FDCWD, path, rel))
		return real.unlink(path);
	if (path_fault(rel, DISK_OP_UNLINK, -1))
		return errno ? -1 : 0;
	if (!journaling())
		return real.unlink(path);
	seq = journal_next_seq();
	backup = journal_backup(path, seq);
	rc = real.unlink(path);
	if (rc == 0)
		journal_append(DISK_J_UNLINK, seq, 0, 0, 0, 0, rel, NULL, NULL, 0, backup);
	else if (backup)
		journal_drop_backup(seq);
	return rc;
}

EXPORT int
rename(const char *from, const char *to)
{
	char		rel_from[DISK_REL_MAX];
	char		rel_to[DISK_REL_MAX];
	uint64_t	seq;
	bool		backup;
	int			rc;

	ensure_real();
	if (!needs_slow_path() || !relative_path(AT_FDCWD, from, rel_from))
		return real.rename(from, to);
	if (path_fault(rel_from, DISK_OP_RENAME, -1))
		return errno ? -1 : 0;
	if (!journaling() || !relative_path(AT_FDCWD, to, rel_to))
		return real.rename(from, to);
	seq = journal_next_seq();
	backup = journal_backup(to, seq);	/* fails harmlessly when `to` is new */
	rc = real.rename(from, to);
	if (rc == 0)
		journal_append(DISK_J_RENAME, seq, 0, 0, 0, 0, rel_from, rel_to, NULL, 0, backup);
	else if (backup)
		journal_drop_backup(seq);
	return rc;
}
