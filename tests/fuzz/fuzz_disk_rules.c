/*
 * fuzz_disk_rules.c — libFuzzer target: the disk simulator's rule syntax
 * (the words of "walsim-diskctl rule add").  A rule that parses is
 * formatted, and the formatted words must parse again to the same text.
 * The glob matcher gets the first word against the second.
 */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "sim/disk/disk.h"
#include "fuzz_support.h"

#define MAX_WORDS 32

static int
split(char *s, char **words, int cap)
{
	int			n = 0;
	char	   *save = NULL;

	for (char *w = strtok_r(s, " \t\n", &save); w != NULL && n < cap;
		 w = strtok_r(NULL, " \t\n", &save))
		words[n++] = w;
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *text;
	char	   *words[MAX_WORDS];
	int			nwords;
	DiskRule	rule;
	WalsimError err;

	text = fuzz_cstring(data, size);
	if (text == NULL)
		return 0;

	nwords = split(text, words, MAX_WORDS);
	/* within what rules and the preload library hand the matcher */
	if (nwords >= 2 && strlen(words[0]) < DISK_GLOB_MAX &&
		strlen(words[1]) < DISK_REL_MAX)
		(void) disk_glob_match(words[0], words[1]);

	memset(&rule, 0, sizeof(rule));
	if (disk_rule_parse(&rule, nwords, words, &err))
	{
		char		buf[2048];
		char		again_buf[2048];
		char	   *again_words[MAX_WORDS];
		int			again_n;
		DiskRule	again;

		disk_rule_format(&rule, buf, sizeof(buf));
		disk_effect_format(&rule, again_buf, sizeof(again_buf));
		strcpy(again_buf, buf);
		again_n = split(again_buf, again_words, MAX_WORDS);
		memset(&again, 0, sizeof(again));
		if (!disk_rule_parse(&again, again_n, again_words, &err))
			__builtin_trap();	/* our own formatting must parse */
		disk_rule_format(&again, again_buf, sizeof(again_buf));
		if (strcmp(buf, again_buf) != 0)
			__builtin_trap();
	}
	free(text);
	return 0;
}
