/*
 * verify.c — record verification of the received stream (verify.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "walsim/lsn.h"
#include "walsim/walpage.h"
#include "verify.h"

bool
verifier_begin(StreamVerifier *v, bool enabled, uint64_t start_lsn,
			   uint32_t segsize, uint64_t sysid, int server_major,
			   WalsimError *err)
{
	const WalVersionInfo *version;
	WalReaderConfig cfg;

	memset(v, 0, sizeof(*v));
	v->enabled = enabled;
	v->start = start_lsn;
	v->fed_end = start_lsn;
	if (!enabled)
		return true;

	version = wal_version_by_major(server_major);
	if (version == NULL)
		return walsim_error_set(err,
								"cannot verify WAL of PostgreSQL major version %d (its page format is not in walsim's table); use --no-verify",
								server_major);
	memset(&cfg, 0, sizeof(cfg));
	cfg.start_lsn = start_lsn;
	cfg.seg_size = segsize;
	cfg.magic = version->page_magic;
	cfg.sysid = sysid;
	/*
	 * Any timeline: the first pages of the segment holding a switch point
	 * carry the old timeline; the reader still insists that it never goes
	 * down.
	 */
	cfg.min_tli = 0;
	v->reader = walreader_create(&cfg, err);
	return v->reader != NULL;
}

bool
verifier_feed(StreamVerifier *v, const void *data, size_t len)
{
	WalReadStatus st;

	if (v->failed)
		return false;
	v->fed_end += len;
	if (!v->enabled)
		return true;
	st = walreader_feed(v->reader, data, len);
	if (st == WAL_READ_NEED_DATA)
		return true;

	/*
	 * Every other status is final, including a zeroed page or record: a
	 * sender streams WAL only up to its flush position, so zeros where a
	 * record should be mean the bytes were damaged on the way.
	 */
	v->failed = true;
	v->status = st;
	v->fail_lsn = walreader_error_lsn(v->reader);
	v->valid_end = walreader_valid_end(v->reader);
	snprintf(v->message, sizeof(v->message), "%s", walreader_message(v->reader));
	return false;
}

uint64_t
verifier_safe_end(const StreamVerifier *v, uint64_t received)
{
	uint64_t	valid;

	if (!v->enabled)
		return received;
	valid = v->failed ? v->valid_end : walreader_valid_end(v->reader);
	return valid < received ? valid : received;
}

void
verifier_end(StreamVerifier *v)
{
	if (v->reader != NULL)
		walreader_free(v->reader);
	v->reader = NULL;
}
