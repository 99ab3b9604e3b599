/*
 * walpage.c — WAL page headers (see walsim/walpage.h).
 *
 * The checks mirror XLogReaderValidatePageHeader() of xlogreader.c, in the
 * same order (unchanged from 13 to 18), so a page rejected here is rejected
 * by PostgreSQL for the same reason.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "walsim/lsn.h"
#include "walsim/walpage.h"

/*
 * The one table of per-major facts.  Adding a major means adding a row
 * (XLOG_PAGE_MAGIC from xlog_internal.h, XLP_* from the same file,
 * RM_MAX_BUILTIN_ID from rmgrlist.h/rmgr.h).
 *
 * Every magic was read from real WAL written by that major (tests/data/wal-N,
 * made by tools/make-version-wal): 13 0xD106, 14 0xD10D, 15 0xD110, 16 0xD113,
 * 17 0xD116, 18 0xD118.  The page header layout and its flags are the same
 * in all six: XLP_FIRST_IS_OVERWRITE_CONTRECORD (0x0008) arrived in 14 and
 * was back-patched into 13.5, so XLP_ALL_FLAGS is 0x000F everywhere.  The
 * built-in resource managers are the same 22 (0 .. RM_LOGICALMSG_ID = 21)
 * in all six (pg_get_wal_resource_managers() of 16-18 lists them); custom
 * resource managers (ids 128-255) exist from 15 on: before 15
 * ValidXLogRecordHeader() rejects any id above RM_MAX_ID (21).
 */
static const WalVersionInfo wal_versions[] = {
	{.major = 13, .page_magic = 0xD106, .all_flags = 0x000F, .overwrite_contrecord = 0x0008,
	.max_builtin_rmid = 21, .min_custom_rmid = 0},
	{.major = 14, .page_magic = 0xD10D, .all_flags = 0x000F, .overwrite_contrecord = 0x0008,
	.max_builtin_rmid = 21, .min_custom_rmid = 0},
	{.major = 15, .page_magic = 0xD110, .all_flags = 0x000F, .overwrite_contrecord = 0x0008,
	.max_builtin_rmid = 21, .min_custom_rmid = 128},
	{.major = 16, .page_magic = 0xD113, .all_flags = 0x000F, .overwrite_contrecord = 0x0008,
	.max_builtin_rmid = 21, .min_custom_rmid = 128},
	{.major = 17, .page_magic = 0xD116, .all_flags = 0x000F, .overwrite_contrecord = 0x0008,
	.max_builtin_rmid = 21, .min_custom_rmid = 128},
	{.major = 18, .page_magic = 0xD118, .all_flags = 0x000F, .overwrite_contrecord = 0x0008,
	.max_builtin_rmid = 21, .min_custom_rmid = 128},
};

#define N_WAL_VERSIONS (sizeof(wal_versions) / sizeof(wal_versions[0]))

const WalVersionInfo *
wal_version_by_major(int major)
{
	for (size_t i = 0; i < N_WAL_VERSIONS; i++)
		if (wal_versions[i].major == major)
			return &wal_versions[i];
	return NULL;
}

const WalVersionInfo *
wal_version_by_magic(uint16_t magic)
{
	for (size_t i = 0; i < N_WAL_VERSIONS; i++)
		if (wal_versions[i].page_magic == magic)
			return &wal_versions[i];
	return NULL;
}

const char *
wal_magic_describe(uint16_t magic, char *buf, size_t size)
{
	const WalVersionInfo *v = wal_version_by_magic(magic);
	size_t		n;

	if (v != NULL)
	{
		snprintf(buf, size, "PostgreSQL %d", v->major);
		return buf;
	}
	n = (size_t) snprintf(buf, size, "no PostgreSQL version walsim knows (");
	for (size_t i = 0; i < N_WAL_VERSIONS && n < size; i++)
		n += (size_t) snprintf(buf + n, size - n, "%s%d: %04X", i ? ", " : "",
							   wal_versions[i].major, wal_versions[i].page_magic);
	if (n < size)
		snprintf(buf + n, size - n, ")");
	return buf;
}

size_t
wal_page_header_size(uint16_t info)
{
	return (info & WAL_XLP_LONG_HEADER) ? WAL_LONG_PHD_SIZE : WAL_SHORT_PHD_SIZE;
}

bool
wal_page_header_decode(const uint8_t *buf, size_t len, WalPageHeader *hdr,
					   WalsimError *err)
{
	size_t		need;

	if (len < WAL_SHORT_PHD_SIZE)
		return walsim_error_set(err, "WAL page header: %zu bytes, need %d",
								len, WAL_SHORT_PHD_SIZE);
	memset(hdr, 0, sizeof(*hdr));
	hdr->magic = wal_get_u16(buf);
	hdr->info = wal_get_u16(buf + 2);
	hdr->tli = wal_get_u32(buf + 4);
	hdr->pageaddr = wal_get_u64(buf + 8);
	hdr->rem_len = wal_get_u32(buf + 16);
	hdr->is_long = (hdr->info & WAL_XLP_LONG_HEADER) != 0;
	need = wal_page_header_size(hdr->info);
	if (len < need)
		return walsim_error_set(err, "WAL page header: %zu bytes, need %zu for a long header",
								len, need);
	if (hdr->is_long)
	{
		hdr->sysid = wal_get_u64(buf + 24);
		hdr->seg_size = wal_get_u32(buf + 32);
		hdr->blcksz = wal_get_u32(buf + 36);
	}
	return true;
}

