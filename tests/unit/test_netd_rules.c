/*
 * test_netd_rules.c — walsim-netd fault rule parsing, validation and JSON,
 * source-node matching and the node table, control-line words and
 * addresses.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "../../sim/net/fault.h"
#include "../../sim/net/nodes.h"
#include "unit_support.h"

/* Parse a rule given as one string; returns success, fills f and err. */
static bool
parse(const char *text, Fault *f, WalsimError *err)
{
	char		copy[2048];
	char	   *w[64];
	int			n;

	snprintf(copy, sizeof(copy), "%s", text);
	n = netd_split_words(copy, w, 64);
	return fault_parse(f, n, w, err);
}

START_TEST(test_parse_kinds)
{
	Fault		f;
	WalsimError err;

	ck_assert(parse("id=f1 link=pg2 kind=delay ms=100 jitter_ms=20 dir=down", &f, &err));
	ck_assert_str_eq(f.id, "f1");
	ck_assert_int_eq(f.kind, FK_DELAY);
	ck_assert_uint_eq(f.delay_us, 100000);
	ck_assert_uint_eq(f.jitter_us, 20000);
	ck_assert_uint_eq(f.dirs, NETD_DIR_BIT(NETD_DOWN));

	ck_assert(parse("id=f link=l kind=delay delay=1.5 jitter=250ms", &f, &err));
	ck_assert_uint_eq(f.delay_us, 1500000);
	ck_assert_uint_eq(f.jitter_us, 250000);
	ck_assert(parse("id=f link=l kind=delay delay=300us", &f, &err));
	ck_assert_uint_eq(f.delay_us, 300);

	ck_assert(parse("id=b link=l kind=bandwidth rate=64k", &f, &err));
	ck_assert_uint_eq(f.rate, 65536);
	ck_assert(parse("id=b link=l kind=bandwidth rate=2M", &f, &err));
	ck_assert_uint_eq(f.rate, 2 * 1024 * 1024);

	ck_assert(parse("id=s link=l kind=stall discard=1 duration=5", &f, &err));
	ck_assert(f.discard);
	ck_assert_uint_eq(f.duration_us, 5000000);
	ck_assert_uint_eq(f.dirs, 3);

	ck_assert(parse("id=r link=l kind=refuse mode=reset", &f, &err));
	ck_assert(f.refuse_reset);
	ck_assert(parse("id=r link=l kind=refuse mode=ignore", &f, &err));
	ck_assert(f.refuse_ignore && !f.refuse_reset);
	ck_assert(parse("id=c link=l kind=cut_after bytes=1G dir=up", &f, &err));
	ck_assert_uint_eq(f.cut_bytes, UINT64_C(1) << 30);

	/* corrupt at an LSN: the place, not a trigger; WAL flows down */
	ck_assert(parse("id=c link=pg2 kind=corrupt at_lsn=0/3001000", &f, &err));
	ck_assert_int_eq(f.corrupt_mode, CORRUPT_AT_LSN);
	ck_assert_uint_eq(f.corrupt_at, 0x3001000);
	ck_assert_int_eq(f.trig, TRIG_NOW);
	ck_assert_uint_eq(f.dirs, NETD_DIR_BIT(NETD_DOWN));
	ck_assert_int_eq(f.bit, -1);
	ck_assert(parse("id=c link=pg2 kind=corrupt nth=3 bit=7 bits=2", &f, &err));
	ck_assert_int_eq(f.corrupt_mode, CORRUPT_NTH_XLOGDATA);
	ck_assert_int_eq(f.bit, 7);
	ck_assert_int_eq(f.nbits, 2);
	ck_assert(parse("id=c link=pg2 kind=corrupt at_offset=100 dir=up", &f, &err));
	ck_assert_int_eq(f.corrupt_mode, CORRUPT_AT_OFFSET);

	/* drop: direction follows the message class */
	ck_assert(parse("id=d link=l kind=drop msg=r", &f, &err));
	ck_assert_uint_eq(f.dirs, NETD_DIR_BIT(NETD_UP));
	ck_assert(parse("id=d link=l kind=drop msg=keepalive prob=0.25", &f, &err));
	ck_assert_uint_eq(f.dirs, NETD_DIR_BIT(NETD_DOWN));
	ck_assert_int_eq(f.msg, 'k');
	ck_assert(f.prob == 0.25);

	/* triggers */
	ck_assert(parse("id=t link=l kind=stall after_lsn=0/3000000", &f, &err));
	ck_assert_int_eq(f.trig, TRIG_LSN);
	ck_assert_uint_eq(f.trig_value, 0x3000000);
	ck_assert(parse("id=t link=l kind=stall at_lsn=0/3000000", &f, &err));
	ck_assert_int_eq(f.trig, TRIG_LSN);
	ck_assert(parse("id=t link=l kind=close after_msgs=5 count_msg=w", &f, &err));
	ck_assert_int_eq(f.trig, TRIG_MSGS);
	ck_assert_int_eq(f.trig_msg, 'w');
	ck_assert(parse("id=t link=l kind=drop msg=r after_msgs=2", &f, &err));
	ck_assert_int_eq(f.trig_msg, 'r');
	ck_assert(parse("id=t link=l kind=reset after_bytes=10k count=1 app=s1", &f, &err));
	ck_assert_int_eq(f.trig, TRIG_BYTES);
	ck_assert_uint_eq(f.trig_value, 10240);
	ck_assert_uint_eq(f.max_fires, 1);
	ck_assert_str_eq(f.app, "s1");
	ck_assert(parse("id=p link=l kind=partition", &f, &err));
	ck_assert_str_eq(fault_kind_name(f.kind), "partition");
	ck_assert_str_eq(fault_kind_name(FK_NKINDS), "unknown");
}
END_TEST

