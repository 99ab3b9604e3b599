/*
 * rules.c — fault rules of walsim-netd: parsing the words of "fault add"
 * (also used for --fault on the command line), validation, and JSON.
 *
 * A rule is a list of key=value words.  Each key has its parser in one
 * table (fault_keys), and each kind its checks and defaults in another
 * (kinds), so a new key or kind is one entry and the error messages list
 * what is accepted.  Parsing is all-or-nothing: the rule is built in a
 * local draft and handed back only when every word was understood, so a
 * malformed command changes nothing.
 */
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "walsim/lsn.h"
#include "walsim/json.h"
#include "walsim/parse.h"
#include "fault.h"


typedef struct FaultDraft FaultDraft;

/* Checks and defaults of a kind once every word is parsed (NULL = none). */
typedef bool (*KindCheck) (FaultDraft *d, WalsimError *err);

static bool check_delay(FaultDraft *d, WalsimError *err);
static bool check_bandwidth(FaultDraft *d, WalsimError *err);
static bool check_cut_after(FaultDraft *d, WalsimError *err);
static bool check_corrupt(FaultDraft *d, WalsimError *err);
static bool check_drop(FaultDraft *d, WalsimError *err);

static const struct
{
	const char *name;
	KindCheck	check;
}			kinds[FK_NKINDS] = {
	[FK_DELAY] = {"delay", check_delay},
	[FK_BANDWIDTH] = {"bandwidth", check_bandwidth},
	[FK_STALL] = {"stall", NULL},
	[FK_PARTITION] = {"partition", NULL},
	[FK_REFUSE] = {"refuse", NULL},
	[FK_RESET] = {"reset", NULL},
	[FK_CLOSE] = {"close", NULL},
	[FK_CUT_AFTER] = {"cut_after", check_cut_after},
	[FK_CORRUPT] = {"corrupt", check_corrupt},
	[FK_DROP] = {"drop", check_drop},
};

