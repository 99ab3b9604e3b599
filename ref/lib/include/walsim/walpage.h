/*
 * walpage.h — WAL page headers of PostgreSQL 13 to 18 (via the version table).
 *
 * WAL is a sequence of XLOG_BLCKSZ (8192-byte) pages.  Every page starts with
 * a short header (24 bytes); the first page of every segment has a long
 * header (40 bytes) that also names the system identifier, the segment size
 * and the page size.  Layouts (all little-endian on the machines PostgreSQL
 * writes them on; decoded here as little-endian):
 *
 *   off size field
 *     0   2  xlp_magic      XLOG_PAGE_MAGIC of the major version (13: 0xD106 ... 18: 0xD118)
 *     2   2  xlp_info       flags WAL_XLP_*
 *     4   4  xlp_tli        timeline of the first record on the page
 *     8   8  xlp_pageaddr   LSN of the page itself
 *    16   4  xlp_rem_len    bytes of a record continued from the previous page
 *    20   4  (padding)
 *   long header only:
 *    24   8  xlp_sysid      system identifier
 *    32   4  xlp_seg_size   segment size
 *    36   4  xlp_xlog_blcksz  page size (8192)
 *
 * The per-version facts (magic, flag bits, highest built-in resource manager
 * id) live in ONE table, looked up with wal_version_by_major() or
 * wal_version_by_magic(); only that table changes when a major is added.
 */
#ifndef WALSIM_WALPAGE_H
#define WALSIM_WALPAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "walsim/error.h"

#define WAL_BLCKSZ				8192
#define WAL_SHORT_PHD_SIZE		24
#define WAL_LONG_PHD_SIZE		40
#define WAL_RECORD_HEADER_SIZE	24	/* XLogRecord: tot_len, xid, prev, info, rmid, crc */
#define WAL_MAXALIGN(x)			(((uint64_t) (x) + 7) & ~(uint64_t) 7)

/* xlp_info bits that mean the same in every supported major */
#define WAL_XLP_FIRST_IS_CONTRECORD	0x0001
#define WAL_XLP_LONG_HEADER			0x0002

/* What differs between PostgreSQL major versions. */
typedef struct WalVersionInfo
{
	int			major;			/* 13 .. 18 */
	uint16_t	page_magic;		/* XLOG_PAGE_MAGIC */
	uint16_t	all_flags;		/* XLP_ALL_FLAGS: every known xlp_info bit */
	uint16_t	overwrite_contrecord;	/* XLP_FIRST_IS_OVERWRITE_CONTRECORD */
	uint8_t		max_builtin_rmid;	/* RM_MAX_BUILTIN_ID */
	uint8_t		min_custom_rmid;	/* RM_MIN_CUSTOM_ID (custom ids up to 255);
									 * 0: no custom resource managers (before 15) */
} WalVersionInfo;

/* The table entry of a major version, or NULL when walsim does not know it. */
const WalVersionInfo *wal_version_by_major(int major);

/* The table entry whose page magic is magic, or NULL. */
const WalVersionInfo *wal_version_by_magic(uint16_t magic);

/*
 * "PostgreSQL 17" for a known magic, else "no PostgreSQL version walsim
 * knows (13: D106, ..., 18: D118)": for error messages naming the magic found.
 */
const char *wal_magic_describe(uint16_t magic, char *buf, size_t size);

/* A decoded page header (long fields are zero for a short header). */
typedef struct WalPageHeader
{
	uint16_t	magic;
	uint16_t	info;
	uint32_t	tli;
	uint64_t	pageaddr;
	uint32_t	rem_len;
	bool		is_long;		/* info has WAL_XLP_LONG_HEADER */
	uint64_t	sysid;
	uint32_t	seg_size;
	uint32_t	blcksz;
} WalPageHeader;

/* Size of the header that info announces: 40 with XLP_LONG_HEADER, else 24. */
size_t		wal_page_header_size(uint16_t info);

/*
 * Decode the page header at buf (len bytes available).  Fails, naming the
 * sizes, when len is shorter than the header its info field announces.
 */
bool		wal_page_header_decode(const uint8_t *buf, size_t len,
								   WalPageHeader *hdr, WalsimError *err);

/* Why a page header was rejected (WAL_PAGE_OK when it was not). */
typedef enum WalPageCheck
{
	WAL_PAGE_OK = 0,
	WAL_PAGE_ZEROED,			/* the header is all zero bytes: unwritten page */
	WAL_PAGE_BAD_MAGIC,			/* xlp_magic is not the expected one */
	WAL_PAGE_BAD_INFO,			/* unknown flag bits, or no long header at a
								 * segment start */
	WAL_PAGE_BAD_LONG_HEADER,	/* sysid, segment size or block size differ */
	WAL_PAGE_BAD_ADDR,			/* xlp_pageaddr is not the page's LSN */
	WAL_PAGE_BAD_TLI,			/* timeline lower than the previous page's */
	WAL_PAGE_BAD_REM_LEN		/* XLP_FIRST_IS_CONTRECORD with xlp_rem_len 0 */
} WalPageCheck;

/* What the page at pageaddr is expected to hold. */
typedef struct WalPageExpect
{
	const WalVersionInfo *version;	/* required */
	uint64_t	pageaddr;		/* LSN of the page (multiple of WAL_BLCKSZ) */
	uint32_t	seg_size;		/* segment size, to find segment starts */
	uint64_t	sysid;			/* 0: accept any system identifier */
	uint32_t	min_tli;		/* 0: accept any timeline */
} WalPageExpect;

/*
 * Check a decoded header against what is expected, in the order PostgreSQL's
 * XLogReaderValidatePageHeader does (magic, flags, long header, address,
 * timeline).  A header of all zero bytes is reported as WAL_PAGE_ZEROED
 * (raw must then be the 24 header bytes; may be NULL to skip that test).
 * On failure *why says which check failed and err says what and where.
 */
bool		wal_page_header_check(const WalPageHeader *hdr, const uint8_t *raw,
								  const WalPageExpect *expect,
								  WalPageCheck *why, WalsimError *err);

/* Short name of a check result ("bad page magic", ...). */
const char *wal_page_check_name(WalPageCheck check);

/*
 * Integers inside WAL pages and records are in the server's byte order,
 * little-endian on every platform walsim supports (x86-64, aarch64).
 */
static inline uint16_t
wal_get_u16(const uint8_t *p)
{
	return (uint16_t) (p[0] | p[1] << 8);
}

static inline uint32_t
wal_get_u32(const uint8_t *p)
{
	return (uint32_t) p[0] | (uint32_t) p[1] << 8 |
		(uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static inline uint64_t
wal_get_u64(const uint8_t *p)
{
	return (uint64_t) wal_get_u32(p) | (uint64_t) wal_get_u32(p + 4) << 32;
}

#endif							/* WALSIM_WALPAGE_H */
