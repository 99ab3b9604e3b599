/*
 * slots.c — the slot state file (see slots.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "walsim/lsn.h"
#include "slots.h"

#define MAX_SLOTS 256

typedef struct SlotTable
{
	int			n;
	SlotInfo	slots[MAX_SLOTS];
} SlotTable;

static int
lock_file(const char *file, WalsimError *err)
{
	char		path[PATH_MAX];
	int			fd;

	snprintf(path, sizeof(path), "%s.lock", file);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
	{
		walsim_error_set(err, "could not open slot lock file \"%s\": %s", path, strerror(errno));
		return -1;
	}
	while (flock(fd, LOCK_EX) != 0)
	{
		if (errno != EINTR)
		{
			walsim_error_set(err, "could not lock \"%s\": %s", path, strerror(errno));
			close(fd);
			return -1;
		}
	}
	return fd;
}

static bool
load_table(const char *file, SlotTable *t, WalsimError *err)
{
	FILE	   *f = fopen(file, "r");
	char		line[256];
	int			lineno = 0;

	t->n = 0;
	if (f == NULL)
	{
		if (errno == ENOENT)
			return true;
		return walsim_error_set(err, "could not open slot file \"%s\": %s", file, strerror(errno));
	}
	while (fgets(line, sizeof(line), f))
	{
		char		name[64];
		char		lsn[32];
		int			pid;
		SlotInfo   *s;

		lineno++;
		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (t->n == MAX_SLOTS || sscanf(line, "%63s %31s %d", name, lsn, &pid) != 3)
		{
			fclose(f);
			return walsim_error_set(err, "slot file \"%s\" line %d: expected \"name restart_lsn active_pid\"",
									file, lineno);
		}
		s = &t->slots[t->n++];
		strcpy(s->name, name);
		if (!lsn_parse(lsn, &s->restart_lsn, err))
		{
			fclose(f);
			walsim_error_prefix(err, "slot file \"%s\" line %d: ", file, lineno);
			return false;
		}
		s->active_pid = pid;
		/* a pid that is gone no longer holds the slot */
		if (pid != 0 && kill(pid, 0) != 0 && errno == ESRCH)
			s->active_pid = 0;
	}
	fclose(f);
	return true;
}

static bool
save_table(const char *file, const SlotTable *t, WalsimError *err)
{
	char		tmp[PATH_MAX];
	FILE	   *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", file);
	f = fopen(tmp, "w");
	if (f == NULL)
		return walsim_error_set(err, "could not create \"%s\": %s", tmp, strerror(errno));
	fprintf(f, "# walsim-sender physical replication slots: name restart_lsn active_pid\n");
	for (int i = 0; i < t->n; i++)
	{
		char		lsn[LSN_TEXT_MAX];

		lsn_format(t->slots[i].restart_lsn, lsn);
		fprintf(f, "%s %s %d\n", t->slots[i].name, lsn, (int) t->slots[i].active_pid);
	}
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
	{
		fclose(f);
		return walsim_error_set(err, "could not write \"%s\": %s", tmp, strerror(errno));
	}
	fclose(f);
	if (rename(tmp, file) != 0)
		return walsim_error_set(err, "could not rename \"%s\" to \"%s\": %s", tmp, file, strerror(errno));
	return true;
}

static SlotInfo *
find(SlotTable *t, const char *name)
{
	for (int i = 0; i < t->n; i++)
		if (strcmp(t->slots[i].name, name) == 0)
			return &t->slots[i];
	return NULL;
}

/* Run one locked read-modify-write; op returns the result and whether to save. */
typedef SlotResult (*SlotOp) (SlotTable *t, void *arg, bool *save);

static SlotResult
locked(const char *file, SlotOp op, void *arg, WalsimError *err)
{
	SlotTable  *t = malloc(sizeof(SlotTable));
	int			lockfd;
	SlotResult	r = SLOT_IO_ERROR;
	bool		save = false;

	if (t == NULL)
	{
		walsim_error_set(err, "out of memory");
		return SLOT_IO_ERROR;
	}
	lockfd = lock_file(file, err);
	if (lockfd >= 0)
	{
		if (load_table(file, t, err))
		{
			r = op(t, arg, &save);
			if (save && !save_table(file, t, err))
				r = SLOT_IO_ERROR;
		}
		close(lockfd);			/* releases the flock */
	}
	free(t);
	return r;
}

