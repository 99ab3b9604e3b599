/*
 * unit_support.h — small helpers shared by the Check unit tests.
 */
#ifndef WALSIM_UNIT_SUPPORT_H
#define WALSIM_UNIT_SUPPORT_H

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/*
 * The whole file at path, malloc'd with a NUL after the last byte (so text
 * can be used as a string); its length in *len.  The test fails if the file
 * cannot be read.
 */
static inline void *
unit_load_file(const char *path, size_t *len)
{
	FILE	   *f = fopen(path, "rb");
	char	   *buf;
	long		size;

	ck_assert_msg(f != NULL, "cannot open %s", path);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	size = ftell(f);
	ck_assert_int_ge(size, 0);
	ck_assert_int_eq(fseek(f, 0, SEEK_SET), 0);
	buf = malloc((size_t) size + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_msg(fread(buf, 1, (size_t) size, f) == (size_t) size, "cannot read %s", path);
	fclose(f);
	buf[size] = '\0';
	*len = (size_t) size;
	return buf;
}

/* unit_load_file() of a file under tests/data. */
static inline void *
unit_load_data(const char *name, size_t *len)
{
	char		path[4096];

	unit_data_path(path, sizeof(path), name);
	return unit_load_file(path, len);
}

/*
 * Read the start of a file under tests/data into dst[cap] (a WAL segment
 * into its place in a buffer); returns the bytes read.
 */
static inline size_t
unit_read_data(const char *name, void *dst, size_t cap)
{
	char		path[4096];
	FILE	   *f;
	size_t		n;

	unit_data_path(path, sizeof(path), name);
	f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	n = fread(dst, 1, cap, f);
	fclose(f);
	return n;
}

/* The test WAL: segments 9, A and B of timeline 1 (1 MB each), back to back. */
#define UNIT_WAL_SEG_SIZE	(UINT32_C(1) << 20)
#define UNIT_WAL_LEN		(3 * (size_t) UNIT_WAL_SEG_SIZE)

static inline uint8_t *
unit_load_test_wal(void)
{
	static const char *const names[] = {
		"wal/000000010000000000000009",
		"wal/00000001000000000000000A",
		"wal/00000001000000000000000B",
	};
	uint8_t    *buf = malloc(UNIT_WAL_LEN);

	ck_assert_ptr_nonnull(buf);
	for (int i = 0; i < 3; i++)
		ck_assert_uint_eq(unit_read_data(names[i], buf + (size_t) i * UNIT_WAL_SEG_SIZE,
										 UNIT_WAL_SEG_SIZE), UNIT_WAL_SEG_SIZE);
	return buf;
}

/* A command line: UNIT_ARGV("prog", "-x", "1") is a NULL-terminated char *[]. */
#define UNIT_ARGV(...) ((char *[]) {__VA_ARGS__, NULL})

/* The number of arguments of a NULL-terminated argument vector. */
static inline int
unit_argc(char **argv)
{
	int			argc = 0;

	while (argv[argc] != NULL)
		argc++;
	return argc;
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
