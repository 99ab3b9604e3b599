/*
 * walreader.c — incremental verifier of a WAL byte stream (see
 * walsim/walreader.h).
 *
 * The reader is a byte-driven state machine.  Input is consumed in runs that
 * never cross a page boundary, so every page header is seen whole before any
 * record byte of its page, whatever the sizes of the pieces fed.  Decisions
 * are taken at fixed stream positions (a complete page header, the fourth
 * and the 24th byte of a record header, the last byte of a record), which is
 * why one byte at a time gives the same result as everything at once.
 *
 * The CRC of a record covers its body first and then the first 20 bytes of
 * its header (xlogrecord.h), so the body is folded into a running CRC as it
 * goes by and only the 24-byte header is kept: memory does not depend on
 * the record size.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "walsim/crc32c.h"
#include "walsim/lsn.h"
#include "walsim/segment.h"
#include "walsim/walreader.h"

#define XLR_INFO_MASK	0x0F	/* xl_info bits of the record framework */
#define RM_XLOG_ID		0
#define XLOG_SWITCH		0x40
#define XL_CRC_OFFSET	20		/* xl_crc sits after the 20 bytes it covers */

typedef enum ReaderPhase
{
	PHASE_FIND_FIRST,			/* page-aligned start: skip a continued record */
	PHASE_RECORD,				/* at or inside a record (rec_got bytes read) */
	PHASE_PAD,					/* alignment or skipped bytes up to pad_end */
	PHASE_SWITCH_PAD,			/* after XLOG_SWITCH: up to the segment end,
								 * no page headers */
	PHASE_STOPPED
} ReaderPhase;

struct WalReader
{
	WalReaderConfig cfg;
	const WalVersionInfo *version;
	uint64_t	sysid;			/* expected or learned system identifier */

	uint64_t	pos;			/* LSN of the next byte */
	ReaderPhase phase;
	ReaderPhase after_pad;		/* phase once pad_end is reached */
	uint64_t	pad_end;

	/* page header being assembled at page_lsn */
	bool		in_page_header;
	uint64_t	page_lsn;
	uint8_t		page_buf[WAL_LONG_PHD_SIZE];
	size_t		page_got;
	uint64_t	latest_page_lsn;	/* newest page validated, for the TLI rule */
	uint32_t	latest_page_tli;

	/* record being read */
	uint64_t	rec_start;
	uint32_t	rec_got;		/* bytes of the record consumed */
	uint32_t	tot_len;
	uint8_t		rec_hdr[WAL_RECORD_HEADER_SIZE];
	uint32_t	crc;
	uint64_t	expect_prev;	/* 0: first record, prev not known */

	/* results */
	uint64_t	valid_end;
	uint64_t	last_record;
	uint64_t	records;
	WalReadStatus status;
	uint64_t	error_lsn;
	WalsimError msg;
};

/* Stop with a status, the LSN to blame and a message; returns the status. */
static WalReadStatus
reader_stop(WalReader *r, WalReadStatus st, uint64_t at, const char *fmt,...)
__attribute__((format(printf, 4, 5)));

static WalReadStatus
reader_stop(WalReader *r, WalReadStatus st, uint64_t at, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(r->msg.message, sizeof(r->msg.message), fmt, ap);
	va_end(ap);
	r->status = st;
	r->error_lsn = at;
	r->phase = PHASE_STOPPED;
	return st;
}

/* Position the reader at its configured start, forgetting any progress. */
static void
reader_start(WalReader *r)
{
	r->pos = r->cfg.start_lsn;
	r->in_page_header = false;
	r->page_got = 0;
	r->rec_got = 0;
	r->expect_prev = r->cfg.prev_lsn;
	r->valid_end = r->cfg.start_lsn;
	r->last_record = 0;
	r->status = WAL_READ_NEED_DATA;
	r->error_lsn = 0;
	r->msg.message[0] = '\0';
	if (r->cfg.start_lsn % WAL_BLCKSZ == 0)
		r->phase = PHASE_FIND_FIRST;
	else
		r->phase = PHASE_RECORD;
}

