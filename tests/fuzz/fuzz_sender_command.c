/*
 * fuzz_sender_command.c — libFuzzer target: walsim-sender's replication
 * command parser (IDENTIFY_SYSTEM, START_REPLICATION, CREATE_REPLICATION_SLOT
 * ...) on any Query text, and the slot name check.
 */
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ref/sender/command.h"
#include "fuzz_support.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *text;
	ReplCommand cmd;
	const char *sqlstate = NULL;
	WalsimError err;

	text = fuzz_cstring(data, size);
	if (text == NULL)
		return 0;

	memset(&cmd, 0, sizeof(cmd));
	if (repl_command_parse(text, &cmd, &sqlstate, &err))
	{
		/* a parsed name is a terminated string that fits */
		if (memchr(cmd.name, '\0', sizeof(cmd.name)) == NULL)
			__builtin_trap();
		(void) repl_command_name(cmd.kind);
	}
	(void) repl_slot_name_valid(text, &err);
	free(text);
	return 0;
}
