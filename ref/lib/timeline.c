/*
 * timeline.c — timeline history files (walsim/timeline.h).
 *
 * The grammar follows PostgreSQL's readTimeLineHistory(), which reads each
 * line with sscanf("%u\t%X/%X") and ignores the rest of the line.  We are
 * stricter where PostgreSQL would silently take garbage (a sign, "0x", hex
 * beyond 8 digits, a switch point that goes backwards) because a test
 * harness should notice a damaged file rather than act on it.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "walsim/lsn.h"
#include "walsim/textfile.h"
#include "walsim/timeline.h"

#define DEFAULT_REASON "no recovery target specified"

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* A growing array of entries while parsing. */
typedef struct EntryList
{
	TimelineEntry *items;
	size_t		count;
	size_t		cap;
} EntryList;

static bool
entry_list_push(EntryList *list, TimelineEntry entry, WalsimError *err)
{
	if (list->count == list->cap)
	{
		size_t		cap = list->cap ? list->cap * 2 : 8;
		TimelineEntry *items = realloc(list->items, cap * sizeof(TimelineEntry));

		if (items == NULL)
			return walsim_error_set(err, "timeline history: out of memory");
		list->items = items;
		list->cap = cap;
	}
	list->items[list->count++] = entry;
	return true;
}

static void
entry_list_free(EntryList *list)
{
	for (size_t i = 0; i < list->count; i++)
		free(list->items[i].reason);
	free(list->items);
	list->items = NULL;
	list->count = list->cap = 0;
}

/* Parse a decimal timeline ID of 1..10 digits at line[*pos]. */
static bool
parse_tli(const char *line, size_t len, size_t *pos, uint32_t *tli)
{
	uint64_t	v = 0;
	size_t		start = *pos;

	while (*pos < len && line[*pos] >= '0' && line[*pos] <= '9')
	{
		v = v * 10 + (uint64_t) (line[*pos] - '0');
		if (v > UINT32_MAX)
			return false;
		(*pos)++;
	}
	if (*pos == start)
		return false;
	*tli = (uint32_t) v;
	return true;
}

/*
 * Parse one non-blank, non-comment line (without its newline) into *entry.
 * prev is the previous entry (NULL for the first line).
 */
static bool
parse_line(const char *line, size_t len, int lineno, const TimelineEntry *prev,
		   TimelineEntry *entry, WalsimError *err)
{
	size_t		pos = 0;
	size_t		lsn_start;
	char		lsn_text[32];
	size_t		reason_end;
	uint32_t	tli;
	uint64_t	switchpoint;
	WalsimError lsn_err;

	while (pos < len && is_blank(line[pos]))
		pos++;
	if (!parse_tli(line, len, &pos, &tli))
		return walsim_error_set(err, "line %d: expected a numeric timeline ID", lineno);
	if (tli == 0)
		return walsim_error_set(err, "line %d: timeline 0 does not exist", lineno);
	if (pos == len || !is_blank(line[pos]))
		return walsim_error_set(err,
								"line %d: expected whitespace and a switch point after timeline %" PRIu32,
								lineno, tli);
	while (pos < len && is_blank(line[pos]))
		pos++;
	lsn_start = pos;
	while (pos < len && !is_blank(line[pos]))
		pos++;
	if (pos == lsn_start)
		return walsim_error_set(err, "line %d: missing switch point", lineno);
	if (pos - lsn_start >= sizeof(lsn_text))
		return walsim_error_set(err, "line %d: switch point is too long", lineno);
	memcpy(lsn_text, line + lsn_start, pos - lsn_start);
	lsn_text[pos - lsn_start] = '\0';
	if (!lsn_parse(lsn_text, &switchpoint, &lsn_err))
		return walsim_error_set(err, "line %d: invalid switch point: %s",
								lineno, lsn_err.message);
	if (switchpoint == LSN_INVALID)
		return walsim_error_set(err, "line %d: switch point 0/0 is invalid", lineno);
	if (prev != NULL && tli <= prev->tli)
		return walsim_error_set(err,
								"line %d: timeline IDs must be in increasing sequence (%" PRIu32 " after %" PRIu32 ")",
								lineno, tli, prev->tli);
	if (prev != NULL && switchpoint < prev->end)
	{
		char		prev_text[LSN_TEXT_MAX];

		lsn_format(prev->end, prev_text);
		return walsim_error_set(err,
								"line %d: switch point %s is before the previous switch point %s",
								lineno, lsn_text, prev_text);
	}

	/* the reason: the rest of the line without surrounding whitespace */
	while (pos < len && is_blank(line[pos]))
		pos++;
	reason_end = len;
	while (reason_end > pos && is_blank(line[reason_end - 1]))
		reason_end--;

	entry->tli = tli;
	entry->begin = prev ? prev->end : LSN_INVALID;
	entry->end = switchpoint;
	entry->reason = NULL;
	if (reason_end > pos)
	{
		entry->reason = strndup(line + pos, reason_end - pos);
		if (entry->reason == NULL)
			return walsim_error_set(err, "timeline history: out of memory");
	}
	return true;
}

