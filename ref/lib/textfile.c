/*
 * textfile.c — reading a whole file or stream into memory (walsim/textfile.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "walsim/textfile.h"

#define TEXTFILE_CHUNK	65536

bool
textfile_read(FILE *f, const char *name, size_t max, char **text, size_t *len,
			  WalsimError *err)
{
	char	   *buf = NULL;
	size_t		used = 0;
	size_t		cap = 0;

	for (;;)
	{
		size_t		n;

		/* room for a chunk and the NUL */
		if (cap - used < TEXTFILE_CHUNK / 16 + 1)
		{
			char	   *nbuf = realloc(buf, cap + TEXTFILE_CHUNK);

			if (nbuf == NULL)
			{
				free(buf);
				return walsim_error_set(err, "reading \"%s\": out of memory", name);
			}
			buf = nbuf;
			cap += TEXTFILE_CHUNK;
		}
		n = fread(buf + used, 1, cap - used - 1, f);
		used += n;
		if (used > max)
		{
			free(buf);
			return walsim_error_set(err, "\"%s\": larger than %zu bytes", name, max);
		}
		if (n == 0)
			break;
	}
	if (ferror(f))
	{
		int			saved = errno;

		free(buf);
		return walsim_error_set(err, "could not read \"%s\": %s", name, strerror(saved));
	}
	buf[used] = '\0';
	*text = buf;
	*len = used;
	return true;
}
