/*
 * test_sender_auth.c — passfile parsing and the MD5 response of
 * walsim-sender's authentication.
 */
#include <check.h>
#include <string.h>

#include "../../ref/sender/auth.h"
#include "unit_support.h"

START_TEST(test_passfile_forms)
{
	AuthConfig	cfg;
	WalsimError err;

	ck_assert_msg(auth_passfile_parse("# comment\n\nrepl:secret\n"
									  "127.0.0.1:5432:replication:other:pa\\:ss\\\\w\r\n"
									  "*:any\n", &cfg, &err), "%s", err.message);
	ck_assert_int_eq(cfg.nentries, 3);
	ck_assert_str_eq(auth_lookup(&cfg, "repl"), "secret");
	ck_assert_str_eq(auth_lookup(&cfg, "other"), "pa:ss\\w");
	ck_assert_str_eq(auth_lookup(&cfg, "nobody"), "any");
	auth_config_free(&cfg);

	ck_assert(auth_passfile_parse("a:b\n", &cfg, &err));
	ck_assert_ptr_null(auth_lookup(&cfg, "c"));
	auth_config_free(&cfg);
}
END_TEST

START_TEST(test_passfile_errors)
{
	AuthConfig	cfg;
	WalsimError err;

	ck_assert(!auth_passfile_parse("", &cfg, &err));
	ck_assert(!auth_passfile_parse("onlyonefield\n", &cfg, &err));
	ck_assert_ptr_nonnull(strstr(err.message, "line 1"));
	ck_assert(!auth_passfile_parse("a:b\nx:y:z\n", &cfg, &err));
	ck_assert_ptr_nonnull(strstr(err.message, "line 2"));
	ck_assert(!auth_passfile_parse(":pw\n", &cfg, &err));
	ck_assert(!auth_passfile_load("/nonexistent/walsim-passfile", &cfg, &err));
	ck_assert_ptr_nonnull(strstr(err.message, "/nonexistent/walsim-passfile"));
}
END_TEST

START_TEST(test_md5)
{
	/* md5(md5("secret" || "repl") || salt), computed independently with Python hashlib */
	const uint8_t salt[4] = {0x01, 0x02, 0x03, 0x04};
	char		out[36];

	auth_md5_response("secret", "repl", salt, out);
	ck_assert_str_eq(out, "md5b3a28fe140b644455fccd78ea2101699");
}
END_TEST

START_TEST(test_methods)
{
	AuthMethod	m;
	WalsimError err;

	ck_assert(auth_method_parse("scram-sha-256", &m, &err));
	ck_assert_int_eq(m, AUTH_SCRAM);
	ck_assert(auth_method_parse("md5", &m, &err));
	ck_assert_int_eq(m, AUTH_MD5);
	ck_assert(!auth_method_parse("gss", &m, &err));
	ck_assert_str_eq(auth_method_name(AUTH_TRUST), "trust");
}
END_TEST

int
main(void)
{
	Suite	   *s = suite_create("sender_auth");
	TCase	   *tc = tcase_create("auth");

	tcase_add_test(tc, test_passfile_forms);
	tcase_add_test(tc, test_passfile_errors);
	tcase_add_test(tc, test_md5);
	tcase_add_test(tc, test_methods);
	suite_add_tcase(s, tc);
	return unit_run_suite(s);
}