WalReader *
walreader_create(const WalReaderConfig *cfg, WalsimError *err)
{
	WalReader  *r;
	const WalVersionInfo *version;
	char		at[LSN_TEXT_MAX];

	if (!wal_segment_size_check(cfg->seg_size, err))
		return NULL;
	version = wal_version_by_magic(cfg->magic);
	if (version == NULL)
	{
		walsim_error_set(err, "WAL page magic %04X belongs to no PostgreSQL version walsim knows",
						 cfg->magic);
		return NULL;
	}
	lsn_format(cfg->start_lsn, at);
	if (cfg->start_lsn % 8 != 0)
	{
		walsim_error_set(err, "WAL reader start %s: not a record boundary (records start at multiples of 8)",
						 at);
		return NULL;
	}
	if (cfg->start_lsn % WAL_BLCKSZ != 0 &&
		cfg->start_lsn % WAL_BLCKSZ < (cfg->start_lsn % cfg->seg_size < WAL_BLCKSZ ?
									   WAL_LONG_PHD_SIZE : WAL_SHORT_PHD_SIZE))
	{
		walsim_error_set(err, "WAL reader start %s: inside a page header", at);
		return NULL;
	}
	if (cfg->max_record_size != 0 && cfg->max_record_size < WAL_RECORD_HEADER_SIZE)
	{
		walsim_error_set(err, "WAL reader: max_record_size %u is below the record header size %d",
						 cfg->max_record_size, WAL_RECORD_HEADER_SIZE);
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL)
	{
		walsim_error_set(err, "WAL reader: out of memory");
		return NULL;
	}
	r->cfg = *cfg;
	if (r->cfg.max_record_size == 0)
		r->cfg.max_record_size = WALREADER_DEFAULT_MAX_RECORD;
	r->version = version;
	r->sysid = cfg->sysid;
	r->latest_page_tli = cfg->min_tli;
	reader_start(r);
	return r;
}

void
walreader_free(WalReader *r)
{
	free(r);
}

static WalReadStatus
status_of_page_check(WalPageCheck check)
{
	switch (check)
	{
		case WAL_PAGE_OK:
			break;
		case WAL_PAGE_ZEROED:
			return WAL_READ_ZEROED;
		case WAL_PAGE_BAD_MAGIC:
			return WAL_READ_BAD_MAGIC;
		case WAL_PAGE_BAD_INFO:
		case WAL_PAGE_BAD_LONG_HEADER:
			return WAL_READ_BAD_PAGE_HEADER;
		case WAL_PAGE_BAD_ADDR:
			return WAL_READ_BAD_PAGEADDR;
		case WAL_PAGE_BAD_TLI:
			return WAL_READ_BAD_TIMELINE;
		case WAL_PAGE_BAD_REM_LEN:
			return WAL_READ_BAD_CONTRECORD;
	}
	return WAL_READ_NEED_DATA;
}

/* Skip the bytes up to end (which lies on this page), then go on in next. */
static void
start_pad(WalReader *r, uint64_t end, ReaderPhase next)
{
	r->pad_end = end;
	r->after_pad = next;
	r->phase = PHASE_PAD;
}

/*
 * What a validated page header means for the record stream: where a
 * continued record is, whether the record in progress goes on here.
 */
static WalReadStatus
page_header_done(WalReader *r, const WalPageHeader *hdr)
{
	uint64_t	page = r->page_lsn;
	uint64_t	data_start = page + wal_page_header_size(hdr->info);
	bool		contrecord = (hdr->info & WAL_XLP_FIRST_IS_CONTRECORD) != 0;
	char		at[LSN_TEXT_MAX],
				rec[LSN_TEXT_MAX];

	/* LSN text is formatted on the failure paths only: this runs per page */
	if (r->phase == PHASE_FIND_FIRST)
	{
		/* as XLogFindNextRecord: skip what is left of a continued record */
		uint64_t	skip = contrecord ? WAL_MAXALIGN(hdr->rem_len) : 0;

		if (skip >= (uint64_t) (page + WAL_BLCKSZ - data_start))
			start_pad(r, page + WAL_BLCKSZ, PHASE_FIND_FIRST);
		else
		{
			start_pad(r, data_start + skip, PHASE_RECORD);
			r->rec_got = 0;
		}
		return WAL_READ_NEED_DATA;
	}

	/* PHASE_RECORD: either a record starts here or one continues */
	if (r->rec_got == 0)
	{
		if (contrecord)
			return reader_stop(r, WAL_READ_BAD_CONTRECORD, data_start,
							   "contrecord is requested by %s: page says a record continues where a new one should start",
							   lsn_format(data_start, at));
		return WAL_READ_NEED_DATA;
	}
	if (hdr->info & r->version->overwrite_contrecord)
	{
		/*
		 * The record in progress was never completed: after a crash the
		 * server wrote XLOG_OVERWRITE_CONTRECORD here instead.  Like
		 * xlogreader.c, forget the partial record and read on from this
		 * page; its first record points back to the last complete one.
		 */
		r->rec_got = 0;
		return WAL_READ_NEED_DATA;
	}
	if (!contrecord)
		return reader_stop(r, WAL_READ_BAD_CONTRECORD, r->rec_start,
						   "there is no contrecord flag at %s, where the record at %s should continue",
						   lsn_format(data_start, at), lsn_format(r->rec_start, rec));
	if (hdr->rem_len != r->tot_len - r->rec_got)
		return reader_stop(r, WAL_READ_BAD_CONTRECORD, r->rec_start,
						   "invalid contrecord length %u (expected %u) at %s for the record at %s",
						   hdr->rem_len, r->tot_len - r->rec_got,
						   lsn_format(data_start, at), lsn_format(r->rec_start, rec));
	return WAL_READ_NEED_DATA;
}

