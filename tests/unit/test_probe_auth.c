/*
 * test_probe_auth.c — walsim-probe's client side of authentication: the
 * RFC 7677 SCRAM-SHA-256 exchange byte for byte, MD5, .pgpass lookup.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../ref/probe/auth.h"
#include "unit_support.h"

START_TEST(test_scram_rfc7677)
{
	ScramClient s;
	WalsimError err;
	char	   *first = probe_scram_first(&s);
	const char *server_first =
		"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
	char	   *final;

	ck_assert(strncmp(first, "n,,n=,r=", 8) == 0);
	free(first);
	/* replay RFC 7677's example: its nonce and its client-first-message-bare */
	strcpy(s.nonce, "rOprNGfwEbeRWgbNEkqO");
	free(s.first_bare);
	s.first_bare = strdup("n=user,r=rOprNGfwEbeRWgbNEkqO");
	final = probe_scram_final(&s, "pencil", server_first, strlen(server_first), &err);
	ck_assert_msg(final != NULL, "%s", err.message);
	ck_assert_str_eq(final, "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
					 "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
	free(final);
	ck_assert(probe_scram_verify(&s, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", 46, &err));
	ck_assert(!probe_scram_verify(&s, "v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", 46, &err));
	probe_scram_free(&s);
}
END_TEST

START_TEST(test_scram_refusals)
{
	ScramClient s;
	WalsimError err;
	char	   *first = probe_scram_first(&s);

	free(first);
	ck_assert_ptr_null(probe_scram_final(&s, "pw", "s=abc,i=1", 9, &err));
	ck_assert_ptr_nonnull(strstr(err.message, "lacks r, s or i"));
	ck_assert_ptr_null(probe_scram_final(&s, "pw", "r=other,s=QUJD,i=4096", 21, &err));
	ck_assert_ptr_nonnull(strstr(err.message, "client nonce"));
	probe_scram_free(&s);
}
END_TEST

START_TEST(test_md5)
{
	const uint8_t salt[4] = {1, 2, 3, 4};
	char		out[36];

	/* md5(md5("secret" || "postgres") || salt), computed with Python's hashlib */
	probe_md5_response("postgres", "secret", salt, out);
	ck_assert_str_eq(out, "md5bb41a296aab6baccb36ff243a562abff");
}
END_TEST

START_TEST(test_passfile)
{
	char		path[] = "/tmp/walsim-probe-passXXXXXX";
	int			fd = mkstemp(path);
	FILE	   *f = fdopen(fd, "w");
	char	   *pw;
	bool		found;
	WalsimError err;

	fputs("# comment\nother:*:*:*:nope\n127.0.0.1:5432:replication:rep:pa\\:ss\\\\w\n"
		  "*:*:*:*:fallback\n", f);
	fclose(f);
	ck_assert(probe_passfile_lookup(path, "127.0.0.1", "5432", "replication", "rep", &pw, &found, &err));
	ck_assert(found);
	ck_assert_str_eq(pw, "pa:ss\\w");
	free(pw);
	ck_assert(probe_passfile_lookup(path, "127.0.0.1", "5433", "replication", "rep", &pw, &found, &err));
	ck_assert(found);
	ck_assert_str_eq(pw, "fallback");
	free(pw);
	unlink(path);
	ck_assert(!probe_passfile_lookup(path, "h", "1", "d", "u", &pw, &found, &err));
	ck_assert_ptr_nonnull(strstr(err.message, "cannot open"));
}
END_TEST

int
main(void)
{
	Suite	   *s = suite_create("probe_auth");
	TCase	   *tc = tcase_create("core");

	tcase_add_test(tc, test_scram_rfc7677);
	tcase_add_test(tc, test_scram_refusals);
	tcase_add_test(tc, test_md5);
	tcase_add_test(tc, test_passfile);
	suite_add_tcase(s, tc);
	return unit_run_suite(s);
}
