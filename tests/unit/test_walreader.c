/*
 * test_walreader.c — the incremental WAL verifier.
 *
 * Real PostgreSQL 15 WAL (tests/data/wal, made by make-wal.sh) is read to the
 * same records and the same end as pg_waldump found (expected.txt); copies
 * corrupted in memory stop at the right LSN with the right reason; any way of
 * cutting the input into pieces gives the same result; synthetic WAL built
 * here covers the layouts a short real capture may miss (records ending on a
 * page end, headers split across pages, records across segments, overwritten
 * continuation records, very long records).
 */
#include <check.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "walsim/crc32c.h"
#include "walsim/lsn.h"
#include "walsim/walreader.h"
#include "unit_support.h"

#define SEG_SIZE	(1u << 20)
#define FIRST_SEG	UINT64_C(0x900000)	/* 000000010000000000000009 */
#define MAGIC15		0xD110

/* ------------------------------------------------------------ helpers */

static uint64_t
next_rand(uint64_t *state)
{
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;
	return *state * UINT64_C(2685821657736338717);
}

/* The three real segments, contiguous from FIRST_SEG. */
static uint8_t *
load_real_wal(size_t *len)
{
	ck_assert_uint_eq(SEG_SIZE, UNIT_WAL_SEG_SIZE);
	*len = UNIT_WAL_LEN;
	return unit_load_test_wal();
}

/* Records seen through the callback. */
typedef struct Seen
{
	WalRecordInfo *rec;
	size_t		n;
	size_t		cap;
} Seen;

static void
collect(const WalRecordInfo *rec, void *arg)
{
	Seen	   *s = arg;

	if (s->n == s->cap)
	{
		s->cap = s->cap ? 2 * s->cap : 256;
		s->rec = realloc(s->rec, s->cap * sizeof(WalRecordInfo));
		ck_assert_ptr_nonnull(s->rec);
	}
	s->rec[s->n++] = *rec;
}

/* Everything a run can tell. */
typedef struct Outcome
{
	WalReadStatus status;
	uint64_t	valid_end;
	uint64_t	last_record;
	uint64_t	error_lsn;
	uint64_t	position;
	uint64_t	count;
	char		message[WALSIM_ERROR_MAX];
	Seen		seen;
} Outcome;

static void
outcome_free(Outcome *o)
{
	free(o->seen.rec);
	o->seen.rec = NULL;
}

typedef enum Pieces
{
	PIECES_WHOLE,
	PIECES_BYTES,
	PIECES_RANDOM
} Pieces;

/*
 * Feed buf (at start) to a new reader configured by cfg (callback replaced),
 * in one piece, byte by byte or in random pieces of 1..20000 bytes.
 */
static Outcome
run_reader(const WalReaderConfig *cfg0, const uint8_t *buf, size_t len,
		   Pieces pieces, uint64_t seed)
{
	WalReaderConfig cfg = *cfg0;
	Outcome		o;
	WalsimError err;
	WalReader  *r;
	size_t		off = 0;

	memset(&o, 0, sizeof(o));
	cfg.on_record = collect;
	cfg.cb_arg = &o.seen;
	r = walreader_create(&cfg, &err);
	ck_assert_msg(r != NULL, "%s", err.message);
	while (off < len)
	{
		size_t		n = len - off;

		if (pieces == PIECES_BYTES)
			n = 1;
		else if (pieces == PIECES_RANDOM)
		{
			n = 1 + next_rand(&seed) % 20000;
			if (next_rand(&seed) % 4 == 0)
				n = 1 + next_rand(&seed) % 40;	/* plenty of tiny pieces */
			if (n > len - off)
				n = len - off;
		}
		walreader_feed(r, buf + off, n);
		off += n;
	}
	o.status = walreader_status(r);
	o.valid_end = walreader_valid_end(r);
	o.last_record = walreader_last_record(r);
	o.error_lsn = walreader_error_lsn(r);
	o.position = walreader_position(r);
	o.count = walreader_record_count(r);
	snprintf(o.message, sizeof(o.message), "%s", walreader_message(r));
	walreader_free(r);
	return o;
}

static WalReaderConfig
config_at(uint64_t start)
{
	WalReaderConfig cfg = {
		.start_lsn = start,
		.seg_size = SEG_SIZE,
		.magic = MAGIC15,
	};

	return cfg;
}

static void
assert_same(const Outcome *a, const Outcome *b, const char *what)
{
	ck_assert_msg(a->status == b->status, "%s: status %s vs %s", what,
				  walreader_status_name(a->status), walreader_status_name(b->status));
	ck_assert_msg(a->valid_end == b->valid_end, "%s: valid end", what);
	ck_assert_msg(a->last_record == b->last_record, "%s: last record", what);
	ck_assert_msg(a->error_lsn == b->error_lsn, "%s: error lsn", what);
	ck_assert_msg(a->position == b->position, "%s: position", what);
	ck_assert_msg(a->count == b->count && a->seen.n == b->seen.n, "%s: count", what);
	ck_assert_str_eq(a->message, b->message);
	ck_assert_msg(memcmp(a->seen.rec, b->seen.rec, a->seen.n * sizeof(WalRecordInfo)) == 0,
				  "%s: records differ", what);
}

static uint64_t
parse_lsn(const char *text)
{
	uint64_t	lsn;
	WalsimError err;

	ck_assert_msg(lsn_parse(text, &lsn, &err), "%s", err.message);
	return lsn;
}

/* -------------------------------------------- real WAL against pg_waldump */

typedef struct Expectation
{
	char		label[32];
	uint64_t	first;
	uint64_t	last;
	uint64_t	records;
	char		stop[16];
	uint64_t	stop_lsn;
} Expectation;

static int
load_expectations(Expectation *ex, int max)
{
	char		path[1024];
	char		line[512];
	FILE	   *f;
	int			n = 0;

	unit_data_path(path, sizeof(path), "wal/expected.txt");
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	while (fgets(line, sizeof(line), f) != NULL && n < max)
	{
		char		first[32],
					last[32],
					at[32];
		unsigned long long records;

		if (line[0] == '#')
			continue;
		ck_assert_int_eq(sscanf(line, "%31s %31s %31s %llu %15s %31s", ex[n].label,
								first, last, &records, ex[n].stop, at), 6);
		ex[n].first = parse_lsn(first);
		ex[n].last = parse_lsn(last);
		ex[n].records = records;
		ex[n].stop_lsn = strcmp(at, "-") == 0 ? 0 : parse_lsn(at);
		n++;
	}
	fclose(f);
	return n;
}

