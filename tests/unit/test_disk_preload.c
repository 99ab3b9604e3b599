/*
 * test_disk_preload.c — libwalsim-disk.so preloaded into a small program
 * (build/tests/disk-probe) that performs the file operations each test names:
 * every effect, every trigger, errno values, counters shared by forked
 * children, rules changed while the program runs, paths that must be left
 * alone, and the undo journal rolling files and directory entries back.
 *
 * The probe is exec'd without Valgrind following it (memcheck runs this test
 * binary under Valgrind, not the preloaded child), so these tests run in
 * `make memcheck` too; only this binary's own code is checked there.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../sim/disk/disk.h"
#include "walsim/decision.h"
#include "unit_support.h"

static char node[256];
static char data[512];
static char region_path[600];
static DiskRegion *region;

static void
build_path(char *buf, size_t len, const char *what)
{
	const char *b = getenv("WALSIM_BUILD");

	snprintf(buf, len, "%s/%s", b ? b : "build", what);
}

static void
setup_node(bool journal, bool strict)
{
	WalsimError err;

	snprintf(node, sizeof(node), "/tmp/walsim-disk-preload-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(node));
	snprintf(data, sizeof(data), "%s/data", node);
	ck_assert_int_eq(mkdir(data, 0700), 0);
	ck_assert_msg(disk_region_create(node, data, NULL, 7, journal, strict, &err), "%s",
				  err.message);
	snprintf(region_path, sizeof(region_path), "%s/%s", node, DISK_REGION_FILE);
	region = disk_region_map(region_path, &err);
	ck_assert_msg(region != NULL, "%s", err.message);
}

static void
setup(void)
{
	setup_node(false, false);
}

static void
setup_journal(void)
{
	setup_node(true, false);
}

static void
setup_strict(void)
{
	setup_node(true, true);
}

static void
teardown(void)
{
	char		cmd[600];

	disk_region_unmap(region);
	region = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", node);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", node);
}

static void
add(const char *line)
{
	char		copy[512];
	char	   *words[16];
	int			n = 0;
	char	   *save = NULL;
	DiskRule	rule;
	WalsimError err;

	snprintf(copy, sizeof(copy), "%s", line);
	for (char *w = strtok_r(copy, " ", &save); w && n < 16; w = strtok_r(NULL, " ", &save))
		words[n++] = w;
	ck_assert_msg(disk_rule_parse(&rule, n, words, &err), "%s: %s", line, err.message);
	ck_assert_msg(disk_region_add_rule(region, &rule, &err), "%s", err.message);
}

/*
 * Start the probe in the data directory with the library preloaded; ops is
 * a NULL-terminated list.  Returns the pid; *out_fd reads its stdout.
 */
static pid_t
spawn_probe(const char *const *ops, const char *region_env, int *out_fd, int *err_fd)
{
	char		probe[600],
				lib[600],
				preload[700],
				renv[700];
	char	   *argv[64];
	char	   *envp[5];
	int			out[2],
				errp[2];
	int			n = 0;
	pid_t		pid;

	build_path(probe, sizeof(probe), "tests/disk-probe");
	build_path(lib, sizeof(lib), "lib/libwalsim-disk.so");
	snprintf(preload, sizeof(preload), "LD_PRELOAD=%s", lib);
	snprintf(renv, sizeof(renv), "%s=%s", DISK_REGION_ENV, region_env ? region_env : region_path);
	envp[0] = preload;
	envp[1] = renv;
	/*
	 * Under `make asan` both the probe and the library carry the sanitizer
	 * runtime; the preloaded library then comes before it, which ASan
	 * refuses unless told that the order is intended.
	 */
	envp[2] = "ASAN_OPTIONS=verify_asan_link_order=0";
	envp[3] = NULL;
	argv[n++] = probe;
	while (*ops && n < 62)
		argv[n++] = (char *) *ops++;
	argv[n] = NULL;
	ck_assert_int_eq(pipe(out), 0);
	ck_assert_int_eq(pipe(errp), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
	{
		dup2(out[1], STDOUT_FILENO);
		dup2(errp[1], STDERR_FILENO);
		close(out[0]);
		close(errp[0]);
		if (chdir(data) != 0)
			_exit(3);
		execve(probe, argv, envp);
		_exit(4);
	}
	close(out[1]);
	close(errp[1]);
	*out_fd = out[0];
	if (err_fd)
		*err_fd = errp[0];
	else
		close(errp[0]);
	return pid;
}

static char *
read_all(int fd)
{
	size_t		cap = 4096,
				n = 0;
	char	   *buf = malloc(cap);
	ssize_t		got;

	ck_assert_ptr_nonnull(buf);
	while ((got = read(fd, buf + n, cap - n - 1)) > 0)
	{
		n += got;
		if (cap - n < 2)
		{
			cap *= 2;
			buf = realloc(buf, cap);
			ck_assert_ptr_nonnull(buf);
		}
	}
	buf[n] = '\0';
	close(fd);
	return buf;
}

/* Run the probe to completion; the caller frees the output. */
static char *
run_probe_env(const char *const *ops, const char *region_env, char **errout)
{
	int			out,
				err,
				status;
	pid_t		pid = spawn_probe(ops, region_env, &out, errout ? &err : NULL);
	char	   *text = read_all(out);

	if (errout)
		*errout = read_all(err);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "probe failed: %s", text);
	return text;
}

