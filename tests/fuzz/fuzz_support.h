/*
 * fuzz_support.h — what walsim's libFuzzer targets (tests/fuzz/fuzz_*.c)
 * share: the entry point's declaration, the input as a C string, and the
 * driver that feeds a protocol decoder its input in pieces.
 */
#ifndef WALSIM_FUZZ_SUPPORT_H
#define WALSIM_FUZZ_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "walsim/wire.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The input as a NUL-terminated string, as a caller of a text parser would
 * hand it (cut at the first NUL); NULL when out of memory.  free() it.
 */
static inline char *
fuzz_cstring(const uint8_t *data, size_t size)
{
	char	   *text = malloc(size + 1);

	if (text == NULL)
		return NULL;
	memcpy(text, data, size);
	text[size] = '\0';
	return text;
}

/*
 * Feed d the input in pieces of `piece` bytes, so that messages are split
 * across calls, and hand each decoded message to read_body.  Traps when
 * the decoder breaks its contract (consumes more than it was given, or
 * asks for more without consuming everything); stops at the first error.
 */
static inline void
fuzz_decode_pieces(WireDecoder *d, const uint8_t *data, size_t size, size_t piece,
				   void (*read_body) (const WireMessage *msg))
{
	while (size > 0)
	{
		size_t		n = size < piece ? size : piece;
		const uint8_t *p = data;
		size_t		left = n;

		while (left > 0)
		{
			WireMessage msg;
			WalsimError err;
			size_t		used = 0;
			WireStatus	st = wire_decoder_next(d, p, left, &used, &msg, &err);

			if (used > left)
				__builtin_trap();	/* consumed more than given */
			p += used;
			left -= used;
			if (st == WIRE_FAILED)
				return;
			if (st == WIRE_NEED_MORE)
			{
				if (left != 0)
					__builtin_trap();	/* NEED_MORE must eat everything */
				break;
			}
			read_body(&msg);
		}
		data += n;
		size -= n;
	}
}

#endif							/* WALSIM_FUZZ_SUPPORT_H */