/*
 * Each of the three segments alone, and the three in a row, give the first
 * record, last record, record count and end that pg_waldump reported.
 */
START_TEST(test_real_wal_matches_pg_waldump)
{
	Expectation ex[8];
	int			n = load_expectations(ex, 8);
	size_t		len;
	uint8_t    *wal = load_real_wal(&len);
	int			switches = 0;

	ck_assert_int_eq(n, 5);
	for (int i = 0; i < n; i++)
	{
		uint64_t	start;
		size_t		off,
					size;
		Outcome		o;

		if (strncmp(ex[i].label, "tli2:", 5) == 0)
			continue;			/* test_real_wal_timeline_2 */
		if (strcmp(ex[i].label, "all") == 0)
		{
			start = FIRST_SEG;
			size = len;
		}
		else
		{
			unsigned int tli, hi, lo;

			ck_assert_int_eq(sscanf(ex[i].label, "%8X%8X%8X", &tli, &hi, &lo), 3);
			start = (uint64_t) lo * SEG_SIZE;
			size = SEG_SIZE;
		}
		off = (size_t) (start - FIRST_SEG);
		o = run_reader(&(WalReaderConfig) {.start_lsn = start, .seg_size = SEG_SIZE, .magic = MAGIC15},
					   wal + off, size, PIECES_WHOLE, 0);
		ck_assert_msg(o.seen.n > 0, "%s: no records", ex[i].label);
		ck_assert_msg(o.seen.rec[0].start_lsn == ex[i].first, "%s: first record", ex[i].label);
		ck_assert_msg(o.last_record == ex[i].last, "%s: last record %" PRIX64, ex[i].label, o.last_record);
		ck_assert_msg(o.count == ex[i].records, "%s: %" PRIu64 " records, pg_waldump %" PRIu64,
					  ex[i].label, o.count, ex[i].records);
		if (strcmp(ex[i].stop, "zeroed") == 0)
		{
			ck_assert_int_eq(o.status, WAL_READ_ZEROED);
			ck_assert_uint_eq(o.error_lsn, ex[i].stop_lsn);
			/* the next record would have started at the valid end */
			ck_assert_uint_eq(o.valid_end, ex[i].stop_lsn);
		}
		else if (strcmp(ex[i].stop, "switch") == 0)
		{
			switches++;
			ck_assert_int_eq(o.status, WAL_READ_NEED_DATA);
			ck_assert(o.seen.rec[o.seen.n - 1].is_switch);
			ck_assert_uint_eq(o.seen.rec[o.seen.n - 1].rmid, 0);
			/* validity extends to the end of the segment */
			ck_assert_uint_eq(o.valid_end, start + SEG_SIZE);
			ck_assert_uint_eq(o.position, start + SEG_SIZE);
		}
		else
		{
			ck_assert_str_eq(ex[i].stop, "eof");
			ck_assert_int_eq(o.status, WAL_READ_NEED_DATA);
			/* the segment ends inside a record continued in the next one */
			ck_assert_uint_lt(o.valid_end, start + SEG_SIZE);
		}
		/* xl_prev links each record to the one before */
		for (size_t k = 1; k < o.seen.n; k++)
		{
			ck_assert_uint_eq(o.seen.rec[k].prev_lsn, o.seen.rec[k - 1].start_lsn);
			ck_assert_uint_ge(o.seen.rec[k].start_lsn, o.seen.rec[k - 1].end_lsn);
		}
		outcome_free(&o);
	}
	ck_assert_int_eq(switches, 1);
	free(wal);
}
END_TEST

/*
 * Timeline 2 begins at 0/B011A8, inside segment 0B: its file holds timeline
 * 1's records up to there (on a page that still says timeline 1), then
 * timeline 2's.  Segments 09 and 0A of timeline 1 followed by timeline 2's 0B
 * (its first 256 kB, padded with zeros as the rest was) read to the end
 * pg_waldump found in that file, through the page timeline going 1 -> 2.
 */
START_TEST(test_real_wal_timeline_2)
{
	Expectation ex[8];
	int			n = load_expectations(ex, 8);
	const Expectation *all = NULL,
			   *seg_b = NULL,
			   *tli2 = NULL;
	size_t		len;
	uint8_t    *wal = load_real_wal(&len);
	char		path[1024];
	FILE	   *f;
	WalReaderConfig cfg = config_at(FIRST_SEG);
	Outcome		o;

	for (int i = 0; i < n; i++)
	{
		if (strcmp(ex[i].label, "all") == 0)
			all = &ex[i];
		else if (strcmp(ex[i].label, "00000001000000000000000B") == 0)
			seg_b = &ex[i];
		else if (strcmp(ex[i].label, "tli2:00000002000000000000000B") == 0)
			tli2 = &ex[i];
	}
	ck_assert(all && seg_b && tli2);
	ck_assert_str_eq(tli2->stop, "zeroed");

	/* replace segment 0B of timeline 1 by that of timeline 2 */
	memset(wal + 2 * (size_t) SEG_SIZE, 0, SEG_SIZE);
	unit_data_path(path, sizeof(path), "wal/00000002000000000000000B.tli2-head");
	f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	ck_assert_uint_eq(fread(wal + 2 * (size_t) SEG_SIZE, 1, SEG_SIZE, f), 256 * 1024);
	fclose(f);

	o = run_reader(&cfg, wal, len, PIECES_WHOLE, 0);
	ck_assert_msg(o.status == WAL_READ_ZEROED, "%s", o.message);
	ck_assert_uint_eq(o.error_lsn, tli2->stop_lsn);
	ck_assert_uint_eq(o.valid_end, tli2->stop_lsn);
	ck_assert_uint_eq(o.last_record, tli2->last);
	/* all of timeline 1 before segment 0B, then everything in the new 0B */
	ck_assert_uint_eq(o.count, all->records - seg_b->records + tli2->records);
	{
		Outcome		b = run_reader(&cfg, wal, len, PIECES_RANDOM, 17);

		assert_same(&o, &b, "timeline 2 pieces");
		outcome_free(&b);
	}
	outcome_free(&o);

	/* a reader told to expect timeline 2 from the start refuses page 0/B00000 */
	cfg = config_at(FIRST_SEG + 2 * SEG_SIZE);
	cfg.min_tli = 2;
	o = run_reader(&cfg, wal + 2 * (size_t) SEG_SIZE, SEG_SIZE, PIECES_WHOLE, 0);
	ck_assert_int_eq(o.status, WAL_READ_BAD_TIMELINE);
	ck_assert_uint_eq(o.error_lsn, FIRST_SEG + 2 * SEG_SIZE);
	ck_assert_str_eq(o.message, "out-of-sequence timeline ID 1 (after 2) in page at 0/B00000");
	outcome_free(&o);
	free(wal);
}
END_TEST

