/*
 * tarx.h — unpack the tar stream of a BASE_BACKUP into a directory.
 *
 * PostgreSQL's walsender sends each tablespace of a base backup as a ustar
 * archive (src/port/tar.c writes the headers): 512-byte headers, file data
 * padded to 512 bytes, typeflag '0' (file), '5' (directory) or '2'
 * (symbolic link, for pg_tblspc entries).  The server leaves out the two
 * zero blocks that end a tar file (pg_basebackup adds them when it writes
 * .tar files), so the archive may end at any member boundary; a zero block
 * ends it as well.
 *
 * The bytes arrive in CopyData pieces of any size; tarx_feed() takes them
 * as they come.  Members are created under the directory with O_EXCL
 * (nothing is overwritten), with the mode of the header masked to 0700 for
 * directories and 0600/0640 for files (the server's own modes).  Names must
 * be relative and stay inside the directory: an absolute name, "..", a
 * symbolic link or any other type is an error naming the member.
 */
#ifndef WALSIM_RECEIVER_TARX_H
#define WALSIM_RECEIVER_TARX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "walsim/error.h"

#define TARX_BLOCK 512
#define TARX_NAME_MAX 256

typedef struct TarExtract
{
	int			dirfd;			/* the target directory */
	mode_t		file_mode;		/* 0600, or 0640 with group access */
	bool		do_sync;		/* fsync each file when it is complete */

	/* the member being read */
	uint8_t		header[TARX_BLOCK];
	size_t		header_fill;	/* bytes of header[] received */
	bool		in_data;		/* reading file data (and padding) */
	uint64_t	data_left;		/* file bytes still to come */
	uint64_t	pad_left;		/* padding bytes still to come */
	int			fd;				/* the open file, -1 when none */
	char		name[TARX_NAME_MAX];
	bool		ended;			/* a zero block was seen */

	/* totals */
	uint64_t	files;
	uint64_t	dirs;
	uint64_t	bytes;
} TarExtract;

/* Start unpacking into dirfd (which the caller keeps open and closes). */
void		tarx_init(TarExtract *t, int dirfd, mode_t file_mode, bool do_sync);

/* Consume len more bytes of the archive. */
bool		tarx_feed(TarExtract *t, const uint8_t *data, size_t len, WalsimError *err);

/* The archive ended: it must end between members.  Closes any open file. */
bool		tarx_finish(TarExtract *t, WalsimError *err);

/* Close what is open after a failure (no checks). */
void		tarx_abort(TarExtract *t);

/*
 * Decode one header block (exported for tests): name (prefix/name joined),
 * type, size (octal or base-256) and mode; checks the header checksum.
 * *is_zero is set for an all-zero block (end of archive).
 */
bool		tarx_parse_header(const uint8_t *block, char *name, size_t name_size,
							  char *type, uint64_t *size, mode_t *mode,
							  bool *is_zero, WalsimError *err);

#endif							/* WALSIM_RECEIVER_TARX_H */