const char *
fault_kind_name(FaultKind k)
{
	return (k >= 0 && k < FK_NKINDS) ? kinds[k].name : "unknown";
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

/*
 * Values are read with the shared parsers of walsim/parse.h; their
 * messages name the word as written ("rate=10X: unknown unit ...").
 */
static const char *
key_what(const char *key, char *buf, size_t len)
{
	snprintf(buf, len, "%s=", key);
	return buf;
}

/* A whole non-negative number. */
static bool
value_u64(const char *key, const char *v, uint64_t *out, WalsimError *err)
{
	char		what[NETD_NAME_MAX];

	return parse_u64(key_what(key, what, sizeof(what)), v, 0, UINT64_MAX, out, err);
}

/*
 * A duration in microseconds: seconds, with a fraction ("2.5") or a unit
 * ("250ms", "3s", "100us").
 */
static bool
value_duration_us(const char *key, const char *v, uint64_t *out, WalsimError *err)
{
	static const DurationSyntax syntax = {
		.units = "us,ms,s", .bare = TIME_S, .result = TIME_US, .max = UINT64_C(1000000000000000)
	};
	char		what[NETD_NAME_MAX];

	return parse_duration(key_what(key, what, sizeof(what)), v, &syntax, out, err);
}

/* Byte counts and rates: 1000, 64k, 10M, 1G (powers of 1024). */
static bool
value_size(const char *key, const char *v, uint64_t *out, WalsimError *err)
{
	static const SizeSyntax syntax = {.units = "k,K,M,m,G,g", .bare = true, .max = UINT64_MAX};
	char		what[NETD_NAME_MAX];

	return parse_size(key_what(key, what, sizeof(what)), v, &syntax, out, err);
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

/* ------------------------------------------------------------ fault add */

/* A rule being parsed, with what the per-kind checks need to know. */
struct FaultDraft
{
	Fault		f;
	bool		have_kind;
	bool		have_dir;
	bool		have_corrupt;	/* at_offset=, at_lsn= or nth= */
	bool		have_cut;
	bool		have_rate;
};

typedef struct FaultKey FaultKey;

/* Parse value v of key k into the draft; false with a message naming k. */
typedef bool (*FaultKeyParser) (FaultDraft *d, const FaultKey *k, const char *v,
								WalsimError *err);

struct FaultKey
{
	const char *name;
	FaultKeyParser parse;
	size_t		field;			/* offsetof(Fault, ...) for the shared parsers */
};

static void *
draft_field(FaultDraft *d, const FaultKey *k)
{
	return (char *) &d->f + k->field;
}

/* id=, link=, app=: a name */
static bool
key_name(FaultDraft *d, const FaultKey *k, const char *v, WalsimError *err)
{
	return copy_name(k->name, v, draft_field(d, k), err);
}

/* src=NAME[,NAME...]: source nodes; "-" stands for "no node" */
static bool
key_src(FaultDraft *d, const FaultKey *k, const char *v, WalsimError *err)
{
	const char *p = v;

	d->f.nsrc = 0;
	for (;;)
	{
		size_t		n = strcspn(p, ",");
		char		name[NETD_NAME_MAX + 1];

		if (n == 0)
			return walsim_error_set(err, "%s=%s: empty node name", k->name, v);
		if (n > NETD_NAME_MAX - 1)
			return walsim_error_set(err, "%s=%s: a name is longer than %d characters",
									k->name, v, NETD_NAME_MAX - 1);
		if (d->f.nsrc == NETD_MAX_SRC)
			return walsim_error_set(err, "%s=%s: more than %d names", k->name, v, NETD_MAX_SRC);
		memcpy(name, p, n);
		name[n] = '\0';
		if (strcmp(name, "-") == 0)
			strcpy(d->f.src[d->f.nsrc], name);
		else if (!copy_name(k->name, name, d->f.src[d->f.nsrc], err))
			return false;
		d->f.nsrc++;
		if (p[n] == '\0')
			return true;
		p += n + 1;
	}
}

/* ms=, jitter_ms=: whole milliseconds, at most an hour */
static bool
key_ms(FaultDraft *d, const FaultKey *k, const char *v, WalsimError *err)
{
	uint64_t	x;

	if (!value_u64(k->name, v, &x, err))
		return false;
	if (x > 3600 * 1000)
		return walsim_error_set(err, "%s=%s: more than an hour", k->name, v);
	*(uint64_t *) draft_field(d, k) = x * 1000;
	return true;
}

/* delay=, jitter=, duration=: a duration in microseconds */
static bool
key_duration(FaultDraft *d, const FaultKey *k, const char *v, WalsimError *err)
{
	return value_duration_us(k->name, v, draft_field(d, k), err);
}

/* count=: a plain count */
static bool
key_count(FaultDraft *d, const FaultKey *k, const char *v, WalsimError *err)
{
	return value_u64(k->name, v, draft_field(d, k), err);
}

/* msg=, count_msg=: a replication message class */
static bool
key_msg_class(FaultDraft *d, const FaultKey *k, const char *v, WalsimError *err)
{
	return parse_msg_class(k->name, v, draft_field(d, k), err);
}

static bool
key_kind(FaultDraft *d, const FaultKey *k, const char *v, WalsimError *err)
{
	char		names[200] = "";

	for (int kind = 0; kind < FK_NKINDS; kind++)
		if (strcmp(v, kinds[kind].name) == 0)
		{
			d->f.kind = (FaultKind) kind;
			d->have_kind = true;
			return true;
		}
	for (int kind = 0; kind < FK_NKINDS; kind++)
		snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s",
				 kind ? ", " : "", kinds[kind].name);
	return walsim_error_set(err, "%s=%s: unknown fault kind (%s)", k->name, v, names);
}

static bool
key_dir(FaultDraft *d, const FaultKey *k, const char *v, WalsimError *err)
{
	d->have_dir = true;
	if (strcmp(v, "up") == 0)
		d->f.dirs = NETD_DIR_BIT(NETD_UP);
	else if (strcmp(v, "down") == 0)
		d->f.dirs = NETD_DIR_BIT(NETD_DOWN);
	else if (strcmp(v, "both") == 0)
		d->f.dirs = NETD_DIR_BIT(NETD_UP) | NETD_DIR_BIT(NETD_DOWN);
	else
		return walsim_error_set(err, "%s=%s: expected up, down or both", k->name, v);
	return true;
}

static bool
key_rate(FaultDraft *d, const FaultKey *k, const char *v, WalsimError *err)
{
	if (!value_size(k->name, v, &d->f.rate, err))
		return false;
	if (d->f.rate == 0)
		return walsim_error_set(err, "%s=%s: must be positive (use stall to stop traffic)",
								k->name, v);
	d->have_rate = true;
	return true;
}

static bool
key_discard(FaultDraft *d, const FaultKey *k, const char *v, WalsimError *err)
{
	if (strcmp(v, "1") && strcmp(v, "0") && strcmp(v, "true") && strcmp(v, "false"))
		return walsim_error_set(err, "%s=%s: expected 0/1/true/false", k->name, v);
	d->f.discard = v[0] == '1' || v[0] == 't';
	return true;
}

static bool
key_mode(FaultDraft *d, const FaultKey *k, const char *v, WalsimError *err)
{
	d->f.refuse_reset = strcmp(v, "reset") == 0;
	d->f.refuse_ignore = strcmp(v, "ignore") == 0;
	if (!d->f.refuse_reset && !d->f.refuse_ignore && strcmp(v, "close") != 0)
		return walsim_error_set(err, "%s=%s: expected close, reset or ignore", k->name, v);
	return true;
}

/* bytes=: the cut_after limit */
static bool
key_bytes(FaultDraft *d, const FaultKey *k, const char *v, WalsimError *err)
{
	if (!value_size(k->name, v, &d->f.cut_bytes, err))
		return false;
	d->have_cut = true;
	return true;
}

/* at_lsn=: for corrupt the place; for other kinds a trigger like after_lsn */
static bool
key_at_lsn(FaultDraft *d, const FaultKey *k, const char *v, WalsimError *err)
{
	uint64_t	lsn;
	WalsimError lerr;

	if (!lsn_parse(v, &lsn, &lerr))
		return walsim_error_set(err, "%s=%s: %s", k->name, v, lerr.message);
	d->f.corrupt_mode = CORRUPT_AT_LSN;
	d->f.corrupt_at = lsn;
	d->f.trig = TRIG_LSN;
	d->f.trig_value = lsn;
	d->have_corrupt = true;
	return true;
}

static bool
key_at_offset(FaultDraft *d, const FaultKey *k, const char *v, WalsimError *err)
{
	if (!value_u64(k->name, v, &d->f.corrupt_at, err))
		return false;
	d->f.corrupt_mode = CORRUPT_AT_OFFSET;
	d->have_corrupt = true;
	return true;
}

static bool
key_nth(FaultDraft *d, const FaultKey *k, const char *v, WalsimError *err)
{
	if (!value_u64(k->name, v, &d->f.corrupt_at, err))
		return false;
	d->f.corrupt_mode = CORRUPT_NTH_XLOGDATA;
	if (d->f.corrupt_at == 0)
		return walsim_error_set(err, "%s=%s: counting starts at 1", k->name, v);
	d->have_corrupt = true;
	return true;
}

static bool
key_bit(FaultDraft *d, const FaultKey *k, const char *v, WalsimError *err)
{
	uint64_t	b;

	if (!value_u64(k->name, v, &b, err))
		return false;
	if (b > 7)
		return walsim_error_set(err, "%s=%s: expected 0..7", k->name, v);
	d->f.bit = (int) b;
	return true;
}

static bool
key_bits(FaultDraft *d, const FaultKey *k, const char *v, WalsimError *err)
{
	uint64_t	b;

	if (!value_u64(k->name, v, &b, err))
		return false;
	if (b < 1 || b > 8)
		return walsim_error_set(err, "%s=%s: expected 1..8", k->name, v);
	d->f.nbits = (int) b;
	return true;
}

static bool
key_prob(FaultDraft *d, const FaultKey *k, const char *v, WalsimError *err)
{
	char		what[NETD_NAME_MAX];

	return parse_double(key_what(k->name, what, sizeof(what)), v, 0.0, 1.0, &d->f.prob, err);
}

static bool
key_after_msgs(FaultDraft *d, const FaultKey *k, const char *v, WalsimError *err)
{
	if (!value_u64(k->name, v, &d->f.trig_value, err))
		return false;
	d->f.trig = TRIG_MSGS;
	return true;
}

static bool
key_after_bytes(FaultDraft *d, const FaultKey *k, const char *v, WalsimError *err)
{
	if (!value_size(k->name, v, &d->f.trig_value, err))
		return false;
	d->f.trig = TRIG_BYTES;
	return true;
}

static bool
key_after_lsn(FaultDraft *d, const FaultKey *k, const char *v, WalsimError *err)
{
	WalsimError lerr;

	if (!lsn_parse(v, &d->f.trig_value, &lerr))
		return walsim_error_set(err, "%s=%s: %s", k->name, v, lerr.message);
	d->f.trig = TRIG_LSN;
	return true;
}

#define FIELD(m) offsetof(Fault, m)

/* Every key of "fault add" (docs/netd.md, "Faults"); a later word wins. */
static const FaultKey fault_keys[] = {
	{"id", key_name, FIELD(id)},
	{"link", key_name, FIELD(link)},
	{"kind", key_kind, 0},
	{"dir", key_dir, 0},
	{"app", key_name, FIELD(app)},
	{"src", key_src, 0},
	/* delay */
	{"ms", key_ms, FIELD(delay_us)},
	{"jitter_ms", key_ms, FIELD(jitter_us)},
	{"delay", key_duration, FIELD(delay_us)},
	{"jitter", key_duration, FIELD(jitter_us)},
	/* bandwidth, stall/partition, refuse, cut_after */
	{"rate", key_rate, 0},
	{"discard", key_discard, 0},
	{"mode", key_mode, 0},
	{"bytes", key_bytes, 0},
	/* corrupt */
	{"at_offset", key_at_offset, 0},
	{"at_lsn", key_at_lsn, 0},
	{"nth", key_nth, 0},
	{"bit", key_bit, 0},
	{"bits", key_bits, 0},
	/* message filter and probability */
	{"msg", key_msg_class, FIELD(msg)},
	{"prob", key_prob, 0},
	/* triggers and bounds */
	{"after_msgs", key_after_msgs, 0},
	{"count_msg", key_msg_class, FIELD(trig_msg)},
	{"after_bytes", key_after_bytes, 0},
	{"after_lsn", key_after_lsn, 0},
	{"duration", key_duration, FIELD(duration_us)},
	{"count", key_count, FIELD(max_fires)},
};

#undef FIELD

#define NFAULT_KEYS (sizeof(fault_keys) / sizeof(fault_keys[0]))

static const FaultKey *
find_fault_key(const char *name)
{
	for (size_t i = 0; i < NFAULT_KEYS; i++)
		if (strcmp(fault_keys[i].name, name) == 0)
			return &fault_keys[i];
	return NULL;
}

static bool
unknown_key(const char *word, const char *key, WalsimError *err)
{
	char		names[WALSIM_ERROR_MAX] = "";

	for (size_t i = 0; i < NFAULT_KEYS; i++)
		snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s",
				 i ? ", " : "", fault_keys[i].name);
	return walsim_error_set(err, "\"%s\": unknown key \"%s\" (expected one of: %s)",
							word, key, names);
}

