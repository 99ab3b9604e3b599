/*
 * rules.c — disk fault rules: operation and errno names, and the key=value
 * rule syntax of "walsim-diskctl rule add" (the glob matcher the rules'
 * paths use is glob.c).
 *
 * The syntax is three tables: the keys of a rule (rule_keys), the triggers
 * of when= (triggers) and the effects of do= (effects), each name with its
 * parser; the messages list what the tables accept.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "walsim/parse.h"
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
	uint64_t	v;

	for (size_t i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++)
		if (strcmp(errno_names[i].name, name) == 0)
			return errno_names[i].value;
	if (parse_u64("", name, 1, 4095, &v, NULL))
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

/*
 * A whole unsigned decimal number; false on anything else (the callers say
 * what the number is for).
 */
static bool
whole_number(const char *s, uint64_t *out)
{
	return parse_u64("", s, 0, UINT64_MAX, out, NULL);
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

/* ------------------------------------------------------------ when= */

/* A trigger's parser gets the whole value (for messages) and its argument. */
typedef bool (*TriggerParser) (DiskRule *rule, const char *value, const char *arg,
							   WalsimError *err);

static bool
when_nth(DiskRule *rule, const char *value, const char *arg, WalsimError *err)
{
	rule->trigger = DISK_WHEN_NTH;
	if (!whole_number(arg, &rule->n) || rule->n == 0)
		return walsim_error_set(err, "when=%s: N must be a whole number >= 1", value);
	return true;
}

static bool
when_after(DiskRule *rule, const char *value, const char *arg, WalsimError *err)
{
	rule->trigger = DISK_WHEN_AFTER;
	if (!whole_number(arg, &rule->n))
		return walsim_error_set(err, "when=%s: N must be a whole number >= 0", value);
	return true;
}

static bool
when_range(DiskRule *rule, const char *value, const char *arg, WalsimError *err)
{
	char		lo[32];
	const char *dash = strchr(arg, '-');

	rule->trigger = DISK_WHEN_RANGE;
	if (dash == NULL || (size_t) (dash - arg) >= sizeof(lo))
		return walsim_error_set(err, "when=%s: expected range:LO-HI (byte offsets)", value);
	memcpy(lo, arg, dash - arg);
	lo[dash - arg] = '\0';
	if (!whole_number(lo, &rule->range_lo) || !whole_number(dash + 1, &rule->range_hi) ||
		rule->range_hi <= rule->range_lo)
		return walsim_error_set(err, "when=%s: LO and HI must be byte offsets "
								"with LO < HI", value);
	return true;
}

static bool
when_prob(DiskRule *rule, const char *value, const char *arg, WalsimError *err)
{
	rule->trigger = DISK_WHEN_PROB;
	if (!parse_double("", arg, 0.0, 1.0, &rule->prob, NULL))
		return walsim_error_set(err, "when=%s: P must be a number in [0, 1]", value);
	return true;
}

static bool
when_always(DiskRule *rule, const char *value, const char *arg, WalsimError *err)
{
	(void) value;
	(void) arg;
	(void) err;
	rule->trigger = DISK_WHEN_AFTER;
	rule->n = 0;
	return true;
}

/* when=NAME:ARG, or when=NAME for the one trigger without an argument. */
static const struct
{
	const char *name;
	const char *syntax;			/* for messages */
	bool		takes_arg;
	TriggerParser parse;
}			triggers[] = {
	{"nth", "nth:N", true, when_nth},
	{"after", "after:N", true, when_after},
	{"range", "range:LO-HI", true, when_range},
	{"prob", "prob:P", true, when_prob},
	{"always", "always", false, when_always},
};

#define NTRIGGERS (sizeof(triggers) / sizeof(triggers[0]))

static bool
parse_when(const char *value, DiskRule *rule, WalsimError *err)
{
	const char *arg = strchr(value, ':');
	size_t		name_len = arg ? (size_t) (arg - value) : strlen(value);
	char		list[128] = "";

	for (size_t i = 0; i < NTRIGGERS; i++)
		if (strlen(triggers[i].name) == name_len &&
			strncmp(value, triggers[i].name, name_len) == 0 &&
			triggers[i].takes_arg == (arg != NULL))
			return triggers[i].parse(rule, value, arg ? arg + 1 : NULL, err);
	if (arg == NULL)
	{
		/* "nth:N, after:N, range:LO-HI, prob:P or always" */
		for (size_t i = 0; i < NTRIGGERS; i++)
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
					 i == 0 ? "" : i + 1 == NTRIGGERS ? " or " : ", ", triggers[i].syntax);
		return walsim_error_set(err, "when=%s: expected %s", value, list);
	}
	for (size_t i = 0; i < NTRIGGERS; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
				 i ? ", " : "", triggers[i].name);
	return walsim_error_set(err, "when=%s: unknown trigger (%s)", value, list);
}

