/*
 * fuzz_replmsg.c — libFuzzer target: CopyData payloads of the streaming
 * protocol ('w', 'k', 'r', 'h'), decoded whole from any side and partially
 * (only a prefix present), and re-encoded when valid: a message that
 * decodes must encode back to the same bytes.
 */
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include "walsim/replmsg.h"
#include "fuzz_support.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ReplMessage m;
	WalsimError err;

	if (repl_decode(data, size, REPL_FROM_ANY, &m, &err))
	{
		uint8_t		out[REPL_STATUS_LEN];

		switch (m.type)
		{
			case 'w':
				if (m.u.xlog.len != size - REPL_XLOGDATA_HEADER ||
					m.u.xlog.data != data + REPL_XLOGDATA_HEADER)
					__builtin_trap();
				repl_encode_xlogdata_header(out, m.u.xlog.data_start,
											m.u.xlog.wal_end,
											m.u.xlog.send_time);
				if (memcmp(out, data, REPL_XLOGDATA_HEADER) != 0)
					__builtin_trap();
				break;
			case 'k':
				repl_encode_keepalive(out, &m.u.keepalive);
				if (size != REPL_KEEPALIVE_LEN ||
					memcmp(out, data, REPL_KEEPALIVE_LEN - 1) != 0)
					__builtin_trap();
				break;
			case 'r':
				repl_encode_status(out, &m.u.status);
				if (size != REPL_STATUS_LEN ||
					memcmp(out, data, REPL_STATUS_LEN - 1) != 0)
					__builtin_trap();
				break;
			case 'h':
				repl_encode_feedback(out, &m.u.feedback);
				if (size != REPL_FEEDBACK_LEN ||
					memcmp(out, data, REPL_FEEDBACK_LEN) != 0)
					__builtin_trap();
				break;
			default:
				__builtin_trap();	/* decoded an unknown type */
		}
	}
	(void) repl_decode(data, size, REPL_FROM_SERVER, &m, &err);
	(void) repl_decode(data, size, REPL_FROM_CLIENT, &m, &err);

	/* the same bytes as the captured prefix of a longer message */
	if (size > 0)
	{
		size_t		total = size + data[size - 1] * 97u;

		(void) repl_decode_partial(data, size, total, REPL_FROM_ANY, &m, &err);
		(void) repl_decode_partial(data, size / 2, size, REPL_FROM_ANY, &m,
								   &err);
	}
	return 0;
}