/* Consume up to len bytes of a page header; returns bytes used. */
static size_t
feed_page_header(WalReader *r, const uint8_t *p, size_t len)
{
	size_t		need = WAL_SHORT_PHD_SIZE;
	size_t		n;
	WalPageHeader hdr;
	WalPageExpect expect;
	WalPageCheck why;

	if (r->page_got >= 4)
		need = wal_page_header_size((uint16_t) (r->page_buf[2] | r->page_buf[3] << 8));
	n = need - r->page_got;
	if (n > len)
		n = len;
	memcpy(r->page_buf + r->page_got, p, n);
	r->page_got += n;
	r->pos += n;
	if (r->page_got < need)
		return n;
	if (need == WAL_SHORT_PHD_SIZE &&
		wal_page_header_size((uint16_t) (r->page_buf[2] | r->page_buf[3] << 8)) > need)
		return n;				/* the info field asks for the long header */

	(void) wal_page_header_decode(r->page_buf, r->page_got, &hdr, NULL);
	r->in_page_header = false;
	expect.version = r->version;
	expect.pageaddr = r->page_lsn;
	expect.seg_size = r->cfg.seg_size;
	expect.sysid = r->sysid;
	/* only pages newer than the newest seen must not lower the TLI */
	expect.min_tli = r->page_lsn > r->latest_page_lsn || r->latest_page_lsn == 0 ?
		r->latest_page_tli : 0;
	if (!wal_page_header_check(&hdr, r->page_buf, &expect, &why, &r->msg))
	{
		WalReadStatus st = status_of_page_check(why);
		char		text[WALSIM_ERROR_MAX];

		snprintf(text, sizeof(text), "%s", r->msg.message);
		if (st == WAL_READ_ZEROED && r->phase == PHASE_RECORD && r->rec_got > 0)
		{
			char		rec[LSN_TEXT_MAX];

			lsn_format(r->rec_start, rec);
			reader_stop(r, st, r->page_lsn, "%.180s (the record at %s is incomplete)", text, rec);
		}
		else
			reader_stop(r, st, r->page_lsn, "%s", text);
		return n;
	}
	if (hdr.is_long && r->sysid == 0)
		r->sysid = hdr.sysid;
	if (r->page_lsn >= r->latest_page_lsn)
	{
		r->latest_page_lsn = r->page_lsn;
		r->latest_page_tli = hdr.tli;
	}
	(void) page_header_done(r, &hdr);
	return n;
}

/* Checks on a record header once xl_tot_len (the first 4 bytes) is known. */
static void
check_tot_len(WalReader *r)
{
	char		at[LSN_TEXT_MAX];

	r->tot_len = wal_get_u32(r->rec_hdr);
	if (r->tot_len >= WAL_RECORD_HEADER_SIZE && r->tot_len <= r->cfg.max_record_size)
		return;					/* the common case: no text to format */
	lsn_format(r->rec_start, at);
	if (r->tot_len == 0)
		reader_stop(r, WAL_READ_ZEROED, r->rec_start,
					"invalid record length at %s: wanted %d, got 0 (end of WAL)",
					at, WAL_RECORD_HEADER_SIZE);
	else if (r->tot_len < WAL_RECORD_HEADER_SIZE)
		reader_stop(r, WAL_READ_BAD_LENGTH, r->rec_start,
					"invalid record length at %s: wanted %d, got %u",
					at, WAL_RECORD_HEADER_SIZE, r->tot_len);
	else if (r->tot_len > r->cfg.max_record_size)
		reader_stop(r, WAL_READ_BAD_LENGTH, r->rec_start,
					"record length %u at %s too long (limit %u)",
					r->tot_len, at, r->cfg.max_record_size);
}

