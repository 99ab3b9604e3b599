/*
 * segment.h — WAL segment geometry and file names (PostgreSQL's
 * xlog_internal.h: XLByteToSeg, XLogSegNoOffsetToRecPtr, XLogFileName,
 * TLHistoryFileName, IsXLogFileName, IsPartialXLogFileName).
 *
 * A segment file name is three 8-digit upper-case hex fields:
 *   timeline, segno / segments_per_xlogid, segno % segments_per_xlogid
 * where segments_per_xlogid = 0x100000000 / segment_size.  So the same segno
 * gives different names for different segment sizes: with 16 MB segments
 * LSN 0/3025A70 on timeline 1 is in 000000010000000000000003, with 1 GB
 * segments LSN 1/40000000 is in 000000010000000100000001.
 */
#ifndef WALSIM_SEGMENT_H
#define WALSIM_SEGMENT_H

#include <stdbool.h>
#include <stdint.h>

#include "walsim/error.h"

#define WAL_SEGMENT_SIZE_MIN     (UINT64_C(1) << 20)	/* 1 MB */
#define WAL_SEGMENT_SIZE_MAX     (UINT64_C(1) << 30)	/* 1 GB */
#define WAL_SEGMENT_SIZE_DEFAULT (UINT64_C(16) << 20)	/* 16 MB */

/* 24 hex digits + ".partial" + NUL, with room to spare */
#define WAL_FILE_NAME_MAX 40
/* Length of a bare segment name (24 hex digits). */
#define WAL_SEGMENT_NAME_LEN 24

/* true iff size is a power of two between 1 MB and 1 GB */
bool		wal_segment_size_valid(uint64_t size);

/* Same check with a message ("WAL segment size 3000000: not a power of two"). */
bool		wal_segment_size_check(uint64_t size, WalsimError *err);

/* Segment number holding the byte at lsn (XLByteToSeg). */
static inline uint64_t
wal_segno_of(uint64_t lsn, uint32_t segsize)
{
	return lsn / segsize;
}

/*
 * Segment number holding the byte just before lsn (XLByteToPrevSeg): the
 * segment a record ending exactly at lsn was written to.  lsn must be > 0.
 */
static inline uint64_t
wal_segno_of_prev(uint64_t lsn, uint32_t segsize)
{
	return (lsn - 1) / segsize;
}

/* LSN of byte offset within segment segno (XLogSegNoOffsetToRecPtr). */
static inline uint64_t
wal_segno_to_lsn(uint64_t segno, uint32_t offset, uint32_t segsize)
{
	return segno * segsize + offset;
}

/* Offset of lsn within its segment (XLogSegmentOffset). */
static inline uint32_t
wal_segment_offset(uint64_t lsn, uint32_t segsize)
{
	return (uint32_t) (lsn & ((uint64_t) segsize - 1));
}

/* 0x100000000 / segsize (XLogSegmentsPerXLogId). */
static inline uint64_t
wal_segments_per_xlogid(uint32_t segsize)
{
	return UINT64_C(0x100000000) / segsize;
}

/* "%08X%08X%08X" of (tli, segno) into buf (>= WAL_FILE_NAME_MAX bytes). */
void		wal_segment_name(char *buf, uint32_t tli, uint64_t segno,
							 uint32_t segsize);

/* The same name with ".partial" appended (what pg_receivewal writes to). */
void		wal_partial_name(char *buf, uint32_t tli, uint64_t segno,
							 uint32_t segsize);

/* "%08X.history" of tli into buf (>= WAL_FILE_NAME_MAX bytes). */
void		wal_history_name(char *buf, uint32_t tli);

typedef enum WalFileKind
{
	WAL_FILE_SEGMENT,			/* 000000010000000000000003 */
	WAL_FILE_PARTIAL,			/* 000000010000000000000003.partial */
	WAL_FILE_HISTORY			/* 00000002.history */
} WalFileKind;

typedef struct WalFileName
{
	WalFileKind kind;
	uint32_t	tli;
	uint64_t	segno;			/* segments and partials only */
} WalFileName;

/*
 * Parse a bare file name (no directory) back.  segsize is needed to turn the
 * two segment fields into a segment number; a low field of
 * segments_per_xlogid or more is rejected, as is timeline 0, a lower-case
 * digit, a wrong length or any other suffix.  The message names the file and
 * what is wrong with it.
 */
bool		wal_file_name_parse(const char *name, uint32_t segsize,
								WalFileName *out, WalsimError *err);

/*
 * Parse the text of "SHOW wal_segment_size" ("16MB", "1GB", "1024kB") into
 * bytes, as pg_receivewal's RetrieveWalSegSize does (a number and a unit of
 * MB, GB or kB), and check the result with wal_segment_size_check().
 */
bool		wal_segment_size_parse(const char *text, uint32_t *segsize,
								   WalsimError *err);

/*
 * Format a segment size as the server shows it: "1GB" for whole gigabytes,
 * else "NMB" (all valid sizes are whole megabytes).  buf >= 16 bytes.
 */
void		wal_segment_size_format(uint32_t segsize, char *buf);

#endif							/* WALSIM_SEGMENT_H */
