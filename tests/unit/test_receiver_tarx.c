/*
 * test_receiver_tarx.c — walsim-receiver's tar unpacker (ref/receiver/tarx.c):
 * archives built here the way PostgreSQL's tarCreateHeader() builds them,
 * fed whole and one byte at a time, and malformed ones refused by name.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../ref/receiver/tarx.h"
#include "unit_support.h"

typedef struct Archive
{
	uint8_t		data[16384];
	size_t		len;
} Archive;

/* One ustar header as src/port/tar.c writes it (octal fields, "ustar\0" "00"). */
static void
add_header(Archive *a, const char *name, char type, size_t size, unsigned mode)
{
	uint8_t    *h = a->data + a->len;
	unsigned	sum = 0;

	memset(h, 0, 512);
	strncpy((char *) h, name, 99);
	snprintf((char *) h + 100, 8, "%07o", mode);
	snprintf((char *) h + 108, 8, "%07o", 26u);
	snprintf((char *) h + 116, 8, "%07o", 26u);
	snprintf((char *) h + 124, 12, "%011o", (unsigned) size);
	snprintf((char *) h + 136, 12, "%011o", 1700000000u);
	memset(h + 148, ' ', 8);
	h[156] = (uint8_t) type;
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	for (int i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *) h + 148, 8, "%06o", sum);
	a->len += 512;
}

static void
add_file(Archive *a, const char *name, const char *content)
{
	size_t		n = strlen(content);

	add_header(a, name, '0', n, 0600);
	memcpy(a->data + a->len, content, n);
	a->len += (n + 511) / 512 * 512;
}

static void
sample(Archive *a)
{
	memset(a, 0, sizeof(*a));
	add_header(a, "global", '5', 0, 0700);
	add_file(a, "PG_VERSION", "17\n");
	add_file(a, "global/pg_control", "a control file of more than a few bytes");
	add_header(a, "pg_wal/", '5', 0, 0700);
	add_header(a, "pg_wal/archive_status", '5', 0, 0700);
	add_file(a, "backup_label", "START WAL LOCATION: 0/2000028\n");
	add_header(a, "empty", '0', 0, 0600);
}

static char tmpdir[256];

static int
open_tmp(void)
{
	int			fd;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/walsim-test-tarx-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	fd = open(tmpdir, O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(fd, 0);
	return fd;
}

static void
rm_tree(const char *path)
{
	DIR		   *d = opendir(path);
	struct dirent *e;
	char		sub[1024];

	if (d == NULL)
	{
		unlink(path);
		return;
	}
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
		{
			snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
			rm_tree(sub);
		}
	closedir(d);
	rmdir(path);
}

static char *
read_back(const char *name)
{
	char		path[512];
	size_t		len;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	return unit_load_file(path, &len);
}

static void
check_sample_unpacked(const TarExtract *t)
{
	struct stat st;
	char		path[512];
	char	   *text;

	ck_assert_uint_eq(t->files, 4);
	ck_assert_uint_eq(t->dirs, 3);
	text = read_back("global/pg_control");
	ck_assert_str_eq(text, "a control file of more than a few bytes");
	free(text);
	text = read_back("PG_VERSION");
	ck_assert_str_eq(text, "17\n");
	free(text);
	snprintf(path, sizeof(path), "%s/pg_wal/archive_status", tmpdir);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 0777, 0700);
	snprintf(path, sizeof(path), "%s/backup_label", tmpdir);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/empty", tmpdir);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_size, 0);
}

START_TEST(test_whole_and_bytewise)
{
	Archive		a;
	TarExtract	t;
	WalsimError err;
	int			fd;

	sample(&a);
	/* whole, without the trailer (as the server sends it) */
	fd = open_tmp();
	tarx_init(&t, fd, 0600, false);
	ck_assert_msg(tarx_feed(&t, a.data, a.len, &err), "%s", err.message);
	ck_assert_msg(tarx_finish(&t, &err), "%s", err.message);
	check_sample_unpacked(&t);
	close(fd);
	rm_tree(tmpdir);
	/* one byte at a time, with the two zero blocks of a tar file */
	fd = open_tmp();
	tarx_init(&t, fd, 0600, false);
	memset(a.data + a.len, 0, 1024);
	for (size_t i = 0; i < a.len + 1024; i++)
		ck_assert_msg(tarx_feed(&t, a.data + i, 1, &err), "byte %zu: %s", i, err.message);
	ck_assert_msg(tarx_finish(&t, &err), "%s", err.message);
	ck_assert(t.ended);
	check_sample_unpacked(&t);
	close(fd);
	rm_tree(tmpdir);
}
END_TEST