static char *
run_probe(const char *const *ops)
{
	return run_probe_env(ops, NULL, NULL);
}

/* Assert that the output's lines end with the expected results, in order. */
static void
expect(const char *out, const char *const *results)
{
	const char *line = out;

	for (int i = 0; results[i]; i++)
	{
		const char *end = strchr(line, '\n');
		const char *arrow;

		ck_assert_msg(end != NULL, "missing result %d (%s) in:\n%s", i, results[i], out);
		arrow = strstr(line, " -> ");
		ck_assert_msg(arrow && arrow < end, "bad line in:\n%s", out);
		ck_assert_msg((size_t) (end - arrow - 4) == strlen(results[i]) &&
					  strncmp(arrow + 4, results[i], end - arrow - 4) == 0,
					  "result %d: want \"%s\" in:\n%s", i, results[i], out);
		line = end + 1;
	}
	ck_assert_msg(*line == '\0', "extra output:\n%s", line);
}

static void
run_expect(const char *const *ops, const char *const *results)
{
	char	   *out = run_probe(ops);

	expect(out, results);
	free(out);
}

static uint64_t
slot_counter(const char *id, bool fired)
{
	for (int i = 0; i < DISK_MAX_RULES; i++)
		if (region->slots[i].active && strcmp(region->slots[i].rule.id, id) == 0)
			return fired ? region->slots[i].fired : region->slots[i].calls;
	ck_abort_msg("no rule %s", id);
	return 0;
}

static int
trace_lines(void)
{
	char		path[DISK_PATH_MAX];
	FILE	   *f;
	int			n = 0,
				c;

	snprintf(path, sizeof(path), "%s", region->trace_path);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

static off_t
file_size(const char *rel)
{
	char		path[800];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", data, rel);
	if (stat(path, &st) != 0)
		return -1;
	return st.st_size;
}

static bool
exists(const char *rel)
{
	return file_size(rel) >= 0;
}

static unsigned char *
file_bytes(const char *rel, size_t *len)
{
	char		path[800];

	snprintf(path, sizeof(path), "%s/%s", data, rel);
	return unit_load_file(path, len);
}

/* A file with `len` bytes of `byte`, written without the library. */
static void
make_file(const char *rel, size_t len, int byte)
{
	char		path[800];
	unsigned char *buf = malloc(len + 1);
	int			fd;

	memset(buf, byte, len);
	snprintf(path, sizeof(path), "%s/%s", data, rel);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, buf, len), (ssize_t) len);
	ck_assert_int_eq(fsync(fd), 0);
	close(fd);
	free(buf);
}

static void
rollback(void)
{
	DiskRollbackStats st;
	WalsimError err;

	ck_assert_msg(disk_journal_rollback(region, false, &st, &err), "%s", err.message);
}

/* ---------------------------------------------------------------- effects */

START_TEST(test_errno_nth)
{
	add("id=e path=f ops=fsync when=nth:2 do=errno:EIO");
	run_expect((const char *[]) {"open:f:rwc", "fsync:f", "fsync:f", "fsync:f", NULL},
			   (const char *[]) {"ok 0", "ok 0", "err EIO", "ok 0", NULL});
	ck_assert_uint_eq(slot_counter("e", false), 3);
	ck_assert_uint_eq(slot_counter("e", true), 1);
	ck_assert_int_eq(trace_lines(), 1);
}
END_TEST

