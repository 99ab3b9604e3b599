/*
 * glob.c — the glob matcher of disk fault rules (disk_glob_match, see
 * disk.h), run on every tracked call: no allocation, as it may run inside a
 * signal handler.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "disk.h"

/* Match a bracket class at *gp against c; advances *gp past ']'. */
static bool
class_match(const char **gp, char c, bool *matched)
{
	const char *g = *gp + 1;	/* past '[' */
	bool		negate = false;
	bool		hit = false;

	if (*g == '!' || *g == '^')
	{
		negate = true;
		g++;
	}
	if (*g == ']')				/* a leading ']' is literal */
	{
		hit = (c == ']');
		g++;
	}
	while (*g && *g != ']')
	{
		if (g[1] == '-' && g[2] && g[2] != ']')
		{
			if (c >= g[0] && c <= g[2])
				hit = true;
			g += 3;
		}
		else
		{
			if (c == *g)
				hit = true;
			g++;
		}
	}
	if (*g != ']')
		return false;			/* unterminated: no match */
	*gp = g + 1;
	*matched = negate ? !hit : hit;
	return true;
}

/*
 * Pairs (position in the glob, position in the path) already known not to
 * match.  A star tries every split of the path, and with several stars the
 * same pairs come back again and again: without this the matcher is
 * exponential in the number of stars ("*[!a]*[!b]*[!c]*..." against a long
 * name hung it; found by tests/fuzz/fuzz_disk_rules).  With it every pair is
 * worked out once, so a match costs at most glob length x path length steps.
 * The bitmap covers what rules and the preload library can hand in (a glob
 * below DISK_GLOB_MAX, a path below DISK_REL_MAX) and lives on the stack:
 * the matcher runs inside intercepted file calls and must not allocate.
 */
typedef struct GlobMemo GlobMemo;
static bool glob_match_here(GlobMemo *m, const char *glob, const char *path);

#define GLOB_MEMO_BITS	(DISK_GLOB_MAX * DISK_REL_MAX)

struct GlobMemo
{
	const char *glob0;
	const char *path0;
	size_t		path_span;		/* strlen(path0) + 1 */
	uint8_t    *failed;			/* NULL: inputs too long, no memo */
};

static bool
glob_match(GlobMemo *m, const char *glob, const char *path)
{
	size_t		bit = 0;
	bool		result;

	if (m->failed != NULL)
	{
		bit = (size_t) (glob - m->glob0) * m->path_span + (size_t) (path - m->path0);
		if (m->failed[bit / 8] & (1u << (bit % 8)))
			return false;
	}
	result = glob_match_here(m, glob, path);
	if (!result && m->failed != NULL)
		m->failed[bit / 8] |= (uint8_t) (1u << (bit % 8));
	return result;
}

bool
disk_glob_match(const char *glob, const char *path)
{
	uint8_t		failed[GLOB_MEMO_BITS / 8];
	size_t		glob_span = strlen(glob) + 1;
	GlobMemo	m;

	m.glob0 = glob;
	m.path0 = path;
	m.path_span = strlen(path) + 1;
	m.failed = NULL;
	if (glob_span <= DISK_GLOB_MAX && m.path_span <= DISK_REL_MAX)
	{
		memset(failed, 0, (glob_span * m.path_span + 7) / 8);
		m.failed = failed;
	}
	return glob_match(&m, glob, path);
}

/* One attempt at matching glob against path; stars recurse via glob_match. */
static bool
glob_match_here(GlobMemo *m, const char *glob, const char *path)
{
	while (*glob)
	{
		if (*glob == '*')
		{
			/*
			 * "**" matches any string, slashes included, "*" any string
			 * without a slash.  A longer run of stars means the same as
			 * "**", so the whole run is taken at once: trying each star in
			 * turn backtracks exponentially in the run's length (a glob of
			 * 60 stars hung the matcher; found by tests/fuzz/fuzz_disk_rules).
			 */
			bool		cross_slash = glob[1] == '*';

			while (*glob == '*')
				glob++;
			for (const char *p = path;; p++)
			{
				if (glob_match(m, glob, p))
					return true;
				if (*p == '\0' || (*p == '/' && !cross_slash))
					return false;
			}
		}
		if (*path == '\0')
			return false;
		if (*glob == '?')
		{
			if (*path == '/')
				return false;
			glob++;
			path++;
			continue;
		}
		if (*glob == '[')
		{
			bool		matched;

			if (*path == '/' || !class_match(&glob, *path, &matched) || !matched)
				return false;
			path++;
			continue;
		}
		if (*glob == '\\' && glob[1])
			glob++;
		if (*glob != *path)
			return false;
		glob++;
		path++;
	}
	return *path == '\0';
}