START_TEST(test_parse_errors)
{
	static const struct
	{
		const char *rule;
		const char *error;
	}			cases[] = {
		{"link=l kind=stall", "missing id=NAME"},
		{"id=a kind=stall", "missing link=NAME"},
		{"id=a link=l", "missing kind=..."},
		{"id=a link=l kind=zap", "kind=zap: unknown fault kind (delay, bandwidth, stall, partition, "
		 "refuse, reset, close, cut_after, corrupt, drop)"},
		{"id=a link=l kind=stall x", "\"x\": expected key=value"},
		{"id=a link=l kind=stall =x", "\"=x\": expected key=value"},
		{"id=a link=l kind=stall x=", "\"x=\": expected key=value"},
		{"id=a link=l kind=stall what=1", "\"what=1\": unknown key \"what\" (expected one of: id, link, "
		 "kind, dir, app, src, ms, jitter_ms, delay, jitter, rate, discard, mode, bytes, at_offset, at_lsn, "
		 "nth, bit, bits, msg, prob, after_msgs, count_msg, after_bytes, after_lsn, duration, count)"},
		{"id=a link=l kind=delay", "kind=delay needs ms=N or delay=DURATION (and/or jitter)"},
		{"id=a link=l kind=delay ms=-1", "ms=-1: not a non-negative integer"},
		{"id=a link=l kind=delay ms=99999999", "ms=99999999: more than an hour"},
		{"id=a link=l kind=delay delay=5h", "delay=5h: unknown unit \"h\" (us, ms, s)"},
		{"id=a link=l kind=delay delay=x", "delay=x: expected a non-negative number of seconds or a number with a unit (us, ms, s)"},
		{"id=a link=l kind=bandwidth", "kind=bandwidth needs rate=BYTES_PER_SECOND"},
		{"id=a link=l kind=bandwidth rate=10X", "rate=10X: unknown unit \"X\" (k, K, M, m, G, g)"},
		{"id=a link=l kind=bandwidth rate=0", "rate=0: must be positive (use stall to stop traffic)"},
		{"id=a link=l kind=cut_after", "kind=cut_after needs bytes=N"},
		{"id=a link=l kind=corrupt", "kind=corrupt needs at_offset=N, at_lsn=X/X or nth=N"},
		{"id=a link=l kind=corrupt at_offset=5", "corrupt at_offset needs dir=up or dir=down"},
		{"id=a link=l kind=corrupt nth=0", "nth=0: counting starts at 1"},
		{"id=a link=l kind=corrupt nth=1 dir=up", "corrupt at_lsn/nth applies to XLogData: dir must include down"},
		{"id=a link=l kind=corrupt nth=1 bit=8", "bit=8: expected 0..7"},
		{"id=a link=l kind=corrupt nth=1 bits=9", "bits=9: expected 1..8"},
		{"id=a link=l kind=corrupt at_lsn=3000000", NULL},
		{"id=a link=l kind=stall nth=2", "at_offset/nth apply only to kind=corrupt"},
		{"id=a link=l kind=drop", "kind=drop needs msg=k|r|h|w (whole replication messages only)"},
		{"id=a link=l kind=drop msg=z", "msg=z: unknown message class (w, k, r, h or any)"},
		{"id=a link=l kind=drop msg=r prob=1.5", "prob=1.5: expected a number from 0 to 1"},
		{"id=a link=l kind=stall dir=left", "dir=left: expected up, down or both"},
		{"id=a link=l kind=stall discard=yes", "discard=yes: expected 0/1/true/false"},
		{"id=a link=l kind=refuse mode=maybe", "mode=maybe: expected close, reset or ignore"},
		{"id=a link=l kind=refuse mode=ignore src=pg1", "mode=ignore stops the whole listener: it cannot "
		 "be limited to src= (use mode=close or mode=reset)"},
		{"id=a b link=l kind=stall", NULL},
		{"id=a link=l kind=stall after_lsn=nope", NULL},
		{"id=a link=l kind=stall app=x\x01", NULL},
		{"id=0123456789012345678901234567890123456789012345678901234567890123456789 link=l kind=stall", NULL},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		Fault		f;
		WalsimError err = {{0}};

		ck_assert_msg(!parse(cases[i].rule, &f, &err), "accepted: %s", cases[i].rule);
		if (cases[i].error)
			ck_assert_str_eq(err.message, cases[i].error);
		else
			ck_assert_msg(err.message[0] != '\0', "no message for %s", cases[i].rule);
	}
}
END_TEST