/* Checks on the complete 24-byte record header (ValidXLogRecordHeader). */
static void
check_record_header(WalReader *r)
{
	uint8_t		rmid = r->rec_hdr[17];
	uint64_t	prev = wal_get_u64(r->rec_hdr + 8);
	char		at[LSN_TEXT_MAX],
				got[LSN_TEXT_MAX],
				want[LSN_TEXT_MAX];

	/* before 15 there are no custom ids: anything above the built-in ones is invalid */
	if (rmid > r->version->max_builtin_rmid &&
		(r->version->min_custom_rmid == 0 || rmid < r->version->min_custom_rmid))
	{
		reader_stop(r, WAL_READ_BAD_RMID, r->rec_start,
					"invalid resource manager ID %u at %s", rmid, lsn_format(r->rec_start, at));
		return;
	}
	if (r->expect_prev == 0)
	{
		/* first record after a random-access start: only sanity */
		if (prev >= r->rec_start)
			reader_stop(r, WAL_READ_BAD_PREV, r->rec_start,
						"record with incorrect prev-link %s at %s",
						lsn_format(prev, got), lsn_format(r->rec_start, at));
		return;
	}
	if (prev != r->expect_prev)
	{
		reader_stop(r, WAL_READ_BAD_PREV, r->rec_start,
					"record with incorrect prev-link %s at %s (expected %s)",
					lsn_format(prev, got), lsn_format(r->rec_start, at),
					lsn_format(r->expect_prev, want));
	}
}

/* The last byte of the record has been consumed: CRC, then accept it. */
static void
finish_record(WalReader *r)
{
	uint32_t	want = wal_get_u32(r->rec_hdr + XL_CRC_OFFSET);
	uint32_t	crc;
	WalRecordInfo info;
	uint64_t	end;

	crc = crc32c_final(crc32c_update(r->crc, r->rec_hdr, XL_CRC_OFFSET));
	memset(&info, 0, sizeof(info));	/* no stray padding bytes for callers */
	if (crc != want)
	{
		char		at[LSN_TEXT_MAX];

		lsn_format(r->rec_start, at);
		reader_stop(r, WAL_READ_BAD_CRC, r->rec_start,
					"incorrect resource manager data checksum in record at %s (computed %08X, stored %08X)",
					at, crc, want);
		return;
	}
	info.start_lsn = r->rec_start;
	info.prev_lsn = wal_get_u64(r->rec_hdr + 8);
	info.tot_len = r->tot_len;
	info.xid = wal_get_u32(r->rec_hdr + 4);
	info.info = r->rec_hdr[16];
	info.rmid = r->rec_hdr[17];
	info.is_switch = info.rmid == RM_XLOG_ID &&
		(info.info & ~XLR_INFO_MASK) == XLOG_SWITCH;
	end = WAL_MAXALIGN(r->pos);
	if (info.is_switch)
		end = (end + r->cfg.seg_size - 1) / r->cfg.seg_size * r->cfg.seg_size;
	info.end_lsn = end;

	r->valid_end = end;
	r->last_record = r->rec_start;
	r->expect_prev = r->rec_start;
	r->records++;
	r->rec_got = 0;
	r->pad_end = end;
	r->after_pad = PHASE_RECORD;
	r->phase = info.is_switch ? PHASE_SWITCH_PAD : PHASE_PAD;
	if (r->cfg.on_record)
		r->cfg.on_record(&info, r->cfg.cb_arg);
}

