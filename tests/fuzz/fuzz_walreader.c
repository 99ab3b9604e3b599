/*
 * fuzz_walreader.c — libFuzzer target: the incremental WAL reader (page
 * headers, record headers, continuation records, CRCs) on arbitrary bytes.
 *
 * Input: byte 0 chooses the piece size of the first pass, byte 1 where the
 * bytes sit (segment 9 or 10 of a 1 MB segment size, page 0..127 of it, as
 * the seeds cut from tests/data/wal are), the rest is WAL.
 *
 * Property: the reader's verdict must not depend on how the bytes arrive.
 * The same bytes fed in pieces of 1..256 bytes and fed in one call must give
 * the same status, valid end, record count, last record and error LSN.
 */
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include "walsim/walreader.h"
#include "fuzz_support.h"

#define FUZZ_SEG_SIZE	(1024u * 1024u)	/* tests/data/wal holds 1 MB segments */

typedef struct Verdict
{
	WalReadStatus status;
	uint64_t	valid_end;
	uint64_t	records;
	uint64_t	last_record;
	uint64_t	error_lsn;
	uint64_t	callbacks;
} Verdict;

static void
count_record(const WalRecordInfo *rec, void *arg)
{
	Verdict    *v = arg;

	if (rec->end_lsn <= rec->start_lsn)
		__builtin_trap();
	v->callbacks++;
}

static void
run(const WalReaderConfig *base, const uint8_t *data, size_t size,
	size_t piece, Verdict *v)
{
	WalReaderConfig cfg = *base;
	WalsimError err;
	WalReader  *r;

	memset(v, 0, sizeof(*v));
	cfg.on_record = count_record;
	cfg.cb_arg = v;
	r = walreader_create(&cfg, &err);
	if (r == NULL)
		__builtin_trap();
	while (size > 0)
	{
		size_t		n = size < piece ? size : piece;

		if (walreader_feed(r, data, n) != WAL_READ_NEED_DATA)
			break;
		data += n;
		size -= n;
	}
	v->status = walreader_status(r);
	v->valid_end = walreader_valid_end(r);
	v->records = walreader_record_count(r);
	v->last_record = walreader_last_record(r);
	v->error_lsn = walreader_error_lsn(r);
	(void) walreader_message(r);
	(void) walreader_status_name(v->status);
	walreader_free(r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	WalReaderConfig cfg;
	Verdict		pieces,
				whole;
	size_t		piece;
	uint64_t	segno;

	if (size < 2)
		return 0;
	piece = (size_t) data[0] + 1;
	segno = 9 + (data[1] >> 7);
	memset(&cfg, 0, sizeof(cfg));
	cfg.start_lsn = segno * FUZZ_SEG_SIZE + (uint64_t) (data[1] & 0x7F) * WAL_BLCKSZ;
	cfg.seg_size = FUZZ_SEG_SIZE;
	cfg.magic = 0xD110;
	data += 2;
	size -= 2;

	run(&cfg, data, size, piece, &pieces);
	run(&cfg, data, size, size == 0 ? 1 : size, &whole);

	if (pieces.status != whole.status ||
		pieces.valid_end != whole.valid_end ||
		pieces.records != whole.records ||
		pieces.last_record != whole.last_record ||
		pieces.error_lsn != whole.error_lsn ||
		pieces.callbacks != whole.callbacks ||
		pieces.callbacks != pieces.records)
		__builtin_trap();
	return 0;
}