/*
 * Every key of "fault add" (the parser table of rules.c): a good value
 * lands in its field, and a bad one is refused with a message that names
 * the key and the value.
 */
START_TEST(test_every_key_value)
{
	Fault		f;
	WalsimError err;

	ck_assert(parse("id=f.1 link=l-2 kind=delay ms=7 app=s_1 dir=up", &f, &err));
	ck_assert_str_eq(f.id, "f.1");
	ck_assert_str_eq(f.link, "l-2");
	ck_assert_str_eq(f.app, "s_1");
	ck_assert_uint_eq(f.dirs, NETD_DIR_BIT(NETD_UP));
	ck_assert_uint_eq(f.delay_us, 7000);
	ck_assert(parse("id=f link=l kind=delay jitter_ms=3", &f, &err));
	ck_assert_uint_eq(f.jitter_us, 3000);
	ck_assert_uint_eq(f.delay_us, 0);
	ck_assert(parse("id=f link=l kind=delay delay=2ms jitter=.5", &f, &err));
	ck_assert_uint_eq(f.delay_us, 2000);
	ck_assert_uint_eq(f.jitter_us, 500000);
	ck_assert(parse("id=f link=l kind=bandwidth rate=1000", &f, &err));
	ck_assert_uint_eq(f.rate, 1000);
	ck_assert(parse("id=f link=l kind=partition discard=true", &f, &err));
	ck_assert(f.discard);
	ck_assert(parse("id=f link=l kind=stall discard=false", &f, &err));
	ck_assert(!f.discard);
	ck_assert(parse("id=f link=l kind=refuse mode=close", &f, &err));
	ck_assert(!f.refuse_reset && !f.refuse_ignore);
	ck_assert(parse("id=f link=l kind=cut_after bytes=64k", &f, &err));
	ck_assert_uint_eq(f.cut_bytes, 65536);
	ck_assert(parse("id=f link=l kind=corrupt at_offset=12 dir=down bit=0", &f, &err));
	ck_assert_int_eq(f.corrupt_mode, CORRUPT_AT_OFFSET);
	ck_assert_uint_eq(f.corrupt_at, 12);
	ck_assert_int_eq(f.bit, 0);
	ck_assert(parse("id=f link=l kind=corrupt nth=2 bits=8", &f, &err));
	ck_assert_int_eq(f.corrupt_mode, CORRUPT_NTH_XLOGDATA);
	ck_assert_uint_eq(f.corrupt_at, 2);
	ck_assert_int_eq(f.nbits, 8);
	ck_assert_int_eq(f.bit, -1);
	ck_assert(parse("id=f link=l kind=corrupt at_lsn=1/A", &f, &err));
	ck_assert_uint_eq(f.corrupt_at, UINT64_C(0x10000000A));
	ck_assert(parse("id=f link=l kind=delay ms=1 msg=any prob=0", &f, &err));
	ck_assert_int_eq(f.msg, 0);
	ck_assert(f.prob == 0.0);
	ck_assert(parse("id=f link=l kind=delay ms=1 msg=status", &f, &err));
	ck_assert_int_eq(f.msg, 'r');
	ck_assert(parse("id=f link=l kind=delay ms=1 msg=feedback", &f, &err));
	ck_assert_int_eq(f.msg, 'h');
	ck_assert(parse("id=f link=l kind=delay ms=1 msg=xlogdata", &f, &err));
	ck_assert_int_eq(f.msg, 'w');
	ck_assert(parse("id=f link=l kind=stall after_msgs=9 count_msg=keepalive", &f, &err));
	ck_assert_int_eq(f.trig, TRIG_MSGS);
	ck_assert_uint_eq(f.trig_value, 9);
	ck_assert_int_eq(f.trig_msg, 'k');
	ck_assert(parse("id=f link=l kind=stall after_msgs=9", &f, &err));
	ck_assert_int_eq(f.trig_msg, 0);	/* any message */
	ck_assert(parse("id=f link=l kind=stall after_bytes=1M", &f, &err));
	ck_assert_int_eq(f.trig, TRIG_BYTES);
	ck_assert_uint_eq(f.trig_value, 1024 * 1024);
	ck_assert(parse("id=f link=l kind=stall after_lsn=0/10", &f, &err));
	ck_assert_int_eq(f.trig, TRIG_LSN);
	ck_assert_uint_eq(f.trig_value, 0x10);
	ck_assert(parse("id=f link=l kind=stall duration=100us count=4", &f, &err));
	ck_assert_uint_eq(f.duration_us, 100);
	ck_assert_uint_eq(f.max_fires, 4);
	/* a later word wins */
	ck_assert(parse("id=a id=b link=l kind=close kind=reset dir=up dir=both", &f, &err));
	ck_assert_str_eq(f.id, "b");
	ck_assert_int_eq(f.kind, FK_RESET);
	ck_assert_uint_eq(f.dirs, 3);
	/* defaults */
	ck_assert(parse("id=f link=l kind=close", &f, &err));
	ck_assert_int_eq(f.trig, TRIG_NOW);
	ck_assert_uint_eq(f.duration_us, 0);
	ck_assert_uint_eq(f.max_fires, 0);
	ck_assert(f.prob == 1.0);
	ck_assert_str_eq(f.app, "");
	ck_assert_int_eq(f.nsrc, 0);
	/* src=: one name, several, "-" */
	ck_assert(parse("id=f link=l kind=partition src=pg1", &f, &err));
	ck_assert_int_eq(f.nsrc, 1);
	ck_assert_str_eq(f.src[0], "pg1");
	ck_assert(parse("id=f link=l kind=partition src=pg1,-,dcs.1", &f, &err));
	ck_assert_int_eq(f.nsrc, 3);
	ck_assert_str_eq(f.src[1], "-");
	ck_assert_str_eq(f.src[2], "dcs.1");
	ck_assert(parse("id=f link=l kind=partition src=a src=b", &f, &err));	/* a later word wins */
	ck_assert_int_eq(f.nsrc, 1);
	ck_assert_str_eq(f.src[0], "b");
	ck_assert(parse("id=f link=l kind=refuse mode=reset src=a", &f, &err));
	ck_assert(f.refuse_reset);
}
END_TEST