/* One byte at a time, and random pieces, give what one piece gives */
START_TEST(test_real_wal_any_pieces)
{
	size_t		len;
	uint8_t    *wal = load_real_wal(&len);
	WalReaderConfig cfg = config_at(FIRST_SEG);
	Outcome		whole = run_reader(&cfg, wal, len, PIECES_WHOLE, 0);

	ck_assert_int_eq(whole.status, WAL_READ_ZEROED);
	for (uint64_t seed = 1; seed <= 3; seed++)
	{
		Outcome		o = run_reader(&cfg, wal, len, PIECES_RANDOM, seed * 7919);

		assert_same(&whole, &o, "random pieces");
		outcome_free(&o);
	}
	{
		/* byte by byte through the segment with the switch and into the next */
		WalReaderConfig c2 = config_at(FIRST_SEG + SEG_SIZE);
		Outcome		w2 = run_reader(&c2, wal + SEG_SIZE, 2 * (size_t) SEG_SIZE, PIECES_WHOLE, 0);
		Outcome		b2 = run_reader(&c2, wal + SEG_SIZE, 2 * (size_t) SEG_SIZE, PIECES_BYTES, 0);

		assert_same(&w2, &b2, "bytes");
		outcome_free(&w2);
		outcome_free(&b2);
	}
	outcome_free(&whole);
	free(wal);
}
END_TEST

/*
 * Truncated at each byte: the state after k bytes fed one at a time equals a
 * fresh reader given the first k bytes at once, and never claims more than
 * it has seen.  Over the start of segment 0A (a continued record to skip,
 * records crossing pages).
 */
START_TEST(test_real_wal_truncated_everywhere)
{
	size_t		len;
	uint8_t    *wal = load_real_wal(&len);
	const uint8_t *seg = wal + SEG_SIZE;
	WalReaderConfig cfg = config_at(FIRST_SEG + SEG_SIZE);
	WalsimError err;
	WalReader  *bytewise = walreader_create(&cfg, &err);
	size_t		limit = 3 * WAL_BLCKSZ;

	ck_assert_ptr_nonnull(bytewise);
	for (size_t k = 1; k <= limit; k++)
	{
		walreader_feed(bytewise, seg + k - 1, 1);
		ck_assert_int_eq(walreader_status(bytewise), WAL_READ_NEED_DATA);
		ck_assert_uint_eq(walreader_position(bytewise), cfg.start_lsn + k);
		ck_assert_uint_le(walreader_valid_end(bytewise), WAL_MAXALIGN(cfg.start_lsn + k));
		/* a fresh reader on the prefix, at a prime stride to stay quick */
		if (k % 61 == 0 || k < 200 || (k > WAL_BLCKSZ - 100 && k < WAL_BLCKSZ + 100))
		{
			Outcome		o = run_reader(&cfg, seg, k, PIECES_WHOLE, 0);

			ck_assert_uint_eq(o.valid_end, walreader_valid_end(bytewise));
			ck_assert_uint_eq(o.count, walreader_record_count(bytewise));
			ck_assert_uint_eq(o.position, walreader_position(bytewise));
			outcome_free(&o);
		}
	}
	walreader_free(bytewise);
	free(wal);
}
END_TEST

/* ---------------------------------------------- corrupted copies of real WAL */

/* The records of the three segments, read once. */
static Outcome
clean_run(const uint8_t *wal, size_t len)
{
	WalReaderConfig cfg = config_at(FIRST_SEG);

	return run_reader(&cfg, wal, len, PIECES_WHOLE, 0);
}

/* Index of the first record starting at or after lsn that fits on its page. */
static size_t
record_at_or_after(const Seen *s, uint64_t lsn, bool on_one_page)
{
	for (size_t i = 1; i < s->n; i++)
	{
		const WalRecordInfo *r = &s->rec[i];

		if (r->start_lsn < lsn || r->is_switch)
			continue;
		if (on_one_page && r->start_lsn / WAL_BLCKSZ != (r->end_lsn - 1) / WAL_BLCKSZ)
			continue;
		if (!on_one_page && r->start_lsn / WAL_BLCKSZ == (r->end_lsn - 1) / WAL_BLCKSZ)
			continue;
		return i;
	}
	ck_abort_msg("no suitable record after %" PRIX64, lsn);
	return 0;
}

static void
expect_stop(const uint8_t *wal, size_t len, WalReadStatus want, uint64_t at,
			const WalRecordInfo *last_good, const char *what)
{
	WalReaderConfig cfg = config_at(FIRST_SEG);
	Outcome		o = run_reader(&cfg, wal, len, PIECES_WHOLE, 0);
	Outcome		b = run_reader(&cfg, wal, len, PIECES_RANDOM, 99);

	ck_assert_msg(o.status == want, "%s: got %s (%s), want %s", what,
				  walreader_status_name(o.status), o.message, walreader_status_name(want));
	ck_assert_msg(o.error_lsn == at, "%s: stopped at %" PRIX64 ", want %" PRIX64 " (%s)",
				  what, o.error_lsn, at, o.message);
	ck_assert_msg(o.valid_end == last_good->end_lsn, "%s: valid end %" PRIX64 ", want %" PRIX64,
				  what, o.valid_end, last_good->end_lsn);
	ck_assert_uint_eq(o.last_record, last_good->start_lsn);
	ck_assert_msg(o.message[0] != '\0', "%s: no message", what);
	assert_same(&o, &b, what);
	outcome_free(&o);
	outcome_free(&b);
}