/* Apply one key=value word to the draft. */
static bool
parse_word(FaultDraft *d, int index, const char *text, WalsimError *err)
{
	char		word[NETD_MAX_SRC * NETD_NAME_MAX + 16];	/* the longest src= list */
	char	   *eq;
	const FaultKey *k;

	if (strlen(text) >= sizeof(word))
		return walsim_error_set(err, "word %d is too long", index + 1);
	strcpy(word, text);
	eq = strchr(word, '=');
	if (eq == NULL || eq == word || eq[1] == '\0')
		return walsim_error_set(err, "\"%s\": expected key=value", text);
	*eq = '\0';
	k = find_fault_key(word);
	if (k == NULL)
		return unknown_key(text, word, err);
	return k->parse(d, k, eq + 1, err);
}

/* ---- what each kind needs, and the defaults that follow from it ---- */

static bool
check_delay(FaultDraft *d, WalsimError *err)
{
	if (d->f.delay_us == 0 && d->f.jitter_us == 0)
		return walsim_error_set(err, "kind=delay needs ms=N or delay=DURATION (and/or jitter)");
	return true;
}

static bool
check_bandwidth(FaultDraft *d, WalsimError *err)
{
	if (!d->have_rate)
		return walsim_error_set(err, "kind=bandwidth needs rate=BYTES_PER_SECOND");
	return true;
}

