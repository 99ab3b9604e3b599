/*
 * verify.h — record verification of the received stream.
 *
 * A StreamVerifier wraps libwalsim's incremental WAL reader (walreader.h):
 * every XLogData payload is fed to it in stream order, and it answers one
 * question for the status updates — up to which LSN every record has been
 * checked (page headers, xl_prev chain, CRC-32C).  The receiver never
 * acknowledges a byte beyond that point.
 *
 * A disabled verifier (--no-verify) accepts everything; its safe end is
 * whatever has been received, so the receiver behaves like pg_receivewal.
 */
#ifndef WALSIM_RECEIVER_VERIFY_H
#define WALSIM_RECEIVER_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "walsim/error.h"
#include "walsim/walreader.h"

typedef struct StreamVerifier
{
	bool		enabled;
	WalReader  *reader;			/* NULL when disabled */
	uint64_t	start;			/* LSN of the first byte of this stream */
	uint64_t	fed_end;		/* LSN after the last byte fed */
	bool		failed;
	WalReadStatus status;		/* why it failed */
	uint64_t	fail_lsn;		/* LSN of the bad page header or record */
	uint64_t	valid_end;		/* end of the last good record (when failed) */
	char		message[WALSIM_ERROR_MAX];
} StreamVerifier;

/*
 * Start verifying a stream whose first byte is start_lsn (a segment start,
 * where the receiver always begins).  sysid is the server's system
 * identifier from IDENTIFY_SYSTEM (0: learn it from the first long page
 * header); server_major selects the page magic.  Fails when the major is
 * unknown to walsim's version table.
 */
bool		verifier_begin(StreamVerifier *v, bool enabled, uint64_t start_lsn,
						   uint32_t segsize, uint64_t sysid, int server_major,
						   WalsimError *err);

/*
 * Feed the next len bytes (they must follow the previous ones).  Returns
 * false once verification has failed; v->message, v->fail_lsn and
 * v->valid_end say where and why.
 */
bool		verifier_feed(StreamVerifier *v, const void *data, size_t len);

/*
 * The highest LSN the receiver may acknowledge given that everything below
 * `received` has arrived: the end of the last verified record (or received
 * itself when verification is off).
 */
uint64_t	verifier_safe_end(const StreamVerifier *v, uint64_t received);

void		verifier_end(StreamVerifier *v);

#endif							/* WALSIM_RECEIVER_VERIFY_H */