START_TEST(test_errno_after_limit)
{
	add("id=e path=f ops=write when=after:1 do=errno:ENOSPC limit=2");
	run_expect((const char *[]) {"open:f:rwc", "write:f:10:1", "write:f:10:1",
			"pwrite:f:0:10:1", "pwritev:f:0:10:1", NULL},
			   (const char *[]) {"ok 0", "ok 10", "err ENOSPC", "err ENOSPC", "ok 10", NULL});
	/* ENOSPC did nothing: only two writes of 10 bytes landed, at 0 and 0..10 */
	ck_assert_int_eq(file_size("f"), 10);
}
END_TEST

START_TEST(test_errno_each_operation)
{
	make_file("a", 100, 'a');
	add("id=o path=nope ops=open do=errno:EACCES");
	add("id=r path=a ops=rename do=errno:EXDEV");
	add("id=u path=a ops=unlink do=errno:EROFS");
	add("id=t path=a ops=truncate do=errno:EFBIG");
	add("id=fa path=a ops=fallocate do=errno:EDQUOT");
	add("id=c path=a ops=close do=errno:EIO");
	add("id=s path=a ops=fdatasync,sync_file_range do=errno:EIO");
	add("id=rd path=a ops=read do=errno:EIO");
	run_expect((const char *[]) {"open:nope:rwc", "rename:a:b", "unlink:a", "truncate:a:5",
			"open:a:rw", "ftruncate:a:5", "fallocate:a:0:4096", "pfallocate:a:0:4096",
			"fdatasync:a", "sfr:a:a", "pread:a:0:4", "read:a:4", "close:a", NULL},
			   (const char *[]) {"err EACCES", "err EXDEV", "err EROFS", "err EFBIG", "ok 0",
			"err EFBIG", "err EDQUOT", "err EDQUOT", "err EIO", "err EIO", "err EIO",
			"err EIO", "err EIO", NULL});
	/* nothing happened to the file, and "nope" was never created */
	ck_assert_int_eq(file_size("a"), 100);
	ck_assert(!exists("nope"));
	ck_assert(!exists("b"));
	ck_assert_int_eq(trace_lines(), 12);
}
END_TEST

START_TEST(test_short_and_torn)
{
	add("id=s path=short ops=write when=nth:1 do=short:10");
	add("id=t path=torn ops=write when=nth:1 do=torn:10");
	add("id=h path=half ops=write when=nth:1 do=short");
	run_expect((const char *[]) {"open:short:rwc", "pwrite:short:0:100:7",
			"open:torn:rwc", "write:torn:100:7", "write:torn:5:8",
			"open:half:rwc", "pwritev:half:0:100:7", NULL},
			   (const char *[]) {"ok 0", "ok 10", "ok 0", "ok 100", "ok 5", "ok 0", "ok 50",
			NULL});
	ck_assert_int_eq(file_size("short"), 10);
	/* torn: 10 bytes landed, the offset moved by 100, the next write at 100 */
	ck_assert_int_eq(file_size("torn"), 105);
	ck_assert_int_eq(file_size("half"), 50);
	{
		size_t		len;
		unsigned char *b = file_bytes("torn", &len);

		ck_assert_int_eq(b[9], 7);
		ck_assert_int_eq(b[10], 0);	/* the hole the torn write left */
		ck_assert_int_eq(b[100], 8);
		free(b);
	}
}
END_TEST