bool
timeline_history_parse(const char *text, size_t len, uint32_t target,
					   TimelineHistory *out, WalsimError *err)
{
	EntryList	list = {0};
	size_t		pos = 0;
	int			lineno = 0;
	TimelineEntry last;

	if (target == 0)
		return walsim_error_set(err, "timeline history: timeline 0 does not exist");
	if (memchr(text, '\0', len) != NULL)
		return walsim_error_set(err, "timeline history: contains a NUL byte at offset %zu",
								(size_t) ((const char *) memchr(text, '\0', len) - text));

	while (pos < len)
	{
		const char *line = text + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t		line_len = nl ? (size_t) (nl - line) : len - pos;
		size_t		i = 0;
		TimelineEntry entry;

		lineno++;
		pos += line_len + (nl ? 1 : 0);
		while (i < line_len && is_blank(line[i]))
			i++;
		if (i == line_len || line[i] == '#')
			continue;
		if (!parse_line(line, line_len, lineno,
						list.count ? &list.items[list.count - 1] : NULL,
						&entry, err))
		{
			entry_list_free(&list);
			return false;
		}
		if (!entry_list_push(&list, entry, err))
		{
			free(entry.reason);
			entry_list_free(&list);
			return false;
		}
	}

	if (list.count > 0 && list.items[list.count - 1].tli >= target)
	{
		walsim_error_set(err,
						 "timeline history of timeline %" PRIu32 ": parent timeline %" PRIu32 " (line %d) is not less than the file's timeline",
						 target, list.items[list.count - 1].tli, lineno);
		entry_list_free(&list);
		return false;
	}

	last.tli = target;
	last.begin = list.count ? list.items[list.count - 1].end : LSN_INVALID;
	last.end = LSN_INVALID;
	last.reason = NULL;
	if (!entry_list_push(&list, last, err))
	{
		entry_list_free(&list);
		return false;
	}
	out->target = target;
	out->count = list.count;
	out->entries = list.items;
	return true;
}

bool
timeline_history_read(const char *path, uint32_t target, TimelineHistory *out,
					  WalsimError *err)
{
	FILE	   *f = fopen(path, "rb");
	char	   *buf;
	size_t		len;
	bool		ok;

	if (f == NULL)
		return walsim_error_set(err, "could not open \"%s\": %s", path, strerror(errno));
	ok = textfile_read(f, path, SIZE_MAX, &buf, &len, err);
	fclose(f);
	if (!ok)
		return false;
	ok = timeline_history_parse(buf, len, target, out, err);
	free(buf);
	if (!ok)
		walsim_error_prefix(err, "%s: ", path);
	return ok;
}

void
timeline_history_free(TimelineHistory *h)
{
	if (h == NULL)
		return;
	for (size_t i = 0; i < h->count; i++)
		free(h->entries[i].reason);
	free(h->entries);
	h->entries = NULL;
	h->count = 0;
}

uint32_t
timeline_of_lsn(const TimelineHistory *h, uint64_t lsn)
{
	for (size_t i = 0; i + 1 < h->count; i++)
	{
		if (lsn < h->entries[i].end)
			return h->entries[i].tli;
	}
	return h->target;
}

bool
timeline_switch_point(const TimelineHistory *h, uint32_t tli, uint64_t *lsn,
					  WalsimError *err)
{
	for (size_t i = 0; i < h->count; i++)
	{
		if (h->entries[i].tli == tli)
		{
			*lsn = h->entries[i].end;
			return true;
		}
	}
	return walsim_error_set(err,
							"timeline %" PRIu32 " is not in the history of timeline %" PRIu32,
							tli, h->target);
}

char *
timeline_history_format(const TimelineHistory *h)
{
	size_t		cap = 1;
	char	   *buf;
	size_t		len = 0;

	for (size_t i = 0; i + 1 < h->count; i++)
		cap += 10 + 1 + LSN_TEXT_MAX + 1 +
			strlen(h->entries[i].reason ? h->entries[i].reason : DEFAULT_REASON) + 1;
	buf = malloc(cap);
	if (buf == NULL)
		return NULL;
	buf[0] = '\0';
	for (size_t i = 0; i + 1 < h->count; i++)
	{
		char		lsn_text[LSN_TEXT_MAX];
		int			n;

		lsn_format(h->entries[i].end, lsn_text);
		n = snprintf(buf + len, cap - len, "%" PRIu32 "\t%s\t%s\n",
					 h->entries[i].tli, lsn_text,
					 h->entries[i].reason ? h->entries[i].reason : DEFAULT_REASON);
		len += (size_t) n;
	}
	return buf;
}