START_TEST(test_bit_flips_and_torn_writes)
{
	size_t		len;
	uint8_t    *wal = load_real_wal(&len);
	uint8_t    *bad = malloc(len);
	Outcome		clean = clean_run(wal, len);
	const Seen *s = &clean.seen;
	size_t		k;
	size_t		off;

	ck_assert_ptr_nonnull(bad);

	/* a bit flipped in a record body: bad CRC at that record */
	k = record_at_or_after(s, FIRST_SEG + 0x30000, true);
	memcpy(bad, wal, len);
	off = (size_t) (s->rec[k].start_lsn - FIRST_SEG);
	bad[off + s->rec[k].tot_len - 1] ^= 0x10;
	expect_stop(bad, len, WAL_READ_BAD_CRC, s->rec[k].start_lsn, &s->rec[k - 1], "body bit");

	/* a bit flipped in the CRC-covered header (xl_info) */
	memcpy(bad, wal, len);
	bad[off + 16] ^= 0x01;
	expect_stop(bad, len, WAL_READ_BAD_CRC, s->rec[k].start_lsn, &s->rec[k - 1], "info bit");

	/* the CRC itself */
	memcpy(bad, wal, len);
	bad[off + 20] ^= 0x80;
	expect_stop(bad, len, WAL_READ_BAD_CRC, s->rec[k].start_lsn, &s->rec[k - 1], "crc bit");

	/* xl_prev pointing elsewhere */
	memcpy(bad, wal, len);
	bad[off + 8] ^= 0x08;
	expect_stop(bad, len, WAL_READ_BAD_PREV, s->rec[k].start_lsn, &s->rec[k - 1], "prev bit");

	/* xl_tot_len: too short, zero, too long for PostgreSQL */
	memcpy(bad, wal, len);
	unit_put_le32(bad + off, 23);
	expect_stop(bad, len, WAL_READ_BAD_LENGTH, s->rec[k].start_lsn, &s->rec[k - 1], "tot_len 23");
	unit_put_le32(bad + off, 0x40000000);
	expect_stop(bad, len, WAL_READ_BAD_LENGTH, s->rec[k].start_lsn, &s->rec[k - 1], "tot_len 1 GB");
	unit_put_le32(bad + off, 0);
	expect_stop(bad, len, WAL_READ_ZEROED, s->rec[k].start_lsn, &s->rec[k - 1], "tot_len 0");
	/* a length one byte longer: the CRC covers the wrong bytes */
	unit_put_le32(bad + off, s->rec[k].tot_len + 1);
	expect_stop(bad, len, WAL_READ_BAD_CRC, s->rec[k].start_lsn, &s->rec[k - 1], "tot_len + 1");

	/* a resource manager no PostgreSQL 15 has */
	memcpy(bad, wal, len);
	bad[off + 17] = 60;
	expect_stop(bad, len, WAL_READ_BAD_RMID, s->rec[k].start_lsn, &s->rec[k - 1], "rmid");

	/* torn write: everything from a record start on is zero */
	memcpy(bad, wal, len);
	memset(bad + off, 0, len - off);
	expect_stop(bad, len, WAL_READ_ZEROED, s->rec[k].start_lsn, &s->rec[k - 1], "zeroed tail");

	/* torn write inside a multi-page record: the next page is zero */
	k = record_at_or_after(s, FIRST_SEG + 0x20000, false);
	{
		uint64_t	page = (s->rec[k].start_lsn / WAL_BLCKSZ + 1) * WAL_BLCKSZ;

		memcpy(bad, wal, len);
		memset(bad + (page - FIRST_SEG), 0, len - (size_t) (page - FIRST_SEG));
		expect_stop(bad, len, WAL_READ_ZEROED, page, &s->rec[k - 1], "zeroed continuation page");

		/* ... or the continuation page has another magic, address, flag, length */
		memcpy(bad, wal, len);
		unit_put_le16(bad + (page - FIRST_SEG), 0xD10D);
		expect_stop(bad, len, WAL_READ_BAD_MAGIC, page, &s->rec[k - 1], "magic");
		memcpy(bad, wal, len);
		unit_put_le64(bad + (page - FIRST_SEG) + 8, page - 0x400000);
		expect_stop(bad, len, WAL_READ_BAD_PAGEADDR, page, &s->rec[k - 1], "pageaddr");
		memcpy(bad, wal, len);
		bad[(page - FIRST_SEG) + 2] &= (uint8_t) ~0x01;
		expect_stop(bad, len, WAL_READ_BAD_CONTRECORD, s->rec[k].start_lsn, &s->rec[k - 1],
					"contrecord flag cleared");
		memcpy(bad, wal, len);
		unit_put_le32(bad + (page - FIRST_SEG) + 16, wal_get_u32(bad + (page - FIRST_SEG) + 16) + 8);
		expect_stop(bad, len, WAL_READ_BAD_CONTRECORD, s->rec[k].start_lsn, &s->rec[k - 1],
					"rem_len off");
		memcpy(bad, wal, len);
		unit_put_le32(bad + (page - FIRST_SEG) + 16, 0);
		expect_stop(bad, len, WAL_READ_BAD_CONTRECORD, page, &s->rec[k - 1], "rem_len 0");
		memcpy(bad, wal, len);
		bad[(page - FIRST_SEG) + 2] |= 0x20;
		expect_stop(bad, len, WAL_READ_BAD_PAGE_HEADER, page, &s->rec[k - 1], "unknown flag");
		/* a lower timeline than the pages before */
		memcpy(bad, wal, len);
		for (uint64_t p = FIRST_SEG; p < page; p += WAL_BLCKSZ)
			unit_put_le32(bad + (p - FIRST_SEG) + 4, 2);
		expect_stop(bad, len, WAL_READ_BAD_TIMELINE, page, &s->rec[k - 1], "timeline");
	}

	/* the long header of segment 0B names another segment size */
	{
		size_t		seg_b = 2 * (size_t) SEG_SIZE;
		size_t		j;

		for (j = 0; j < s->n && s->rec[j].start_lsn < FIRST_SEG + seg_b; j++)
			;
		memcpy(bad, wal, len);
		unit_put_le32(bad + seg_b + 32, 2u << 20);
		expect_stop(bad, len, WAL_READ_BAD_PAGE_HEADER, FIRST_SEG + seg_b, &s->rec[j - 1],
					"long header segment size");
		/* or another system */
		memcpy(bad, wal, len);
		bad[seg_b + 24] ^= 1;
		expect_stop(bad, len, WAL_READ_BAD_PAGE_HEADER, FIRST_SEG + seg_b, &s->rec[j - 1],
					"long header sysid");
		/* the switch padding before it is never looked at */
		memcpy(bad, wal, len);
		memset(bad + (s->rec[j - 1].start_lsn - FIRST_SEG) + 24, 0xAB,
			   (size_t) (FIRST_SEG + seg_b - s->rec[j - 1].start_lsn - 24));
		{
			Outcome		o = clean_run(bad, len);

			assert_same(&clean, &o, "garbage after switch");
			outcome_free(&o);
		}
		/* a recycled segment: segment 0B's pages say they are from 0/300000 */
		memcpy(bad, wal, len);
		for (size_t p = seg_b; p < len; p += WAL_BLCKSZ)
			unit_put_le64(bad + p + 8, (uint64_t) (p - seg_b) + 0x300000);
		expect_stop(bad, len, WAL_READ_BAD_PAGEADDR, FIRST_SEG + seg_b, &s->rec[j - 1],
					"recycled segment");
	}

	outcome_free(&clean);
	free(bad);
	free(wal);
}
END_TEST

