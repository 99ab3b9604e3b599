/*
 * test_probe_script.c — walsim-probe's step language: every step form, and
 * the errors that name the line and the word.
 */
#include <check.h>
#include <string.h>

#include "../../ref/probe/script.h"
#include "unit_support.h"

START_TEST(test_every_step)
{
	ProbeScript s;
	WalsimError err;
	const char *text =
		"# a comment\n"
		"\n"
		"ssl\n"
		"startup application_name=probe replication=on\n"
		"query  START_REPLICATION 0/3000000 TIMELINE 1  \n"
		"wait W,E,close 5000\n"
		"stream 0/3020000 10000\n"
		"status received 0/0 0/0 1\n"
		"feedback 1 0 2 0\n"
		"copydata 78ff\n"
		"copydone\n"
		"msg P 00\n"
		"msg S\n"
		"raw 0000000804d2162f\n"
		"read 100\n"
		"sleep 10\n"
		"autoreply on\n"
		"terminate\n"
		"close";

	ck_assert_msg(probe_parse_script(text, &s, &err), "%s", err.message);
	ck_assert_int_eq(s.nsteps, 17);
	ck_assert_int_eq(s.steps[0].kind, STEP_SSL);
	ck_assert_int_eq(s.steps[0].line, 3);
	ck_assert_int_eq(s.steps[1].kind, STEP_STARTUP);
	ck_assert_int_eq(s.steps[1].nparams, 2);
	ck_assert_str_eq(s.steps[1].keys[1], "replication");
	ck_assert_str_eq(s.steps[1].values[1], "on");
	ck_assert_str_eq(s.steps[2].text, "START_REPLICATION 0/3000000 TIMELINE 1");
	ck_assert_int_eq(s.steps[3].nwait, 3);
	ck_assert_int_eq(s.steps[3].wait_for[1], 'E');
	ck_assert_int_eq(s.steps[3].wait_for[2], PROBE_WAIT_CLOSE);
	ck_assert_int_eq(s.steps[3].ms, 5000);
	ck_assert(s.steps[4].lsn[0] == 0x3020000);
	ck_assert(s.steps[5].lsn[0] == PROBE_LSN_RECEIVED);
	ck_assert(s.steps[5].lsn[1] == 0 && s.steps[5].reply);
	ck_assert_uint_eq(s.steps[6].xid[2], 2);
	ck_assert_uint_eq(s.steps[7].nbytes, 2);
	ck_assert_uint_eq(s.steps[7].bytes[1], 0xff);
	ck_assert_int_eq(s.steps[9].msg_type, 'P');
	ck_assert_uint_eq(s.steps[10].nbytes, 0);
	ck_assert_uint_eq(s.steps[11].nbytes, 8);
	ck_assert(s.steps[14].kind == STEP_AUTOREPLY && s.steps[14].reply);
	ck_assert_int_eq(s.steps[16].kind, STEP_CLOSE);
	probe_script_free(&s);
}
END_TEST

static void
assert_refused(const char *text, const char *needle)
{
	ProbeScript s;
	WalsimError err;

	ck_assert_msg(!probe_parse_script(text, &s, &err), "accepted: %s", text);
	ck_assert_msg(strstr(err.message, needle) != NULL, "\"%s\": message \"%s\" lacks \"%s\"",
				  text, err.message, needle);
	ck_assert_ptr_null(s.steps);
}

START_TEST(test_errors_name_line_and_word)
{
	assert_refused("ssl\nbogus 1\n", "line 2: unknown step \"bogus\"");
	assert_refused("wait Q 10x\n", "timeout \"10x\"");
	assert_refused("wait QQ 10\n", "\"QQ\" is not a message type");
	assert_refused("wait 10\n", "wait takes 2 arguments, not 1");
	assert_refused("status 0/0 0/0\n", "status takes 3 to 4 arguments");
	assert_refused("status 0/ZZ 0/0 0/0\n", "line 1");
	assert_refused("status received 0/0 0/0 2\n", "replyRequested \"2\"");
	assert_refused("copydata 7\n", "odd number of digits");
	assert_refused("raw 0g\n", "invalid digit at offset 1");
	assert_refused("msg PP 00\n", "not one character");
	assert_refused("startup user\n", "not key=value");
	assert_refused("query\n", "query needs its text");
	assert_refused("read -5\n", "duration \"-5\"");
	assert_refused("copydone now\n", "copydone takes 0 arguments");
	assert_refused("autoreply maybe\n", "on or off");
	assert_refused("ssl\nssl\nfeedback 1 2 3\n", "line 3");
}
END_TEST

START_TEST(test_empty_script)
{
	ProbeScript s;
	WalsimError err;

	ck_assert(probe_parse_script("", &s, &err));
	ck_assert_int_eq(s.nsteps, 0);
	ck_assert(probe_parse_script("# only\n   \n", &s, &err));
	ck_assert_int_eq(s.nsteps, 0);
	probe_script_free(&s);
}
END_TEST

int
main(void)
{
	Suite	   *s = suite_create("probe_script");
	TCase	   *tc = tcase_create("core");

	tcase_add_test(tc, test_every_step);
	tcase_add_test(tc, test_errors_name_line_and_word);
	tcase_add_test(tc, test_empty_script);
	suite_add_tcase(s, tc);
	return unit_run_suite(s);
}
