/*
 * fuzz_lsn_segment.c — libFuzzer target: LSN text ("%X/%X"), WAL file names
 * and segment size text ("16MB").  What parses must format back to text
 * that parses to the same value.
 */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "walsim/lsn.h"
#include "walsim/segment.h"
#include "fuzz_support.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *text;
	uint64_t	lsn;
	uint32_t	segsize;
	WalFileName fn;
	WalsimError err;

	/* the parsers take C strings: cut at the first NUL like a caller would */
	text = fuzz_cstring(data, size);
	if (text == NULL)
		return 0;

	if (lsn_parse(text, &lsn, &err))
	{
		char		buf[LSN_TEXT_MAX];
		uint64_t	again;

		lsn_format(lsn, buf);
		if (!lsn_parse(buf, &again, &err) || again != lsn)
			__builtin_trap();
	}

	if (wal_segment_size_parse(text, &segsize, &err))
	{
		char		buf[16];
		uint32_t	again;

		if (!wal_segment_size_valid(segsize))
			__builtin_trap();
		wal_segment_size_format(segsize, buf);
		if (!wal_segment_size_parse(buf, &again, &err) || again != segsize)
			__builtin_trap();
	}

	segsize = (uint32_t) WAL_SEGMENT_SIZE_MIN << (size % 11);
	if (wal_file_name_parse(text, segsize, &fn, &err))
	{
		char		buf[WAL_FILE_NAME_MAX];

		if (fn.kind == WAL_FILE_SEGMENT)
		{
			wal_segment_name(buf, fn.tli, fn.segno, segsize);
			if (strcmp(buf, text) != 0)
				__builtin_trap();
		}
	}
	free(text);
	return 0;
}
