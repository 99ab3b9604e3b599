/*
 * disk.h — the disk fault simulator's shared definitions.
 *
 * libwalsim-disk.so (interpose.c) and walsim-diskctl (diskctl.c) share one
 * memory region, a file in the node directory mapped MAP_SHARED by every
 * process of the node and by the control program:
 *
 *   - the header names the data directory (paths are matched relative to
 *     it), the trace file, the undo journal and the seed;
 *   - a fixed table of rule slots, each with its own call and fire counters,
 *     so that every backend of the node counts together.
 *
 * Concurrency: only walsim-diskctl writes rules, under an flock() of the
 * region file (the library never takes that lock).  Each slot carries a
 * sequence number that is odd while the slot is being rewritten; readers
 * copy the rule and retry if the number changed (a seqlock), so no process
 * ever waits for another and no lock is held across a real system call.
 * Counters are updated with atomic read-modify-write operations.
 */
#ifndef WALSIM_SIM_DISK_H
#define WALSIM_SIM_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "walsim/error.h"

#define DISK_REGION_MAGIC	0x4B445357u	/* "WSDK" little-endian */
#define DISK_REGION_VERSION 1
#define DISK_MAX_RULES		32
#define DISK_RULE_ID_MAX	32
#define DISK_GLOB_MAX		128
#define DISK_PATH_MAX		1024
/* a relative path longer than this is never tracked (see docs/disk.md) */
#define DISK_REL_MAX		200

#define DISK_REGION_FILE	"walsim-disk.region"
#define DISK_JOURNAL_FILE	"walsim-disk.journal"
#define DISK_UNDO_DIR		"walsim-disk.undo"
#define DISK_TRACE_FILE		"walsim-disk.trace.jsonl"

/* environment variable naming the region file for the preloaded library */
#define DISK_REGION_ENV		"WALSIM_DISK_REGION"

typedef enum DiskOp
{
	DISK_OP_OPEN = 0,
	DISK_OP_READ,
	DISK_OP_WRITE,
	DISK_OP_FSYNC,
	DISK_OP_FDATASYNC,
	DISK_OP_SYNC_FILE_RANGE,
	DISK_OP_RENAME,
	DISK_OP_UNLINK,
	DISK_OP_TRUNCATE,
	DISK_OP_FALLOCATE,
	DISK_OP_CLOSE,
	DISK_OP_COUNT
} DiskOp;

typedef enum DiskTrigger
{
	DISK_WHEN_NTH = 0,			/* the Nth matching call (1-based) */
	DISK_WHEN_AFTER,			/* every matching call after the Nth */
	DISK_WHEN_RANGE,			/* calls whose byte range meets [lo, hi) */
	DISK_WHEN_PROB				/* seeded probability per call */
} DiskTrigger;

typedef enum DiskEffect
{
	DISK_DO_ERRNO = 0,			/* fail with errno, do nothing */
	DISK_DO_SHORT,				/* write part, return the part's length */
	DISK_DO_TORN,				/* write part, return the full length */
	DISK_DO_FLIP,				/* flip one bit of the data written/read */
	DISK_DO_DELAY,				/* sleep, then do the call */
	DISK_DO_LIE					/* report success, do nothing */
} DiskEffect;

typedef struct DiskRule
{
	char		id[DISK_RULE_ID_MAX];
	char		glob[DISK_GLOB_MAX];
	uint32_t	ops;			/* bit (1 << DiskOp) per operation */
	uint32_t	trigger;		/* DiskTrigger */
	uint64_t	n;				/* NTH / AFTER */
	uint64_t	range_lo;		/* RANGE: [range_lo, range_hi) */
	uint64_t	range_hi;
	double		prob;			/* PROB */
	uint32_t	effect;			/* DiskEffect */
	int32_t		err;			/* ERRNO */
	int64_t		keep;			/* SHORT/TORN: bytes kept, -1 = half */
	int64_t		flip_byte;		/* FLIP: byte of the call's data, -1 = seeded */
	int32_t		flip_bit;		/* FLIP: 0..7, -1 = seeded */
	int32_t		pad;
	uint64_t	delay_us;		/* DELAY */
	uint64_t	limit;			/* fire at most this often, 0 = no limit */
} DiskRule;

typedef struct DiskRuleSlot
{
	uint32_t	seq;			/* seqlock: odd while being written */
	uint32_t	active;
	DiskRule	rule;
	uint64_t	calls;			/* matching calls since the rule was added */
	uint64_t	fired;			/* faults fired */
} DiskRuleSlot;

typedef struct DiskRegion
{
	uint32_t	magic;
	uint32_t	version;
	uint32_t	generation;		/* bumped after every rule change */
	uint32_t	nactive;		/* active rules; 0 = fast path */
	uint32_t	journal;		/* 1 = keep the undo journal (power cut) */
	uint32_t	strict_dirs;	/* 1 = only a directory fsync keeps a new entry */
	uint64_t	seed;
	uint64_t	journal_seq;	/* next journal record number */
	uint64_t	reserved;
	char		data_dir[DISK_PATH_MAX];	/* absolute, no trailing slash */
	char		trace_path[DISK_PATH_MAX];
	char		journal_path[DISK_PATH_MAX];
	char		undo_dir[DISK_PATH_MAX];
	DiskRuleSlot slots[DISK_MAX_RULES];
} DiskRegion;