START_TEST(test_every_key_bad_value)
{
	static const struct
	{
		const char *word;		/* added to a rule that is otherwise valid */
		const char *error;		/* the whole message, or its start ending in ": " */
	}			cases[] = {
		{"id=a/b", "id=a/b: character '/' not allowed (letters, digits, _ - .)"},
		{"link=0123456789012345678901234567890123456789012345678901234567890123",
		 "link=0123456789012345678901234567890123456789012345678901234567890123: must be 1 to 63 characters"},
		{"app=s:1", "app=s:1: character ':' not allowed (letters, digits, _ - .)"},
		{"kind=slow", "kind=slow: unknown fault kind (delay, bandwidth, stall, partition, refuse, reset, "
		 "close, cut_after, corrupt, drop)"},
		{"dir=in", "dir=in: expected up, down or both"},
		{"ms=1.5", "ms=1.5: not a non-negative integer"},
		{"jitter_ms=3600001", "jitter_ms=3600001: more than an hour"},
		{"delay=-1", "delay=-1: expected a non-negative number of seconds or a number with a unit (us, ms, s)"},
		{"jitter=2min", "jitter=2min: unknown unit \"min\" (us, ms, s)"},
		{"rate=fast", "rate=fast: expected a number of bytes with an optional unit (k, K, M, m, G, g)"},
		{"discard=2", "discard=2: expected 0/1/true/false"},
		{"mode=drop", "mode=drop: expected close, reset or ignore"},
		{"bytes=1T", "bytes=1T: unknown unit \"T\" (k, K, M, m, G, g)"},
		{"at_offset=x", "at_offset=x: not a non-negative integer"},
		{"at_lsn=0/ZZ", "at_lsn=0/ZZ: "},
		{"nth=0", "nth=0: counting starts at 1"},
		{"bit=-1", "bit=-1: not a non-negative integer"},
		{"bits=0", "bits=0: expected 1..8"},
		{"msg=Q", "msg=Q: unknown message class (w, k, r, h or any)"},
		{"prob=x", "prob=x: expected a number from 0 to 1"},
		{"after_msgs=-3", "after_msgs=-3: not a non-negative integer"},
		{"count_msg=query", "count_msg=query: unknown message class (w, k, r, h or any)"},
		{"after_bytes=k", "after_bytes=k: expected a number of bytes with an optional unit (k, K, M, m, G, g)"},
		{"after_lsn=nope", "after_lsn=nope: "},
		{"duration=5h", "duration=5h: unknown unit \"h\" (us, ms, s)"},
		{"count=many", "count=many: not a non-negative integer"},
		/* the shared parsers are strict: no rounding, no overflow, no sign */
		{"count=18446744073709551616", "count=18446744073709551616: out of range (at most 18446744073709551615)"},
		{"delay=0.0000001", "delay=0.0000001: not a whole number of microseconds"},
		{"duration=1000000001", "duration=1000000001: at most 1000000000000000 microseconds"},
		{"bytes=16777216T", "bytes=16777216T: unknown unit \"T\" (k, K, M, m, G, g)"},
		{"rate=17179869184G", "rate=17179869184G: number too large (at most 18446744073709551615 bytes)"},
		{"prob=+0.5", "prob=+0.5: expected a number from 0 to 1"},
		{"src=pg1,,pg2", "src=pg1,,pg2: empty node name"},
		{"src=,pg1", "src=,pg1: empty node name"},
		{"src=pg1,", "src=pg1,: empty node name"},
		{"src=a:b", "src=a:b: character ':' not allowed (letters, digits, _ - .)"},
		{"src=a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q", "src=a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q: more than 16 names"},
		{"src=0123456789012345678901234567890123456789012345678901234567890123",
		 "src=0123456789012345678901234567890123456789012345678901234567890123: a name is longer than 63 characters"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		char		rule[512];
		Fault		f;
		WalsimError err = {{0}};
		size_t		n = strlen(cases[i].error);

		snprintf(rule, sizeof(rule), "id=a link=l kind=delay ms=1 %s", cases[i].word);
		ck_assert_msg(!parse(rule, &f, &err), "accepted: %s", rule);
		if (cases[i].error[n - 2] == ':')
			ck_assert_msg(strncmp(err.message, cases[i].error, n) == 0 && err.message[n] != '\0',
						  "%s: got \"%s\"", rule, err.message);
		else
			ck_assert_str_eq(err.message, cases[i].error);
	}
}
END_TEST

START_TEST(test_json)
{
	Fault		f;
	char		buf[1024];

	ck_assert(parse("id=c link=pg2 kind=corrupt at_lsn=0/3001000 app=s1", &f, NULL));
	fault_to_json(&f, buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf, "\"id\":\"c\""));
	ck_assert_ptr_nonnull(strstr(buf, "\"at_lsn\":\"0/3001000\""));
	ck_assert_ptr_nonnull(strstr(buf, "\"dir\":\"down\""));
	ck_assert_ptr_nonnull(strstr(buf, "\"app\":\"s1\""));
	ck_assert(parse("id=d link=l kind=drop msg=h prob=0.5 after_msgs=3", &f, NULL));
	fault_to_json(&f, buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf, "\"msg\":\"h\""));
	ck_assert_ptr_nonnull(strstr(buf, "\"prob\":0.5"));
	ck_assert_ptr_nonnull(strstr(buf, "\"after_msgs\":3"));
	const char *const rules[] = {
		"id=a link=l kind=delay ms=1", "id=a link=l kind=bandwidth rate=1",
		"id=a link=l kind=stall", "id=a link=l kind=refuse", "id=a link=l kind=cut_after bytes=1",
		"id=a link=l kind=corrupt nth=1", "id=a link=l kind=corrupt at_offset=1 dir=up",
		"id=a link=l kind=close after_lsn=1/0", "id=a link=l kind=close after_bytes=1",
	};

	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
	{
		ck_assert(parse(rules[i], &f, NULL));
		fault_to_json(&f, buf, sizeof(buf));
		ck_assert(buf[0] == '{' && buf[strlen(buf) - 1] == '}');
	}
	ck_assert(parse("id=p link=l kind=partition src=pg1,-", &f, NULL));
	fault_to_json(&f, buf, sizeof(buf));
	ck_assert_ptr_nonnull(strstr(buf, "\"src\":[\"pg1\",\"-\"]"));
	ck_assert(parse("id=p link=l kind=partition", &f, NULL));
	fault_to_json(&f, buf, sizeof(buf));
	ck_assert_ptr_null(strstr(buf, "\"src\""));
	/* the longest rule fits FAULT_JSON_MAX */
	{
		char		rule[1400] = "id=x link=l kind=delay ms=1 src=";
		char		big[FAULT_JSON_MAX];

		for (int i = 0; i < NETD_MAX_SRC; i++)
			snprintf(rule + strlen(rule), sizeof(rule) - strlen(rule), "%s%062d", i ? "," : "", i);
		ck_assert(parse(rule, &f, NULL));
		ck_assert_int_eq(f.nsrc, NETD_MAX_SRC);
		fault_to_json(&f, big, sizeof(big));
		ck_assert(big[strlen(big) - 1] == '}');
	}
	/* truncation is safe */
	fault_to_json(&f, buf, 10);
	ck_assert_uint_eq(strlen(buf), 9);
}
END_TEST