static const char *
refused(const Archive *a)
{
	static WalsimError err;
	TarExtract	t;
	int			fd = open_tmp();
	bool		ok;

	tarx_init(&t, fd, 0600, false);
	ok = tarx_feed(&t, a->data, a->len, &err) && tarx_finish(&t, &err);
	tarx_abort(&t);
	close(fd);
	rm_tree(tmpdir);
	return ok ? "accepted" : err.message;
}

START_TEST(test_refused)
{
	Archive		a;

	memset(&a, 0, sizeof(a));
	add_file(&a, "../escape", "x");
	ck_assert_str_eq(refused(&a), "tar member \"../escape\": name leaves the directory or has an empty component");

	memset(&a, 0, sizeof(a));
	add_file(&a, "/etc/passwd", "x");
	ck_assert_str_eq(refused(&a), "tar member \"/etc/passwd\": not a relative name");

	memset(&a, 0, sizeof(a));
	add_header(&a, "pg_tblspc/16384", '2', 0, 0777);
	ck_assert_str_eq(refused(&a), "tar member \"pg_tblspc/16384\" is a symbolic link (a tablespace?): "
					 "only the data directory is supported");

	memset(&a, 0, sizeof(a));
	add_header(&a, "fifo", '6', 0, 0600);
	ck_assert_str_eq(refused(&a), "tar member \"fifo\" has unsupported type '6'");

	memset(&a, 0, sizeof(a));
	add_file(&a, "f", "content");
	a.data[0] = 'g';			/* checksum no longer matches */
	ck_assert(strncmp(refused(&a), "tar header checksum mismatch", 28) == 0);

	memset(&a, 0, sizeof(a));
	add_file(&a, "f", "content");
	a.len -= 100;				/* ends inside the file's data block */
	ck_assert_str_eq(refused(&a), "tar archive ends in the middle of member \"f\"");

	memset(&a, 0, sizeof(a));
	add_file(&a, "dir/f", "parent missing");
	ck_assert(strncmp(refused(&a), "could not create file \"dir/f\"", 29) == 0);

	memset(&a, 0, sizeof(a));
	add_file(&a, "f", "one");
	add_file(&a, "f", "twice");
	ck_assert(strncmp(refused(&a), "could not create file \"f\": File exists", 38) == 0);

	memset(&a, 0, sizeof(a));
	a.len = 1024;				/* end marker, then garbage */
	a.data[a.len++] = 'x';
	ck_assert_str_eq(refused(&a), "data after the end of the tar archive");
}
END_TEST

START_TEST(test_base256_size)
{
	uint8_t		h[512];
	char		name[256];
	char		type;
	uint64_t	size;
	mode_t		mode;
	bool		zero;
	WalsimError err;
	unsigned	sum = 0;

	memset(h, 0, sizeof(h));
	strcpy((char *) h, "big");
	snprintf((char *) h + 100, 8, "%07o", 0600u);
	h[124] = 0x80;				/* base-256: 9 GB */
	h[131] = 0x02;
	h[132] = 0x40;
	memset(h + 148, ' ', 8);
	h[156] = '0';
	for (int i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *) h + 148, 8, "%06o", sum);
	ck_assert_msg(tarx_parse_header(h, name, sizeof(name), &type, &size, &mode, &zero, &err), "%s", err.message);
	ck_assert_str_eq(name, "big");
	ck_assert_uint_eq(size, (uint64_t) 0x240 << 24);
	ck_assert_uint_eq(mode, 0600);
	ck_assert(!zero);
}
END_TEST

static Suite *
tarx_suite(void)
{
	Suite	   *s = suite_create("receiver_tarx");
	TCase	   *tc = tcase_create("core");

	tcase_add_test(tc, test_whole_and_bytewise);
	tcase_add_test(tc, test_refused);
	tcase_add_test(tc, test_base256_size);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run_suite(tarx_suite());
}