static bool
check_cut_after(FaultDraft *d, WalsimError *err)
{
	if (!d->have_cut)
		return walsim_error_set(err, "kind=cut_after needs bytes=N");
	return true;
}

static bool
check_corrupt(FaultDraft *d, WalsimError *err)
{
	Fault	   *f = &d->f;

	if (!d->have_corrupt)
		return walsim_error_set(err, "kind=corrupt needs at_offset=N, at_lsn=X/X or nth=N");
	if (!d->have_dir && f->corrupt_mode != CORRUPT_AT_OFFSET)
		f->dirs = NETD_DIR_BIT(NETD_DOWN);	/* WAL flows down */
	if (f->corrupt_mode != CORRUPT_AT_OFFSET && !(f->dirs & NETD_DIR_BIT(NETD_DOWN)))
		return walsim_error_set(err, "corrupt at_lsn/nth applies to XLogData: dir must include down");
	if (f->dirs == (NETD_DIR_BIT(NETD_UP) | NETD_DIR_BIT(NETD_DOWN)) &&
		f->corrupt_mode == CORRUPT_AT_OFFSET && !d->have_dir)
		return walsim_error_set(err, "corrupt at_offset needs dir=up or dir=down");
	/* the place is not a trigger */
	if (f->trig == TRIG_LSN && f->corrupt_mode == CORRUPT_AT_LSN && f->trig_value == f->corrupt_at)
	{
		f->trig = TRIG_NOW;
		f->trig_value = 0;
	}
	return true;
}

