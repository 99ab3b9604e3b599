/*
 * test_decision.c — the C decision function against the vector table shared
 * with the Python implementation (tests/data/decision_vectors.txt).
 */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "walsim/decision.h"
#include "unit_support.h"

START_TEST(test_splitmix_reference)
{
	/* first output of Vigna's splitmix64 with state 0 */
	ck_assert_uint_eq(decision_mix(0), UINT64_C(0xE220A8397B1DCDAF));
}
END_TEST

START_TEST(test_shared_vectors)
{
	char		path[4096];
	char		line[4096];
	FILE	   *f;
	int			rows = 0;

	unit_data_path(path, sizeof(path), "decision_vectors.txt");
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	while (fgets(line, sizeof(line), f))
	{
		char	   *save = NULL;
		char	   *field;
		uint64_t	seed, expected, uni, ch;
		Decision	d;
		char	   *rule;

		if (line[0] == '#' || line[0] == '\n')
			continue;
		line[strcspn(line, "\n")] = '\0';
		seed = strtoull(strtok_r(line, "\t", &save), NULL, 10);
		/* an empty rule leaves two tabs in a row, which strtok would skip */
		rule = save;
		field = strchr(save, '\t');
		*field = '\0';
		save = field + 1;
		expected = strtoull(strtok_r(NULL, "\t", &save), NULL, 16);
		uni = strtoull(strtok_r(NULL, "\t", &save), NULL, 10);
		ch = strtoull(strtok_r(NULL, "\t", &save), NULL, 10);

		decision_start(&d, seed, rule);
		/* string coordinates may be empty ("s:"), so split by hand */
		while (save != NULL && *save != '\0')
		{
			char	   *end = strchr(save, '\t');

			if (end)
				*end = '\0';
			if (strncmp(save, "s:", 2) == 0)
				decision_add_str(&d, save + 2);
			else
				decision_add_u64(&d, strtoull(save, NULL, 10));
			save = end ? end + 1 : NULL;
		}
		ck_assert_msg(decision_value(&d) == expected,
					  "seed %" PRIu64 " rule \"%s\": got %016" PRIx64 ", want %016" PRIx64,
					  seed, rule, decision_value(&d), expected);
		ck_assert_uint_eq(decision_uniform(expected, 0, 999), uni);
		ck_assert_uint_eq(decision_chance(expected, 0.5), ch);
		rows++;
	}
	fclose(f);
	ck_assert_int_ge(rows, 10);
}
END_TEST

START_TEST(test_one_call_form)
{
	uint64_t	coords[] = {1, 2, 3};
	Decision	d;

	decision_start(&d, 9, "rule");
	decision_add_u64(&d, 1);
	decision_add_u64(&d, 2);
	decision_add_u64(&d, 3);
	ck_assert_uint_eq(decision_u64(9, "rule", coords, 3), decision_value(&d));
	ck_assert_uint_ne(decision_u64(9, "rule", coords, 2), decision_value(&d));
}
END_TEST

START_TEST(test_uniform_and_chance_edges)
{
	ck_assert_uint_eq(decision_uniform(UINT64_MAX, 0, 9), 9);
	ck_assert_uint_eq(decision_uniform(0, 0, 9), 0);
	ck_assert_uint_eq(decision_uniform(12345, 7, 7), 7);
	ck_assert_uint_eq(decision_uniform(12345, 8, 7), 8);
	ck_assert_uint_eq(decision_uniform(UINT64_MAX, 0, UINT64_MAX), UINT64_MAX);
	ck_assert(decision_chance(0, 1.0));
	ck_assert(!decision_chance(UINT64_MAX, 0.0));
	ck_assert(decision_chance(0, 0.5));
	ck_assert(!decision_chance(UINT64_MAX, 0.5));
}
END_TEST

int
main(void)
{
	Suite	   *s = suite_create("decision");
	TCase	   *tc = tcase_create("core");

	tcase_add_test(tc, test_splitmix_reference);
	tcase_add_test(tc, test_shared_vectors);
	tcase_add_test(tc, test_one_call_form);
	tcase_add_test(tc, test_uniform_and_chance_edges);
	suite_add_tcase(s, tc);
	return unit_run_suite(s);
}
