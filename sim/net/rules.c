/*
 * rules.c — fault rules of walsim-netd: parsing the words of "fault add"
 * (also used for --fault on the command line), validation, and JSON.
 *
 * A rule is a list of key=value words.  Parsing is all-or-nothing: the rule
 * is built in a local copy and handed back only when every word was
 * understood, so a malformed command changes nothing.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "walsim/lsn.h"
#include "json.h"
#include "fault.h"

static const char *const kind_names[FK_NKINDS] = {
	[FK_DELAY] = "delay",
	[FK_BANDWIDTH] = "bandwidth",
	[FK_STALL] = "stall",
	[FK_PARTITION] = "partition",
	[FK_REFUSE] = "refuse",
	[FK_RESET] = "reset",
	[FK_CLOSE] = "close",
	[FK_CUT_AFTER] = "cut_after",
	[FK_CORRUPT] = "corrupt",
	[FK_DROP] = "drop",
};

const char *
fault_kind_name(FaultKind k)
{
	return (k >= 0 && k < FK_NKINDS) ? kind_names[k] : "unknown";
}

int
netd_split_words(char *line, char **words, int cap)
{
	int			n = 0;
	char	   *p = line;

	while (*p && n < cap)
	{
		while (*p && isspace((unsigned char) *p))
			p++;
		if (!*p)
			break;
		words[n++] = p;
		while (*p && !isspace((unsigned char) *p))
			p++;
		if (*p)
			*p++ = '\0';
	}
	return n;
}

/* Unsigned decimal with an optional unit suffix table (NULL = none). */
static bool
parse_u64(const char *key, const char *v, uint64_t *out, WalsimError *err)
{
	char	   *end;
	unsigned long long x;

	if (!isdigit((unsigned char) v[0]))
		return walsim_error_set(err, "%s=%s: not a non-negative integer", key, v);
	errno = 0;
	x = strtoull(v, &end, 10);
	if (errno || *end)
		return walsim_error_set(err, "%s=%s: not a non-negative integer", key, v);
	*out = x;
	return true;
}

/* Seconds with a fraction ("2.5"), or with a unit: "250ms", "3s", "100us". */
static bool
parse_duration_us(const char *key, const char *v, uint64_t *out, WalsimError *err)
{
	char	   *end;
	double		x;
	double		scale = 1e6;	/* plain numbers are seconds */

	if (!isdigit((unsigned char) v[0]) && v[0] != '.')
		return walsim_error_set(err, "%s=%s: not a duration (e.g. 2.5, 250ms, 3s)", key, v);
	errno = 0;
	x = strtod(v, &end);
	if (errno)
		return walsim_error_set(err, "%s=%s: not a duration", key, v);
	if (strcmp(end, "ms") == 0)
		scale = 1e3;
	else if (strcmp(end, "us") == 0)
		scale = 1;
	else if (strcmp(end, "s") == 0 || *end == '\0')
		scale = 1e6;
	else
		return walsim_error_set(err, "%s=%s: unknown unit \"%s\" (use s, ms or us)", key, v, end);
	if (x < 0 || x * scale > 1e15)
		return walsim_error_set(err, "%s=%s: out of range", key, v);
	*out = (uint64_t) (x * scale + 0.5);
	return true;
}

/* Byte counts and rates: 1000, 64k, 10M, 1G (powers of 1024). */
static bool
parse_size(const char *key, const char *v, uint64_t *out, WalsimError *err)
{
	char	   *end;
	unsigned long long x;
	uint64_t	mult = 1;

	if (!isdigit((unsigned char) v[0]))
		return walsim_error_set(err, "%s=%s: not a size (e.g. 4096, 64k, 10M)", key, v);
	errno = 0;
	x = strtoull(v, &end, 10);
	if (errno)
		return walsim_error_set(err, "%s=%s: out of range", key, v);
	if (*end == 'k' || *end == 'K')
		mult = 1024, end++;
	else if (*end == 'M' || *end == 'm')
		mult = 1024 * 1024, end++;
	else if (*end == 'G' || *end == 'g')
		mult = 1024 * 1024 * 1024, end++;
	if (*end)
		return walsim_error_set(err, "%s=%s: not a size (e.g. 4096, 64k, 10M)", key, v);
	*out = x * mult;
	return true;
}