typedef struct OpArgs
{
	const char *name;
	uint64_t	lsn;
	pid_t		pid;
	pid_t		active_pid;
	SlotInfo   *out;
} OpArgs;

static SlotResult
op_get(SlotTable *t, void *arg, bool *save)
{
	OpArgs	   *a = arg;
	SlotInfo   *s = find(t, a->name);

	(void) save;
	if (s == NULL)
		return SLOT_NOT_FOUND;
	*a->out = *s;
	return SLOT_OK;
}

static SlotResult
op_create(SlotTable *t, void *arg, bool *save)
{
	OpArgs	   *a = arg;
	SlotInfo   *s;

	if (find(t, a->name) != NULL)
		return SLOT_EXISTS;
	if (t->n == MAX_SLOTS)
		return SLOT_IO_ERROR;
	s = &t->slots[t->n++];
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", a->name);
	s->restart_lsn = a->lsn;
	*save = true;
	return SLOT_OK;
}

static SlotResult
op_drop(SlotTable *t, void *arg, bool *save)
{
	OpArgs	   *a = arg;
	SlotInfo   *s = find(t, a->name);

	if (s == NULL)
		return SLOT_NOT_FOUND;
	if (s->active_pid != 0 && s->active_pid != getpid())
	{
		a->active_pid = s->active_pid;
		return SLOT_ACTIVE;
	}
	*s = t->slots[--t->n];
	*save = true;
	return SLOT_OK;
}

static SlotResult
op_acquire(SlotTable *t, void *arg, bool *save)
{
	OpArgs	   *a = arg;
	SlotInfo   *s = find(t, a->name);

	if (s == NULL)
		return SLOT_NOT_FOUND;
	if (s->active_pid != 0 && s->active_pid != a->pid)
	{
		a->active_pid = s->active_pid;
		return SLOT_ACTIVE;
	}
	s->active_pid = a->pid;
	*save = true;
	return SLOT_OK;
}

static SlotResult
op_release(SlotTable *t, void *arg, bool *save)
{
	OpArgs	   *a = arg;
	SlotInfo   *s = find(t, a->name);

	if (s != NULL && s->active_pid == a->pid)
	{
		s->active_pid = 0;
		*save = true;
	}
	return SLOT_OK;
}

static SlotResult
op_advance(SlotTable *t, void *arg, bool *save)
{
	OpArgs	   *a = arg;
	SlotInfo   *s = find(t, a->name);

	if (s == NULL)
		return SLOT_NOT_FOUND;
	if (a->lsn > s->restart_lsn)
	{
		s->restart_lsn = a->lsn;
		*save = true;
	}
	return SLOT_OK;
}

SlotResult
slots_get(const char *file, const char *name, SlotInfo *out, WalsimError *err)
{
	OpArgs		a = {.name = name, .out = out};

	return locked(file, op_get, &a, err);
}

SlotResult
slots_create(const char *file, const char *name, uint64_t restart_lsn, WalsimError *err)
{
	OpArgs		a = {.name = name, .lsn = restart_lsn};

	return locked(file, op_create, &a, err);
}

SlotResult
slots_drop(const char *file, const char *name, pid_t *active_pid, WalsimError *err)
{
	OpArgs		a = {.name = name};
	SlotResult	r = locked(file, op_drop, &a, err);

	*active_pid = a.active_pid;
	return r;
}

SlotResult
slots_acquire(const char *file, const char *name, pid_t pid, pid_t *active_pid,
			  WalsimError *err)
{
	OpArgs		a = {.name = name, .pid = pid};
	SlotResult	r = locked(file, op_acquire, &a, err);

	*active_pid = a.active_pid;
	return r;
}

void
slots_release(const char *file, const char *name, pid_t pid)
{
	OpArgs		a = {.name = name, .pid = pid};

	locked(file, op_release, &a, NULL);
}

SlotResult
slots_advance(const char *file, const char *name, uint64_t restart_lsn, WalsimError *err)
{
	OpArgs		a = {.name = name, .lsn = restart_lsn};

	return locked(file, op_advance, &a, err);
}
