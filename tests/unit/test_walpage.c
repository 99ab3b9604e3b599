/*
 * test_walpage.c — WAL page headers: the version table, decoding real
 * PostgreSQL 15 short and long headers, and every check failing on its own.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "walsim/walpage.h"
#include "unit_support.h"

/* tests/data/wal/00000001000000000000000A: 1 MB segment at 0/A00000 */
#define SEG_NAME	"wal/00000001000000000000000A"
#define SEG_LSN		UINT64_C(0xA00000)
#define SEG_SIZE	(1u << 20)

static uint8_t first_page[WAL_BLCKSZ];
static uint8_t second_page[WAL_BLCKSZ];

static void
load_pages(void)
{
	char		path[1024];
	FILE	   *f;

	unit_data_path(path, sizeof(path), SEG_NAME);
	f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	ck_assert_uint_eq(fread(first_page, 1, WAL_BLCKSZ, f), WAL_BLCKSZ);
	ck_assert_uint_eq(fread(second_page, 1, WAL_BLCKSZ, f), WAL_BLCKSZ);
	fclose(f);
}

static WalPageExpect
expect_at(uint64_t pageaddr)
{
	WalPageExpect e = {
		.version = wal_version_by_major(15),
		.pageaddr = pageaddr,
		.seg_size = SEG_SIZE,
		.sysid = 0,
		.min_tli = 1,
	};

	return e;
}

START_TEST(test_version_table)
{
	const WalVersionInfo *v = wal_version_by_major(15);

	ck_assert_ptr_nonnull(v);
	ck_assert_uint_eq(v->page_magic, 0xD110);
	ck_assert_uint_eq(v->all_flags, 0x000F);
	ck_assert_ptr_eq(wal_version_by_magic(0xD110), v);
	ck_assert_int_eq(wal_version_by_major(14)->page_magic, 0xD10D);
	ck_assert_int_eq(wal_version_by_magic(0xD10D)->major, 14);
	ck_assert_ptr_null(wal_version_by_major(12));
	ck_assert_ptr_null(wal_version_by_magic(0xD101));	/* PG12's magic */
	ck_assert_ptr_null(wal_version_by_magic(0));
}
END_TEST

START_TEST(test_decode_real_long_header)
{
	WalPageHeader h;
	WalsimError err;
	WalPageCheck why;
	WalPageExpect e = expect_at(SEG_LSN);

	load_pages();
	ck_assert(wal_page_header_decode(first_page, WAL_LONG_PHD_SIZE, &h, &err));
	ck_assert_uint_eq(h.magic, 0xD110);
	/* long header, bkp-removable, and a record continued from segment 9 */
	ck_assert_uint_eq(h.info, 0x0007);
	ck_assert(h.is_long);
	ck_assert_uint_eq(h.tli, 1);
	ck_assert_uint_eq(h.pageaddr, SEG_LSN);
	ck_assert_uint_gt(h.rem_len, 0);
	ck_assert_uint_ne(h.sysid, 0);
	ck_assert_uint_eq(h.seg_size, SEG_SIZE);
	ck_assert_uint_eq(h.blcksz, 8192);
	ck_assert_uint_eq(wal_page_header_size(h.info), 40);
	ck_assert(wal_page_header_check(&h, first_page, &e, &why, &err));
	ck_assert_int_eq(why, WAL_PAGE_OK);
	/* the same system identifier is accepted when it is expected */
	e.sysid = h.sysid;
	ck_assert(wal_page_header_check(&h, first_page, &e, &why, &err));
}
END_TEST

START_TEST(test_decode_real_short_header)
{
	WalPageHeader h;
	WalsimError err;
	WalPageCheck why;
	WalPageExpect e = expect_at(SEG_LSN + WAL_BLCKSZ);

	load_pages();
	ck_assert(wal_page_header_decode(second_page, WAL_SHORT_PHD_SIZE, &h, &err));
	ck_assert(!h.is_long);
	ck_assert_uint_eq(h.info, 0x0005);
	ck_assert_uint_eq(h.pageaddr, SEG_LSN + WAL_BLCKSZ);
	ck_assert_uint_eq(h.sysid, 0);
	ck_assert_uint_eq(wal_page_header_size(h.info), 24);
	ck_assert(wal_page_header_check(&h, NULL, &e, &why, &err));
	/* no timeline check when min_tli is 0 */
	e.min_tli = 0;
	ck_assert(wal_page_header_check(&h, second_page, &e, &why, &err));
}
END_TEST

/* Headers shorter than what their info field announces are refused */
START_TEST(test_decode_short_input)
{
	WalPageHeader h;
	WalsimError err;

	load_pages();
	for (size_t len = 0; len < WAL_SHORT_PHD_SIZE; len++)
		ck_assert(!wal_page_header_decode(second_page, len, &h, &err));
	ck_assert_str_eq(err.message, "WAL page header: 23 bytes, need 24");
	for (size_t len = 0; len < WAL_LONG_PHD_SIZE; len++)
		ck_assert(!wal_page_header_decode(first_page, len, &h, &err));
	ck_assert_str_eq(err.message, "WAL page header: 39 bytes, need 40 for a long header");
	ck_assert(wal_page_header_decode(second_page, WAL_BLCKSZ, &h, NULL));
}
END_TEST

typedef struct PageCase
{
	const char *what;
	bool		long_page;		/* mutate the segment's first page */
	WalPageCheck want;
	const char *message;		/* expected start of the message */
} PageCase;

