/*
 * unit_support.h — small helpers shared by the Check unit tests.
 */
#ifndef WALSIM_UNIT_SUPPORT_H
#define WALSIM_UNIT_SUPPORT_H

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/*
 * Path of a file under tests/data.  The tests run from the top of the
 * checkout (make sets WALSIM_SRCDIR); both are honoured.
 */
static inline void
unit_data_path(char *buf, size_t len, const char *name)
{
	const char *top = getenv("WALSIM_SRCDIR");

	snprintf(buf, len, "%s/tests/data/%s", top ? top : ".", name);
}

/* Run a suite with Check's normal output; the exit status for main(). */
static inline int
unit_run_suite(Suite *s)
{
	SRunner    *sr = srunner_create(s);
	int			failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* Store integers little-endian, as WAL holds them (to build or damage WAL). */
static inline void
unit_put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t) v;
	p[1] = (uint8_t) (v >> 8);
}

static inline void
unit_put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t) (v >> (8 * i));
}

static inline void
unit_put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t) (v >> (8 * i));
}

#endif							/* WALSIM_UNIT_SUPPORT_H */
