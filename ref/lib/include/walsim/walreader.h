/*
 * walreader.h — incremental verifier of a PostgreSQL WAL byte stream.
 *
 * The reader is fed contiguous bytes of WAL, in pieces of any size, starting
 * at a known LSN.  It walks records across page (and segment) boundaries the
 * way PostgreSQL's xlogreader.c does and checks, as the bytes arrive:
 *
 *   - every page header (wal_page_header_check: magic, flags, long header,
 *     page address, timeline never decreasing);
 *   - continuation pages: XLP_FIRST_IS_CONTRECORD set and xlp_rem_len equal
 *     to what is left of the record; a record must not start where the page
 *     says a continuation is;
 *   - each record header: xl_tot_len (>= 24, <= max_record_size), the
 *     resource manager id, xl_prev equal to the previous record's start;
 *   - each record's CRC-32C (body, then the first 20 header bytes).
 *
 * After an XLOG_SWITCH record the rest of the segment is padding and is not
 * looked at; the next record starts after the next segment's long header.
 *
 * Feeding one byte at a time gives exactly the same results (records,
 * valid end, stop reason, messages) as feeding everything at once.  Record
 * bodies are never buffered (the CRC is computed as the bytes go by), so the
 * reader's memory is constant whatever the record size.
 *
 * LSN conventions follow PostgreSQL: a record that ends exactly at a page end
 * starts the next one after the next page header; a record's end LSN is the
 * MAXALIGNed end of its last byte (what pg_current_wal_lsn() and
 * pg_waldump's EndRecPtr show), and an XLOG_SWITCH record ends at the end of
 * its segment.  The "valid end" is the end LSN of the last valid record:
 * every byte before it has been verified.
 *
 * Typical use by a receiver:
 *
 *     WalReaderConfig cfg = {.start_lsn = segstart, .seg_size = segsz,
 *                            .magic = 0xD110};
 *     WalReader *r = walreader_create(&cfg, &err);
 *     ...for each CopyData 'w' payload at LSN dataStart:
 *         st = walreader_feed(r, data, len);
 *         if (st != WAL_READ_NEED_DATA) ...report walreader_message(r)...
 *         flush up to walreader_valid_end(r);
 *
 * and by a file-serving sender (follow mode): feed the segment files in
 * order until the reader stops; when a file grows, walreader_rewind() and
 * feed again from walreader_position() (see waldir.h, which does this).
 */
#ifndef WALSIM_WALREADER_H
#define WALSIM_WALREADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "walsim/error.h"
#include "walsim/walpage.h"

/* The state of the reader after a feed; everything but NEED_DATA is final. */
typedef enum WalReadStatus
{
	WAL_READ_NEED_DATA = 0,		/* all bytes consumed and valid so far */
	WAL_READ_ZEROED,			/* clean end: an all-zero page header or a
								 * record header with xl_tot_len 0 */
	WAL_READ_BAD_MAGIC,			/* page header with a wrong xlp_magic */
	WAL_READ_BAD_PAGE_HEADER,	/* unknown xlp_info bits, missing long header,
								 * long header of another system/segment
								 * size/block size */
	WAL_READ_BAD_PAGEADDR,		/* xlp_pageaddr is not the page's LSN
								 * (typically a recycled segment) */
	WAL_READ_BAD_TIMELINE,		/* xlp_tli lower than an earlier page's */
	WAL_READ_BAD_LENGTH,		/* xl_tot_len < 24 or too large */
	WAL_READ_BAD_RMID,			/* resource manager id no rmgr uses */
	WAL_READ_BAD_PREV,			/* xl_prev is not the previous record's start */
	WAL_READ_BAD_CRC,			/* record CRC-32C mismatch */
	WAL_READ_BAD_CONTRECORD		/* continuation page without the contrecord
								 * flag, wrong xlp_rem_len, or a record
								 * starting where a continuation is */
} WalReadStatus;