/* ------------------------------------------------------------ do= */

/* An effect's parser gets the whole value (for messages) and its argument or NULL. */
typedef bool (*EffectParser) (DiskRule *rule, const char *value, const char *arg,
							  WalsimError *err);

static bool
do_errno(DiskRule *rule, const char *value, const char *arg, WalsimError *err)
{
	rule->effect = DISK_DO_ERRNO;
	if (arg == NULL || (rule->err = disk_errno_from_name(arg)) < 0)
		return walsim_error_set(err, "do=%s: expected errno:NAME (EIO, ENOSPC, "
								"EDQUOT, EROFS, ... or a number)", value);
	return true;
}

/* short[:KEEP] and torn[:KEEP] */
static bool
do_partial(DiskRule *rule, const char *value, const char *arg, WalsimError *err)
{
	uint64_t	keep;

	rule->effect = value[0] == 's' ? DISK_DO_SHORT : DISK_DO_TORN;
	if (arg != NULL)
	{
		if (!whole_number(arg, &keep) || keep > INT64_MAX)
			return walsim_error_set(err, "do=%s: KEEP must be a byte count", value);
		rule->keep = (int64_t) keep;
	}
	return true;
}

static bool
do_flip(DiskRule *rule, const char *value, const char *arg, WalsimError *err)
{
	char		byte[32];
	const char *dot;
	size_t		blen;
	uint64_t	v;

	rule->effect = DISK_DO_FLIP;
	if (arg == NULL)
		return true;
	dot = strchr(arg, '.');
	blen = dot ? (size_t) (dot - arg) : strlen(arg);
	if (blen >= sizeof(byte))
		return walsim_error_set(err, "do=%s: expected flip[:BYTE[.BIT]]", value);
	memcpy(byte, arg, blen);
	byte[blen] = '\0';
	if (!whole_number(byte, &v) || v > INT64_MAX)
		return walsim_error_set(err, "do=%s: BYTE must be an offset in the "
								"call's data", value);
	rule->flip_byte = (int64_t) v;
	if (dot != NULL)
	{
		if (!whole_number(dot + 1, &v) || v > 7)
			return walsim_error_set(err, "do=%s: BIT must be 0..7", value);
		rule->flip_bit = (int32_t) v;
	}
	return true;
}

static bool
do_delay(DiskRule *rule, const char *value, const char *arg, WalsimError *err)
{
	rule->effect = DISK_DO_DELAY;
	if (arg == NULL || !whole_number(arg, &rule->delay_us) ||
		rule->delay_us > UINT64_C(3600000000))
		return walsim_error_set(err, "do=%s: expected delay:MICROSECONDS "
								"(at most one hour)", value);
	return true;
}

static bool
do_lie(DiskRule *rule, const char *value, const char *arg, WalsimError *err)
{
	(void) value;
	(void) arg;
	(void) err;
	rule->effect = DISK_DO_LIE;
	return true;
}

/* do=NAME[:ARG]; takes_arg false refuses an argument. */
static const struct
{
	const char *name;
	const char *syntax;			/* for messages */
	bool		takes_arg;
	EffectParser parse;
}			effects[] = {
	{"errno", "errno:NAME", true, do_errno},
	{"short", "short[:KEEP]", true, do_partial},
	{"torn", "torn[:KEEP]", true, do_partial},
	{"flip", "flip[:BYTE[.BIT]]", true, do_flip},
	{"delay", "delay:US", true, do_delay},
	{"lie", "lie", false, do_lie},
};

#define NEFFECTS (sizeof(effects) / sizeof(effects[0]))

static bool
parse_do(const char *value, DiskRule *rule, WalsimError *err)
{
	const char *arg = strchr(value, ':');
	size_t		name_len = arg ? (size_t) (arg - value) : strlen(value);
	char		list[160] = "";

	if (arg)
		arg++;
	rule->keep = -1;
	rule->flip_byte = -1;
	rule->flip_bit = -1;
	for (size_t i = 0; i < NEFFECTS; i++)
		if (strlen(effects[i].name) == name_len &&
			strncmp(value, effects[i].name, name_len) == 0 &&
			(effects[i].takes_arg || arg == NULL))
			return effects[i].parse(rule, value, arg, err);
	for (size_t i = 0; i < NEFFECTS; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
				 i ? ", " : "", effects[i].syntax);
	return walsim_error_set(err, "do=%s: unknown effect (%s)", value, list);
}

