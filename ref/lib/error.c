/*
 * error.c — formatting of libwalsim error messages (see walsim/error.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "walsim/error.h"

bool
walsim_error_set(WalsimError *err, const char *fmt,...)
{
	va_list		ap;

	if (err == NULL)
		return false;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return false;
}

void
walsim_error_prefix(WalsimError *err, const char *fmt,...)
{
	char		prefix[WALSIM_ERROR_MAX];
	char		old[WALSIM_ERROR_MAX];
	va_list		ap;

	if (err == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	size_t		plen;

	memcpy(old, err->message, sizeof(old));
	plen = strnlen(prefix, sizeof(prefix) - 1);
	/* keep the prefix whole and truncate the old message if needed */
	memcpy(err->message, prefix, plen);
	memcpy(err->message + plen, old, sizeof(err->message) - plen - 1);
	err->message[sizeof(err->message) - 1] = '\0';
}