static const PageCase page_cases[] = {
	{"zeroed", false, WAL_PAGE_ZEROED, "zeroed page header at 0/A04000"},
	{"magic", false, WAL_PAGE_BAD_MAGIC, "invalid magic number D10D in page at 0/A04000"},
	{"info bit", false, WAL_PAGE_BAD_INFO, "invalid info bits 0015 in page at 0/A04000"},
	{"no long header", true, WAL_PAGE_BAD_INFO, "invalid info bits 0005 in page at 0/A00000: a segment's first page needs a long header"},
	{"sysid", true, WAL_PAGE_BAD_LONG_HEADER, "page at 0/A00000 is from another database system"},
	{"seg size", true, WAL_PAGE_BAD_LONG_HEADER, "page at 0/A00000: segment size 2097152 in long header, expected 1048576"},
	{"blcksz", true, WAL_PAGE_BAD_LONG_HEADER, "page at 0/A00000: block size 4096 in long header, expected 8192"},
	{"pageaddr", false, WAL_PAGE_BAD_ADDR, "unexpected pageaddr 0/202000 in page at 0/A04000"},
	{"tli", false, WAL_PAGE_BAD_TLI, "out-of-sequence timeline ID 1 (after 2) in page at 0/A04000"},
	{"rem_len", false, WAL_PAGE_BAD_REM_LEN, "page at 0/A04000 has XLP_FIRST_IS_CONTRECORD but xlp_rem_len 0"},
};

START_TEST(test_each_check_fails)
{
	const PageCase *c = &page_cases[_i];
	uint8_t		raw[WAL_LONG_PHD_SIZE];
	WalPageHeader h;
	WalsimError err;
	WalPageCheck why = WAL_PAGE_OK;
	WalPageExpect e;
	bool		decoded;

	load_pages();
	memcpy(raw, c->long_page ? first_page : second_page, sizeof(raw));
	e = expect_at(c->long_page ? SEG_LSN : SEG_LSN + 2 * WAL_BLCKSZ);
	/* the short page, checked as if it were the third page of the segment */
	if (!c->long_page)
		unit_put_le64(raw + 8, SEG_LSN + 2 * WAL_BLCKSZ);

	if (strcmp(c->what, "zeroed") == 0)
		memset(raw, 0, sizeof(raw));
	else if (strcmp(c->what, "magic") == 0)
		unit_put_le16(raw, 0xD10D);
	else if (strcmp(c->what, "info bit") == 0)
		unit_put_le16(raw + 2, 0x0015);
	else if (strcmp(c->what, "no long header") == 0)
		unit_put_le16(raw + 2, 0x0005);
	else if (strcmp(c->what, "sysid") == 0)
		e.sysid = 42;
	else if (strcmp(c->what, "seg size") == 0)
		unit_put_le32(raw + 32, 2u << 20);
	else if (strcmp(c->what, "blcksz") == 0)
		unit_put_le32(raw + 36, 4096);
	else if (strcmp(c->what, "pageaddr") == 0)
		unit_put_le64(raw + 8, UINT64_C(0x202000));	/* a recycled segment's page */
	else if (strcmp(c->what, "tli") == 0)
		e.min_tli = 2;
	else if (strcmp(c->what, "rem_len") == 0)
		unit_put_le32(raw + 16, 0);

	decoded = wal_page_header_decode(raw, sizeof(raw), &h, &err);
	ck_assert_msg(decoded, "%s: %s", c->what, err.message);
	ck_assert_msg(!wal_page_header_check(&h, raw, &e, &why, &err), "%s passed", c->what);
	ck_assert_msg(why == c->want, "%s: got %s", c->what, wal_page_check_name(why));
	ck_assert_msg(strncmp(err.message, c->message, strlen(c->message)) == 0,
				  "%s: message \"%s\"", c->what, err.message);
	/* a NULL error is fine too */
	ck_assert(!wal_page_header_check(&h, raw, &e, &why, NULL));
}
END_TEST

START_TEST(test_check_names)
{
	ck_assert_str_eq(wal_page_check_name(WAL_PAGE_OK), "ok");
	ck_assert_str_eq(wal_page_check_name(WAL_PAGE_ZEROED), "zeroed page");
	ck_assert_str_eq(wal_page_check_name(WAL_PAGE_BAD_MAGIC), "bad page magic");
	ck_assert_str_eq(wal_page_check_name(WAL_PAGE_BAD_INFO), "bad page info flags");
	ck_assert_str_eq(wal_page_check_name(WAL_PAGE_BAD_LONG_HEADER), "bad long page header");
	ck_assert_str_eq(wal_page_check_name(WAL_PAGE_BAD_ADDR), "bad page address");
	ck_assert_str_eq(wal_page_check_name(WAL_PAGE_BAD_TLI), "bad page timeline");
	ck_assert_str_eq(wal_page_check_name(WAL_PAGE_BAD_REM_LEN), "bad continuation length");
	ck_assert_str_eq(wal_page_check_name((WalPageCheck) 99), "unknown page check");
}
END_TEST

static Suite *
walpage_suite(void)
{
	Suite	   *s = suite_create("walpage");
	TCase	   *tc = tcase_create("core");

	tcase_add_test(tc, test_version_table);
	tcase_add_test(tc, test_decode_real_long_header);
	tcase_add_test(tc, test_decode_real_short_header);
	tcase_add_test(tc, test_decode_short_input);
	tcase_add_loop_test(tc, test_each_check_fails, 0,
						(int) (sizeof(page_cases) / sizeof(page_cases[0])));
	tcase_add_test(tc, test_check_names);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run_suite(walpage_suite());
}
