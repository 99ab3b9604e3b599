/*
 * test_crc32c.c — CRC-32C: published check values, and the SSE4.2 and table
 * implementations agreeing on every length, alignment and split.
 */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "walsim/crc32c.h"
#include "unit_support.h"

/* RFC 3720 (iSCSI) appendix B.4 test vectors, plus the classic "123456789" */
START_TEST(test_known_values)
{
	uint8_t		buf[32];

	ck_assert_uint_eq(crc32c("123456789", 9), 0xE3069283u);
	ck_assert_uint_eq(crc32c("", 0), 0x00000000u);
	memset(buf, 0, sizeof(buf));
	ck_assert_uint_eq(crc32c(buf, 32), 0x8A9136AAu);
	memset(buf, 0xFF, sizeof(buf));
	ck_assert_uint_eq(crc32c(buf, 32), 0x62A8AB43u);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t) i;
	ck_assert_uint_eq(crc32c(buf, 32), 0x46DD794Eu);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t) (31 - i);
	ck_assert_uint_eq(crc32c(buf, 32), 0x113FDB5Cu);
}
END_TEST

/* Both implementations, forced, on the check value */
START_TEST(test_both_paths_known_value)
{
	ck_assert_uint_eq(crc32c_final(crc32c_update_table(CRC32C_INIT, "123456789", 9)),
					  0xE3069283u);
	if (crc32c_have_sse42())
		ck_assert_uint_eq(crc32c_final(crc32c_update_sse42(CRC32C_INIT, "123456789", 9)),
						  0xE3069283u);
}
END_TEST

static uint64_t
next_rand(uint64_t *state)
{
	/* xorshift64*: reproducible test data, no library state */
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;
	return *state * UINT64_C(2685821657736338717);
}

/*
 * Every length 0..300 at every alignment 0..7, and random splits of a 64 kB
 * buffer: table and SSE4.2 give the same running CRC.
 */
START_TEST(test_paths_agree)
{
	static uint8_t buf[65536 + 8];
	uint64_t	state = 0x9E3779B97F4A7C15u;

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t) next_rand(&state);
	for (size_t align = 0; align < 8; align++)
		for (size_t len = 0; len <= 300; len++)
		{
			uint32_t	t = crc32c_update_table(CRC32C_INIT, buf + align, len);
			uint32_t	d = crc32c_update(CRC32C_INIT, buf + align, len);

			ck_assert_uint_eq(t, d);
			if (crc32c_have_sse42())
				ck_assert_uint_eq(t, crc32c_update_sse42(CRC32C_INIT, buf + align, len));
		}
	for (int round = 0; round < 50; round++)
	{
		uint32_t	whole = crc32c(buf, 65536);
		uint32_t	t = CRC32C_INIT,
					s = CRC32C_INIT;
		size_t		off = 0;

		while (off < 65536)
		{
			size_t		n = 1 + next_rand(&state) % 5000;

			if (n > 65536 - off)
				n = 65536 - off;
			t = crc32c_update_table(t, buf + off, n);
			s = crc32c_have_sse42() ? crc32c_update_sse42(s, buf + off, n)
				: crc32c_update(s, buf + off, n);
			off += n;
		}
		ck_assert_uint_eq(crc32c_final(t), whole);
		ck_assert_uint_eq(crc32c_final(s), whole);
	}
}
END_TEST

/* A different byte anywhere changes the CRC (single-bit errors always do) */
START_TEST(test_single_bit_errors_detected)
{
	uint8_t		buf[256];
	uint32_t	good;

	for (int i = 0; i < 256; i++)
		buf[i] = (uint8_t) (i * 7);
	good = crc32c(buf, sizeof(buf));
	for (int i = 0; i < 256 * 8; i++)
	{
		buf[i / 8] ^= (uint8_t) (1 << (i % 8));
		ck_assert_uint_ne(crc32c(buf, sizeof(buf)), good);
		buf[i / 8] ^= (uint8_t) (1 << (i % 8));
	}
}
END_TEST

static Suite *
crc32c_suite(void)
{
	Suite	   *s = suite_create("crc32c");
	TCase	   *tc = tcase_create("core");

	tcase_add_test(tc, test_known_values);
	tcase_add_test(tc, test_both_paths_known_value);
	tcase_add_test(tc, test_paths_agree);
	tcase_add_test(tc, test_single_bit_errors_detected);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run_suite(crc32c_suite());
}