static bool
all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != 0)
			return false;
	return true;
}

/* Record the verdict and the message; always false, for "return fail(...)". */
static bool
fail(WalPageCheck *why, WalPageCheck what)
{
	*why = what;
	return false;
}

bool
wal_page_header_check(const WalPageHeader *hdr, const uint8_t *raw,
					  const WalPageExpect *expect,
					  WalPageCheck *why, WalsimError *err)
{
	const WalVersionInfo *v = expect->version;
	char		at[LSN_TEXT_MAX];
	uint32_t	offset = (uint32_t) (expect->pageaddr & ((uint64_t) expect->seg_size - 1));

	/* LSN text is formatted on the failure paths only: this runs per page */
	*why = WAL_PAGE_OK;

	if (raw != NULL && all_zero(raw, WAL_SHORT_PHD_SIZE))
	{
		walsim_error_set(err, "zeroed page header at %s", lsn_format(expect->pageaddr, at));
		return fail(why, WAL_PAGE_ZEROED);
	}
	if (hdr->magic != v->page_magic)
	{
		walsim_error_set(err, "invalid magic number %04X in page at %s (expected %04X, PostgreSQL %d)",
						 hdr->magic, lsn_format(expect->pageaddr, at), v->page_magic, v->major);
		return fail(why, WAL_PAGE_BAD_MAGIC);
	}
	if ((hdr->info & ~v->all_flags) != 0)
	{
		walsim_error_set(err, "invalid info bits %04X in page at %s", hdr->info, lsn_format(expect->pageaddr, at));
		return fail(why, WAL_PAGE_BAD_INFO);
	}
	if (hdr->is_long)
	{
		if (expect->sysid != 0 && hdr->sysid != expect->sysid)
		{
			walsim_error_set(err, "page at %s is from another database system: system identifier %" PRIu64 ", expected %" PRIu64,
							 lsn_format(expect->pageaddr, at), hdr->sysid, expect->sysid);
			return fail(why, WAL_PAGE_BAD_LONG_HEADER);
		}
		if (hdr->seg_size != expect->seg_size)
		{
			walsim_error_set(err, "page at %s: segment size %u in long header, expected %u",
							 lsn_format(expect->pageaddr, at), hdr->seg_size, expect->seg_size);
			return fail(why, WAL_PAGE_BAD_LONG_HEADER);
		}
		if (hdr->blcksz != WAL_BLCKSZ)
		{
			walsim_error_set(err, "page at %s: block size %u in long header, expected %d",
							 lsn_format(expect->pageaddr, at), hdr->blcksz, WAL_BLCKSZ);
			return fail(why, WAL_PAGE_BAD_LONG_HEADER);
		}
	}
	else if (offset == 0)
	{
		walsim_error_set(err, "invalid info bits %04X in page at %s: a segment's first page needs a long header",
						 hdr->info, lsn_format(expect->pageaddr, at));
		return fail(why, WAL_PAGE_BAD_INFO);
	}
	if (hdr->pageaddr != expect->pageaddr)
	{
		char		got[LSN_TEXT_MAX];

		lsn_format(hdr->pageaddr, got);
		walsim_error_set(err, "unexpected pageaddr %s in page at %s", got, lsn_format(expect->pageaddr, at));
		return fail(why, WAL_PAGE_BAD_ADDR);
	}
	if (expect->min_tli != 0 && hdr->tli < expect->min_tli)
	{
		walsim_error_set(err, "out-of-sequence timeline ID %u (after %u) in page at %s",
						 hdr->tli, expect->min_tli, lsn_format(expect->pageaddr, at));
		return fail(why, WAL_PAGE_BAD_TLI);
	}
	if ((hdr->info & WAL_XLP_FIRST_IS_CONTRECORD) && hdr->rem_len == 0)
	{
		walsim_error_set(err, "page at %s has XLP_FIRST_IS_CONTRECORD but xlp_rem_len 0", lsn_format(expect->pageaddr, at));
		return fail(why, WAL_PAGE_BAD_REM_LEN);
	}
	return true;
}

const char *
wal_page_check_name(WalPageCheck check)
{
	switch (check)
	{
		case WAL_PAGE_OK:
			return "ok";
		case WAL_PAGE_ZEROED:
			return "zeroed page";
		case WAL_PAGE_BAD_MAGIC:
			return "bad page magic";
		case WAL_PAGE_BAD_INFO:
			return "bad page info flags";
		case WAL_PAGE_BAD_LONG_HEADER:
			return "bad long page header";
		case WAL_PAGE_BAD_ADDR:
			return "bad page address";
		case WAL_PAGE_BAD_TLI:
			return "bad page timeline";
		case WAL_PAGE_BAD_REM_LEN:
			return "bad continuation length";
	}
	return "unknown page check";
}
