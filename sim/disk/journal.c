/*
 * journal.c — rolling a node's data directory back to its last synced state
 * (the "power cut" of docs/disk.md), from the undo journal the preloaded
 * library appended to.
 *
 * The journal is a sequence of records (DiskJournalHeader, then the path,
 * the second path and the saved bytes).  Each carries a sequence number
 * taken from the shared region; records of different processes may appear
 * out of order in the file, so everything is sorted by that number.
 *
 * A data record (bytes and size of a file before a change) is live when no
 * SYNC of the same inode has a higher number; a name record (create, rename,
 * unlink) is live when no DIRSYNC of its directory has a higher number.
 * Live data records are undone newest first, addressing each file by inode
 * (found by walking the data directory and the undo directory), so renames
 * in between do not matter; then live name records are undone newest first.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk.h"

typedef struct Rec
{
	DiskJournalHeader h;
	off_t		data_pos;		/* where the saved bytes are in the journal */
	char	   *path;
	char	   *path2;
} Rec;

typedef struct InodePath
{
	uint64_t	dev;
	uint64_t	ino;
	char	   *path;
} InodePath;

/* nftw() has no user pointer: the walk's output lives here during a walk. */
static InodePath *walk_out;
static size_t walk_n,
			walk_cap;

static int
cmp_rec(const void *a, const void *b)
{
	uint64_t	x = ((const Rec *) a)->h.seq;
	uint64_t	y = ((const Rec *) b)->h.seq;

	return x < y ? -1 : x > y;
}

static int
cmp_inode(const void *a, const void *b)
{
	const InodePath *x = a,
			   *y = b;

	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

static int
walk_visit(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void) ftw;
	if (type != FTW_F || !S_ISREG(st->st_mode))
		return 0;
	if (walk_n == walk_cap)
	{
		size_t		cap = walk_cap ? walk_cap * 2 : 1024;
		InodePath  *p = realloc(walk_out, cap * sizeof(*p));

		if (p == NULL)
			return 1;
		walk_out = p;
		walk_cap = cap;
	}
	walk_out[walk_n].dev = st->st_dev;
	walk_out[walk_n].ino = st->st_ino;
	walk_out[walk_n].path = strdup(path);
	if (walk_out[walk_n].path == NULL)
		return 1;
	walk_n++;
	return 0;
}

static void
free_walk(void)
{
	for (size_t i = 0; i < walk_n; i++)
		free(walk_out[i].path);
	free(walk_out);
	walk_out = NULL;
	walk_n = walk_cap = 0;
}

static const char *
inode_path(uint64_t dev, uint64_t ino)
{
	InodePath	key = {.dev = dev,.ino = ino};
	InodePath  *hit;

	if (walk_n == 0)
		return NULL;
	hit = bsearch(&key, walk_out, walk_n, sizeof(key), cmp_inode);

	return hit ? hit->path : NULL;
}

static void
free_recs(Rec *recs, size_t n)
{
	for (size_t i = 0; i < n; i++)
	{
		free(recs[i].path);
		free(recs[i].path2);
	}
	free(recs);
}

static char *
read_string(FILE *f, size_t len)
{
	char	   *s = malloc(len + 1);

	if (s == NULL)
		return NULL;
	if (len && fread(s, 1, len, f) != len)
	{
		free(s);
		return NULL;
	}
	s[len] = '\0';
	return s;
}

