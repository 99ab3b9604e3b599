/*
 * fuzz_wire_frontend.c — libFuzzer target: the v3 frontend stream decoder
 * (startup packet, then typed messages) and the body readers for the
 * messages a frontend sends (startup parameters, Query, SASLInitialResponse,
 * CancelRequest).
 *
 * The first input byte chooses the piece size, so the decoder also sees
 * messages split across calls.
 */
#include <stdint.h>
#include <stddef.h>

#include "walsim/wire.h"
#include "fuzz_support.h"

static void
read_body(const WireMessage *msg)
{
	WalsimError err;

	if (!msg->body_complete)
		return;
	if (msg->kind == WIRE_MSG_STARTUP)
	{
		WireStartup st;

		if (wire_parse_startup(msg->code, msg->body, msg->body_len, &st, &err))
		{
			size_t		pos = 0;
			const char *k,
					   *v;
			int			n = 0;

			(void) wire_startup_get(&st, "user");
			/* every parameter is reached, beyond the index too */
			while (wire_startup_next(&st, &pos, &k, &v))
				n++;
			if (n != st.ntotal || st.nparams > st.ntotal)
				__builtin_trap();
		}
	}
	else if (msg->kind == WIRE_MSG_CANCEL_REQUEST)
	{
		uint32_t	pid,
					key;

		(void) wire_parse_cancel(msg->body, msg->body_len, &pid, &key, &err);
	}
	else if (msg->kind == WIRE_MSG_TYPED && msg->type == 'Q')
	{
		const char *sql;

		(void) wire_parse_query(msg->body, msg->body_len, &sql, &err);
	}
	else if (msg->kind == WIRE_MSG_TYPED && msg->type == 'p')
	{
		const char *mech;
		const uint8_t *sdata;
		int32_t		slen;

		(void) wire_parse_sasl_initial(msg->body, msg->body_len, &mech,
									   &sdata, &slen, &err);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	WireDecoder d;
	size_t		piece;

	if (size < 1)
		return 0;
	piece = (size_t) data[0] + 1;
	data++;
	size--;

	wire_decoder_init(&d, WIRE_FRONTEND, 1u << 20, 4096);
	fuzz_decode_pieces(&d, data, size, piece, read_body);
	wire_decoder_free(&d);
	return 0;
}