/* Consume up to len record bytes, all on the current page; returns bytes used. */
static size_t
feed_record(WalReader *r, const uint8_t *p, size_t len)
{
	size_t		used = 0;

	if (r->rec_got == 0)
	{
		r->rec_start = r->pos;
		r->crc = CRC32C_INIT;
	}
	if (r->rec_got < WAL_RECORD_HEADER_SIZE)
	{
		/* stop after xl_tot_len so its check happens at the same byte */
		size_t		n = (r->rec_got < 4 ? 4 : WAL_RECORD_HEADER_SIZE) - r->rec_got;
		uint32_t	before = r->rec_got;

		if (n > len)
			n = len;
		memcpy(r->rec_hdr + r->rec_got, p, n);
		r->rec_got += n;
		r->pos += n;
		used = n;
		if (before < 4 && r->rec_got >= 4)
		{
			check_tot_len(r);
			if (r->phase == PHASE_STOPPED)
				return used;
		}
		if (r->rec_got < WAL_RECORD_HEADER_SIZE)
			return used;			/* the caller loops for the rest */
		check_record_header(r);
		if (r->phase == PHASE_STOPPED)
			return used;
	}
	else
	{
		size_t		n = r->tot_len - r->rec_got;

		if (n > len)
			n = len;
		r->crc = crc32c_update(r->crc, p, n);
		r->rec_got += n;
		r->pos += n;
		used = n;
	}
	if (r->rec_got == r->tot_len)
		finish_record(r);
	return used;
}

WalReadStatus
walreader_feed(WalReader *r, const void *data, size_t len)
{
	const uint8_t *p = data;

	while (len > 0 && r->phase != PHASE_STOPPED)
	{
		uint64_t	page_left = WAL_BLCKSZ - r->pos % WAL_BLCKSZ;
		size_t		run = len < page_left ? len : (size_t) page_left;
		size_t		used;

		if (r->phase == PHASE_SWITCH_PAD || r->phase == PHASE_PAD)
		{
			/* padding is skipped unread, page headers and all */
			uint64_t	left = r->pad_end - r->pos;

			used = len < left ? len : (size_t) left;
			r->pos += used;
			if (r->pos == r->pad_end)
				r->phase = r->after_pad;
		}
		else if (r->in_page_header || r->pos % WAL_BLCKSZ == 0)
		{
			if (!r->in_page_header)
			{
				r->in_page_header = true;
				r->page_lsn = r->pos;
				r->page_got = 0;
			}
			used = feed_page_header(r, p, run);
		}
		else
			used = feed_record(r, p, run);
		p += used;
		len -= used;
	}
	/* a record that ends exactly where the input ends is complete too */
	if (r->phase == PHASE_PAD && r->pos == r->pad_end)
		r->phase = r->after_pad;
	return r->status;
}

uint64_t
walreader_position(const WalReader *r)
{
	return r->pos;
}

uint64_t
walreader_valid_end(const WalReader *r)
{
	return r->valid_end;
}

uint64_t
walreader_last_record(const WalReader *r)
{
	return r->last_record;
}

uint64_t
walreader_record_count(const WalReader *r)
{
	return r->records;
}

WalReadStatus
walreader_status(const WalReader *r)
{
	return r->status;
}

uint64_t
walreader_error_lsn(const WalReader *r)
{
	return r->error_lsn;
}

const char *
walreader_message(const WalReader *r)
{
	return r->msg.message;
}

const char *
walreader_status_name(WalReadStatus st)
{
	switch (st)
	{
		case WAL_READ_NEED_DATA:
			return "need more data";
		case WAL_READ_ZEROED:
			return "zeroed (end of WAL)";
		case WAL_READ_BAD_MAGIC:
			return "bad page magic";
		case WAL_READ_BAD_PAGE_HEADER:
			return "bad page header";
		case WAL_READ_BAD_PAGEADDR:
			return "bad page address";
		case WAL_READ_BAD_TIMELINE:
			return "bad timeline";
		case WAL_READ_BAD_LENGTH:
			return "bad record length";
		case WAL_READ_BAD_RMID:
			return "bad resource manager";
		case WAL_READ_BAD_PREV:
			return "bad xl_prev";
		case WAL_READ_BAD_CRC:
			return "bad CRC";
		case WAL_READ_BAD_CONTRECORD:
			return "bad continuation";
	}
	return "unknown status";
}

void
walreader_rewind(WalReader *r)
{
	if (r->records == 0)
	{
		reader_start(r);
		return;
	}
	/* between records at the valid end; that page's header was checked */
	r->pos = r->valid_end;
	r->phase = PHASE_RECORD;
	r->in_page_header = false;
	r->page_got = 0;
	r->rec_got = 0;
	r->expect_prev = r->last_record;
	r->status = WAL_READ_NEED_DATA;
	r->error_lsn = 0;
	r->msg.message[0] = '\0';
}
