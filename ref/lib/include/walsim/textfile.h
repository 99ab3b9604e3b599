/*
 * textfile.h — a whole file (or stream) read into memory: the one loader
 * behind timeline history files, password files and probe scripts.
 */
#ifndef WALSIM_TEXTFILE_H
#define WALSIM_TEXTFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "walsim/error.h"

/*
 * Read f to its end into a malloc'd buffer with a NUL after the last byte
 * (*text, *len bytes before the NUL); more than max bytes is an error.
 * name says what f is in messages.  f stays open.
 */
bool		textfile_read(FILE *f, const char *name, size_t max, char **text, size_t *len,
						  WalsimError *err);

#endif							/* WALSIM_TEXTFILE_H */