/* What the reader reports for each valid record. */
typedef struct WalRecordInfo
{
	uint64_t	start_lsn;		/* LSN of the record header */
	uint64_t	end_lsn;		/* LSN after it (see conventions above) */
	uint64_t	prev_lsn;		/* xl_prev */
	uint32_t	tot_len;		/* xl_tot_len */
	uint32_t	xid;			/* xl_xid */
	uint8_t		rmid;			/* xl_rmid (0 = XLOG) */
	uint8_t		info;			/* xl_info */
	bool		is_switch;		/* XLOG_SWITCH: the segment ends here */
} WalRecordInfo;

typedef void (*WalRecordCallback) (const WalRecordInfo *rec, void *arg);

#define WALREADER_DEFAULT_MAX_RECORD	0x3FFFFFFFu	/* PostgreSQL's MaxAllocSize */

typedef struct WalReaderConfig
{
	/*
	 * Where the first byte fed sits.  A multiple of WAL_BLCKSZ: the reader
	 * skips a record continued from before (as XLogFindNextRecord does) and
	 * starts at the first record beginning in the stream; the first record's
	 * xl_prev is then only checked to be below its own LSN.  Otherwise it
	 * must be the (8-aligned) start of a record on an already validated page.
	 */
	uint64_t	start_lsn;
	/* start of the record before start_lsn when known (0: unknown) */
	uint64_t	prev_lsn;
	uint32_t	seg_size;		/* segment size: power of 2, 1 MB .. 1 GB */
	uint16_t	magic;			/* expected XLOG_PAGE_MAGIC (15: 0xD110) */
	uint64_t	sysid;			/* expected system id; 0: learn from the
								 * first long header, then insist on it */
	uint32_t	min_tli;		/* lowest acceptable page timeline; 0: any */
	uint32_t	max_record_size;	/* 0: WALREADER_DEFAULT_MAX_RECORD */
	WalRecordCallback on_record;	/* optional, called per valid record */
	void	   *cb_arg;
} WalReaderConfig;

typedef struct WalReader WalReader;

/* A reader positioned at cfg->start_lsn; NULL (and err) on a bad config. */
WalReader  *walreader_create(const WalReaderConfig *cfg, WalsimError *err);
void		walreader_free(WalReader *r);

/*
 * Consume the next len bytes of the stream (they sit at walreader_position()).
 * Returns the status; once it is not WAL_READ_NEED_DATA the reader has
 * stopped and ignores further input until walreader_rewind().
 */
WalReadStatus walreader_feed(WalReader *r, const void *data, size_t len);

/* LSN of the next byte walreader_feed() expects (where it stopped, if stopped). */
uint64_t	walreader_position(const WalReader *r);

/* End LSN of the last valid record; the start LSN before the first one. */
uint64_t	walreader_valid_end(const WalReader *r);

/* Start LSN of the last valid record (0 before the first one). */
uint64_t	walreader_last_record(const WalReader *r);

/* Number of valid records so far. */
uint64_t	walreader_record_count(const WalReader *r);

WalReadStatus walreader_status(const WalReader *r);

/* LSN of the page header or record that made the reader stop (0 if none). */
uint64_t	walreader_error_lsn(const WalReader *r);

/* Text of the stop ("invalid record length at 0/1D4F3E0: wanted 24, got 0"). */
const char *walreader_message(const WalReader *r);

/* Short fixed name of a status ("need more data", "bad CRC", ...). */
const char *walreader_status_name(WalReadStatus st);

/*
 * Forget everything after the valid end: the reader is positioned at the
 * valid end (or its start LSN when no record was valid yet) with status
 * NEED_DATA, ready to be fed again from walreader_position().  Used to
 * follow files that grow: WAL that was zero a moment ago may be written now.
 */
void		walreader_rewind(WalReader *r);

#endif							/* WALSIM_WALREADER_H */
