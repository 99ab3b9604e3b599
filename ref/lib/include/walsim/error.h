/*
 * error.h — how libwalsim reports failures.
 *
 * Every fallible function returns bool (true on success) and takes a
 * WalsimError * as its last argument, which may be NULL when the caller does
 * not want the text.  The message names what was wrong and where ("LSN
 * \"0/ZZ\": invalid hex digit at offset 2"), so programs can print it as is.
 */
#ifndef WALSIM_ERROR_H
#define WALSIM_ERROR_H

#include <stdbool.h>

#define WALSIM_ERROR_MAX 256

typedef struct WalsimError
{
	char		message[WALSIM_ERROR_MAX];
} WalsimError;

/* Format a message into err (no-op when err is NULL); always returns false. */
bool		walsim_error_set(WalsimError *err, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));

/* Prepend context ("reading 000000010000000000000003: ") to an existing message. */
void		walsim_error_prefix(WalsimError *err, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));

#endif							/* WALSIM_ERROR_H */
