/*
 * rules.c — disk fault rules: operation and errno names, the key=value rule
 * syntax of "walsim-diskctl rule add", and the glob matcher used on every
 * tracked call (no allocation: it may run inside a signal handler).
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disk.h"

static const char *const op_names[DISK_OP_COUNT] = {
	[DISK_OP_OPEN] = "open",
	[DISK_OP_READ] = "read",
	[DISK_OP_WRITE] = "write",
	[DISK_OP_FSYNC] = "fsync",
	[DISK_OP_FDATASYNC] = "fdatasync",
	[DISK_OP_SYNC_FILE_RANGE] = "sync_file_range",
	[DISK_OP_RENAME] = "rename",
	[DISK_OP_UNLINK] = "unlink",
	[DISK_OP_TRUNCATE] = "truncate",
	[DISK_OP_FALLOCATE] = "fallocate",
	[DISK_OP_CLOSE] = "close",
};

static const struct
{
	const char *name;
	int			value;
}			errno_names[] = {
	{"EIO", EIO}, {"ENOSPC", ENOSPC}, {"EDQUOT", EDQUOT}, {"EROFS", EROFS},
	{"EINVAL", EINVAL}, {"EACCES", EACCES}, {"EPERM", EPERM},
	{"ENOENT", ENOENT}, {"EEXIST", EEXIST}, {"EAGAIN", EAGAIN},
	{"EINTR", EINTR}, {"EBADF", EBADF}, {"EFBIG", EFBIG}, {"EMFILE", EMFILE},
	{"ENFILE", ENFILE}, {"ENOMEM", ENOMEM}, {"EXDEV", EXDEV},
	{"ETIMEDOUT", ETIMEDOUT},
};

int
disk_op_from_name(const char *name)
{
	for (int i = 0; i < DISK_OP_COUNT; i++)
		if (strcmp(op_names[i], name) == 0)
			return i;
	return -1;
}

const char *
disk_op_name(DiskOp op)
{
	return (op >= 0 && op < DISK_OP_COUNT) ? op_names[op] : "?";
}

int
disk_errno_from_name(const char *name)
{
	char	   *end;
	long		v;

	for (size_t i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++)
		if (strcmp(errno_names[i].name, name) == 0)
			return errno_names[i].value;
	errno = 0;
	v = strtol(name, &end, 10);
	if (errno == 0 && end != name && *end == '\0' && v > 0 && v < 4096)
		return (int) v;
	return -1;
}

const char *
disk_errno_name(int err)
{
	for (size_t i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++)
		if (errno_names[i].value == err)
			return errno_names[i].name;
	return NULL;
}

/* Parse a whole unsigned decimal number; false on anything else. */
static bool
parse_u64(const char *s, uint64_t *out)
{
	char	   *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*out = v;
	return true;
}

static bool
parse_ops(const char *value, uint32_t *ops, WalsimError *err)
{
	char		buf[256];
	char	   *save = NULL;

	if (strlen(value) >= sizeof(buf))
		return walsim_error_set(err, "ops=%.40s...: too long", value);
	strcpy(buf, value);
	*ops = 0;
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
	{
		int			op;

		if (strcmp(tok, "any") == 0)
		{
			*ops |= (1u << DISK_OP_COUNT) - 1;
			continue;
		}
		if (strcmp(tok, "sync") == 0)
		{
			*ops |= 1u << DISK_OP_FSYNC | 1u << DISK_OP_FDATASYNC |
				1u << DISK_OP_SYNC_FILE_RANGE;
			continue;
		}
		op = disk_op_from_name(tok);
		if (op < 0)
			return walsim_error_set(err, "ops=%s: unknown operation \"%s\" "
									"(open, read, write, fsync, fdatasync, "
									"sync_file_range, rename, unlink, truncate, "
									"fallocate, close, sync, any)", value, tok);
		*ops |= 1u << op;
	}
	if (*ops == 0)
		return walsim_error_set(err, "ops=%s: no operation given", value);
	return true;
}