/*
 * The trace line format (docs/netd.md, "Trace"): compact JSON, seq, t_ns,
 * seed and event first, control characters as \u00XX.  A replay's trace
 * is compared byte for byte, so this must not drift.
 */
START_TEST(test_trace_line)
{
	char	   *text = NULL;
	size_t		len = 0;
	FILE	   *f = open_memstream(&text, &len);
	Trace		t = {.f = f, .seq = 41, .seed = 7};
	char		buf[256];
	JsonBuf		j;

	trace_begin(&t, &j, buf, sizeof(buf), 123456789, "command");
	json_str(&j, "sql", "a\"b\\c\n\x01");
	json_lsn(&j, "start_lsn", UINT64_C(0x100003000));
	json_i64(&j, "bit", -1);
	json_bool(&j, "reset", false);
	trace_end(&t, &j);
	trace_begin(NULL, &j, buf, sizeof(buf), 5, "dropped");	/* no trace: nothing written */
	trace_end(NULL, &j);
	fclose(f);
	ck_assert_str_eq(text, "{\"seq\":41,\"t_ns\":123456789,\"seed\":7,\"event\":\"command\","
					 "\"sql\":\"a\\\"b\\\\c\\u000a\\u0001\",\"start_lsn\":\"1/3000\",\"bit\":-1,"
					 "\"reset\":false}\n");
	ck_assert_uint_eq(t.seq, 42);
	free(text);
}
END_TEST

