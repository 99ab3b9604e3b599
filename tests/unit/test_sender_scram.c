/*
 * test_sender_scram.c — walsim-sender's SCRAM-SHA-256 server against the
 * exchange printed in RFC 7677 section 3, plus the refusals.
 */
#include <check.h>
#include <string.h>

#include "../../ref/sender/scram.h"
#include "unit_support.h"

#define RFC_SALT_B64	"W22ZaJ0SNY7soEsUEjb6gQ=="
#define RFC_SNONCE		"%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_CFIRST		"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define RFC_SFIRST		"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define RFC_CFINAL		"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_SFINAL		"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

static void
rfc_server(ScramServer *s, const char *password)
{
	uint8_t		salt[32];
	size_t		salt_len;
	WalsimError err;

	ck_assert(scram_b64_decode(RFC_SALT_B64, strlen(RFC_SALT_B64), salt, sizeof(salt), &salt_len));
	ck_assert_uint_eq(salt_len, 16);
	ck_assert_msg(scram_server_init(s, password, salt, salt_len, 4096, RFC_SNONCE, &err), "%s", err.message);
}

START_TEST(test_rfc7677_vector)
{
	ScramServer s;
	char		out[SCRAM_MSG_MAX];
	WalsimError err;

	rfc_server(&s, "pencil");
	ck_assert_msg(scram_server_first(&s, RFC_CFIRST, strlen(RFC_CFIRST), out, sizeof(out), &err), "%s", err.message);
	ck_assert_str_eq(out, RFC_SFIRST);
	ck_assert_msg(scram_server_final(&s, RFC_CFINAL, strlen(RFC_CFINAL), out, sizeof(out), &err), "%s", err.message);
	ck_assert_str_eq(out, RFC_SFINAL);
}
END_TEST

START_TEST(test_wrong_password)
{
	ScramServer s;
	char		out[SCRAM_MSG_MAX];
	WalsimError err;

	rfc_server(&s, "pencil2");
	ck_assert(scram_server_first(&s, RFC_CFIRST, strlen(RFC_CFIRST), out, sizeof(out), &err));
	ck_assert(!scram_server_final(&s, RFC_CFINAL, strlen(RFC_CFINAL), out, sizeof(out), &err));
	ck_assert_ptr_nonnull(strstr(err.message, "wrong password"));
}
END_TEST

START_TEST(test_tampered_nonce)
{
	ScramServer s;
	char		out[SCRAM_MSG_MAX];
	WalsimError err;
	char		final[] = RFC_CFINAL;

	rfc_server(&s, "pencil");
	ck_assert(scram_server_first(&s, RFC_CFIRST, strlen(RFC_CFIRST), out, sizeof(out), &err));
	final[10] = 'X';
	ck_assert(!scram_server_final(&s, final, strlen(final), out, sizeof(out), &err));
	ck_assert_ptr_nonnull(strstr(err.message, "nonce"));
}
END_TEST

START_TEST(test_refusals)
{
	ScramServer s;
	char		out[SCRAM_MSG_MAX];
	WalsimError err;
	static const char *const bad[] = {
		"p=tls-server-end-point,,n=user,r=abc",	/* channel binding required */
		"x,,n=user,r=abc",		/* bad GS2 flag */
		"n,a=admin,n=user,r=abc",	/* authzid */
		"n,,m=ext,n=user,r=abc",	/* mandatory extension */
		"n,,n=user",			/* no nonce */
		"n,,n=user,r=",			/* empty nonce */
		"n,,r=abc",				/* no user attribute */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		rfc_server(&s, "pencil");
		ck_assert_msg(!scram_server_first(&s, bad[i], strlen(bad[i]), out, sizeof(out), &err),
					  "accepted \"%s\"", bad[i]);
	}
	/* a final message before the first one */
	rfc_server(&s, "pencil");
	ck_assert(!scram_server_final(&s, RFC_CFINAL, strlen(RFC_CFINAL), out, sizeof(out), &err));
	/* "y,," (client could bind, server offered none) must be echoed as eSws */
	rfc_server(&s, "pencil");
	ck_assert(scram_server_first(&s, "y,,n=,r=abc", 11, out, sizeof(out), &err));
	ck_assert(!scram_server_final(&s, "c=biws,r=abc" RFC_SNONCE ",p=AAAA", 12 + strlen(RFC_SNONCE) + 7,
								  out, sizeof(out), &err));
	ck_assert_ptr_nonnull(strstr(err.message, "channel binding"));
}
END_TEST

START_TEST(test_random_init)
{
	ScramServer a,
				b;
	WalsimError err;

	ck_assert(scram_server_init(&a, "pw", NULL, 0, 4096, NULL, &err));
	ck_assert(scram_server_init(&b, "pw", NULL, 0, 4096, NULL, &err));
	ck_assert_str_ne(a.server_nonce, b.server_nonce);
	ck_assert_str_ne(a.salt_b64, b.salt_b64);
	ck_assert(!scram_server_init(&a, "pw", NULL, 0, 0, NULL, &err));
}
END_TEST

START_TEST(test_base64)
{
	uint8_t		out[16];
	size_t		n;
	char		enc[16];

	ck_assert(scram_b64_decode("YWI=", 4, out, sizeof(out), &n));
	ck_assert_uint_eq(n, 2);
	ck_assert(memcmp(out, "ab", 2) == 0);
	ck_assert(!scram_b64_decode("YWI", 3, out, sizeof(out), &n));
	ck_assert(!scram_b64_decode("Y!I=", 4, out, sizeof(out), &n));
	ck_assert_uint_eq(scram_b64_encode((const uint8_t *) "n,,", 3, enc, sizeof(enc)), 4);
	ck_assert_str_eq(enc, "biws");
}
END_TEST

int
main(void)
{
	Suite	   *s = suite_create("sender_scram");
	TCase	   *tc = tcase_create("scram");

	tcase_add_test(tc, test_rfc7677_vector);
	tcase_add_test(tc, test_wrong_password);
	tcase_add_test(tc, test_tampered_nonce);
	tcase_add_test(tc, test_refusals);
	tcase_add_test(tc, test_random_init);
	tcase_add_test(tc, test_base64);
	suite_add_tcase(s, tc);
	return unit_run_suite(s);
}