START_TEST(test_flip_write_and_read)
{
	size_t		len;
	unsigned char *b;

	add("id=w path=w ops=write when=nth:1 do=flip:3.1");
	add("id=v path=v ops=write when=nth:1 do=flip:6.7");
	add("id=r path=r ops=read when=nth:2 do=flip:1.0");
	make_file("r", 8, 0);
	run_expect((const char *[]) {"open:w:rwc", "pwrite:w:0:8:0", "open:v:rwc",
			"pwritev:v:0:8:0", "open:r:r", "pread:r:0:8", "preadv:r:0:8", "read:r:8", NULL},
			   (const char *[]) {"ok 0", "ok 8", "ok 0", "ok 8", "ok 0",
			"data 0000000000000000", "data 0001000000000000", "data 0000000000000000", NULL});
	b = file_bytes("w", &len);
	ck_assert_uint_eq(len, 8);
	for (size_t i = 0; i < len; i++)
		ck_assert_int_eq(b[i], i == 3 ? 0x02 : 0);
	free(b);
	b = file_bytes("v", &len);
	ck_assert_uint_eq(len, 8);
	for (size_t i = 0; i < len; i++)
		ck_assert_int_eq(b[i], i == 6 ? 0x80 : 0);
	free(b);
	/* a flip on read never reaches the file */
	b = file_bytes("r", &len);
	for (size_t i = 0; i < len; i++)
		ck_assert_int_eq(b[i], 0);
	free(b);
}
END_TEST

/* The seeded flip picks the byte and bit the decision function gives. */
START_TEST(test_flip_seeded)
{
	Decision	d;
	uint64_t	byte,
				bit;
	size_t		len;
	unsigned char *b;

	add("id=sf path=s ops=write when=nth:1 do=flip");
	run_expect((const char *[]) {"open:s:rwc", "pwrite:s:0:64:0", NULL},
			   (const char *[]) {"ok 0", "ok 64", NULL});
	decision_start(&d, 7, "sf");
	decision_add_str(&d, "s");
	decision_add_u64(&d, 1);
	decision_add_str(&d, "byte");
	byte = decision_uniform(decision_value(&d), 0, 63);
	decision_start(&d, 7, "sf");
	decision_add_str(&d, "s");
	decision_add_u64(&d, 1);
	decision_add_str(&d, "bit");
	bit = decision_uniform(decision_value(&d), 0, 7);
	b = file_bytes("s", &len);
	for (size_t i = 0; i < len; i++)
		ck_assert_int_eq(b[i], i == byte ? (1 << bit) : 0);
	free(b);
}
END_TEST

START_TEST(test_delay)
{
	struct timespec t0,
				t1;
	double		elapsed;

	add("id=d path=f ops=fsync when=nth:1 do=delay:300000");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	run_expect((const char *[]) {"open:f:rwc", "fsync:f", NULL},
			   (const char *[]) {"ok 0", "ok 0", NULL});
	clock_gettime(CLOCK_MONOTONIC, &t1);
	elapsed = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	/* a lower bound only: a sleep is never shorter than asked */
	ck_assert_msg(elapsed >= 0.3, "elapsed %.3f s", elapsed);
	ck_assert_uint_eq(slot_counter("d", true), 1);
}
END_TEST

START_TEST(test_lie)
{
	make_file("f", 8, 'x');
	add("id=l path=f ops=fsync,write do=lie");
	run_expect((const char *[]) {"open:f:rw", "pwrite:f:0:8:0x41", "write:f:4:0x42",
			"fsync:f", NULL},
			   (const char *[]) {"ok 0", "ok 8", "ok 4", "ok 0", NULL});
	{
		size_t		len;
		unsigned char *b = file_bytes("f", &len);

		ck_assert_uint_eq(len, 8);
		ck_assert_int_eq(b[0], 'x');
		free(b);
	}
}
END_TEST

/* ---------------------------------------------------------------- triggers */

START_TEST(test_range)
{
	add("id=r path=f ops=write when=range:8192-16384 do=errno:EIO");
	run_expect((const char *[]) {"open:f:rwc", "pwrite:f:0:8192:1", "pwrite:f:8000:100:1",
			"pwrite:f:8100:100:1", "pwrite:f:16384:10:1", "write:f:10:1", NULL},
			   (const char *[]) {"ok 0", "ok 8192", "ok 100", "err EIO", "ok 10", "ok 10",
			NULL});
}
END_TEST

