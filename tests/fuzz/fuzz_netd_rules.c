/*
 * fuzz_netd_rules.c — libFuzzer target: walsim-netd's control-line fault
 * syntax: the line is split into words as netd does, the words after
 * "fault add" are parsed, and a parsed fault is rendered as JSON; the
 * address parser gets the same line.
 */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "sim/net/fault.h"
#include "fuzz_support.h"

#define MAX_WORDS 64

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *line;
	char	   *words[MAX_WORDS];
	int			nwords;
	Fault		f;
	WalsimError err;
	char		host[256];
	uint16_t	port;

	line = fuzz_cstring(data, size);
	if (line == NULL)
		return 0;

	(void) netd_parse_addr(line, host, sizeof(host), &port, &err);

	nwords = netd_split_words(line, words, MAX_WORDS);
	if (nwords < 0 || nwords > MAX_WORDS)
		__builtin_trap();
	memset(&f, 0, sizeof(f));
	if (fault_parse(&f, nwords, words, &err))
	{
		char		json[2048];

		fault_to_json(&f, json, sizeof(json));
		if (memchr(json, '\0', sizeof(json)) == NULL)
			__builtin_trap();
	}
	free(line);
	return 0;
}
