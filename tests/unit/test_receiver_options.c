/*
 * test_receiver_options.c — walsim-receiver's command line (ref/receiver/options.c).
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "../../ref/receiver/options.h"
#include "unit_support.h"

/* parse an argument list */
#define PARSE(opt, err, ...) \
	receiver_options_parse(unit_argc(UNIT_ARGV("walsim-receiver", __VA_ARGS__)), \
						   UNIT_ARGV("walsim-receiver", __VA_ARGS__), (opt), (err))

START_TEST(test_defaults)
{
	ReceiverOptions opt;
	WalsimError err;

	ck_assert_int_eq(PARSE(&opt, &err, "-D", "/tmp/x"), OPTIONS_OK);
	ck_assert_str_eq(opt.directory, "/tmp/x");
	ck_assert(opt.do_sync);
	ck_assert(!opt.synchronous);
	ck_assert(opt.verify);
	ck_assert_int_eq(opt.verify_action, VERIFY_ACTION_RESTREAM);
	ck_assert_int_eq(opt.status_interval_ms, 10000);
	ck_assert_int_eq(opt.reconnect_ms, 5000);
	ck_assert_uint_eq(opt.endpos, 0);
	ck_assert(!opt.have_start);
	ck_assert_ptr_null(opt.slot);
}
END_TEST

START_TEST(test_pg_receivewal_options)
{
	ReceiverOptions opt;
	WalsimError err;

	ck_assert_int_eq(PARSE(&opt, &err, "-d", "host=x port=5", "-h", "h1", "-p", "5433",
						   "-U", "rep", "--directory=/d", "-S", "slot1", "--synchronous",
						   "-E", "0/3025A70", "-n", "-s", "1", "-v", "-v", "-w"), OPTIONS_OK);
	ck_assert_str_eq(opt.connstr, "host=x port=5");
	ck_assert_str_eq(opt.host, "h1");
	ck_assert_str_eq(opt.port, "5433");
	ck_assert_str_eq(opt.user, "rep");
	ck_assert_str_eq(opt.slot, "slot1");
	ck_assert(opt.synchronous);
	ck_assert_uint_eq(opt.endpos, 0x3025A70);
	ck_assert(opt.no_loop);
	ck_assert_int_eq(opt.status_interval_ms, 1000);
	ck_assert_int_eq(opt.verbose, 2);

	ck_assert_int_eq(PARSE(&opt, &err, "--dbname=x", "--host=h", "--port=1", "--username=u",
						   "-D", "/d", "--slot=s", "--endpos=1/0", "--no-loop",
						   "--status-interval=0", "--verbose", "--no-sync"), OPTIONS_OK);
	ck_assert_int_eq(opt.status_interval_ms, 0);
	ck_assert(!opt.do_sync);
	ck_assert_uint_eq(opt.endpos, UINT64_C(0x100000000));

	ck_assert_int_eq(PARSE(&opt, &err, "-S", "s", "--create-slot", "--if-not-exists"), OPTIONS_OK);
	ck_assert(opt.create_slot);
	ck_assert(opt.if_not_exists);
	ck_assert_ptr_null(opt.directory);
	ck_assert_int_eq(PARSE(&opt, &err, "-S", "s", "--drop-slot"), OPTIONS_OK);
	ck_assert(opt.drop_slot);
}
END_TEST

START_TEST(test_walsim_options)
{
	ReceiverOptions opt;
	WalsimError err;

	ck_assert_int_eq(PARSE(&opt, &err, "-D", "/d", "--no-verify", "--start", "0/3000000",
						   "--json-events", "/tmp/ev", "--reconnect-interval", "0"), OPTIONS_OK);
	ck_assert(!opt.verify);
	ck_assert(opt.have_start);
	ck_assert_uint_eq(opt.start, 0x3000000);
	ck_assert_str_eq(opt.json_events, "/tmp/ev");
	ck_assert_int_eq(opt.reconnect_ms, 0);
	ck_assert_int_eq(PARSE(&opt, &err, "-D", "/d", "--no-verify", "--verify",
						   "--verify-action=stop"), OPTIONS_OK);
	ck_assert(opt.verify);
	ck_assert_int_eq(opt.verify_action, VERIFY_ACTION_STOP);
	ck_assert_int_eq(PARSE(&opt, &err, "-D", "/d", "--verify-action", "restream"), OPTIONS_OK);
	ck_assert_int_eq(opt.verify_action, VERIFY_ACTION_RESTREAM);
}
END_TEST