START_TEST(test_probability_is_seeded)
{
	const char *ops[40];
	const char *want[40];
	int			n = 0;
	char	   *out;

	add("id=p path=f ops=fsync when=prob:0.5 do=errno:EIO");
	ops[n] = "open:f:rwc";
	want[n++] = "ok 0";
	for (uint64_t count = 1; count <= 30; count++)
	{
		Decision	d;

		decision_start(&d, 7, "p");
		decision_add_str(&d, "f");
		decision_add_u64(&d, count);
		ops[n] = "fsync:f";
		want[n++] = decision_chance(decision_value(&d), 0.5) ? "err EIO" : "ok 0";
	}
	ops[n] = NULL;
	want[n] = NULL;
	out = run_probe(ops);
	expect(out, want);
	free(out);
	ck_assert_uint_gt(slot_counter("p", true), 0);
	ck_assert_uint_lt(slot_counter("p", true), 30);
}
END_TEST

START_TEST(test_counters_shared_by_children)
{
	add("id=n path=f ops=fsync when=nth:3 do=errno:EIO");
	make_file("f", 1, 0);
	run_expect((const char *[]) {"children:5", "open:f:rw", "fsync:f", NULL},
			   (const char *[]) {"ok 0", "ok 0", "ok 0", "ok 0", "ok 0", "err EIO",
			"ok 0", "ok 0", "ok 0", "ok 0", NULL});
	ck_assert_uint_eq(slot_counter("n", false), 5);
	ck_assert_uint_eq(slot_counter("n", true), 1);
}
END_TEST

/* A rule added while the program runs applies to its next call. */
START_TEST(test_rule_change_at_run_time)
{
	int			out;
	pid_t		pid;
	int			status;
	char		go[700];
	char	   *text;
	char		c;
	int			newlines = 0;
	WalsimError err;

	snprintf(go, sizeof(go), "%s/go", node);
	add("id=first path=f ops=fsync do=errno:EIO");
	pid = spawn_probe((const char *[]) {"open:f:rwc", "fsync:f", "pause:../go", "fsync:f",
			"pause:../go2", "fsync:f", NULL}, NULL, &out, NULL);
	/* wait for the first two results, then swap the rule */
	while (newlines < 2 && read(out, &c, 1) == 1)
		newlines += c == '\n';
	ck_assert_int_eq(newlines, 2);
	ck_assert(disk_region_del_rule(region, "first", &err));
	add("id=second path=f ops=fsync do=errno:EROFS");
	ck_assert_int_eq(close(open(go, O_CREAT | O_WRONLY, 0600)), 0);
	while (newlines < 4 && read(out, &c, 1) == 1)
		newlines += c == '\n';
	ck_assert(disk_region_del_rule(region, "all", &err));
	strcat(go, "2");
	ck_assert_int_eq(close(open(go, O_CREAT | O_WRONLY, 0600)), 0);
	text = read_all(out);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	/* the last two lines: pause ok, fsync with no rule left */
	ck_assert_msg(strstr(text, "pause:../go2 -> ok 0\nfsync:f -> ok 0\n") != NULL, "%s", text);
	free(text);
	ck_assert_int_eq(trace_lines(), 2);
}
END_TEST

START_TEST(test_unmatched_paths_untouched)
{
	char		outside[700];
	char		op1[800],
				op2[800];

	add("id=all-data path=** ops=any do=errno:EIO");
	snprintf(outside, sizeof(outside), "%s/outside", node);
	snprintf(op1, sizeof(op1), "open:%s:rwc", outside);
	snprintf(op2, sizeof(op2), "pwrite:%s:0:10:1", outside);
	/* a file next to the data directory, and a path that only looks close */
	run_expect((const char *[]) {op1, op2, NULL}, (const char *[]) {"ok 0", "ok 10", NULL});
	ck_assert_int_eq(trace_lines(), 0);
	ck_assert(disk_region_del_rule(region, "all", NULL));
	add("id=wal path=pg_wal/0* ops=any do=errno:EIO");
	ck_assert_int_eq(mkdir(strcat(strcpy(outside, data), "/pg_wal"), 0700), 0);
	run_expect((const char *[]) {"open:pg_wal/xlogtemp.1:rwc", "pwrite:pg_wal/xlogtemp.1:0:10:1",
			"fsync:pg_wal/xlogtemp.1", "open:./pg_wal/../pg_wal//0001:rwc", NULL},
			   (const char *[]) {"ok 0", "ok 10", "ok 0", "err EIO", NULL});
	ck_assert_int_eq(trace_lines(), 1);
}
END_TEST

