/*
 * region.c — the shared memory region of the disk fault simulator: create,
 * map, lock for writers, and the seqlock protocol over rule slots (see
 * disk.h for why readers never wait).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk.h"

DiskRegion *
disk_region_map(const char *path, WalsimError *err)
{
	struct stat st;
	DiskRegion *region;
	int			fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd < 0)
	{
		walsim_error_set(err, "region \"%s\": %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) != 0 || (size_t) st.st_size < sizeof(DiskRegion))
	{
		close(fd);
		walsim_error_set(err, "region \"%s\": too small (not created by "
						 "walsim-diskctl init?)", path);
		return NULL;
	}
	region = mmap(NULL, sizeof(DiskRegion), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (region == MAP_FAILED)
	{
		walsim_error_set(err, "region \"%s\": mmap: %s", path, strerror(errno));
		return NULL;
	}
	if (region->magic != DISK_REGION_MAGIC || region->version != DISK_REGION_VERSION)
	{
		munmap(region, sizeof(DiskRegion));
		walsim_error_set(err, "region \"%s\": bad magic or version (not a "
						 "walsim-disk region, or from another walsim)", path);
		return NULL;
	}
	return region;
}

void
disk_region_unmap(DiskRegion *region)
{
	if (region)
		munmap(region, sizeof(DiskRegion));
}

/* Give a file created by root to the owner of the data directory. */
static void
give_to_owner(const char *path, const struct stat *owner)
{
	if (geteuid() == 0)
		(void) chown(path, owner->st_uid, owner->st_gid);
}

static bool
is_inside(const char *dir, const char *path)
{
	size_t		n = strlen(dir);

	return strncmp(dir, path, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

bool
disk_region_create(const char *node_dir, const char *data_dir,
				   const char *trace_path, uint64_t seed, bool journal,
				   bool strict_dirs, WalsimError *err)
{
	char		node_abs[PATH_MAX];
	char		data_abs[PATH_MAX];
	char		path[PATH_MAX + 64];
	char		tmp[PATH_MAX + 80];
	struct stat st;
	DiskRegion *region;
	int			fd;

	if (realpath(node_dir, node_abs) == NULL)
		return walsim_error_set(err, "node directory \"%s\": %s", node_dir, strerror(errno));
	if (realpath(data_dir, data_abs) == NULL)
		return walsim_error_set(err, "data directory \"%s\": %s", data_dir, strerror(errno));
	if (stat(data_abs, &st) != 0 || !S_ISDIR(st.st_mode))
		return walsim_error_set(err, "data directory \"%s\": not a directory", data_abs);
	if (is_inside(data_abs, node_abs))
		return walsim_error_set(err, "node directory \"%s\" is inside the data directory "
								"\"%s\"; the region and journal must live outside it",
								node_abs, data_abs);
	if (strlen(node_abs) + 40 >= DISK_PATH_MAX || strlen(data_abs) >= DISK_PATH_MAX ||
		(trace_path && strlen(trace_path) >= DISK_PATH_MAX))
		return walsim_error_set(err, "path too long (limit %d)", DISK_PATH_MAX);

	region = calloc(1, sizeof(DiskRegion));
	if (region == NULL)
		return walsim_error_set(err, "out of memory");
	region->magic = DISK_REGION_MAGIC;
	region->version = DISK_REGION_VERSION;
	region->seed = seed;
	region->journal = journal ? 1 : 0;
	region->strict_dirs = strict_dirs ? 1 : 0;
	region->journal_seq = 1;
	strcpy(region->data_dir, data_abs);
	/* lengths were checked above; the results say so to the compiler too */
	if ((trace_path ? snprintf(region->trace_path, DISK_PATH_MAX, "%s", trace_path) :
		 snprintf(region->trace_path, DISK_PATH_MAX, "%s/%s", node_abs,
				  DISK_TRACE_FILE)) >= DISK_PATH_MAX ||
		snprintf(region->journal_path, DISK_PATH_MAX, "%s/%s", node_abs,
				 DISK_JOURNAL_FILE) >= DISK_PATH_MAX ||
		snprintf(region->undo_dir, DISK_PATH_MAX, "%s/%s", node_abs,
				 DISK_UNDO_DIR) >= DISK_PATH_MAX)
	{
		free(region);
		return walsim_error_set(err, "path too long (limit %d)", DISK_PATH_MAX);
	}

	/* write a complete file and rename it, so a mapper never sees half */
	snprintf(path, sizeof(path), "%s/%s", node_abs, DISK_REGION_FILE);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int) getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0660);
	if (fd < 0 || write(fd, region, sizeof(DiskRegion)) != (ssize_t) sizeof(DiskRegion))
	{
		walsim_error_set(err, "region \"%s\": %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		unlink(tmp);
		free(region);
		return false;
	}
	close(fd);
	free(region);
	give_to_owner(tmp, &st);
	if (rename(tmp, path) != 0)
	{
		walsim_error_set(err, "region \"%s\": rename: %s", path, strerror(errno));
		unlink(tmp);
		return false;
	}

	/* an empty journal and undo directory, writable by the node's processes */
	snprintf(path, sizeof(path), "%s/%s", node_abs, DISK_JOURNAL_FILE);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0660);
	if (fd < 0)
		return walsim_error_set(err, "journal \"%s\": %s", path, strerror(errno));
	close(fd);
	give_to_owner(path, &st);
	snprintf(path, sizeof(path), "%s/%s", node_abs, DISK_UNDO_DIR);
	if (mkdir(path, 0770) != 0 && errno != EEXIST)
		return walsim_error_set(err, "undo directory \"%s\": %s", path, strerror(errno));
	give_to_owner(path, &st);
	if (!trace_path)
	{
		snprintf(path, sizeof(path), "%s/%s", node_abs, DISK_TRACE_FILE);
		fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0660);
		if (fd < 0)
			return walsim_error_set(err, "trace \"%s\": %s", path, strerror(errno));
		close(fd);
		give_to_owner(path, &st);
	}
	return true;
}

