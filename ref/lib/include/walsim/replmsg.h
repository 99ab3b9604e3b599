/*
 * replmsg.h — the payloads of CopyData messages in physical streaming
 * replication (protocol.sgml "Streaming Replication Protocol").
 *
 *   'w' XLogData                 server -> client  25-byte header + WAL bytes
 *       Int64 dataStart, Int64 walEnd, Int64 sendTime, WAL bytes
 *   'k' Primary keepalive        server -> client  exactly 18 bytes
 *       Int64 walEnd, Int64 sendTime, Byte1 replyRequested
 *   'r' Standby status update    client -> server  exactly 34 bytes
 *       Int64 write, Int64 flush, Int64 apply, Int64 sendTime, Byte1 replyRequested
 *   'h' Hot standby feedback     client -> server  exactly 25 bytes
 *       Int64 sendTime, Int32 xmin, Int32 xmin epoch,
 *       Int32 catalog_xmin, Int32 catalog_xmin epoch
 *
 * All integers big-endian; times are PostgreSQL timestamps (microseconds
 * since 2000-01-01 UTC).  The WAL bytes are copied verbatim from the files.
 *
 * Sizes are checked exactly: PostgreSQL's walsender rejects an 'r' or 'h' of
 * the wrong length and its receivers reject a short 'w' or 'k', so a decoder
 * that accepted them would hide a broken peer.
 */
#ifndef WALSIM_REPLMSG_H
#define WALSIM_REPLMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "walsim/error.h"
#include "walsim/wire.h"

#define REPL_XLOGDATA_HEADER	25
#define REPL_KEEPALIVE_LEN		18
#define REPL_STATUS_LEN			34
#define REPL_FEEDBACK_LEN		25

/* Which side sent the payload: decides which subtypes are legal. */
typedef enum ReplSource
{
	REPL_FROM_SERVER,			/* 'w', 'k' */
	REPL_FROM_CLIENT,			/* 'r', 'h' */
	REPL_FROM_ANY
} ReplSource;

typedef struct ReplXLogData
{
	uint64_t	data_start;
	uint64_t	wal_end;
	int64_t		send_time;
	const uint8_t *data;		/* points into the decoded payload */
	size_t		len;			/* full WAL byte count of the message */
	size_t		avail;			/* bytes of it present at data (partial decode) */
} ReplXLogData;

typedef struct ReplKeepalive
{
	uint64_t	wal_end;
	int64_t		send_time;
	bool		reply_requested;
} ReplKeepalive;

typedef struct ReplStatus
{
	uint64_t	write;
	uint64_t	flush;
	uint64_t	apply;
	int64_t		send_time;
	bool		reply_requested;
} ReplStatus;

typedef struct ReplFeedback
{
	int64_t		send_time;
	uint32_t	xmin;
	uint32_t	xmin_epoch;
	uint32_t	catalog_xmin;
	uint32_t	catalog_xmin_epoch;
} ReplFeedback;

typedef struct ReplMessage
{
	char		type;			/* 'w', 'k', 'r', 'h' */
	union
	{
		ReplXLogData xlog;
		ReplKeepalive keepalive;
		ReplStatus status;
		ReplFeedback feedback;
	}			u;
} ReplMessage;

/*
 * Decode a complete CopyData payload.  Fails on an empty payload, a subtype
 * not legal for `from`, and a length other than the exact size ('k', 'r',
 * 'h') or below the header ('w'), naming the subtype and both lengths.
 */
bool		repl_decode(const uint8_t *payload, size_t len, ReplSource from,
						ReplMessage *out, WalsimError *err);

/*
 * Decode from the first `avail` bytes of a payload whose full length is
 * `total` (a proxy sees the start of a 128 kB XLogData before the rest).
 * The fixed-size fields must be within `avail`; for 'w', xlog.len is
 * total - 25 and xlog.avail the WAL bytes present.
 */
bool		repl_decode_partial(const uint8_t *payload, size_t avail, size_t total,
								ReplSource from, ReplMessage *out,
								WalsimError *err);

/* Encode into fixed-size arrays (the payload only, no CopyData header). */
void		repl_encode_xlogdata_header(uint8_t out[REPL_XLOGDATA_HEADER],
										uint64_t data_start, uint64_t wal_end,
										int64_t send_time);
void		repl_encode_keepalive(uint8_t out[REPL_KEEPALIVE_LEN],
								  const ReplKeepalive *k);
void		repl_encode_status(uint8_t out[REPL_STATUS_LEN], const ReplStatus *s);
void		repl_encode_feedback(uint8_t out[REPL_FEEDBACK_LEN],
								 const ReplFeedback *f);

/* Append whole CopyData messages ('d' + length + payload) to a WireBuf. */
void		repl_put_xlogdata(WireBuf *b, uint64_t data_start, uint64_t wal_end,
							  int64_t send_time, const void *wal, size_t len);
void		repl_put_keepalive(WireBuf *b, const ReplKeepalive *k);
void		repl_put_status(WireBuf *b, const ReplStatus *s);
void		repl_put_feedback(WireBuf *b, const ReplFeedback *f);

/* "XLogData", "keepalive", "status update", "hot standby feedback" or "unknown". */
const char *repl_message_name(char type);

#endif							/* WALSIM_REPLMSG_H */