/* A region that cannot be mapped: everything passes, one line on stderr. */
START_TEST(test_no_region_passes_through)
{
	char	   *err;
	char	   *out;

	add("id=x path=** ops=any do=errno:EIO");
	out = run_probe_env((const char *[]) {"open:f:rwc", "pwrite:f:0:10:1", "fsync:f", NULL},
						"/nonexistent/walsim-disk.region", &err);
	expect(out, (const char *[]) {"ok 0", "ok 10", "ok 0", NULL});
	ck_assert_msg(strstr(err, "walsim-disk: region \"/nonexistent/walsim-disk.region\"") != NULL &&
				  strstr(err, "passing every call through") != NULL, "%s", err);
	/* said once */
	ck_assert_ptr_null(strstr(strstr(err, "walsim-disk:") + 1, "walsim-disk:"));
	free(out);
	free(err);
}
END_TEST

/* ---------------------------------------------------------------- journal */

START_TEST(test_rollback_exact_bytes_and_sizes)
{
	size_t		len;
	unsigned char *before_a,
			   *before_b,
			   *after;
	size_t		len_a,
				len_b;

	make_file("a", 20000, 'a');
	make_file("b", 10000, 'b');
	make_file("c", 3000, 'c');
	before_a = file_bytes("a", &len_a);
	before_b = file_bytes("b", &len_b);
	run_expect((const char *[]) {"open:a:rw", "pwrite:a:100:50:0x41", "pwrite:a:19990:100:0x42",
			"write:a:7:0x43", "pwritev:a:30000:4096:0x44",
			"open:b:rw", "ftruncate:b:100", "pwrite:b:50:10:0x45",
			"open:c:rw", "pwrite:c:0:10:0x46", "fsync:c", "pwrite:c:10:10:0x47", "fdatasync:c",
			"truncate:a:5", "fallocate:b:0:65536", NULL},
			   (const char *[]) {"ok 0", "ok 50", "ok 100", "ok 7", "ok 4096", "ok 0", "ok 0",
			"ok 10", "ok 0", "ok 10", "ok 0", "ok 10", "ok 0", "ok 0", "ok 0", NULL});
	ck_assert_int_eq(file_size("a"), 5);
	ck_assert_int_eq(file_size("b"), 65536);
	rollback();
	after = file_bytes("a", &len);
	ck_assert_uint_eq(len, len_a);
	ck_assert(memcmp(after, before_a, len) == 0);
	free(after);
	after = file_bytes("b", &len);
	ck_assert_uint_eq(len, len_b);
	ck_assert(memcmp(after, before_b, len) == 0);
	free(after);
	/* c was synced after its writes: they survive */
	after = file_bytes("c", &len);
	ck_assert_uint_eq(len, 3000);
	ck_assert_int_eq(after[0], 0x46);
	ck_assert_int_eq(after[10], 0x47);
	ck_assert_int_eq(after[20], 'c');
	free(after);
	free(before_a);
	free(before_b);
}
END_TEST

START_TEST(test_rollback_lie_and_osync)
{
	size_t		len;
	unsigned char *b;

	make_file("l", 100, 'l');
	add("id=l path=l ops=fsync do=lie");
	run_expect((const char *[]) {"open:l:rw", "pwrite:l:0:10:1", "fsync:l",
			"open:s:rwcs", "pwrite:s:0:10:2", NULL},
			   (const char *[]) {"ok 0", "ok 10", "ok 0", "ok 0", "ok 10", NULL});
	rollback();
	/* the lying fsync kept nothing; the O_SYNC write was durable at once */
	b = file_bytes("l", &len);
	ck_assert_int_eq(b[0], 'l');
	free(b);
	b = file_bytes("s", &len);
	ck_assert_uint_eq(len, 10);
	ck_assert_int_eq(b[0], 2);
	free(b);
}
END_TEST

