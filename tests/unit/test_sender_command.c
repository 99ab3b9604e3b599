/*
 * test_sender_command.c — the replication command parser of walsim-sender:
 * every form real clients send (walreceiver, pg_receivewal), PostgreSQL's
 * lexical rules, and the SQLSTATEs of malformed commands.
 */
#include <check.h>
#include <string.h>

#include "../../ref/sender/command.h"
#include "unit_support.h"

static ReplCommand
parse_ok(const char *text)
{
	ReplCommand c;
	const char *state;
	WalsimError err;

	ck_assert_msg(repl_command_parse(text, &c, &state, &err), "\"%s\": %s", text, err.message);
	return c;
}

static const char *
parse_fail(const char *text)
{
	ReplCommand c;
	const char *state;
	WalsimError err;

	ck_assert_msg(!repl_command_parse(text, &c, &state, &err), "\"%s\" accepted", text);
	ck_assert(strlen(err.message) > 0);
	return state;
}

START_TEST(test_client_forms)
{
	ReplCommand c;

	c = parse_ok("IDENTIFY_SYSTEM");
	ck_assert_int_eq(c.kind, REPL_IDENTIFY_SYSTEM);
	c = parse_ok("identify_system;");
	ck_assert_int_eq(c.kind, REPL_IDENTIFY_SYSTEM);
	c = parse_ok("SHOW wal_segment_size");
	ck_assert_int_eq(c.kind, REPL_SHOW);
	ck_assert_str_eq(c.name, "wal_segment_size");
	c = parse_ok("SHOW Data_Directory_Mode");
	ck_assert_str_eq(c.name, "data_directory_mode");
	c = parse_ok("TIMELINE_HISTORY 2");
	ck_assert_int_eq(c.kind, REPL_TIMELINE_HISTORY);
	ck_assert_uint_eq(c.tli, 2);
	/* walreceiver */
	c = parse_ok("START_REPLICATION 0/3000000 TIMELINE 1");
	ck_assert_int_eq(c.kind, REPL_START_REPLICATION);
	ck_assert_uint_eq(c.lsn, 0x3000000);
	ck_assert_uint_eq(c.tli, 1);
	ck_assert(!c.has_slot);
	/* pg_receivewal with a slot */
	c = parse_ok("START_REPLICATION SLOT \"rwslot\" 0/4000000 TIMELINE 1");
	ck_assert(c.has_slot);
	ck_assert_str_eq(c.name, "rwslot");
	ck_assert_uint_eq(c.lsn, 0x4000000);
	c = parse_ok("START_REPLICATION PHYSICAL A/FF000000");
	ck_assert_uint_eq(c.lsn, 0xAFF000000ULL);
	ck_assert_uint_eq(c.tli, 0);
	c = parse_ok("READ_REPLICATION_SLOT rwslot");
	ck_assert_int_eq(c.kind, REPL_READ_REPLICATION_SLOT);
	c = parse_ok("CREATE_REPLICATION_SLOT \"rwslot\" PHYSICAL");
	ck_assert_int_eq(c.kind, REPL_CREATE_REPLICATION_SLOT);
	ck_assert(!c.reserve_wal && !c.temporary && !c.logical);
	c = parse_ok("CREATE_REPLICATION_SLOT \"pg_walreceiver_42\" TEMPORARY PHYSICAL (RESERVE_WAL)");
	ck_assert(c.temporary && c.reserve_wal);
	c = parse_ok("CREATE_REPLICATION_SLOT s PHYSICAL RESERVE_WAL");
	ck_assert(c.reserve_wal);
	c = parse_ok("CREATE_REPLICATION_SLOT s PHYSICAL (RESERVE_WAL false)");
	ck_assert(!c.reserve_wal);
	c = parse_ok("CREATE_REPLICATION_SLOT s LOGICAL pgoutput");
	ck_assert(c.logical);
	c = parse_ok("DROP_REPLICATION_SLOT \"rwslot\" WAIT");
	ck_assert_int_eq(c.kind, REPL_DROP_REPLICATION_SLOT);
	ck_assert(c.wait);
	c = parse_ok("  -- comment\n IDENTIFY_SYSTEM");
	ck_assert_int_eq(c.kind, REPL_IDENTIFY_SYSTEM);
	c = parse_ok("BASE_BACKUP (LABEL 'x')");
	ck_assert_int_eq(c.kind, REPL_BASE_BACKUP);
}
END_TEST

