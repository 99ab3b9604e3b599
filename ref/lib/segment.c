/*
 * segment.c — WAL segment sizes and file names (walsim/segment.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "walsim/parse.h"
#include "walsim/segment.h"

#define PARTIAL_SUFFIX ".partial"
#define HISTORY_SUFFIX ".history"
#define TLI_DIGITS 8

bool
wal_segment_size_valid(uint64_t size)
{
	return size >= WAL_SEGMENT_SIZE_MIN && size <= WAL_SEGMENT_SIZE_MAX &&
		(size & (size - 1)) == 0;
}

bool
wal_segment_size_check(uint64_t size, WalsimError *err)
{
	if (size < WAL_SEGMENT_SIZE_MIN || size > WAL_SEGMENT_SIZE_MAX)
		return walsim_error_set(err,
								"WAL segment size %" PRIu64 " bytes: must be between 1 MB and 1 GB",
								size);
	if ((size & (size - 1)) != 0)
		return walsim_error_set(err,
								"WAL segment size %" PRIu64 " bytes: not a power of two",
								size);
	return true;
}

void
wal_segment_name(char *buf, uint32_t tli, uint64_t segno, uint32_t segsize)
{
	uint64_t	per_id = wal_segments_per_xlogid(segsize);

	snprintf(buf, WAL_FILE_NAME_MAX, "%08" PRIX32 "%08" PRIX32 "%08" PRIX32,
			 tli, (uint32_t) (segno / per_id), (uint32_t) (segno % per_id));
}

void
wal_partial_name(char *buf, uint32_t tli, uint64_t segno, uint32_t segsize)
{
	wal_segment_name(buf, tli, segno, segsize);
	strcat(buf, PARTIAL_SUFFIX);
}

void
wal_history_name(char *buf, uint32_t tli)
{
	snprintf(buf, WAL_FILE_NAME_MAX, "%08" PRIX32 HISTORY_SUFFIX, tli);
}

/*
 * Parse n upper-case hex digits at s into *value; false with the offset of
 * the first bad character.  PostgreSQL only ever writes upper case and
 * IsXLogFileName() accepts nothing else, so neither do we.
 */
static bool
parse_upper_hex(const char *s, size_t n, uint32_t *value, size_t *bad)
{
	uint32_t	v = 0;

	for (size_t i = 0; i < n; i++)
	{
		char		c = s[i];
		uint32_t	d;

		if (c >= '0' && c <= '9')
			d = (uint32_t) (c - '0');
		else if (c >= 'A' && c <= 'F')
			d = (uint32_t) (c - 'A' + 10);
		else
		{
			*bad = i;
			return false;
		}
		v = (v << 4) | d;
	}
	*value = v;
	return true;
}

static bool
bad_hex(const char *name, size_t offset, WalsimError *err)
{
	char		c = name[offset];

	if (c >= 'a' && c <= 'f')
		return walsim_error_set(err,
								"WAL file name \"%s\": lower-case hex digit '%c' at offset %zu (PostgreSQL writes upper case)",
								name, c, offset);
	return walsim_error_set(err,
							"WAL file name \"%s\": not a hex digit at offset %zu",
							name, offset);
}

static bool
parse_history_name(const char *name, WalFileName *out, WalsimError *err)
{
	uint32_t	tli;
	size_t		bad;

	if (!parse_upper_hex(name, TLI_DIGITS, &tli, &bad))
		return bad_hex(name, bad, err);
	if (tli == 0)
		return walsim_error_set(err, "WAL file name \"%s\": timeline 0 does not exist", name);
	out->kind = WAL_FILE_HISTORY;
	out->tli = tli;
	out->segno = 0;
	return true;
}

static bool
parse_segment_fields(const char *name, uint32_t segsize, WalFileName *out,
					 WalsimError *err)
{
	uint32_t	field[3];
	size_t		bad;
	uint64_t	per_id = wal_segments_per_xlogid(segsize);

	for (int i = 0; i < 3; i++)
	{
		if (!parse_upper_hex(name + i * 8, 8, &field[i], &bad))
			return bad_hex(name, (size_t) i * 8 + bad, err);
	}
	if (field[0] == 0)
		return walsim_error_set(err, "WAL file name \"%s\": timeline 0 does not exist", name);
	if (field[2] >= per_id)
		return walsim_error_set(err,
								"WAL file name \"%s\": segment field %08" PRIX32 " is out of range for %" PRIu32 "-byte segments (at most %08" PRIX64 ")",
								name, field[2], segsize, per_id - 1);
	out->tli = field[0];
	out->segno = (uint64_t) field[1] * per_id + field[2];
	return true;
}

bool
wal_file_name_parse(const char *name, uint32_t segsize, WalFileName *out,
					WalsimError *err)
{
	size_t		len;

	if (!wal_segment_size_check(segsize, err))
		return false;
	if (name == NULL || name[0] == '\0')
		return walsim_error_set(err, "WAL file name: empty");
	len = strlen(name);
	if (strchr(name, '/') != NULL)
		return walsim_error_set(err, "WAL file name \"%s\": contains a directory", name);

	if (len == TLI_DIGITS + strlen(HISTORY_SUFFIX) &&
		strcmp(name + TLI_DIGITS, HISTORY_SUFFIX) == 0)
		return parse_history_name(name, out, err);

	if (len == WAL_SEGMENT_NAME_LEN)
	{
		out->kind = WAL_FILE_SEGMENT;
		return parse_segment_fields(name, segsize, out, err);
	}
	if (len == WAL_SEGMENT_NAME_LEN + strlen(PARTIAL_SUFFIX) &&
		strcmp(name + WAL_SEGMENT_NAME_LEN, PARTIAL_SUFFIX) == 0)
	{
		out->kind = WAL_FILE_PARTIAL;
		return parse_segment_fields(name, segsize, out, err);
	}
	if (len > WAL_SEGMENT_NAME_LEN)
		return walsim_error_set(err,
								"WAL file name \"%s\": unknown suffix \"%s\" (expected none, \".partial\" or 8 digits + \".history\")",
								name, name + WAL_SEGMENT_NAME_LEN);
	return walsim_error_set(err,
							"WAL file name \"%s\": %zu characters, a segment name has 24 hex digits",
							name, len);
}

bool
wal_segment_size_parse(const char *text, uint32_t *segsize, WalsimError *err)
{
	/* SHOW wal_segment_size always has a unit (PostgreSQL's memory units) */
	static const SizeSyntax syntax = {.units = "kB,MB,GB", .bare = false, .max = UINT64_MAX};
	uint64_t	value;

	if (text == NULL)
		return walsim_error_set(err, "wal_segment_size: no text");
	if (!parse_size("wal_segment_size", text, &syntax, &value, err))
		return false;
	if (!wal_segment_size_check(value, err))
	{
		walsim_error_prefix(err, "wal_segment_size \"%s\": ", text);
		return false;
	}
	*segsize = (uint32_t) value;
	return true;
}

void
wal_segment_size_format(uint32_t segsize, char *buf)
{
	if (segsize % (UINT32_C(1) << 30) == 0)
		snprintf(buf, 16, "%" PRIu32 "GB", segsize >> 30);
	else if (segsize % (UINT32_C(1) << 20) == 0)
		snprintf(buf, 16, "%" PRIu32 "MB", segsize >> 20);
	else
		snprintf(buf, 16, "%" PRIu32 "kB", segsize >> 10);
}