START_TEST(test_rollback_directory_entries)
{
	size_t		len;
	unsigned char *b;

	make_file("old", 10, 'o');
	make_file("target", 20, 't');
	make_file("gone", 30, 'g');
	mkdir(strcat(strcpy((char[700]) {0}, data), "/sub"), 0700);
	run_expect((const char *[]) {
			/* unsynced directory: the new file, the rename and the unlink revert */
			"open:new:rwc", "pwrite:new:0:5:1", "fsync:new",
			"rename:old:target", "unlink:gone",
			/* a new file in sub, then sub fsynced: it stays */
			"open:sub/kept:rwc", "fsync:sub/kept", "open:sub:r", "fsync:sub", NULL},
			   (const char *[]) {"ok 0", "ok 5", "ok 0", "ok 0", "ok 0", "ok 0", "ok 0", "ok 0",
			"ok 0", NULL});
	ck_assert(!exists("old"));
	ck_assert(!exists("gone"));
	rollback();
	/* the file's own fsync kept its entry (ext4/xfs behaviour, default) */
	ck_assert(exists("new"));
	ck_assert(exists("sub/kept"));
	b = file_bytes("old", &len);
	ck_assert_uint_eq(len, 10);
	ck_assert_int_eq(b[0], 'o');
	free(b);
	b = file_bytes("target", &len);
	ck_assert_uint_eq(len, 20);
	ck_assert_int_eq(b[0], 't');
	free(b);
	b = file_bytes("gone", &len);
	ck_assert_uint_eq(len, 30);
	free(b);
}
END_TEST

START_TEST(test_rollback_strict_directories)
{
	run_expect((const char *[]) {"open:new:rwc", "pwrite:new:0:5:1", "fsync:new",
			"open:synced:rwc", "open:.:r", "fsync:.", "open:late:rwc", NULL},
			   (const char *[]) {"ok 0", "ok 5", "ok 0", "ok 0", "ok 0", "ok 0", "ok 0", NULL});
	rollback();
	/* strict: only the directory fsync makes an entry durable */
	ck_assert(exists("new"));	/* created before the fsync of "." */
	ck_assert(exists("synced"));
	ck_assert(!exists("late"));
	/* the journal is empty afterwards: a second rollback changes nothing */
	rollback();
	ck_assert(exists("new"));
}
END_TEST

START_TEST(test_rollback_strict_drops_unsynced_dir)
{
	run_expect((const char *[]) {"open:new:rwc", "pwrite:new:0:5:1", "fsync:new", NULL},
			   (const char *[]) {"ok 0", "ok 5", "ok 0", NULL});
	rollback();
	ck_assert(!exists("new"));
}
END_TEST

static Suite *
disk_preload_suite(void)
{
	Suite	   *s = suite_create("disk_preload");
	TCase	   *effects = tcase_create("effects");
	TCase	   *triggers = tcase_create("triggers");
	TCase	   *journal = tcase_create("journal");
	TCase	   *strict = tcase_create("strict");

	tcase_add_checked_fixture(effects, setup, teardown);
	tcase_add_test(effects, test_errno_nth);
	tcase_add_test(effects, test_errno_after_limit);
	tcase_add_test(effects, test_errno_each_operation);
	tcase_add_test(effects, test_short_and_torn);
	tcase_add_test(effects, test_flip_write_and_read);
	tcase_add_test(effects, test_flip_seeded);
	tcase_add_test(effects, test_delay);
	tcase_add_test(effects, test_lie);
	tcase_add_test(effects, test_no_region_passes_through);
	suite_add_tcase(s, effects);

	tcase_add_checked_fixture(triggers, setup, teardown);
	tcase_add_test(triggers, test_range);
	tcase_add_test(triggers, test_probability_is_seeded);
	tcase_add_test(triggers, test_counters_shared_by_children);
	tcase_add_test(triggers, test_rule_change_at_run_time);
	tcase_add_test(triggers, test_unmatched_paths_untouched);
	tcase_set_timeout(triggers, 60);
	suite_add_tcase(s, triggers);

	tcase_add_checked_fixture(journal, setup_journal, teardown);
	tcase_add_test(journal, test_rollback_exact_bytes_and_sizes);
	tcase_add_test(journal, test_rollback_lie_and_osync);
	tcase_add_test(journal, test_rollback_directory_entries);
	suite_add_tcase(s, journal);

	tcase_add_checked_fixture(strict, setup_strict, teardown);
	tcase_add_test(strict, test_rollback_strict_directories);
	tcase_add_test(strict, test_rollback_strict_drops_unsynced_dir);
	suite_add_tcase(s, strict);
	return s;
}

int
main(void)
{
	return unit_run_suite(disk_preload_suite());
}