static bool
parse_when(const char *value, DiskRule *rule, WalsimError *err)
{
	const char *arg = strchr(value, ':');
	char	   *end;

	if (strcmp(value, "always") == 0)
	{
		rule->trigger = DISK_WHEN_AFTER;
		rule->n = 0;
		return true;
	}
	if (arg == NULL)
		return walsim_error_set(err, "when=%s: expected nth:N, after:N, "
								"range:LO-HI, prob:P or always", value);
	arg++;
	if (strncmp(value, "nth:", 4) == 0)
	{
		rule->trigger = DISK_WHEN_NTH;
		if (!parse_u64(arg, &rule->n) || rule->n == 0)
			return walsim_error_set(err, "when=%s: N must be a whole number >= 1", value);
	}
	else if (strncmp(value, "after:", 6) == 0)
	{
		rule->trigger = DISK_WHEN_AFTER;
		if (!parse_u64(arg, &rule->n))
			return walsim_error_set(err, "when=%s: N must be a whole number >= 0", value);
	}
	else if (strncmp(value, "range:", 6) == 0)
	{
		char		lo[32];
		const char *dash = strchr(arg, '-');

		rule->trigger = DISK_WHEN_RANGE;
		if (dash == NULL || (size_t) (dash - arg) >= sizeof(lo))
			return walsim_error_set(err, "when=%s: expected range:LO-HI (byte offsets)", value);
		memcpy(lo, arg, dash - arg);
		lo[dash - arg] = '\0';
		if (!parse_u64(lo, &rule->range_lo) || !parse_u64(dash + 1, &rule->range_hi) ||
			rule->range_hi <= rule->range_lo)
			return walsim_error_set(err, "when=%s: LO and HI must be byte offsets "
									"with LO < HI", value);
	}
	else if (strncmp(value, "prob:", 5) == 0)
	{
		rule->trigger = DISK_WHEN_PROB;
		errno = 0;
		rule->prob = strtod(arg, &end);
		if (errno != 0 || end == arg || *end != '\0' ||
			!(rule->prob >= 0.0 && rule->prob <= 1.0))
			return walsim_error_set(err, "when=%s: P must be a number in [0, 1]", value);
	}
	else
		return walsim_error_set(err, "when=%s: unknown trigger (nth, after, "
								"range, prob, always)", value);
	return true;
}

static bool
parse_do(const char *value, DiskRule *rule, WalsimError *err)
{
	const char *arg = strchr(value, ':');
	size_t		kind_len = arg ? (size_t) (arg - value) : strlen(value);

	if (arg)
		arg++;
	rule->keep = -1;
	rule->flip_byte = -1;
	rule->flip_bit = -1;
	if (kind_len == 5 && strncmp(value, "errno", 5) == 0)
	{
		rule->effect = DISK_DO_ERRNO;
		if (arg == NULL || (rule->err = disk_errno_from_name(arg)) < 0)
			return walsim_error_set(err, "do=%s: expected errno:NAME (EIO, ENOSPC, "
									"EDQUOT, EROFS, ... or a number)", value);
	}
	else if ((kind_len == 5 && strncmp(value, "short", 5) == 0) ||
			 (kind_len == 4 && strncmp(value, "torn", 4) == 0))
	{
		uint64_t	keep;

		rule->effect = value[0] == 's' ? DISK_DO_SHORT : DISK_DO_TORN;
		if (arg != NULL)
		{
			if (!parse_u64(arg, &keep) || keep > INT64_MAX)
				return walsim_error_set(err, "do=%s: KEEP must be a byte count", value);
			rule->keep = (int64_t) keep;
		}
	}
	else if (kind_len == 4 && strncmp(value, "flip", 4) == 0)
	{
		rule->effect = DISK_DO_FLIP;
		if (arg != NULL)
		{
			char		byte[32];
			const char *dot = strchr(arg, '.');
			size_t		blen = dot ? (size_t) (dot - arg) : strlen(arg);
			uint64_t	v;

			if (blen >= sizeof(byte))
				return walsim_error_set(err, "do=%s: expected flip[:BYTE[.BIT]]", value);
			memcpy(byte, arg, blen);
			byte[blen] = '\0';
			if (!parse_u64(byte, &v) || v > INT64_MAX)
				return walsim_error_set(err, "do=%s: BYTE must be an offset in the "
										"call's data", value);
			rule->flip_byte = (int64_t) v;
			if (dot != NULL)
			{
				if (!parse_u64(dot + 1, &v) || v > 7)
					return walsim_error_set(err, "do=%s: BIT must be 0..7", value);
				rule->flip_bit = (int32_t) v;
			}
		}
	}
	else if (kind_len == 5 && strncmp(value, "delay", 5) == 0)
	{
		rule->effect = DISK_DO_DELAY;
		if (arg == NULL || !parse_u64(arg, &rule->delay_us) ||
			rule->delay_us > UINT64_C(3600000000))
			return walsim_error_set(err, "do=%s: expected delay:MICROSECONDS "
									"(at most one hour)", value);
	}
	else if (kind_len == 3 && strncmp(value, "lie", 3) == 0 && arg == NULL)
		rule->effect = DISK_DO_LIE;
	else
		return walsim_error_set(err, "do=%s: unknown effect (errno:NAME, short[:KEEP], "
								"torn[:KEEP], flip[:BYTE[.BIT]], delay:US, lie)", value);
	return true;
}