/* A record as a contrecord where a new one should start */
START_TEST(test_contrecord_where_record_starts)
{
	size_t		len;
	uint8_t    *wal = load_real_wal(&len);
	Outcome		clean = clean_run(wal, len);
	const Seen *s = &clean.seen;
	size_t		k;

	/* a record that starts right after a short page header */
	for (k = 1; k < s->n; k++)
		if (s->rec[k].start_lsn % WAL_BLCKSZ == WAL_SHORT_PHD_SIZE)
			break;
	ck_assert_msg(k < s->n, "no record starts a page in the test data");
	{
		size_t		page = (size_t) (s->rec[k].start_lsn - WAL_SHORT_PHD_SIZE - FIRST_SEG);

		wal[page + 2] |= 0x01;
		unit_put_le32(wal + page + 16, 8);
		expect_stop(wal, len, WAL_READ_BAD_CONTRECORD, s->rec[k].start_lsn, &s->rec[k - 1],
					"unexpected contrecord");
	}
	outcome_free(&clean);
	free(wal);
}
END_TEST

/* After the reader stopped, more input changes nothing */
START_TEST(test_input_after_stop_ignored)
{
	size_t		len;
	uint8_t    *wal = load_real_wal(&len);
	WalReaderConfig cfg = config_at(FIRST_SEG);
	WalsimError err;
	WalReader  *r = walreader_create(&cfg, &err);
	uint64_t	pos;

	ck_assert_int_eq(walreader_feed(r, wal, len), WAL_READ_ZEROED);
	pos = walreader_position(r);
	ck_assert_int_eq(walreader_feed(r, wal, 4096), WAL_READ_ZEROED);
	ck_assert_uint_eq(walreader_position(r), pos);
	ck_assert_int_eq(walreader_feed(r, wal, 0), WAL_READ_ZEROED);
	walreader_free(r);
	free(wal);
}
END_TEST

/* Follow mode: zeros at the end become records; rewind and feed again */
START_TEST(test_rewind_follows_growing_wal)
{
	size_t		len;
	uint8_t    *wal = load_real_wal(&len);
	uint8_t    *grow = malloc(len);
	Outcome		clean = clean_run(wal, len);
	WalReaderConfig cfg = config_at(FIRST_SEG);
	WalsimError err;
	WalReader  *r;
	uint64_t	cut = clean.seen.rec[600].start_lsn + 40;	/* inside record 600 */
	Seen		seen = {0};

	cfg.on_record = collect;
	cfg.cb_arg = &seen;
	r = walreader_create(&cfg, &err);
	memcpy(grow, wal, len);
	memset(grow + (cut - FIRST_SEG), 0, len - (size_t) (cut - FIRST_SEG));
	walreader_feed(r, grow, len);
	ck_assert_uint_eq(walreader_valid_end(r), clean.seen.rec[599].end_lsn);
	ck_assert_int_ne(walreader_status(r), WAL_READ_NEED_DATA);

	/* the writer finished: read on from the valid end */
	walreader_rewind(r);
	ck_assert_int_eq(walreader_status(r), WAL_READ_NEED_DATA);
	ck_assert_str_eq(walreader_message(r), "");
	ck_assert_uint_eq(walreader_position(r), clean.seen.rec[599].end_lsn);
	{
		size_t		from = (size_t) (walreader_position(r) - FIRST_SEG);

		walreader_feed(r, wal + from, len - from);
	}
	ck_assert_int_eq(walreader_status(r), clean.status);
	ck_assert_uint_eq(walreader_valid_end(r), clean.valid_end);
	ck_assert_uint_eq(walreader_record_count(r), clean.count);
	ck_assert_uint_eq(seen.n, clean.seen.n);
	ck_assert(memcmp(seen.rec, clean.seen.rec, seen.n * sizeof(WalRecordInfo)) == 0);

	/* rewinding before any record goes back to the start */
	walreader_free(r);
	cfg.on_record = NULL;
	r = walreader_create(&cfg, &err);
	walreader_feed(r, wal, 100);
	walreader_rewind(r);
	ck_assert_uint_eq(walreader_position(r), FIRST_SEG);
	ck_assert_int_eq(walreader_feed(r, wal, len), WAL_READ_ZEROED);
	ck_assert_uint_eq(walreader_valid_end(r), clean.valid_end);

	walreader_free(r);
	free(seen.rec);
	outcome_free(&clean);
	free(grow);
	free(wal);
}
END_TEST

/* Starting at a record boundary with the previous record known */
START_TEST(test_start_at_record)
{
	size_t		len;
	uint8_t    *wal = load_real_wal(&len);
	Outcome		clean = clean_run(wal, len);
	const WalRecordInfo *r = &clean.seen.rec[300];
	WalReaderConfig cfg = config_at(r->start_lsn);
	size_t		off = (size_t) (r->start_lsn - FIRST_SEG);
	Outcome		o;

	ck_assert_uint_ne(r->start_lsn % WAL_BLCKSZ, 0);
	cfg.prev_lsn = clean.seen.rec[299].start_lsn;
	o = run_reader(&cfg, wal + off, len - off, PIECES_WHOLE, 0);
	ck_assert_int_eq(o.status, WAL_READ_ZEROED);
	ck_assert_uint_eq(o.count, clean.count - 300);
	ck_assert_uint_eq(o.valid_end, clean.valid_end);
	outcome_free(&o);

	/* a wrong previous record is caught on the first record */
	cfg.prev_lsn = clean.seen.rec[298].start_lsn;
	o = run_reader(&cfg, wal + off, len - off, PIECES_WHOLE, 0);
	ck_assert_int_eq(o.status, WAL_READ_BAD_PREV);
	ck_assert_uint_eq(o.error_lsn, r->start_lsn);
	ck_assert_uint_eq(o.valid_end, r->start_lsn);
	ck_assert_uint_eq(o.last_record, 0);
	outcome_free(&o);

	/* prev unknown: only "before itself" is checked */
	cfg.prev_lsn = 0;
	{
		uint8_t    *bad = malloc(len - off);

		memcpy(bad, wal + off, len - off);
		unit_put_le64(bad + 8, r->start_lsn + 8);
		o = run_reader(&cfg, bad, len - off, PIECES_WHOLE, 0);
		ck_assert_int_eq(o.status, WAL_READ_BAD_PREV);
		outcome_free(&o);
		free(bad);
	}
	outcome_free(&clean);
	free(wal);
}
END_TEST