static bool
parse_msg_class(const char *key, const char *v, char *out, WalsimError *err)
{
	static const struct
	{
		const char *name;
		char		c;
	}			names[] = {
		{"w", 'w'}, {"xlogdata", 'w'},
		{"k", 'k'}, {"keepalive", 'k'},
		{"r", 'r'}, {"status", 'r'},
		{"h", 'h'}, {"feedback", 'h'},
		{"any", 0},
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
	{
		if (strcmp(v, names[i].name) == 0)
		{
			*out = names[i].c;
			return true;
		}
	}
	return walsim_error_set(err, "%s=%s: unknown message class (w, k, r, h or any)", key, v);
}

static bool
copy_name(const char *key, const char *v, char *out, WalsimError *err)
{
	size_t		n = strlen(v);

	if (n == 0 || n >= NETD_NAME_MAX)
		return walsim_error_set(err, "%s=%s: must be 1 to %d characters", key, v, NETD_NAME_MAX - 1);
	for (size_t i = 0; i < n; i++)
	{
		unsigned char c = (unsigned char) v[i];

		if (!(isalnum(c) || c == '_' || c == '-' || c == '.'))
			return walsim_error_set(err, "%s=%s: character '%c' not allowed (letters, digits, _ - .)",
									key, v, c);
	}
	memcpy(out, v, n + 1);
	return true;
}

bool
fault_parse(Fault *out, int nwords, char **words, WalsimError *err)
{
	Fault		f;
	bool		have_kind = false;
	bool		have_dir = false;
	bool		have_corrupt = false;
	bool		have_cut = false;
	bool		have_rate = false;

	memset(&f, 0, sizeof(f));
	f.bit = -1;
	f.nbits = 1;
	f.prob = 1.0;
	f.dirs = NETD_DIR_BIT(NETD_UP) | NETD_DIR_BIT(NETD_DOWN);

	for (int i = 0; i < nwords; i++)
	{
		char		word[256];
		char	   *eq;
		const char *k,
				   *v;

		if (strlen(words[i]) >= sizeof(word))
			return walsim_error_set(err, "word %d is too long", i + 1);
		strcpy(word, words[i]);
		eq = strchr(word, '=');
		if (eq == NULL || eq == word || eq[1] == '\0')
			return walsim_error_set(err, "\"%s\": expected key=value", words[i]);
		*eq = '\0';
		k = word;
		v = eq + 1;

		if (strcmp(k, "id") == 0)
		{
			if (!copy_name(k, v, f.id, err))
				return false;
		}
		else if (strcmp(k, "link") == 0)
		{
			if (!copy_name(k, v, f.link, err))
				return false;
		}
		else if (strcmp(k, "app") == 0)
		{
			if (!copy_name(k, v, f.app, err))
				return false;
		}
		else if (strcmp(k, "dir") == 0)
		{
			have_dir = true;
			if (strcmp(v, "up") == 0)
				f.dirs = NETD_DIR_BIT(NETD_UP);
			else if (strcmp(v, "down") == 0)
				f.dirs = NETD_DIR_BIT(NETD_DOWN);
			else if (strcmp(v, "both") == 0)
				f.dirs = NETD_DIR_BIT(NETD_UP) | NETD_DIR_BIT(NETD_DOWN);
			else
				return walsim_error_set(err, "dir=%s: expected up, down or both", v);
		}
		else if (strcmp(k, "kind") == 0)
		{
			int			kind;

			for (kind = 0; kind < FK_NKINDS; kind++)
				if (strcmp(v, kind_names[kind]) == 0)
					break;
			if (kind == FK_NKINDS)
				return walsim_error_set(err, "kind=%s: unknown fault kind (delay, bandwidth, stall, partition, "
										"refuse, reset, close, cut_after, corrupt, drop)", v);
			f.kind = (FaultKind) kind;
			have_kind = true;
		}
		else if (strcmp(k, "ms") == 0 || strcmp(k, "jitter_ms") == 0)
		{
			uint64_t	x;

			if (!parse_u64(k, v, &x, err))
				return false;
			if (x > 3600 * 1000)
				return walsim_error_set(err, "%s=%s: more than an hour", k, v);
			if (k[0] == 'm')
				f.delay_us = x * 1000;
			else
				f.jitter_us = x * 1000;
		}
		else if (strcmp(k, "delay") == 0 || strcmp(k, "jitter") == 0)
		{
			if (!parse_duration_us(k, v, k[0] == 'd' ? &f.delay_us : &f.jitter_us, err))
				return false;
		}
		else if (strcmp(k, "rate") == 0)
		{
			if (!parse_size(k, v, &f.rate, err))
				return false;
			if (f.rate == 0)
				return walsim_error_set(err, "rate=%s: must be positive (use stall to stop traffic)", v);
			have_rate = true;
		}
		else if (strcmp(k, "discard") == 0)
		{
			if (strcmp(v, "1") && strcmp(v, "0") && strcmp(v, "true") && strcmp(v, "false"))
				return walsim_error_set(err, "discard=%s: expected 0/1/true/false", v);
			f.discard = v[0] == '1' || v[0] == 't';
		}
		else if (strcmp(k, "mode") == 0)
		{
			f.refuse_reset = strcmp(v, "reset") == 0;
			f.refuse_ignore = strcmp(v, "ignore") == 0;
			if (!f.refuse_reset && !f.refuse_ignore && strcmp(v, "close") != 0)
				return walsim_error_set(err, "mode=%s: expected close, reset or ignore", v);
		}
		else if (strcmp(k, "bytes") == 0)
		{
			if (!parse_size(k, v, &f.cut_bytes, err))
				return false;
			have_cut = true;
		}
		else if (strcmp(k, "at_offset") == 0 || strcmp(k, "at_lsn") == 0 || strcmp(k, "nth") == 0)
		{
			/* for corrupt: the place; for other kinds at_lsn is a trigger */
			if (strcmp(k, "at_lsn") == 0)
			{
				uint64_t	lsn;
				WalsimError lerr;

				if (!lsn_parse(v, &lsn, &lerr))
					return walsim_error_set(err, "at_lsn=%s: %s", v, lerr.message);
				f.corrupt_mode = CORRUPT_AT_LSN;
				f.corrupt_at = lsn;
				f.trig = TRIG_LSN;
				f.trig_value = lsn;
			}
			else
			{
				if (!parse_u64(k, v, &f.corrupt_at, err))
					return false;
				f.corrupt_mode = k[0] == 'n' ? CORRUPT_NTH_XLOGDATA : CORRUPT_AT_OFFSET;
				if (f.corrupt_mode == CORRUPT_NTH_XLOGDATA && f.corrupt_at == 0)
					return walsim_error_set(err, "nth=0: counting starts at 1");
			}
			have_corrupt = true;
		}
		else if (strcmp(k, "bit") == 0)
		{
			uint64_t	b;

			if (!parse_u64(k, v, &b, err))
				return false;
			if (b > 7)
				return walsim_error_set(err, "bit=%s: expected 0..7", v);
			f.bit = (int) b;
		}
		else if (strcmp(k, "bits") == 0)
		{
			uint64_t	b;

			if (!parse_u64(k, v, &b, err))
				return false;
			if (b < 1 || b > 8)
				return walsim_error_set(err, "bits=%s: expected 1..8", v);
			f.nbits = (int) b;
		}
		else if (strcmp(k, "msg") == 0)
		{
			if (!parse_msg_class(k, v, &f.msg, err))
				return false;
		}
		else if (strcmp(k, "prob") == 0)
		{
			char	   *end;

			errno = 0;
			f.prob = strtod(v, &end);
			if (errno || *end || !(f.prob >= 0.0 && f.prob <= 1.0))
				return walsim_error_set(err, "prob=%s: expected a number in [0, 1]", v);
		}
		else if (strcmp(k, "after_msgs") == 0)
		{
			if (!parse_u64(k, v, &f.trig_value, err))
				return false;
			f.trig = TRIG_MSGS;
		}
		else if (strcmp(k, "count_msg") == 0)
		{
			if (!parse_msg_class(k, v, &f.trig_msg, err))
				return false;
		}
		else if (strcmp(k, "after_bytes") == 0)
		{
			if (!parse_size(k, v, &f.trig_value, err))
				return false;
			f.trig = TRIG_BYTES;
		}
		else if (strcmp(k, "after_lsn") == 0)
		{
			WalsimError lerr;

			if (!lsn_parse(v, &f.trig_value, &lerr))
				return walsim_error_set(err, "after_lsn=%s: %s", v, lerr.message);
			f.trig = TRIG_LSN;
		}
		else if (strcmp(k, "duration") == 0)
		{
			if (!parse_duration_us(k, v, &f.duration_us, err))
				return false;
		}
		else if (strcmp(k, "count") == 0)
		{
			if (!parse_u64(k, v, &f.max_fires, err))
				return false;
		}
		else
			return walsim_error_set(err, "\"%s\": unknown key \"%s\"", words[i], k);
	}

	if (f.id[0] == '\0')
		return walsim_error_set(err, "missing id=NAME");
	if (f.link[0] == '\0')
		return walsim_error_set(err, "missing link=NAME");
	if (!have_kind)
		return walsim_error_set(err, "missing kind=...");
	switch (f.kind)
	{
		case FK_DELAY:
			if (f.delay_us == 0 && f.jitter_us == 0)
				return walsim_error_set(err, "kind=delay needs ms=N or delay=DURATION (and/or jitter)");
			break;
		case FK_BANDWIDTH:
			if (!have_rate)
				return walsim_error_set(err, "kind=bandwidth needs rate=BYTES_PER_SECOND");
			break;
		case FK_CUT_AFTER:
			if (!have_cut)
				return walsim_error_set(err, "kind=cut_after needs bytes=N");
			break;
		case FK_CORRUPT:
			if (!have_corrupt)
				return walsim_error_set(err, "kind=corrupt needs at_offset=N, at_lsn=X/X or nth=N");
			if (!have_dir && f.corrupt_mode != CORRUPT_AT_OFFSET)
				f.dirs = NETD_DIR_BIT(NETD_DOWN);	/* WAL flows down */
			if (f.corrupt_mode != CORRUPT_AT_OFFSET && !(f.dirs & NETD_DIR_BIT(NETD_DOWN)))
				return walsim_error_set(err, "corrupt at_lsn/nth applies to XLogData: dir must include down");
			if (f.dirs == (NETD_DIR_BIT(NETD_UP) | NETD_DIR_BIT(NETD_DOWN)) &&
				f.corrupt_mode == CORRUPT_AT_OFFSET && !have_dir)
				return walsim_error_set(err, "corrupt at_offset needs dir=up or dir=down");
			/* the place is not a trigger */
			if (f.trig == TRIG_LSN && f.corrupt_mode == CORRUPT_AT_LSN && f.trig_value == f.corrupt_at)
			{
				f.trig = TRIG_NOW;
				f.trig_value = 0;
			}
			break;
		case FK_DROP:
			if (f.msg == 0)
				return walsim_error_set(err, "kind=drop needs msg=k|r|h|w (whole replication messages only)");
			if (!have_dir)
				f.dirs = (f.msg == 'r' || f.msg == 'h') ? NETD_DIR_BIT(NETD_UP) : NETD_DIR_BIT(NETD_DOWN);
			break;
		default:
			break;
	}
	if (have_corrupt && f.kind != FK_CORRUPT && f.corrupt_mode != CORRUPT_AT_LSN)
		return walsim_error_set(err, "at_offset/nth apply only to kind=corrupt");
	if (f.kind != FK_CORRUPT)
		f.corrupt_mode = CORRUPT_AT_OFFSET;
	if (f.trig == TRIG_MSGS && f.trig_msg == 0)
		f.trig_msg = f.msg;
	*out = f;
	return true;
}

void
fault_to_json(const Fault *f, char *buf, size_t len)
{
	JsonBuf		j;
	char		tmp[64];

	json_init(&j, buf, len);
	json_raw(&j, "{");
	json_str(&j, "id", f->id);
	json_str(&j, "link", f->link);
	json_str(&j, "kind", fault_kind_name(f->kind));
	json_str(&j, "dir", f->dirs == 1 ? "up" : f->dirs == 2 ? "down" : "both");
	if (f->app[0])
		json_str(&j, "app", f->app);
	switch (f->kind)
	{
		case FK_DELAY:
			json_u64(&j, "delay_us", f->delay_us);
			json_u64(&j, "jitter_us", f->jitter_us);
			break;
		case FK_BANDWIDTH:
			json_u64(&j, "rate", f->rate);
			break;
		case FK_STALL:
		case FK_PARTITION:
			json_bool(&j, "discard", f->discard);
			break;
		case FK_REFUSE:
			json_str(&j, "mode", f->refuse_reset ? "reset" : f->refuse_ignore ? "ignore" : "close");
			break;
		case FK_CUT_AFTER:
			json_u64(&j, "bytes", f->cut_bytes);
			break;
		case FK_CORRUPT:
			if (f->corrupt_mode == CORRUPT_AT_LSN)
				json_lsn(&j, "at_lsn", f->corrupt_at);
			else
				json_u64(&j, f->corrupt_mode == CORRUPT_AT_OFFSET ? "at_offset" : "nth", f->corrupt_at);
			json_i64(&j, "bit", f->bit);
			json_i64(&j, "bits", f->nbits);
			break;
		default:
			break;
	}
	if (f->msg)
	{
		snprintf(tmp, sizeof(tmp), "%c", f->msg);
		json_str(&j, "msg", tmp);
	}
	if (f->prob < 1.0)
	{
		snprintf(tmp, sizeof(tmp), "%.6g", f->prob);
		json_member_raw(&j, "prob", tmp);
	}
	switch (f->trig)
	{
		case TRIG_NOW:
			json_str(&j, "trigger", "now");
			break;
		case TRIG_LSN:
			json_lsn(&j, "after_lsn", f->trig_value);
			break;
		case TRIG_MSGS:
			json_u64(&j, "after_msgs", f->trig_value);
			break;
		case TRIG_BYTES:
			json_u64(&j, "after_bytes", f->trig_value);
			break;
	}
	json_u64(&j, "duration_us", f->duration_us);
	json_u64(&j, "fires", f->fires);
	json_bool(&j, "active", f->activated_ns != 0 && !f->expired);
	json_bool(&j, "expired", f->expired);
	json_raw(&j, "}");
}

bool
netd_parse_addr(const char *text, char *host, size_t hostlen, uint16_t *port,
				WalsimError *err)
{
	const char *colon = strrchr(text, ':');
	char	   *end;
	unsigned long p;
	size_t		hlen;

	if (colon == NULL || colon == text || colon[1] == '\0')
		return walsim_error_set(err, "address \"%s\": expected HOST:PORT", text);
	hlen = (size_t) (colon - text);
	if (hlen >= hostlen)
		return walsim_error_set(err, "address \"%s\": host too long", text);
	errno = 0;
	p = strtoul(colon + 1, &end, 10);
	if (errno || *end || p > 65535 || !isdigit((unsigned char) colon[1]))
		return walsim_error_set(err, "address \"%s\": bad port \"%s\"", text, colon + 1);
	memcpy(host, text, hlen);
	host[hlen] = '\0';
	*port = (uint16_t) p;
	return true;
}
