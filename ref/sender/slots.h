/*
 * slots.h — physical replication slots of walsim-sender.
 *
 * Slots live in a small text file (default WALDIR/walsim-sender.slots), one
 * line per slot: "name restart_lsn active_pid".  Every change happens under
 * an exclusive flock on "FILE.lock" and is written to "FILE.tmp" then
 * renamed, so the connection processes never see a half-written file and a
 * crash loses at most the last change.  "Active" is the pid of the
 * connection streaming from the slot; a pid that no longer exists counts as
 * inactive, so a killed connection never blocks its slot.
 */
#ifndef WALSIM_SENDER_SLOTS_H
#define WALSIM_SENDER_SLOTS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "walsim/error.h"

typedef struct SlotInfo
{
	char		name[64];
	uint64_t	restart_lsn;	/* 0: not reserved yet */
	pid_t		active_pid;		/* 0: inactive */
} SlotInfo;

typedef enum SlotResult
{
	SLOT_OK,
	SLOT_NOT_FOUND,				/* 42704 */
	SLOT_EXISTS,				/* 42710 */
	SLOT_ACTIVE,				/* 55006; *active_pid says who */
	SLOT_IO_ERROR				/* 58000; err says what */
} SlotResult;

SlotResult	slots_get(const char *file, const char *name, SlotInfo *out, WalsimError *err);
SlotResult	slots_create(const char *file, const char *name, uint64_t restart_lsn,
						 WalsimError *err);
SlotResult	slots_drop(const char *file, const char *name, pid_t *active_pid,
					   WalsimError *err);
/* Mark active for pid (fails with SLOT_ACTIVE if another live pid holds it). */
SlotResult	slots_acquire(const char *file, const char *name, pid_t pid,
						  pid_t *active_pid, WalsimError *err);
void		slots_release(const char *file, const char *name, pid_t pid);
/* Move restart_lsn forward (never backwards). */
SlotResult	slots_advance(const char *file, const char *name, uint64_t restart_lsn,
						  WalsimError *err);

#endif							/* WALSIM_SENDER_SLOTS_H */