/* A lower record size limit turns long records into a length error */
START_TEST(test_max_record_size)
{
	size_t		len;
	uint8_t    *wal = load_real_wal(&len);
	Outcome		clean = clean_run(wal, len);
	WalReaderConfig cfg = config_at(FIRST_SEG);
	size_t		k;
	Outcome		o;

	for (k = 0; k < clean.seen.n; k++)
		if (clean.seen.rec[k].tot_len > 4000)
			break;
	ck_assert_msg(k > 0 && k < clean.seen.n, "no record above 4000 bytes");
	cfg.max_record_size = 4000;
	o = run_reader(&cfg, wal, len, PIECES_WHOLE, 0);
	ck_assert_int_eq(o.status, WAL_READ_BAD_LENGTH);
	ck_assert_uint_eq(o.error_lsn, clean.seen.rec[k].start_lsn);
	ck_assert_msg(strstr(o.message, "too long (limit 4000)") != NULL, "%s", o.message);
	outcome_free(&o);
	outcome_free(&clean);
	free(wal);
}
END_TEST

START_TEST(test_bad_config)
{
	WalsimError err;
	WalReader  *r;
	WalReaderConfig cfg = config_at(FIRST_SEG);

	cfg.seg_size = 3000000;
	ck_assert_ptr_null(walreader_create(&cfg, &err));
	cfg = config_at(FIRST_SEG);
	cfg.magic = 0xD101;			/* PostgreSQL 12 */
	ck_assert_ptr_null(walreader_create(&cfg, &err));
	ck_assert_str_eq(err.message, "WAL page magic D101 belongs to no PostgreSQL version walsim knows");
	cfg = config_at(FIRST_SEG + 44);
	ck_assert_ptr_null(walreader_create(&cfg, &err));
	ck_assert_str_eq(err.message, "WAL reader start 0/90002C: not a record boundary (records start at multiples of 8)");
	cfg = config_at(FIRST_SEG + 16);
	ck_assert_ptr_null(walreader_create(&cfg, &err));
	ck_assert_str_eq(err.message, "WAL reader start 0/900010: inside a page header");
	cfg = config_at(FIRST_SEG + 32);	/* the long header is 40 bytes */
	ck_assert_ptr_null(walreader_create(&cfg, &err));
	ck_assert_str_eq(err.message, "WAL reader start 0/900020: inside a page header");
	cfg = config_at(FIRST_SEG + WAL_BLCKSZ + 32);	/* a short one is 24 */
	ck_assert_ptr_nonnull(r = walreader_create(&cfg, &err));
	walreader_free(r);
	cfg = config_at(FIRST_SEG);
	cfg.max_record_size = 10;
	ck_assert_ptr_null(walreader_create(&cfg, &err));
	ck_assert_str_eq(err.message, "WAL reader: max_record_size 10 is below the record header size 24");
	walreader_free(NULL);
}
END_TEST

START_TEST(test_status_names)
{
	ck_assert_str_eq(walreader_status_name(WAL_READ_NEED_DATA), "need more data");
	ck_assert_str_eq(walreader_status_name(WAL_READ_ZEROED), "zeroed (end of WAL)");
	ck_assert_str_eq(walreader_status_name(WAL_READ_BAD_MAGIC), "bad page magic");
	ck_assert_str_eq(walreader_status_name(WAL_READ_BAD_PAGE_HEADER), "bad page header");
	ck_assert_str_eq(walreader_status_name(WAL_READ_BAD_PAGEADDR), "bad page address");
	ck_assert_str_eq(walreader_status_name(WAL_READ_BAD_TIMELINE), "bad timeline");
	ck_assert_str_eq(walreader_status_name(WAL_READ_BAD_LENGTH), "bad record length");
	ck_assert_str_eq(walreader_status_name(WAL_READ_BAD_RMID), "bad resource manager");
	ck_assert_str_eq(walreader_status_name(WAL_READ_BAD_PREV), "bad xl_prev");
	ck_assert_str_eq(walreader_status_name(WAL_READ_BAD_CRC), "bad CRC");
	ck_assert_str_eq(walreader_status_name(WAL_READ_BAD_CONTRECORD), "bad continuation");
	ck_assert_str_eq(walreader_status_name((WalReadStatus) 77), "unknown status");
}
END_TEST

/* ------------------------------------------------------- synthetic WAL */

/*
 * A tiny WAL writer following PostgreSQL's layout: page headers (long at
 * segment starts) with XLP_FIRST_IS_CONTRECORD and xlp_rem_len on pages that
 * continue a record, 8-aligned records, CRC-32C over body then header.
 */
typedef struct Synth
{
	uint8_t    *buf;
	size_t		cap;
	uint64_t	base;			/* LSN of buf[0], a segment start */
	uint64_t	pos;
	uint64_t	prev;			/* start of the last complete record */
	uint32_t	seg_size;
	uint16_t	next_page_flags;	/* extra xlp_info for the next page */
} Synth;

static void
synth_init(Synth *s, uint64_t base, uint32_t seg_size, size_t cap)
{
	memset(s, 0, sizeof(*s));
	s->buf = calloc(1, cap);
	ck_assert_ptr_nonnull(s->buf);
	s->cap = cap;
	s->base = base;
	s->pos = base;
	s->seg_size = seg_size;
}