/* A rule with src= applies only to connections from those nodes. */
START_TEST(test_src_matching)
{
	FaultSet	fs = {0};
	FaultScope	s = {.link = "l", .conn = "l/-/0", .app = "", .dir = NETD_UP};
	uint64_t	msgs[MC_NCLASSES] = {0};
	Fault	   *f = &fs.faults[0];

	s.msgs = msgs;
	ck_assert(parse("id=p link=l kind=partition src=pg1,-", f, NULL));
	fs.nfaults = 1;
	s.src = "pg1";
	ck_assert(fault_applies(f, &s));
	s.src = "-";
	ck_assert(fault_applies(f, &s));
	s.src = "pg2";
	ck_assert(!fault_applies(f, &s));
	s.src = NULL;				/* replay: no source known, a src= rule never applies */
	ck_assert(!fault_applies(f, &s));
	ck_assert_ptr_eq(faults_refusing(&fs, "l", "pg1"), f);
	ck_assert_ptr_eq(faults_refusing(&fs, "l", "-"), f);
	ck_assert_ptr_null(faults_refusing(&fs, "l", "pg2"));
	ck_assert_ptr_null(faults_refusing(&fs, "other", "pg1"));
	ck_assert(fault_names_src(f, "pg1"));
	ck_assert(!fault_names_src(f, "pg"));

	/* without src= every source matches, known or not */
	ck_assert(parse("id=q link=l kind=refuse", f, NULL));
	s.src = "pg2";
	ck_assert(fault_applies(f, &s));
	s.src = NULL;
	ck_assert(fault_applies(f, &s));
	ck_assert_ptr_eq(faults_refusing(&fs, "l", "anything"), f);
}
END_TEST

