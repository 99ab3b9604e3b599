/*
 * fuzz_wire_backend.c — libFuzzer target: the v3 backend stream decoder
 * (typed messages, optionally preceded by a one-byte SSL/GSS answer) and the
 * body readers for what a server sends (ErrorResponse/NoticeResponse fields,
 * CopyData replication messages, whole or partly captured).
 *
 * The first input byte chooses the piece size (so messages are split across
 * calls) and, with its top bit, whether a one-byte answer is expected first.
 */
#include <stdint.h>
#include <stddef.h>

#include "walsim/replmsg.h"
#include "walsim/wire.h"
#include "fuzz_support.h"

static void
read_body(const WireMessage *msg)
{
	WalsimError err;
	bool		malformed;
	ReplMessage rm;

	if (msg->kind != WIRE_MSG_TYPED)
		return;
	if (msg->type == 'E' || msg->type == 'N')
	{
		if (msg->body_complete)
		{
			(void) wire_error_field(msg->body, msg->body_len, 'M', &malformed);
			(void) wire_error_field(msg->body, msg->body_len, 'C', &malformed);
		}
	}
	else if (msg->type == 'd' && msg->body_avail > 0)
	{
		/* CopyData: a replication message, perhaps only partly captured */
		if (msg->body_complete)
			(void) repl_decode(msg->body, msg->body_len, REPL_FROM_SERVER,
							   &rm, &err);
		else
			(void) repl_decode_partial(msg->body, msg->body_avail,
									   msg->body_len, REPL_FROM_SERVER,
									   &rm, &err);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	WireDecoder d;
	size_t		piece;

	if (size < 1)
		return 0;
	piece = (size_t) (data[0] & 0x7F) + 1;

	wire_decoder_init(&d, WIRE_BACKEND, 1u << 20, 4096);
	if (data[0] & 0x80)
		wire_decoder_expect_answer(&d);
	data++;
	size--;
	fuzz_decode_pieces(&d, data, size, piece, read_body);
	wire_decoder_free(&d);
	return 0;
}