static void
synth_page_header(Synth *s, uint32_t rem_len)
{
	uint8_t    *p = s->buf + (s->pos - s->base);
	bool		is_long = s->pos % s->seg_size == 0;
	uint16_t	info = (uint16_t) ((is_long ? 0x0002 : 0) | (rem_len ? 0x0001 : 0) |
								   s->next_page_flags);

	ck_assert_uint_le(s->pos - s->base + WAL_LONG_PHD_SIZE, s->cap);
	unit_put_le16(p, MAGIC15);
	unit_put_le16(p + 2, info);
	unit_put_le32(p + 4, 1);
	unit_put_le64(p + 8, s->pos);
	unit_put_le32(p + 16, rem_len);
	if (is_long)
	{
		unit_put_le64(p + 24, UINT64_C(7000000000000000001));
		unit_put_le32(p + 32, s->seg_size);
		unit_put_le32(p + 36, WAL_BLCKSZ);
	}
	s->next_page_flags = 0;
	s->pos += is_long ? WAL_LONG_PHD_SIZE : WAL_SHORT_PHD_SIZE;
}

/*
 * Write n record bytes (of which done were written before), starting page
 * headers as needed; stop early at a page end when stop_at_page is set.
 */
static void
synth_bytes(Synth *s, const uint8_t *rec, uint32_t tot_len, bool stop_at_page)
{
	uint32_t	done = 0;

	while (done < tot_len)
	{
		uint64_t	room;
		uint32_t	n;

		if (s->pos % WAL_BLCKSZ == 0)
		{
			if (stop_at_page && done > 0)
				return;
			synth_page_header(s, done ? tot_len - done : 0);
		}
		room = WAL_BLCKSZ - s->pos % WAL_BLCKSZ;
		n = tot_len - done < room ? tot_len - done : (uint32_t) room;
		ck_assert_uint_le(s->pos - s->base + n, s->cap);
		memcpy(s->buf + (s->pos - s->base), rec + done, n);
		s->pos += n;
		done += n;
	}
}

/* Append a record with body_len body bytes; returns its start LSN. */
static uint64_t
synth_record_ex(Synth *s, uint8_t rmid, uint8_t info, uint32_t body_len, bool complete)
{
	uint32_t	tot_len = WAL_RECORD_HEADER_SIZE + body_len;
	uint8_t    *rec = malloc(tot_len);
	uint64_t	start;
	uint32_t	crc;

	ck_assert_ptr_nonnull(rec);
	s->pos = WAL_MAXALIGN(s->pos);
	if (s->pos % WAL_BLCKSZ == 0)
		synth_page_header(s, 0);
	start = s->pos;
	for (uint32_t i = 0; i < body_len; i++)
		rec[WAL_RECORD_HEADER_SIZE + i] = (uint8_t) (start + i * 31);
	unit_put_le32(rec, tot_len);
	unit_put_le32(rec + 4, 1000 + (uint32_t) (start & 0xFFFF));
	unit_put_le64(rec + 8, s->prev);
	rec[16] = info;
	rec[17] = rmid;
	rec[18] = rec[19] = 0;
	crc = crc32c_update(CRC32C_INIT, rec + WAL_RECORD_HEADER_SIZE, body_len);
	crc = crc32c_final(crc32c_update(crc, rec, 20));
	unit_put_le32(rec + 20, crc);
	synth_bytes(s, rec, tot_len, !complete);
	free(rec);
	if (complete)
		s->prev = start;
	return start;
}

static uint64_t
synth_record(Synth *s, uint32_t body_len)
{
	return synth_record_ex(s, 10, 0x00, body_len, true);
}

/* XLOG_SWITCH, then the rest of the segment stays zero */
static uint64_t
synth_switch(Synth *s)
{
	uint64_t	start = synth_record_ex(s, 0, 0x40, 0, true);

	s->pos = (WAL_MAXALIGN(s->pos) + s->seg_size - 1) / s->seg_size * s->seg_size;
	return start;
}

static Outcome
synth_read(const Synth *s, Pieces pieces, uint64_t seed)
{
	WalReaderConfig cfg = config_at(s->base);

	cfg.seg_size = s->seg_size;
	return run_reader(&cfg, s->buf, (size_t) (s->pos - s->base), pieces, seed);
}

/* The same result however the synthetic stream is cut, and at each byte. */
static void
synth_check_pieces(const Synth *s, const Outcome *whole)
{
	Outcome		b = synth_read(s, PIECES_BYTES, 0);
	Outcome		r = synth_read(s, PIECES_RANDOM, 5);

	assert_same(whole, &b, "synthetic bytes");
	assert_same(whole, &r, "synthetic random");
	outcome_free(&b);
	outcome_free(&r);
}

/*
 * Records ending exactly on a page end, headers split across pages, a
 * record spanning several pages and a segment boundary, a switch record.
 */
START_TEST(test_synthetic_layouts)
{
	Synth		s;
	uint64_t	base = UINT64_C(0x5000000);
	uint64_t	exact,
				split,
				big,
				after;
	Outcome		o;

	synth_init(&s, base, SEG_SIZE, 3 * SEG_SIZE);
	synth_record(&s, 100);
	/* fill up to 8 bytes before the page end, then a header split 8/16 */
	synth_record(&s, (uint32_t) (WAL_BLCKSZ - 8 - WAL_MAXALIGN(s.pos) % WAL_BLCKSZ - WAL_RECORD_HEADER_SIZE));
	ck_assert_uint_eq(s.pos % WAL_BLCKSZ, WAL_BLCKSZ - 8);
	split = synth_record(&s, 50);
	/* a record ending exactly at the end of the page */
	exact = synth_record(&s, (uint32_t) (WAL_BLCKSZ - WAL_MAXALIGN(s.pos) % WAL_BLCKSZ - WAL_RECORD_HEADER_SIZE));
	ck_assert_uint_eq(s.pos % WAL_BLCKSZ, 0);
	after = synth_record(&s, 0);
	/* a 3-page record, then records up to and across the segment end */
	big = synth_record(&s, 3 * WAL_BLCKSZ);
	while (s.pos < base + SEG_SIZE - 3 * WAL_BLCKSZ)
		synth_record(&s, 2000);
	synth_record(&s, 5 * WAL_BLCKSZ);
	ck_assert_uint_gt(s.pos, base + SEG_SIZE);
	synth_record(&s, 10);
	synth_switch(&s);
	synth_record(&s, 10);
	synth_record(&s, 10);

	o = synth_read(&s, PIECES_WHOLE, 0);
	ck_assert_msg(o.status == WAL_READ_NEED_DATA, "%s", o.message);
	ck_assert_uint_eq(o.valid_end, WAL_MAXALIGN(s.pos));
	for (size_t i = 0; i < o.seen.n; i++)
	{
		if (o.seen.rec[i].start_lsn == split)
			ck_assert_uint_eq(o.seen.rec[i].tot_len, 74);
		if (o.seen.rec[i].start_lsn == exact)
			ck_assert_uint_eq(o.seen.rec[i].end_lsn % WAL_BLCKSZ, 0);
		if (o.seen.rec[i].start_lsn == big)
			ck_assert_uint_eq(o.seen.rec[i].tot_len, 3 * WAL_BLCKSZ + 24);
	}
	/* the record after the exact fit starts after the next page header */
	ck_assert_uint_eq(after % WAL_BLCKSZ, WAL_SHORT_PHD_SIZE);
	synth_check_pieces(&s, &o);
	outcome_free(&o);
	free(s.buf);
}
END_TEST