int
disk_region_lock(const char *path, WalsimError *err)
{
	int			fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
	{
		walsim_error_set(err, "region \"%s\": %s", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX) != 0)
	{
		walsim_error_set(err, "region \"%s\": flock: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

void
disk_region_unlock(int fd)
{
	if (fd >= 0)
		close(fd);				/* releases the flock */
}

bool
disk_region_read_rule(DiskRegion *region, int i, DiskRule *out)
{
	DiskRuleSlot *slot = &region->slots[i];

	for (int attempt = 0; attempt < 1000; attempt++)
	{
		uint32_t	seq1 = __atomic_load_n(&slot->seq, __ATOMIC_ACQUIRE);
		uint32_t	active;

		if (seq1 & 1)
			continue;			/* a writer is in the middle */
		active = __atomic_load_n(&slot->active, __ATOMIC_RELAXED);
		if (!active)
			return false;
		memcpy(out, &slot->rule, sizeof(*out));
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&slot->seq, __ATOMIC_RELAXED) == seq1)
			return true;
	}
	return false;				/* treat a slot that never settles as free */
}

static void
slot_write_begin(DiskRuleSlot *slot)
{
	__atomic_add_fetch(&slot->seq, 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

static void
slot_write_end(DiskRegion *region, DiskRuleSlot *slot)
{
	__atomic_thread_fence(__ATOMIC_RELEASE);
	__atomic_add_fetch(&slot->seq, 1, __ATOMIC_RELEASE);
	__atomic_add_fetch(&region->generation, 1, __ATOMIC_RELEASE);
}

bool
disk_region_add_rule(DiskRegion *region, const DiskRule *rule, WalsimError *err)
{
	int			free_slot = -1;

	for (int i = 0; i < DISK_MAX_RULES; i++)
	{
		DiskRuleSlot *slot = &region->slots[i];

		if (slot->active && strcmp(slot->rule.id, rule->id) == 0)
			return walsim_error_set(err, "rule \"%s\": already exists (delete it first)",
									rule->id);
		if (!slot->active && free_slot < 0)
			free_slot = i;
	}
	if (free_slot < 0)
		return walsim_error_set(err, "rule \"%s\": no free slot (at most %d rules)",
								rule->id, DISK_MAX_RULES);
	{
		DiskRuleSlot *slot = &region->slots[free_slot];

		slot_write_begin(slot);
		slot->rule = *rule;
		__atomic_store_n(&slot->calls, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&slot->fired, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&slot->active, 1, __ATOMIC_RELAXED);
		slot_write_end(region, slot);
	}
	__atomic_add_fetch(&region->nactive, 1, __ATOMIC_RELEASE);
	return true;
}

bool
disk_region_set_rule(DiskRegion *region, const DiskRule *rule, WalsimError *err)
{
	for (int i = 0; i < DISK_MAX_RULES; i++)
	{
		DiskRuleSlot *slot = &region->slots[i];

		if (!slot->active || strcmp(slot->rule.id, rule->id) != 0)
			continue;
		/* rewritten in place: a reader sees the old rule or the new one */
		slot_write_begin(slot);
		slot->rule = *rule;
		__atomic_store_n(&slot->calls, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&slot->fired, 0, __ATOMIC_RELAXED);
		slot_write_end(region, slot);
		return true;
	}
	return disk_region_add_rule(region, rule, err);
}

bool
disk_region_del_rule(DiskRegion *region, const char *id, WalsimError *err)
{
	bool		all = strcmp(id, "all") == 0;
	bool		found = false;

	for (int i = 0; i < DISK_MAX_RULES; i++)
	{
		DiskRuleSlot *slot = &region->slots[i];

		if (!slot->active || (!all && strcmp(slot->rule.id, id) != 0))
			continue;
		slot_write_begin(slot);
		__atomic_store_n(&slot->active, 0, __ATOMIC_RELAXED);
		slot_write_end(region, slot);
		__atomic_sub_fetch(&region->nactive, 1, __ATOMIC_RELEASE);
		found = true;
	}
	if (!found && !all)
		return walsim_error_set(err, "rule \"%s\": no such rule", id);
	return true;
}