START_TEST(test_help_version)
{
	ReceiverOptions opt;
	WalsimError err;
	FILE	   *saved = stdout;

	/* the text goes to stdout; keep the test output clean */
	stdout = fopen("/dev/null", "w");
	ck_assert_int_eq(PARSE(&opt, &err, "--help"), OPTIONS_EXIT_OK);
	ck_assert_int_eq(PARSE(&opt, &err, "-?"), OPTIONS_EXIT_OK);
	ck_assert_int_eq(PARSE(&opt, &err, "--version"), OPTIONS_EXIT_OK);
	ck_assert_int_eq(PARSE(&opt, &err, "-V"), OPTIONS_EXIT_OK);
	fclose(stdout);
	stdout = saved;
}
END_TEST

static const struct
{
	const char *args[6];
	const char *reason;
}			bad_args[] = {
	{{NULL}, "no target directory specified"},
	{{"-D", "/d", "--synchronous", "--no-sync"}, "cannot use --synchronous together with --no-sync"},
	{{"--create-slot"}, "--create-slot needs a slot"},
	{{"--drop-slot"}, "--drop-slot needs a slot"},
	{{"-S", "s", "--create-slot", "--drop-slot"}, "cannot use --create-slot together with --drop-slot"},
	{{"-S", "s", "--drop-slot", "-E", "0/1"}, "--drop-slot cannot be combined"},
	{{"-D", "/d", "--if-not-exists"}, "--if-not-exists needs --create-slot"},
	{{"-D", "/d", "-E", "0/ZZ"}, "invalid --endpos: LSN \"0/ZZ\""},
	{{"-D", "/d", "--start", "12345"}, "invalid --start: LSN \"12345\": missing '/'"},
	{{"-D", "/d", "-s", "ten"}, "invalid status interval \"ten\""},
	{{"-D", "/d", "-s", "-1"}, "invalid status interval \"-1\""},
	{{"-D", "/d", "-s", "5x"}, "invalid status interval \"5x\""},
	{{"-D", "/d", "-s", "99999999999"}, "at most"},
	{{"-D", "/d", "--reconnect-interval", "4000"}, "invalid reconnect interval \"4000\": at most 3600 seconds"},
	{{"-D", "/d", "--verify-action", "ignore"}, "invalid --verify-action \"ignore\""},
	{{"-D", "/d", "extra"}, "too many command-line arguments (first is \"extra\")"},
	{{"-D", "/d", "-x"}, "invalid option -- 'x'"},
	{{"-D", "/d", "--frobnicate"}, "unrecognized option \"--frobnicate\""},
	{{"-D"}, "option \"-D\" requires an argument"},
};

START_TEST(test_bad_args)
{
	char	   *argv[8] = {"walsim-receiver"};
	int			argc = 1;
	ReceiverOptions opt;
	WalsimError err;

	for (int i = 0; bad_args[_i].args[i] != NULL; i++)
		argv[argc++] = (char *) bad_args[_i].args[i];
	argv[argc] = NULL;
	memset(&err, 0, sizeof(err));
	ck_assert_int_eq(receiver_options_parse(argc, argv, &opt, &err), OPTIONS_ERROR);
	ck_assert_msg(strstr(err.message, bad_args[_i].reason) != NULL,
				  "case %d: message \"%s\" lacks \"%s\"", _i, err.message, bad_args[_i].reason);
}
END_TEST

static Suite *
options_suite(void)
{
	Suite	   *s = suite_create("receiver_options");
	TCase	   *tc = tcase_create("core");

	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_pg_receivewal_options);
	tcase_add_test(tc, test_walsim_options);
	tcase_add_test(tc, test_help_version);
	tcase_add_loop_test(tc, test_bad_args, 0, (int) (sizeof(bad_args) / sizeof(bad_args[0])));
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run_suite(options_suite());
}
