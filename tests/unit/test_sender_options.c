/*
 * test_sender_options.c — walsim-sender's command line (ref/sender/options.c).
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "../../ref/sender/options.h"
#include "../../ref/sender/sender.h"
#include "unit_support.h"

/* parse an argument list */
#define PARSE(opt, err, ...) \
	sender_options_parse(unit_argc(UNIT_ARGV("walsim-sender", __VA_ARGS__)), \
						 UNIT_ARGV("walsim-sender", __VA_ARGS__), (opt), (err))

START_TEST(test_defaults)
{
	SenderOptions opt;
	WalsimError err;

	ck_assert_int_eq(PARSE(&opt, &err, "-D", "/w", "--listen", "127.0.0.1:5", "--passfile", "/p"),
					 OPTIONS_OK);
	ck_assert_str_eq(opt.waldir, "/w");
	ck_assert_str_eq(opt.listen, "127.0.0.1:5");
	ck_assert_str_eq(opt.passfile, "/p");
	ck_assert_int_eq(opt.auth_method, AUTH_SCRAM);
	ck_assert_int_eq(opt.wal_sender_timeout_ms, DEFAULT_WAL_SENDER_TIMEOUT_MS);
	ck_assert(opt.follow);
	ck_assert_int_eq(opt.poll_interval_ms, DEFAULT_POLL_INTERVAL_MS);
	ck_assert(!opt.sysid_override_set);
	ck_assert_ptr_null(opt.slots_file);
	ck_assert_int_eq(opt.max_connections, DEFAULT_MAX_CONNECTIONS);
	ck_assert_ptr_null(opt.json_events);
	ck_assert_uint_eq(opt.misbehave, 0);
}
END_TEST

START_TEST(test_every_option)
{
	SenderOptions opt;
	WalsimError err;

	ck_assert_int_eq(PARSE(&opt, &err, "--directory=/w", "-l", "[::1]:5", "--auth", "trust",
						   "--wal-sender-timeout", "2min", "--no-follow", "--poll-interval", "250",
						   "--system-id", "18446744073709551615", "--slots-file", "/s",
						   "--max-connections", "1024", "--json-events", "/e",
						   "--misbehave", "gap,take-back"), OPTIONS_OK);
	ck_assert_int_eq(opt.auth_method, AUTH_TRUST);
	ck_assert_ptr_null(opt.passfile);
	ck_assert_int_eq(opt.wal_sender_timeout_ms, 120000);
	ck_assert(!opt.follow);
	ck_assert_int_eq(opt.poll_interval_ms, 250);
	ck_assert(opt.sysid_override_set);
	ck_assert_uint_eq(opt.sysid_override, UINT64_MAX);
	ck_assert_str_eq(opt.slots_file, "/s");
	ck_assert_int_eq(opt.max_connections, 1024);
	ck_assert_str_eq(opt.json_events, "/e");
	ck_assert_uint_eq(opt.misbehave, MIS_GAP | MIS_TAKE_BACK);

	/* units of --wal-sender-timeout; a bare number is milliseconds; 0 is off */
	ck_assert_int_eq(PARSE(&opt, &err, "-D", "/w", "-l", "h:1", "--auth=trust", "--follow",
						   "--wal-sender-timeout=0"), OPTIONS_OK);
	ck_assert_int_eq(opt.wal_sender_timeout_ms, 0);
	ck_assert(opt.follow);
	ck_assert_int_eq(PARSE(&opt, &err, "-D", "/w", "-l", "h:1", "--auth=trust",
						   "--wal-sender-timeout=1500"), OPTIONS_OK);
	ck_assert_int_eq(opt.wal_sender_timeout_ms, 1500);
	ck_assert_int_eq(PARSE(&opt, &err, "-D", "/w", "-l", "h:1", "--auth=md5",
						   "--password-file=/p", "--wal-sender-timeout=30s"), OPTIONS_OK);
	ck_assert_int_eq(opt.wal_sender_timeout_ms, 30000);
	ck_assert_int_eq(opt.auth_method, AUTH_MD5);
	ck_assert_str_eq(opt.passfile, "/p");
}
END_TEST

START_TEST(test_help)
{
	SenderOptions opt;
	WalsimError err;
	FILE	   *saved = stdout;

	/* the text goes to stdout; keep the test output clean */
	stdout = fopen("/dev/null", "w");
	ck_assert_int_eq(PARSE(&opt, &err, "--help"), OPTIONS_EXIT_OK);
	ck_assert_int_eq(PARSE(&opt, &err, "-D", "/w", "-h"), OPTIONS_EXIT_OK);
	fclose(stdout);
	stdout = saved;
}
END_TEST