/* Read every record; a torn last record (killed mid-append) is ignored. */
static bool
read_journal(const char *path, Rec **out, size_t *nout, WalsimError *err)
{
	FILE	   *f = fopen(path, "rb");
	Rec		   *recs = NULL;
	size_t		n = 0,
				cap = 0;

	if (f == NULL)
		return walsim_error_set(err, "journal \"%s\": %s", path, strerror(errno));
	for (;;)
	{
		Rec			r = {0};

		if (fread(&r.h, sizeof(r.h), 1, f) != 1)
			break;
		if (r.h.magic != DISK_JOURNAL_MAGIC)
		{
			long long	at = (long long) ftello(f) - (long long) sizeof(r.h);

			fclose(f);
			free_recs(recs, n);
			return walsim_error_set(err, "journal \"%s\": bad record at byte %lld",
									path, at);
		}
		r.path = read_string(f, r.h.pathlen);
		r.path2 = r.path ? read_string(f, r.h.path2len) : NULL;
		r.data_pos = ftello(f);
		if (r.path == NULL || r.path2 == NULL ||
			fseeko(f, r.h.datalen, SEEK_CUR) != 0 || r.data_pos + (off_t) r.h.datalen >
			(off_t) ftello(f))
		{
			free(r.path);
			free(r.path2);
			break;
		}
		if (n == cap)
		{
			Rec		   *p;

			cap = cap ? cap * 2 : 256;
			p = realloc(recs, cap * sizeof(*p));
			if (p == NULL)
			{
				fclose(f);
				free(r.path);
				free(r.path2);
				free_recs(recs, n);
				return walsim_error_set(err, "out of memory reading the journal");
			}
			recs = p;
		}
		recs[n++] = r;
	}
	fclose(f);
	if (n > 0)
		qsort(recs, n, sizeof(*recs), cmp_rec);
	*out = recs;
	*nout = n;
	return true;
}

/* "pg_wal/x" -> "pg_wal"; "x" -> "." */
static void
parent_dir(const char *rel, char *out, size_t len)
{
	const char *slash = strrchr(rel, '/');

	if (slash == NULL)
		snprintf(out, len, ".");
	else
		snprintf(out, len, "%.*s", (int) (slash - rel), rel);
}

/*
 * The newest SYNC per inode and DIRSYNC per directory, so that "is this
 * record made durable later?" is a lookup instead of a scan.
 */
typedef struct SyncMark
{
	uint64_t	dev;
	uint64_t	ino;
	size_t		last;			/* index in the sorted records */
	const char *dir;			/* DIRSYNC: the directory */
} SyncMark;

typedef struct SyncIndex
{
	SyncMark   *files;
	size_t		nfiles;
	SyncMark   *dirs;
	size_t		ndirs;
} SyncIndex;

static int
cmp_mark(const void *a, const void *b)
{
	const SyncMark *x = a,
			   *y = b;

	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return x->last < y->last ? -1 : x->last > y->last;
}

static bool
build_sync_index(const Rec *recs, size_t n, SyncIndex *ix)
{
	size_t		k = 0;

	memset(ix, 0, sizeof(*ix));
	ix->files = calloc(n + 1, sizeof(SyncMark));
	ix->dirs = calloc(n + 1, sizeof(SyncMark));
	if (ix->files == NULL || ix->dirs == NULL)
		return false;
	for (size_t i = 0; i < n; i++)
	{
		if (recs[i].h.type == DISK_J_SYNC)
			ix->files[ix->nfiles++] = (SyncMark) {recs[i].h.dev, recs[i].h.ino, i, NULL};
		else if (recs[i].h.type == DISK_J_DIRSYNC)
		{
			size_t		d;

			for (d = 0; d < ix->ndirs; d++)
				if (strcmp(ix->dirs[d].dir, recs[i].path) == 0)
					break;
			if (d == ix->ndirs)
				ix->ndirs++;
			ix->dirs[d].dir = recs[i].path;
			ix->dirs[d].last = i;	/* records are sorted: the last wins */
		}
	}
	/* sorted by inode then index; keep the newest per inode */
	qsort(ix->files, ix->nfiles, sizeof(SyncMark), cmp_mark);
	for (size_t i = 0; i < ix->nfiles; i++)
	{
		if (k > 0 && ix->files[k - 1].dev == ix->files[i].dev &&
			ix->files[k - 1].ino == ix->files[i].ino)
			k--;
		ix->files[k++] = ix->files[i];
	}
	ix->nfiles = k;
	return true;
}

static void
free_sync_index(SyncIndex *ix)
{
	free(ix->files);
	free(ix->dirs);
}

