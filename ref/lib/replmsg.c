/*
 * replmsg.c — encode and decode the CopyData payloads of physical streaming
 * replication (see walsim/replmsg.h for the layouts).
 */
#include <string.h>

#include "walsim/replmsg.h"

const char *
repl_message_name(char type)
{
	switch (type)
	{
		case 'w': return "XLogData";
		case 'k': return "keepalive";
		case 'r': return "status update";
		case 'h': return "hot standby feedback";
		default: return "unknown";
	}
}

/* Is this subtype one that `from` may send? */
static bool
legal_for(char type, ReplSource from)
{
	bool		server = type == 'w' || type == 'k';
	bool		client = type == 'r' || type == 'h';

	switch (from)
	{
		case REPL_FROM_SERVER:
			return server;
		case REPL_FROM_CLIENT:
			return client;
		case REPL_FROM_ANY:
			return server || client;
	}
	return false;
}

static size_t
fixed_size(char type)
{
	switch (type)
	{
		case 'k': return REPL_KEEPALIVE_LEN;
		case 'r': return REPL_STATUS_LEN;
		case 'h': return REPL_FEEDBACK_LEN;
		default: return REPL_XLOGDATA_HEADER;
	}
}

bool
repl_decode_partial(const uint8_t *payload, size_t avail, size_t total,
					ReplSource from, ReplMessage *out, WalsimError *err)
{
	char		type;
	size_t		need;

	memset(out, 0, sizeof(*out));
	if (total == 0 || avail == 0)
		return walsim_error_set(err, "replication CopyData payload is empty");
	if (avail > total)
		return walsim_error_set(err, "replication payload: %zu bytes available of %zu",
								avail, total);
	type = (char) payload[0];
	if (!legal_for(type, from))
	{
		unsigned char c = (unsigned char) type;

		if (c >= 0x20 && c < 0x7f)
			return walsim_error_set(err,
									"unknown replication message subtype '%c' from the %s",
									c, from == REPL_FROM_CLIENT ? "client" :
									from == REPL_FROM_SERVER ? "server" : "peer");
		return walsim_error_set(err,
								"unknown replication message subtype 0x%02X from the %s",
								c, from == REPL_FROM_CLIENT ? "client" :
								from == REPL_FROM_SERVER ? "server" : "peer");
	}
	need = fixed_size(type);
	if (type == 'w' ? total < need : total != need)
		return walsim_error_set(err, "%s ('%c') of %zu bytes, expected %s%zu",
								repl_message_name(type), type, total,
								type == 'w' ? "at least " : "", need);
	if (avail < need)
		return walsim_error_set(err, "%s ('%c'): only %zu of its %zu header bytes available",
								repl_message_name(type), type, avail, need);

	out->type = type;
	switch (type)
	{
		case 'w':
			out->u.xlog.data_start = wire_be64(payload + 1);
			out->u.xlog.wal_end = wire_be64(payload + 9);
			out->u.xlog.send_time = (int64_t) wire_be64(payload + 17);
			out->u.xlog.data = payload + REPL_XLOGDATA_HEADER;
			out->u.xlog.len = total - REPL_XLOGDATA_HEADER;
			out->u.xlog.avail = avail - REPL_XLOGDATA_HEADER;
			break;
		case 'k':
			out->u.keepalive.wal_end = wire_be64(payload + 1);
			out->u.keepalive.send_time = (int64_t) wire_be64(payload + 9);
			out->u.keepalive.reply_requested = payload[17] != 0;
			break;
		case 'r':
			out->u.status.write = wire_be64(payload + 1);
			out->u.status.flush = wire_be64(payload + 9);
			out->u.status.apply = wire_be64(payload + 17);
			out->u.status.send_time = (int64_t) wire_be64(payload + 25);
			out->u.status.reply_requested = payload[33] != 0;
			break;
		case 'h':
			out->u.feedback.send_time = (int64_t) wire_be64(payload + 1);
			out->u.feedback.xmin = wire_be32(payload + 9);
			out->u.feedback.xmin_epoch = wire_be32(payload + 13);
			out->u.feedback.catalog_xmin = wire_be32(payload + 17);
			out->u.feedback.catalog_xmin_epoch = wire_be32(payload + 21);
			break;
	}
	return true;
}

bool
repl_decode(const uint8_t *payload, size_t len, ReplSource from,
			ReplMessage *out, WalsimError *err)
{
	return repl_decode_partial(payload, len, len, from, out, err);
}

void
repl_encode_xlogdata_header(uint8_t out[REPL_XLOGDATA_HEADER], uint64_t data_start,
							uint64_t wal_end, int64_t send_time)
{
	out[0] = 'w';
	wire_store_be64(out + 1, data_start);
	wire_store_be64(out + 9, wal_end);
	wire_store_be64(out + 17, (uint64_t) send_time);
}

void
repl_encode_keepalive(uint8_t out[REPL_KEEPALIVE_LEN], const ReplKeepalive *k)
{
	out[0] = 'k';
	wire_store_be64(out + 1, k->wal_end);
	wire_store_be64(out + 9, (uint64_t) k->send_time);
	out[17] = k->reply_requested ? 1 : 0;
}

void
repl_encode_status(uint8_t out[REPL_STATUS_LEN], const ReplStatus *s)
{
	out[0] = 'r';
	wire_store_be64(out + 1, s->write);
	wire_store_be64(out + 9, s->flush);
	wire_store_be64(out + 17, s->apply);
	wire_store_be64(out + 25, (uint64_t) s->send_time);
	out[33] = s->reply_requested ? 1 : 0;
}

void
repl_encode_feedback(uint8_t out[REPL_FEEDBACK_LEN], const ReplFeedback *f)
{
	out[0] = 'h';
	wire_store_be64(out + 1, (uint64_t) f->send_time);
	wire_store_be32(out + 9, f->xmin);
	wire_store_be32(out + 13, f->xmin_epoch);
	wire_store_be32(out + 17, f->catalog_xmin);
	wire_store_be32(out + 21, f->catalog_xmin_epoch);
}

void
repl_put_xlogdata(WireBuf *b, uint64_t data_start, uint64_t wal_end,
				  int64_t send_time, const void *wal, size_t len)
{
	uint8_t		hdr[REPL_XLOGDATA_HEADER];

	repl_encode_xlogdata_header(hdr, data_start, wal_end, send_time);
	wire_begin(b, 'd');
	wire_put_bytes(b, hdr, sizeof(hdr));
	wire_put_bytes(b, wal, len);
	wire_end(b);
}

void
repl_put_keepalive(WireBuf *b, const ReplKeepalive *k)
{
	uint8_t		p[REPL_KEEPALIVE_LEN];

	repl_encode_keepalive(p, k);
	wire_put_copy_data(b, p, sizeof(p));
}

void
repl_put_status(WireBuf *b, const ReplStatus *s)
{
	uint8_t		p[REPL_STATUS_LEN];

	repl_encode_status(p, s);
	wire_put_copy_data(b, p, sizeof(p));
}

void
repl_put_feedback(WireBuf *b, const ReplFeedback *f)
{
	uint8_t		p[REPL_FEEDBACK_LEN];

	repl_encode_feedback(p, f);
	wire_put_copy_data(b, p, sizeof(p));
}
