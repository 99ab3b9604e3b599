/*
 * fuzz_timeline.c — libFuzzer target: timeline history files.  A history
 * that parses is queried, formatted and parsed again: the second parse must
 * succeed and give the same entries.
 */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "walsim/timeline.h"
#include "fuzz_support.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	TimelineHistory h;
	WalsimError err;
	uint32_t	target;
	char	   *text;

	if (size < 1)
		return 0;
	target = data[0];			/* 0 is legal input to reject */
	data++;
	size--;

	memset(&h, 0, sizeof(h));
	if (!timeline_history_parse((const char *) data, size, target, &h, &err))
		return 0;

	(void) timeline_of_lsn(&h, 0);
	(void) timeline_of_lsn(&h, UINT64_MAX);
	for (size_t i = 0; i < h.count; i++)
	{
		uint64_t	lsn;

		(void) timeline_of_lsn(&h, h.entries[i].begin);
		(void) timeline_switch_point(&h, h.entries[i].tli, &lsn, &err);
	}

	text = timeline_history_format(&h);
	if (text != NULL)
	{
		TimelineHistory again;

		memset(&again, 0, sizeof(again));
		if (!timeline_history_parse(text, strlen(text), target, &again, &err))
			__builtin_trap();	/* our own output must parse */
		if (again.count != h.count)
			__builtin_trap();
		for (size_t i = 0; i < h.count; i++)
			if (again.entries[i].tli != h.entries[i].tli ||
				again.entries[i].begin != h.entries[i].begin ||
				again.entries[i].end != h.entries[i].end)
				__builtin_trap();
		timeline_history_free(&again);
		free(text);
	}
	timeline_history_free(&h);
	return 0;
}