static bool
valid_id(const char *id)
{
	if (*id == '\0' || strcmp(id, "all") == 0)
		return false;
	for (const char *p = id; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			  (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
			return false;
	return true;
}

bool
disk_rule_parse(DiskRule *rule, int nwords, char *const *words, WalsimError *err)
{
	bool		have_id = false,
				have_path = false,
				have_ops = false,
				have_do = false;

	memset(rule, 0, sizeof(*rule));
	rule->trigger = DISK_WHEN_AFTER;	/* default: every call */
	for (int i = 0; i < nwords; i++)
	{
		const char *w = words[i];
		const char *eq = strchr(w, '=');
		const char *value;
		size_t		klen;

		if (eq == NULL)
			return walsim_error_set(err, "\"%s\": expected key=value (keys: id, path, "
									"ops, when, do, limit)", w);
		klen = eq - w;
		value = eq + 1;
		if (klen == 2 && strncmp(w, "id", 2) == 0)
		{
			if (strlen(value) >= DISK_RULE_ID_MAX || !valid_id(value))
				return walsim_error_set(err, "id=%s: must be 1-%d characters of "
										"[A-Za-z0-9._-] and not \"all\"", value,
										DISK_RULE_ID_MAX - 1);
			strcpy(rule->id, value);
			have_id = true;
		}
		else if (klen == 4 && strncmp(w, "path", 4) == 0)
		{
			if (*value == '\0' || *value == '/' || strlen(value) >= DISK_GLOB_MAX)
				return walsim_error_set(err, "path=%s: must be a non-empty glob relative "
										"to the data directory, shorter than %d",
										value, DISK_GLOB_MAX);
			strcpy(rule->glob, value);
			have_path = true;
		}
		else if (klen == 3 && strncmp(w, "ops", 3) == 0)
		{
			if (!parse_ops(value, &rule->ops, err))
				return false;
			have_ops = true;
		}
		else if (klen == 4 && strncmp(w, "when", 4) == 0)
		{
			if (!parse_when(value, rule, err))
				return false;
		}
		else if (klen == 2 && strncmp(w, "do", 2) == 0)
		{
			if (!parse_do(value, rule, err))
				return false;
			have_do = true;
		}
		else if (klen == 5 && strncmp(w, "limit", 5) == 0)
		{
			if (!parse_u64(value, &rule->limit))
				return walsim_error_set(err, "limit=%s: must be a whole number "
										"(0 = no limit)", value);
		}
		else
			return walsim_error_set(err, "\"%s\": unknown key (id, path, ops, when, "
									"do, limit)", w);
	}
	if (!have_id || !have_path || !have_ops || !have_do)
		return walsim_error_set(err, "rule: missing %s (a rule needs id=, path=, "
								"ops= and do=)",
								!have_id ? "id=" : !have_path ? "path=" :
								!have_ops ? "ops=" : "do=");
	/* effects that only make sense on data */
	if (rule->effect == DISK_DO_SHORT || rule->effect == DISK_DO_TORN)
	{
		if (rule->ops & ~(1u << DISK_OP_WRITE))
			return walsim_error_set(err, "do=%s: applies to ops=write only",
									rule->effect == DISK_DO_SHORT ? "short" : "torn");
	}
	if (rule->effect == DISK_DO_FLIP &&
		(rule->ops & ~(1u << DISK_OP_WRITE | 1u << DISK_OP_READ)))
		return walsim_error_set(err, "do=flip: applies to ops=read and ops=write only");
	if (rule->trigger == DISK_WHEN_RANGE &&
		(rule->ops & ~(1u << DISK_OP_WRITE | 1u << DISK_OP_READ)))
		return walsim_error_set(err, "when=range: applies to ops=read and ops=write only");
	return true;
}

void
disk_effect_format(const DiskRule *rule, char *buf, size_t len)
{
	const char *name;

	switch ((DiskEffect) rule->effect)
	{
		case DISK_DO_ERRNO:
			name = disk_errno_name(rule->err);
			if (name)
				snprintf(buf, len, "errno:%s", name);
			else
				snprintf(buf, len, "errno:%d", rule->err);
			return;
		case DISK_DO_SHORT:
		case DISK_DO_TORN:
			name = rule->effect == DISK_DO_SHORT ? "short" : "torn";
			if (rule->keep >= 0)
				snprintf(buf, len, "%s:%" PRId64, name, rule->keep);
			else
				snprintf(buf, len, "%s", name);
			return;
		case DISK_DO_FLIP:
			if (rule->flip_byte < 0)
				snprintf(buf, len, "flip");
			else if (rule->flip_bit < 0)
				snprintf(buf, len, "flip:%" PRId64, rule->flip_byte);
			else
				snprintf(buf, len, "flip:%" PRId64 ".%d", rule->flip_byte, rule->flip_bit);
			return;
		case DISK_DO_DELAY:
			snprintf(buf, len, "delay:%" PRIu64, rule->delay_us);
			return;
		case DISK_DO_LIE:
			snprintf(buf, len, "lie");
			return;
	}
	snprintf(buf, len, "?");
}

void
disk_rule_format(const DiskRule *rule, char *buf, size_t len)
{
	char		ops[256] = "";
	char		when[96];
	char		effect[64];
	size_t		used = 0;

	for (int i = 0; i < DISK_OP_COUNT; i++)
		if (rule->ops & (1u << i))
			used += snprintf(ops + used, sizeof(ops) - used, "%s%s",
							 used ? "," : "", op_names[i]);
	switch ((DiskTrigger) rule->trigger)
	{
		case DISK_WHEN_NTH:
			snprintf(when, sizeof(when), "nth:%" PRIu64, rule->n);
			break;
		case DISK_WHEN_AFTER:
			snprintf(when, sizeof(when), "after:%" PRIu64, rule->n);
			break;
		case DISK_WHEN_RANGE:
			snprintf(when, sizeof(when), "range:%" PRIu64 "-%" PRIu64,
					 rule->range_lo, rule->range_hi);
			break;
		case DISK_WHEN_PROB:
			snprintf(when, sizeof(when), "prob:%.17g", rule->prob);
			break;
		default:
			snprintf(when, sizeof(when), "?");
	}
	disk_effect_format(rule, effect, sizeof(effect));
	snprintf(buf, len, "id=%s path=%s ops=%s when=%s do=%s limit=%" PRIu64,
			 rule->id, rule->glob, ops, when, effect, rule->limit);
}

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