START_TEST(test_sql_is_not_a_command)
{
	ck_assert_int_eq(parse_ok("SELECT 1").kind, REPL_SQL);
	ck_assert_int_eq(parse_ok("").kind, REPL_SQL);
	ck_assert_int_eq(parse_ok("   ").kind, REPL_SQL);
	ck_assert_int_eq(parse_ok("create table t ()").kind, REPL_SQL);
}
END_TEST

START_TEST(test_errors)
{
	ck_assert_str_eq(parse_fail("IDENTIFY_SYSTEM extra"), "42601");
	ck_assert_str_eq(parse_fail("START_REPLICATION"), "42601");
	ck_assert_str_eq(parse_fail("START_REPLICATION 0/ZZ"), "42601");
	ck_assert_str_eq(parse_fail("START_REPLICATION 123456789/0"), "42601");
	ck_assert_str_eq(parse_fail("START_REPLICATION 0/1 TIMELINE"), "42601");
	ck_assert_str_eq(parse_fail("START_REPLICATION 0/1 TIMELINE 0"), "42601");
	ck_assert_str_eq(parse_fail("START_REPLICATION 0/1 TIMELINE 99999999999"), "42601");
	ck_assert_str_eq(parse_fail("TIMELINE_HISTORY"), "42601");
	ck_assert_str_eq(parse_fail("TIMELINE_HISTORY x"), "42601");
	ck_assert_str_eq(parse_fail("SHOW"), "42601");
	ck_assert_str_eq(parse_fail("START_REPLICATION SLOT \"Bad-Name\" 0/1"), "42602");
	ck_assert_str_eq(parse_fail("READ_REPLICATION_SLOT \"\""), "42601");
	ck_assert_str_eq(parse_fail("READ_REPLICATION_SLOT \"unterminated"), "42601");
	ck_assert_str_eq(parse_fail("CREATE_REPLICATION_SLOT s"), "42601");
	ck_assert_str_eq(parse_fail("CREATE_REPLICATION_SLOT s PHYSICAL (BOGUS)"), "42601");
	ck_assert_str_eq(parse_fail("IDENTIFY_SYSTEM ; ;"), "42601");
	ck_assert_str_eq(parse_fail("IDENTIFY_SYSTEM @"), "42601");
}
END_TEST

START_TEST(test_slot_names)
{
	WalsimError err;
	char		longname[80];

	ck_assert(repl_slot_name_valid("abc_123", &err));
	ck_assert(!repl_slot_name_valid("", &err));
	ck_assert(!repl_slot_name_valid("ABC", &err));
	ck_assert(!repl_slot_name_valid("a-b", &err));
	memset(longname, 'a', 64);
	longname[64] = '\0';
	ck_assert(!repl_slot_name_valid(longname, &err));
	longname[63] = '\0';
	ck_assert(repl_slot_name_valid(longname, &err));
}
END_TEST

START_TEST(test_long_input)
{
	/* a very long identifier must fail cleanly, not overflow */
	char		text[4096];

	strcpy(text, "SHOW ");
	memset(text + 5, 'x', 3000);
	text[3005] = '\0';
	ck_assert_str_eq(parse_fail(text), "42602");
	strcpy(text, "START_REPLICATION 0/1 TIMELINE ");
	memset(text + strlen(text), '9', 200);
	text[31 + 200] = '\0';
	ck_assert_str_eq(parse_fail(text), "42601");
}
END_TEST

int
main(void)
{
	Suite	   *s = suite_create("sender_command");
	TCase	   *tc = tcase_create("command");

	tcase_add_test(tc, test_client_forms);
	tcase_add_test(tc, test_sql_is_not_a_command);
	tcase_add_test(tc, test_errors);
	tcase_add_test(tc, test_slot_names);
	tcase_add_test(tc, test_long_input);
	suite_add_tcase(s, tc);
	return unit_run_suite(s);
}