static const struct
{
	const char *args[8];
	const char *message;
}			bad_args[] = {
	{{NULL}, "-D WALDIR and --listen HOST:PORT are required"},
	{{"-D", "/w"}, "-D WALDIR and --listen HOST:PORT are required"},
	{{"-D", "/w", "-l", "h:1"}, "--auth scram-sha-256 needs --passfile FILE with the accepted role:password"},
	{{"-D", "/w", "-l", "h:1", "--auth", "trust", "extra"}, "unexpected argument \"extra\""},
	{{"-D", "/w", "-l", "h:1", "--auth", "gss"}, "--auth \"gss\""},
	{{"-D", "/w", "-l", "h:1", "--misbehave", "gap,bogus"}, "--misbehave: unknown kind \"bogus\" at offset 4"},
	{{"-D", "/w", "-l", "h:1", "--wal-sender-timeout", "5h"},
	"--wal-sender-timeout \"5h\": unknown unit \"h\" (ms, s, min)"},
	{{"-D", "/w", "-l", "h:1", "--wal-sender-timeout", "1441min"},
	"--wal-sender-timeout \"1441min\": at most 86400000 milliseconds"},
	{{"-D", "/w", "-l", "h:1", "--wal-sender-timeout", "-1"},
	"--wal-sender-timeout \"-1\": expected a non-negative number of milliseconds"},
	{{"-D", "/w", "-l", "h:1", "--system-id", "-3"}, "--system-id \"-3\": not a non-negative integer"},
	{{"-D", "/w", "-l", "h:1", "--system-id", "18446744073709551616"}, "--system-id \"18446744073709551616\": out of range"},
	{{"-D", "/w", "-l", "h:1", "--poll-interval", "0"}, "--poll-interval \"0\": expected an integer from 1 to 10000"},
	{{"-D", "/w", "-l", "h:1", "--poll-interval", "10001"}, "expected an integer from 1 to 10000"},
	{{"-D", "/w", "-l", "h:1", "--max-connections", "1025"},
	"--max-connections \"1025\": expected an integer from 1 to 1024"},
	{{"-D", "/w", "-l", "h:1", "--max-connections", "2x"}, "--max-connections \"2x\""},
};

START_TEST(test_bad_args)
{
	char	   *argv[10] = {"walsim-sender"};
	int			argc = 1;
	SenderOptions opt;
	WalsimError err;

	for (int i = 0; bad_args[_i].args[i] != NULL; i++)
		argv[argc++] = (char *) bad_args[_i].args[i];
	argv[argc] = NULL;
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(sender_options_parse(argc, argv, &opt, &err), OPTIONS_ERROR);
	ck_assert_msg(strstr(err.message, bad_args[_i].message) != NULL,
				  "case %d: message \"%s\" lacks \"%s\"", _i, err.message, bad_args[_i].message);
}
END_TEST

/* getopt's own complaints (it prints them) are a usage error. */
START_TEST(test_usage_errors)
{
	SenderOptions opt;
	WalsimError err;
	FILE	   *saved = stderr;

	stderr = fopen("/dev/null", "w");
	ck_assert_int_eq(PARSE(&opt, &err, "-D", "/w", "--frobnicate"), OPTIONS_USAGE);
	ck_assert_int_eq(PARSE(&opt, &err, "-x"), OPTIONS_USAGE);
	ck_assert_int_eq(PARSE(&opt, &err, "-D"), OPTIONS_USAGE);
	fclose(stderr);
	stderr = saved;
}
END_TEST

START_TEST(test_misbehave_format)
{
	char		buf[256];
	unsigned	mask;

	ck_assert(misbehave_parse("take-back,wrong-sysid,gap", &mask, NULL));
	misbehave_format(mask, buf, sizeof(buf));
	ck_assert_str_eq(buf, "wrong-sysid,gap,take-back");
	misbehave_format(0, buf, sizeof(buf));
	ck_assert_str_eq(buf, "");
	ck_assert(misbehave_parse("", &mask, NULL));
	ck_assert_uint_eq(mask, 0);
}
END_TEST

static Suite *
options_suite(void)
{
	Suite	   *s = suite_create("sender_options");
	TCase	   *tc = tcase_create("core");

	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_every_option);
	tcase_add_test(tc, test_help);
	tcase_add_loop_test(tc, test_bad_args, 0, (int) (sizeof(bad_args) / sizeof(bad_args[0])));
	tcase_add_test(tc, test_usage_errors);
	tcase_add_test(tc, test_misbehave_format);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run_suite(options_suite());
}