/* What a raw link refuses: everything that needs PostgreSQL framing. */
START_TEST(test_needs_protocol)
{
	static const struct
	{
		const char *rule;
		const char *why;		/* NULL: byte-level */
	}			cases[] = {
		{"id=a link=l kind=stall", NULL},
		{"id=a link=l kind=partition discard=1 src=pg1", NULL},
		{"id=a link=l kind=refuse mode=ignore", NULL},
		{"id=a link=l kind=reset after_bytes=10", NULL},
		{"id=a link=l kind=close", NULL},
		{"id=a link=l kind=delay ms=5 jitter_ms=2 prob=0.5", NULL},
		{"id=a link=l kind=bandwidth rate=1k", NULL},
		{"id=a link=l kind=cut_after bytes=100 dir=up", NULL},
		{"id=a link=l kind=corrupt at_offset=3 dir=down", NULL},
		{"id=a link=l kind=drop msg=r", "kind=drop"},
		{"id=a link=l kind=corrupt at_lsn=0/10", "corrupt at_lsn="},
		{"id=a link=l kind=corrupt nth=1", "corrupt nth="},
		{"id=a link=l kind=delay ms=1 msg=k", "msg="},
		{"id=a link=l kind=stall app=pg2", "app="},
		{"id=a link=l kind=stall after_lsn=0/10", "after_lsn="},
		{"id=a link=l kind=stall at_lsn=0/10", "after_lsn="},
		{"id=a link=l kind=stall after_msgs=3", "after_msgs="},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		Fault		f;
		WalsimError err;
		const char *why;

		ck_assert_msg(parse(cases[i].rule, &f, &err), "%s: %s", cases[i].rule, err.message);
		why = fault_needs_protocol(&f);
		if (cases[i].why == NULL)
			ck_assert_msg(why == NULL, "%s: %s", cases[i].rule, why);
		else
			ck_assert_msg(why && strcmp(why, cases[i].why) == 0, "%s: %s", cases[i].rule, why ? why : "(null)");
	}
}
END_TEST

static uint32_t
ip(const char *text)
{
	struct in_addr a;

	ck_assert_int_eq(inet_pton(AF_INET, text, &a), 1);
	return a.s_addr;
}