static bool
check_drop(FaultDraft *d, WalsimError *err)
{
	if (d->f.msg == 0)
		return walsim_error_set(err, "kind=drop needs msg=k|r|h|w (whole replication messages only)");
	/* status updates and feedback flow up, WAL and keepalives down */
	if (!d->have_dir)
		d->f.dirs = (d->f.msg == 'r' || d->f.msg == 'h') ? NETD_DIR_BIT(NETD_UP) : NETD_DIR_BIT(NETD_DOWN);
	return true;
}

bool
fault_parse(Fault *out, int nwords, char **words, WalsimError *err)
{
	FaultDraft	d;
	Fault	   *f = &d.f;

	memset(&d, 0, sizeof(d));
	f->bit = -1;
	f->nbits = 1;
	f->prob = 1.0;
	f->dirs = NETD_DIR_BIT(NETD_UP) | NETD_DIR_BIT(NETD_DOWN);

	for (int i = 0; i < nwords; i++)
		if (!parse_word(&d, i, words[i], err))
			return false;

	if (f->id[0] == '\0')
		return walsim_error_set(err, "missing id=NAME");
	if (f->link[0] == '\0')
		return walsim_error_set(err, "missing link=NAME");
	if (!d.have_kind)
		return walsim_error_set(err, "missing kind=...");
	if (kinds[f->kind].check && !kinds[f->kind].check(&d, err))
		return false;
	if (d.have_corrupt && f->kind != FK_CORRUPT && f->corrupt_mode != CORRUPT_AT_LSN)
		return walsim_error_set(err, "at_offset/nth apply only to kind=corrupt");
	if (f->kind != FK_CORRUPT)
		f->corrupt_mode = CORRUPT_AT_OFFSET;
	if (f->trig == TRIG_MSGS && f->trig_msg == 0)
		f->trig_msg = f->msg;
	if (f->refuse_ignore && f->nsrc > 0)
		return walsim_error_set(err, "mode=ignore stops the whole listener: it cannot be limited "
								"to src= (use mode=close or mode=reset)");
	*out = *f;
	return true;
}

const char *
fault_needs_protocol(const Fault *f)
{
	if (f->kind == FK_DROP)
		return "kind=drop";
	if (f->kind == FK_CORRUPT && f->corrupt_mode == CORRUPT_AT_LSN)
		return "corrupt at_lsn=";
	if (f->kind == FK_CORRUPT && f->corrupt_mode == CORRUPT_NTH_XLOGDATA)
		return "corrupt nth=";
	if (f->msg)
		return "msg=";
	if (f->app[0])
		return "app=";
	if (f->trig == TRIG_LSN)
		return "after_lsn=";
	if (f->trig == TRIG_MSGS)
		return "after_msgs=";
	return NULL;
}

void
fault_to_json(const Fault *f, char *buf, size_t len)
{
	JsonBuf		j;
	char		tmp[64];

	json_init(&j, buf, len);
	json_object_begin(&j, NULL);
	json_str(&j, "id", f->id);
	json_str(&j, "link", f->link);
	json_str(&j, "kind", fault_kind_name(f->kind));
	json_str(&j, "dir", f->dirs == 1 ? "up" : f->dirs == 2 ? "down" : "both");
	if (f->app[0])
		json_str(&j, "app", f->app);
	if (f->nsrc)
	{
		json_array_begin(&j, "src");
		for (int i = 0; i < f->nsrc; i++)
			json_str(&j, NULL, f->src[i]);
		json_array_end(&j);
	}
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
	json_object_end(&j);
}

bool
netd_parse_addr(const char *text, char *host, size_t hostlen, uint16_t *port,
				WalsimError *err)
{
	const char *colon = strrchr(text, ':');
	uint64_t	p;
	size_t		hlen;

	if (colon == NULL || colon == text || colon[1] == '\0')
		return walsim_error_set(err, "address \"%s\": expected HOST:PORT", text);
	hlen = (size_t) (colon - text);
	if (hlen >= hostlen)
		return walsim_error_set(err, "address \"%s\": host too long", text);
	if (!parse_u64("port", colon + 1, 0, 65535, &p, NULL))
		return walsim_error_set(err, "address \"%s\": bad port \"%s\"", text, colon + 1);
	memcpy(host, text, hlen);
	host[hlen] = '\0';
	*port = (uint16_t) p;
	return true;
}