/*
 * A record left incomplete by a crash and overwritten: the page that would
 * continue it has XLP_FIRST_IS_OVERWRITE_CONTRECORD and a new record whose
 * xl_prev is the last complete record.
 */
START_TEST(test_synthetic_overwrite_contrecord)
{
	Synth		s;
	uint64_t	last_good,
				after;
	Outcome		o;

	synth_init(&s, UINT64_C(0x2000000), SEG_SIZE, SEG_SIZE);
	last_good = synth_record(&s, 300);
	synth_record_ex(&s, 10, 0, 3 * WAL_BLCKSZ, false);	/* stops at a page end */
	ck_assert_uint_eq(s.pos % WAL_BLCKSZ, 0);
	s.next_page_flags = 0x0008;
	after = synth_record_ex(&s, 0, 0x90, 8, true);
	synth_record(&s, 20);
	o = synth_read(&s, PIECES_WHOLE, 0);
	ck_assert_msg(o.status == WAL_READ_NEED_DATA, "%s", o.message);
	ck_assert_uint_eq(o.count, 3);
	ck_assert_uint_eq(o.seen.rec[0].start_lsn, last_good);
	ck_assert_uint_eq(o.seen.rec[1].start_lsn, after);
	ck_assert_uint_eq(o.seen.rec[1].prev_lsn, last_good);
	synth_check_pieces(&s, &o);
	outcome_free(&o);
	free(s.buf);
}
END_TEST

/* A stream starting inside a record that spans whole pages */
START_TEST(test_synthetic_start_in_long_continuation)
{
	Synth		s;
	uint64_t	first;
	Outcome		o;
	WalReaderConfig cfg;

	synth_init(&s, UINT64_C(0x3000000), SEG_SIZE, SEG_SIZE);
	synth_record(&s, 100);
	synth_record(&s, 4 * WAL_BLCKSZ);	/* covers pages 1..4 entirely */
	first = synth_record(&s, 10);
	synth_record(&s, 10);
	/* start at page 2: two pages of continuation to skip */
	cfg = config_at(s.base + 2 * WAL_BLCKSZ);
	o = run_reader(&cfg, s.buf + 2 * WAL_BLCKSZ, (size_t) (s.pos - s.base - 2 * WAL_BLCKSZ),
				   PIECES_WHOLE, 0);
	ck_assert_msg(o.status == WAL_READ_NEED_DATA, "%s", o.message);
	ck_assert_uint_eq(o.count, 2);
	ck_assert_uint_eq(o.seen.rec[0].start_lsn, first);
	outcome_free(&o);
	free(s.buf);
}
END_TEST

/* Truncation at every byte of a small synthetic stream */
START_TEST(test_synthetic_truncated_at_each_byte)
{
	Synth		s;
	WalReaderConfig cfg;
	WalsimError err;
	WalReader  *bytewise;
	size_t		len;

	synth_init(&s, UINT64_C(0x1000000), SEG_SIZE, 4 * WAL_BLCKSZ);
	synth_record(&s, 40);
	synth_record(&s, WAL_BLCKSZ);
	synth_record(&s, 0);
	synth_record(&s, 7);
	len = (size_t) (s.pos - s.base);
	cfg = config_at(s.base);
	bytewise = walreader_create(&cfg, &err);
	for (size_t k = 0; k <= len; k++)
	{
		Outcome		o = run_reader(&cfg, s.buf, k, PIECES_WHOLE, 0);

		if (k > 0)
			walreader_feed(bytewise, s.buf + k - 1, 1);
		ck_assert_int_eq(o.status, WAL_READ_NEED_DATA);
		ck_assert_uint_eq(o.position, s.base + k);
		ck_assert_uint_eq(o.valid_end, walreader_valid_end(bytewise));
		ck_assert_uint_eq(o.count, walreader_record_count(bytewise));
		outcome_free(&o);
	}
	ck_assert_uint_eq(walreader_record_count(bytewise), 4);
	walreader_free(bytewise);
	free(s.buf);
}
END_TEST

static Suite *
walreader_suite(void)
{
	Suite	   *s = suite_create("walreader");
	TCase	   *real = tcase_create("real");
	TCase	   *synth = tcase_create("synthetic");

	/* Valgrind runs these too: generous time */
	tcase_set_timeout(real, 600);
	tcase_add_test(real, test_real_wal_matches_pg_waldump);
	tcase_add_test(real, test_real_wal_timeline_2);
	tcase_add_test(real, test_real_wal_any_pieces);
	tcase_add_test(real, test_real_wal_truncated_everywhere);
	tcase_add_test(real, test_bit_flips_and_torn_writes);
	tcase_add_test(real, test_contrecord_where_record_starts);
	tcase_add_test(real, test_input_after_stop_ignored);
	tcase_add_test(real, test_rewind_follows_growing_wal);
	tcase_add_test(real, test_start_at_record);
	tcase_add_test(real, test_max_record_size);
	tcase_add_test(real, test_bad_config);
	tcase_add_test(real, test_status_names);
	suite_add_tcase(s, real);

	tcase_set_timeout(synth, 600);
	tcase_add_test(synth, test_synthetic_layouts);
	tcase_add_test(synth, test_synthetic_overwrite_contrecord);
	tcase_add_test(synth, test_synthetic_start_in_long_continuation);
	tcase_add_test(synth, test_synthetic_truncated_at_each_byte);
	suite_add_tcase(s, synth);
	return s;
}

int
main(void)
{
	return unit_run_suite(walreader_suite());
}