START_TEST(test_node_table)
{
	static NodeTable t;
	WalsimError err;
	char		names[256];

	memset(&t, 0, sizeof(t));
	nodes_names(&t, names, sizeof(names));
	ck_assert_str_eq(names, "none");
	ck_assert_str_eq(nodes_lookup(&t, ip("127.0.0.11")), NETD_NO_NODE);
	ck_assert(nodes_add(&t, "pg1", "127.0.0.11", &err));
	ck_assert(nodes_add(&t, "pg2", "127.0.0.12", &err));
	ck_assert(nodes_add(&t, "pg2", "127.0.0.22", &err));	/* a second address */
	ck_assert(nodes_add(&t, "pg1", "127.0.0.11", &err));	/* again: no change */
	ck_assert_int_eq(t.n, 3);
	ck_assert_str_eq(nodes_lookup(&t, ip("127.0.0.11")), "pg1");
	ck_assert_str_eq(nodes_lookup(&t, ip("127.0.0.22")), "pg2");
	ck_assert_str_eq(nodes_lookup(&t, ip("127.0.0.1")), "-");
	ck_assert(nodes_known(&t, "pg2"));
	ck_assert(!nodes_known(&t, "pg3"));
	nodes_names(&t, names, sizeof(names));
	ck_assert_str_eq(names, "pg1, pg2");

	ck_assert(!nodes_add(&t, "pg3", "127.0.0.11", &err));
	ck_assert_str_eq(err.message, "addr=127.0.0.11 belongs to node pg1 (node del pg1 first)");
	ck_assert(!nodes_add(&t, "pg3", "localhost", &err));
	ck_assert_str_eq(err.message, "addr=localhost: not an IPv4 address (A.B.C.D)");
	ck_assert(!nodes_add(&t, "pg3", "127.1", &err));
	ck_assert(!nodes_add(&t, "pg3", "::1", &err));
	ck_assert(!nodes_add(&t, "-", "127.0.0.30", &err));
	ck_assert_str_eq(err.message, "name=-: use 1-63 letters, digits, _ - . (not \"-\")");
	ck_assert(!nodes_add(&t, "a b", "127.0.0.30", &err));
	ck_assert(!nodes_add(&t, "", "127.0.0.30", &err));
	ck_assert_int_eq(t.n, 3);	/* a refused add changes nothing */

	ck_assert_int_eq(nodes_del(&t, "pg2"), 2);
	ck_assert_int_eq(nodes_del(&t, "pg2"), 0);
	ck_assert_str_eq(nodes_lookup(&t, ip("127.0.0.12")), "-");
	ck_assert(nodes_add(&t, "pg3", "127.0.0.12", &err));	/* free again */

	memset(&t, 0, sizeof(t));
	for (int i = 0; i < NETD_MAX_NODE_ADDRS; i++)
	{
		char		a[32];

		snprintf(a, sizeof(a), "127.0.1.%d", i + 1);
		ck_assert(nodes_add(&t, "n", a, &err));
	}
	ck_assert(!nodes_add(&t, "n", "127.0.2.1", &err));
	ck_assert_str_eq(err.message, "too many node addresses (max 64)");
}
END_TEST

START_TEST(test_words_and_addresses)
{
	char		line[] = "  fault add\tid=x   link=y \r\n";
	char	   *w[8];
	char		host[64];
	uint16_t	port;
	WalsimError err;

	ck_assert_int_eq(netd_split_words(line, w, 8), 4);
	ck_assert_str_eq(w[0], "fault");
	ck_assert_str_eq(w[3], "link=y");
	{
		char		again[] = "a b c d";

		ck_assert_int_eq(netd_split_words(again, w, 2), 2);
	}

	ck_assert(netd_parse_addr("127.0.0.1:5432", host, sizeof(host), &port, &err));
	ck_assert_str_eq(host, "127.0.0.1");
	ck_assert_uint_eq(port, 5432);
	ck_assert(netd_parse_addr("localhost:0", host, sizeof(host), &port, &err));
	ck_assert(!netd_parse_addr("127.0.0.1", host, sizeof(host), &port, &err));
	ck_assert_str_eq(err.message, "address \"127.0.0.1\": expected HOST:PORT");
	ck_assert(!netd_parse_addr(":5", host, sizeof(host), &port, &err));
	ck_assert(!netd_parse_addr("h:65536", host, sizeof(host), &port, &err));
	ck_assert_str_eq(err.message, "address \"h:65536\": bad port \"65536\"");
	ck_assert(!netd_parse_addr("h:-1", host, sizeof(host), &port, &err));
	ck_assert(!netd_parse_addr("averyveryverylonghostname:1", host, 8, &port, &err));
	ck_assert_str_eq(err.message, "address \"averyveryverylonghostname:1\": host too long");
}
END_TEST

int
main(void)
{
	Suite	   *s = suite_create("netd_rules");
	TCase	   *tc = tcase_create("core");

	tcase_add_test(tc, test_parse_kinds);
	tcase_add_test(tc, test_parse_errors);
	tcase_add_test(tc, test_every_key_value);
	tcase_add_test(tc, test_every_key_bad_value);
	tcase_add_test(tc, test_json);
	tcase_add_test(tc, test_src_matching);
	tcase_add_test(tc, test_needs_protocol);
	tcase_add_test(tc, test_node_table);
	tcase_add_test(tc, test_trace_line);
	tcase_add_test(tc, test_words_and_addresses);
	suite_add_tcase(s, tc);
	return unit_run_suite(s);
}