/* ------------------------------------------------------------ rules */

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

/* A rule being parsed and the keys it has had. */
typedef struct RuleDraft
{
	DiskRule   *rule;
	bool		have_id;
	bool		have_path;
	bool		have_ops;
	bool		have_do;
} RuleDraft;

/* Parse the value of one key=value word into the draft. */
typedef bool (*RuleKeyParser) (RuleDraft *d, const char *value, WalsimError *err);

static bool
key_id(RuleDraft *d, const char *value, WalsimError *err)
{
	if (strlen(value) >= DISK_RULE_ID_MAX || !valid_id(value))
		return walsim_error_set(err, "id=%s: must be 1-%d characters of "
								"[A-Za-z0-9._-] and not \"all\"", value,
								DISK_RULE_ID_MAX - 1);
	strcpy(d->rule->id, value);
	d->have_id = true;
	return true;
}

static bool
key_path(RuleDraft *d, const char *value, WalsimError *err)
{
	if (*value == '\0' || *value == '/' || strlen(value) >= DISK_GLOB_MAX)
		return walsim_error_set(err, "path=%s: must be a non-empty glob relative "
								"to the data directory, shorter than %d",
								value, DISK_GLOB_MAX);
	strcpy(d->rule->glob, value);
	d->have_path = true;
	return true;
}

static bool
key_ops(RuleDraft *d, const char *value, WalsimError *err)
{
	if (!parse_ops(value, &d->rule->ops, err))
		return false;
	d->have_ops = true;
	return true;
}

static bool
key_when(RuleDraft *d, const char *value, WalsimError *err)
{
	return parse_when(value, d->rule, err);
}

static bool
key_do(RuleDraft *d, const char *value, WalsimError *err)
{
	if (!parse_do(value, d->rule, err))
		return false;
	d->have_do = true;
	return true;
}

static bool
key_limit(RuleDraft *d, const char *value, WalsimError *err)
{
	if (!whole_number(value, &d->rule->limit))
		return walsim_error_set(err, "limit=%s: must be a whole number "
								"(0 = no limit)", value);
	return true;
}

/* Every key of a rule (docs/disk.md); a later word wins. */
static const struct
{
	const char *name;
	RuleKeyParser parse;
}			rule_keys[] = {
	{"id", key_id},
	{"path", key_path},
	{"ops", key_ops},
	{"when", key_when},
	{"do", key_do},
	{"limit", key_limit},
};

#define NRULE_KEYS (sizeof(rule_keys) / sizeof(rule_keys[0]))

/* "id, path, ops, when, do, limit" */
static const char *
rule_key_list(char *buf, size_t len)
{
	buf[0] = '\0';
	for (size_t i = 0; i < NRULE_KEYS; i++)
		snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", i ? ", " : "", rule_keys[i].name);
	return buf;
}

/* Apply one key=value word to the draft. */
static bool
parse_rule_word(RuleDraft *d, const char *w, WalsimError *err)
{
	const char *eq = strchr(w, '=');
	char		keys[64];

	if (eq == NULL)
		return walsim_error_set(err, "\"%s\": expected key=value (keys: %s)", w,
								rule_key_list(keys, sizeof(keys)));
	for (size_t i = 0; i < NRULE_KEYS; i++)
		if (strlen(rule_keys[i].name) == (size_t) (eq - w) &&
			strncmp(w, rule_keys[i].name, eq - w) == 0)
			return rule_keys[i].parse(d, eq + 1, err);
	return walsim_error_set(err, "\"%s\": unknown key (%s)", w, rule_key_list(keys, sizeof(keys)));
}

bool
disk_rule_parse(DiskRule *rule, int nwords, char *const *words, WalsimError *err)
{
	RuleDraft	d = {.rule = rule};

	memset(rule, 0, sizeof(*rule));
	rule->trigger = DISK_WHEN_AFTER;	/* default: every call */
	for (int i = 0; i < nwords; i++)
		if (!parse_rule_word(&d, words[i], err))
			return false;
	if (!d.have_id || !d.have_path || !d.have_ops || !d.have_do)
		return walsim_error_set(err, "rule: missing %s (a rule needs id=, path=, "
								"ops= and do=)",
								!d.have_id ? "id=" : !d.have_path ? "path=" :
								!d.have_ops ? "ops=" : "do=");
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
