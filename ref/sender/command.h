/*
 * command.h — the replication command language a physical walsender
 * accepts (PostgreSQL's repl_gram.y / repl_scanner.l, PG15 subset).
 *
 *   IDENTIFY_SYSTEM
 *   SHOW name
 *   TIMELINE_HISTORY tli
 *   READ_REPLICATION_SLOT slot
 *   CREATE_REPLICATION_SLOT slot [TEMPORARY] PHYSICAL [RESERVE_WAL | ( option [, ...] )]
 *   DROP_REPLICATION_SLOT slot [WAIT]
 *   START_REPLICATION [SLOT slot] [PHYSICAL] X/X [TIMELINE tli]
 *   BASE_BACKUP ...                       (recognised, then refused)
 *
 * Keywords are case-insensitive; identifiers are folded to lower case unless
 * double-quoted; one trailing ';' is allowed.  Text whose first word is not
 * one of these commands is SQL, which a physical walsender refuses, as
 * PostgreSQL does, with SQLSTATE 0A000.
 */
#ifndef WALSIM_SENDER_COMMAND_H
#define WALSIM_SENDER_COMMAND_H

#include <stdbool.h>
#include <stdint.h>

#include "walsim/error.h"

#define REPL_NAME_MAX 64		/* NAMEDATALEN */

typedef enum ReplCommandKind
{
	REPL_IDENTIFY_SYSTEM,
	REPL_SHOW,
	REPL_TIMELINE_HISTORY,
	REPL_READ_REPLICATION_SLOT,
	REPL_CREATE_REPLICATION_SLOT,
	REPL_DROP_REPLICATION_SLOT,
	REPL_START_REPLICATION,
	REPL_BASE_BACKUP,
	REPL_SQL					/* not a replication command */
} ReplCommandKind;

typedef struct ReplCommand
{
	ReplCommandKind kind;
	char		name[REPL_NAME_MAX];	/* SHOW parameter or slot name */
	bool		has_slot;		/* START_REPLICATION SLOT given */
	bool		logical;		/* CREATE/START for a logical slot */
	bool		temporary;		/* CREATE ... TEMPORARY */
	bool		reserve_wal;	/* CREATE ... RESERVE_WAL or (RESERVE_WAL [true]) */
	bool		wait;			/* DROP ... WAIT */
	uint64_t	lsn;			/* START_REPLICATION start point */
	uint32_t	tli;			/* TIMELINE_HISTORY / START ... TIMELINE; 0 = none */
} ReplCommand;

/*
 * Parse one command.  On a syntax error returns false with *sqlstate set to
 * the SQLSTATE to report ("42601" syntax error, "42602" invalid slot name)
 * and err naming the offending token and its offset.
 */
bool		repl_command_parse(const char *text, ReplCommand *cmd,
							   const char **sqlstate, WalsimError *err);

/* Name of a command kind as used in CommandComplete tags and events. */
const char *repl_command_name(ReplCommandKind kind);

/* PostgreSQL's rule for slot names: 1..63 chars of [a-z0-9_]. */
bool		repl_slot_name_valid(const char *name, WalsimError *err);

#endif							/* WALSIM_SENDER_COMMAND_H */