/* ---- rules.c: names, parsing, formatting, glob matching ---- */

/* "write" -> DISK_OP_WRITE; -1 if unknown */
int			disk_op_from_name(const char *name);
const char *disk_op_name(DiskOp op);

/* "EIO" or "5" -> 5; -1 if unknown */
int			disk_errno_from_name(const char *name);
const char *disk_errno_name(int err);

/*
 * Parse a rule from key=value words (the command line of "rule add"):
 *   id=ID path=GLOB ops=OP[,OP...] [when=TRIGGER] do=EFFECT [limit=N]
 * On error returns false with a message naming the word and the reason.
 */
bool		disk_rule_parse(DiskRule *rule, int nwords, char *const *words,
							WalsimError *err);

/* The rule back as words that disk_rule_parse accepts (one line). */
void		disk_rule_format(const DiskRule *rule, char *buf, size_t len);

/* Describe the effect alone ("errno:EIO", "flip:12.3", ...). */
void		disk_effect_format(const DiskRule *rule, char *buf, size_t len);

/*
 * Shell-style glob over a relative path: '*' and '?' never match '/',
 * '**' matches anything including '/', '[abc]', '[a-z]' and '[!x]' classes.
 * No allocation, safe in a signal handler.
 */
bool		disk_glob_match(const char *glob, const char *path);

/* ---- region.c: creating and mapping the shared region ---- */

/* Map an existing region file read-write; NULL with a message on failure. */
DiskRegion *disk_region_map(const char *path, WalsimError *err);
void		disk_region_unmap(DiskRegion *region);

/* Create (or reinitialise) the region file; owner of files = data dir's. */
bool		disk_region_create(const char *node_dir, const char *data_dir,
							   const char *trace_path, uint64_t seed,
							   bool journal, bool strict_dirs, WalsimError *err);

/* Take / release the writers' lock (flock on the region file). */
int			disk_region_lock(const char *path, WalsimError *err);
void		disk_region_unlock(int fd);

/* Install a rule (id must be new); false with message when full/duplicate. */
bool		disk_region_add_rule(DiskRegion *region, const DiskRule *rule,
								 WalsimError *err);
/* Replace the rule with the same id (counters restart), or add it. */
bool		disk_region_set_rule(DiskRegion *region, const DiskRule *rule,
								 WalsimError *err);
/* Remove a rule by id ("all" removes every rule). */
bool		disk_region_del_rule(DiskRegion *region, const char *id,
								 WalsimError *err);

/*
 * Copy slot i's rule if it is active (seqlock read).  Returns false when
 * the slot is free.
 */
bool		disk_region_read_rule(DiskRegion *region, int i, DiskRule *out);

/* ---- journal.c: the undo journal for unsynced-write loss ---- */

typedef enum DiskJournalType
{
	DISK_J_DATA = 1,			/* bytes [offset, offset+len) before a change, and old size */
	DISK_J_SYNC,				/* file (dev, ino) made durable */
	DISK_J_CREATE,				/* path created */
	DISK_J_RENAME,				/* path -> path2, replaced file kept at backup */
	DISK_J_UNLINK,				/* path removed, inode kept at backup */
	DISK_J_DIRSYNC				/* directory path made durable */
} DiskJournalType;

typedef struct DiskJournalHeader
{
	uint32_t	magic;
	uint32_t	type;
	uint64_t	seq;
	uint64_t	dev;
	uint64_t	ino;
	int64_t		offset;
	int64_t		old_size;
	uint32_t	datalen;
	uint16_t	pathlen;
	uint16_t	path2len;
	int32_t		pid;
	uint32_t	backup;			/* 1 = an inode is kept at undo_dir/<seq> */
} DiskJournalHeader;

#define DISK_JOURNAL_MAGIC 0x4A4B5357u	/* "WSKJ" */

typedef struct DiskRollbackStats
{
	uint64_t	records;
	uint64_t	data_undone;
	uint64_t	bytes_restored;
	uint64_t	files_touched;
	uint64_t	entries_undone;
	uint64_t	unrecoverable;
} DiskRollbackStats;

/*
 * Roll every file of the data directory back to its last synced state using
 * the journal, then empty the journal.  The node must be dead.
 */
bool		disk_journal_rollback(DiskRegion *region, bool dry_run,
								  DiskRollbackStats *stats, WalsimError *err);

/* Empty the journal and its undo directory (forget everything unsynced). */
bool		disk_journal_reset(DiskRegion *region, WalsimError *err);

#endif							/* WALSIM_SIM_DISK_H */