static int
cmp_mark_inode(const void *a, const void *b)
{
	const SyncMark *x = a,
			   *y = b;

	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

/* Is there a DIRSYNC of rel's directory after record index i? */
static bool
dir_synced_after(const SyncIndex *ix, size_t i, const char *rel)
{
	char		dir[DISK_PATH_MAX];

	parent_dir(rel, dir, sizeof(dir));
	for (size_t d = 0; d < ix->ndirs; d++)
		if (strcmp(ix->dirs[d].dir, dir) == 0)
			return ix->dirs[d].last > i;
	return false;
}

static bool
file_synced_after(const SyncIndex *ix, const Rec *r, size_t i)
{
	SyncMark	key = {.dev = r->h.dev,.ino = r->h.ino};
	SyncMark   *hit = bsearch(&key, ix->files, ix->nfiles, sizeof(key), cmp_mark_inode);

	return hit != NULL && hit->last > i;
}

static bool
undo_data(const Rec *r, FILE *jf, const char *path, bool dry_run,
		  DiskRollbackStats *stats, WalsimError *err)
{
	char		buf[32768];
	int			fd;
	uint32_t	done = 0;

	stats->data_undone++;
	stats->bytes_restored += r->h.datalen;
	if (dry_run)
		return true;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return walsim_error_set(err, "restoring \"%s\": %s", path, strerror(errno));
	if (fseeko(jf, r->data_pos, SEEK_SET) != 0)
	{
		close(fd);
		return walsim_error_set(err, "journal: seek: %s", strerror(errno));
	}
	while (done < r->h.datalen)
	{
		size_t		want = r->h.datalen - done < sizeof(buf) ? r->h.datalen - done : sizeof(buf);

		if (fread(buf, 1, want, jf) != want ||
			pwrite(fd, buf, want, r->h.offset + done) != (ssize_t) want)
		{
			close(fd);
			return walsim_error_set(err, "restoring %u bytes at %" PRId64 " of \"%s\" failed",
									r->h.datalen, r->h.offset, path);
		}
		done += want;
	}
	if (ftruncate(fd, r->h.old_size) != 0)
	{
		close(fd);
		return walsim_error_set(err, "restoring the size of \"%s\": %s", path,
								strerror(errno));
	}
	close(fd);
	return true;
}

static void
join(char *out, size_t len, const char *dir, const char *rel)
{
	snprintf(out, len, "%s/%s", dir, rel);
}

static bool
undo_name(const Rec *r, const DiskRegion *region, bool dry_run,
		  DiskRollbackStats *stats, WalsimError *err)
{
	char		a[DISK_PATH_MAX * 2],
				b[DISK_PATH_MAX * 2],
				backup[DISK_PATH_MAX + 32];

	snprintf(backup, sizeof(backup), "%s/%" PRIu64, region->undo_dir, r->h.seq);
	join(a, sizeof(a), region->data_dir, r->path);
	stats->entries_undone++;
	if (dry_run)
		return true;
	switch ((DiskJournalType) r->h.type)
	{
		case DISK_J_CREATE:
			/* the entry never reached the disk */
			if (unlink(a) != 0 && errno != ENOENT)
				return walsim_error_set(err, "removing unsynced \"%s\": %s", a, strerror(errno));
			break;
		case DISK_J_RENAME:
			join(b, sizeof(b), region->data_dir, r->path2);
			if (rename(b, a) != 0 && errno != ENOENT)
				return walsim_error_set(err, "renaming \"%s\" back to \"%s\": %s", b, a,
										strerror(errno));
			if (r->h.backup && link(backup, b) != 0)
				return walsim_error_set(err, "restoring replaced \"%s\": %s", b,
										strerror(errno));
			break;
		case DISK_J_UNLINK:
			if (!r->h.backup)
			{
				stats->unrecoverable++;
				break;
			}
			if (link(backup, a) != 0 && errno != EEXIST)
				return walsim_error_set(err, "restoring removed \"%s\": %s", a,
										strerror(errno));
			break;
		default:
			break;
	}
	return true;
}

bool
disk_journal_reset(DiskRegion *region, WalsimError *err)
{
	char		path[DISK_PATH_MAX * 2];
	DIR		   *d;
	int			fd = open(region->journal_path, O_WRONLY | O_TRUNC | O_CLOEXEC);

	if (fd < 0)
		return walsim_error_set(err, "journal \"%s\": %s", region->journal_path,
								strerror(errno));
	close(fd);
	d = opendir(region->undo_dir);
	if (d != NULL)
	{
		struct dirent *de;

		while ((de = readdir(d)) != NULL)
		{
			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", region->undo_dir, de->d_name);
			(void) unlink(path);
		}
		closedir(d);
	}
	return true;
}

bool
disk_journal_rollback(DiskRegion *region, bool dry_run, DiskRollbackStats *stats,
					  WalsimError *err)
{
	Rec		   *recs = NULL;
	size_t		n = 0;
	FILE	   *jf;
	bool		ok = true;
	uint64_t	last_ino = 0,
				last_dev = 0;
	SyncIndex	ix;

	memset(stats, 0, sizeof(*stats));
	if (!read_journal(region->journal_path, &recs, &n, err))
		return false;
	stats->records = n;
	if (!build_sync_index(recs, n, &ix))
	{
		free_sync_index(&ix);
		free_recs(recs, n);
		return walsim_error_set(err, "out of memory indexing the journal");
	}

	/* every regular file's current name, by inode */
	if (nftw(region->data_dir, walk_visit, 32, FTW_PHYS) != 0 ||
		nftw(region->undo_dir, walk_visit, 4, FTW_PHYS) != 0)
	{
		free_walk();
		free_sync_index(&ix);
		free_recs(recs, n);
		return walsim_error_set(err, "walking \"%s\": %s", region->data_dir,
								strerror(errno));
	}
	if (walk_n > 0)
		qsort(walk_out, walk_n, sizeof(*walk_out), cmp_inode);

	jf = fopen(region->journal_path, "rb");
	if (jf == NULL)
	{
		free_walk();
		free_sync_index(&ix);
		free_recs(recs, n);
		return walsim_error_set(err, "journal \"%s\": %s", region->journal_path,
								strerror(errno));
	}
	for (size_t i = n; ok && i-- > 0;)
	{
		const Rec  *r = &recs[i];
		const char *path;

		if (r->h.type != DISK_J_DATA || file_synced_after(&ix, r, i))
			continue;
		path = inode_path(r->h.dev, r->h.ino);
		if (path == NULL)
		{
			stats->unrecoverable++;
			continue;
		}
		if (r->h.ino != last_ino || r->h.dev != last_dev)
			stats->files_touched++;
		last_ino = r->h.ino;
		last_dev = r->h.dev;
		ok = undo_data(r, jf, path, dry_run, stats, err);
	}
	fclose(jf);
	for (size_t i = n; ok && i-- > 0;)
	{
		const Rec  *r = &recs[i];

		if (r->h.type != DISK_J_CREATE && r->h.type != DISK_J_RENAME &&
			r->h.type != DISK_J_UNLINK)
			continue;
		if (dir_synced_after(&ix, i, r->path) &&
			(r->h.type != DISK_J_RENAME || dir_synced_after(&ix, i, r->path2)))
			continue;
		/*
		 * ext4 and xfs also make a new file's entry durable when the file
		 * itself is fsynced, and PostgreSQL relies on that for relation
		 * files; only the strict (POSIX) model drops such an entry.
		 */
		if (r->h.type == DISK_J_CREATE && !region->strict_dirs && r->h.ino != 0 &&
			file_synced_after(&ix, r, i))
			continue;
		ok = undo_name(r, region, dry_run, stats, err);
	}
	free_walk();
	free_sync_index(&ix);
	free_recs(recs, n);
	if (ok && !dry_run)
		ok = disk_journal_reset(region, err);
	return ok;
}
