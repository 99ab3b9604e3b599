/*
 * test_events.c — the JSON Lines event log: the line format of
 * docs/events.md, appending, lines of several processes kept whole, long
 * values cut, a disabled log, and the error for a file that cannot be opened.
 */
#include <check.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "walsim/events.h"
#include "unit_support.h"

static char path[64];

static void
make_path(void)
{
	int			fd;

	snprintf(path, sizeof(path), "/tmp/walsim-test-events-XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
}

static void
remove_path(void)
{
	unlink(path);
}

static bool
matches(const char *pattern, const char *text)
{
	regex_t		re;
	bool		ok;

	ck_assert_int_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
	ok = regexec(&re, text, 0, NULL, 0) == 0;
	regfree(&re);
	return ok;
}

START_TEST(test_line_format)
{
	EventLog	log;
	EventLine	ev;
	WalsimError err;
	size_t		len;
	char	   *text;
	char		expect[128];

	make_path();
	ck_assert(events_open(&log, path, &err));
	ck_assert(events_begin(&log, &ev, "feedback"));
	json_lsn(&ev.j, "write", UINT64_C(0x3000000));
	json_u64(&ev.j, "timeline", 2);
	json_str(&ev.j, "slot", NULL);
	json_bool(&ev.j, "reply_requested", false);
	events_end(&log, &ev);
	ck_assert(events_begin(&log, &ev, "stopped"));
	events_end(&log, &ev);
	events_close(&log);

	text = unit_load_file(path, &len);
	snprintf(expect, sizeof(expect), "^\\{\"time\":[0-9]{10}\\.[0-9]{6},\"pid\":%d,", (int) getpid());
	ck_assert_msg(matches(expect, text), "%s", text);
	ck_assert_msg(strstr(text, ",\"event\":\"feedback\",\"write\":\"0/3000000\",\"timeline\":2,"
						 "\"slot\":null,\"reply_requested\":false}\n{\"time\":") != NULL, "%s", text);
	ck_assert_msg(matches(",\"event\":\"stopped\"}\n$", text), "%s", text);
	free(text);
	remove_path();
}
END_TEST

/* A disabled log writes nothing and says so; closing it twice is harmless. */
START_TEST(test_disabled)
{
	EventLog	log;
	EventLine	ev;
	WalsimError err;

	ck_assert(events_open(&log, NULL, &err));
	ck_assert(!events_begin(&log, &ev, "x"));
	ck_assert(!events_begin(NULL, &ev, "x"));
	events_end(&log, &ev);
	events_close(&log);
	events_close(&log);
}
END_TEST

START_TEST(test_open_error)
{
	EventLog	log;
	WalsimError err;

	ck_assert(!events_open(&log, "/nonexistent/walsim/events.jsonl", &err));
	ck_assert_str_eq(err.message, "could not open event log \"/nonexistent/walsim/events.jsonl\": "
					 "No such file or directory");
	ck_assert_int_eq(log.fd, -1);
}
END_TEST

/* Long strings are cut with "...", and an overfull line stays valid JSON. */
START_TEST(test_long_values)
{
	EventLog	log;
	EventLine	ev;
	WalsimError err;
	char	   *big = malloc(EVENT_LINE_MAX * 2);
	char	   *text;
	size_t		len;

	ck_assert_ptr_nonnull(big);
	memset(big, 'a', EVENT_LINE_MAX * 2 - 1);
	big[EVENT_LINE_MAX * 2 - 1] = '\0';
	make_path();
	ck_assert(events_open(&log, path, &err));
	ck_assert(events_begin(&log, &ev, "command"));
	json_str(&ev.j, "text", big);
	events_end(&log, &ev);
	ck_assert(events_begin(&log, &ev, "many"));
	for (int i = 0; i < 2 * EVENT_LINE_MAX / EVENT_STRING_MAX; i++)
		json_str(&ev.j, "text", big);
	events_end(&log, &ev);
	events_close(&log);

	text = unit_load_file(path, &len);
	ck_assert_msg(matches(",\"event\":\"command\",\"text\":\"a{1024}\\.\\.\\.\"}\n", text), "%.200s", text);
	ck_assert_msg(matches(",\"event\":\"many\",\"truncated\":true}\n$", text), "%.200s", text);
	free(text);
	free(big);
	remove_path();
}
END_TEST

/* Several processes append to one log: every line stays whole. */
START_TEST(test_processes_append_whole_lines)
{
	EventLog	log;
	WalsimError err;
	char	   *text;
	size_t		len;
	int			lines = 0;
	enum
	{
		NPROC = 4, NLINES = 200
	};

	make_path();
	ck_assert(events_open(&log, path, &err));
	for (int p = 0; p < NPROC; p++)
	{
		pid_t		pid = fork();

		ck_assert_int_ge(pid, 0);
		if (pid == 0)
		{
			char		filler[600];

			memset(filler, 'a' + p, sizeof(filler) - 1);
			filler[sizeof(filler) - 1] = '\0';
			for (int i = 0; i < NLINES; i++)
			{
				EventLine	ev;

				if (events_begin(&log, &ev, "fill"))
				{
					json_str(&ev.j, "filler", filler);
					events_end(&log, &ev);
				}
			}
			_exit(0);
		}
	}
	for (int p = 0; p < NPROC; p++)
	{
		int			status;

		ck_assert_int_gt(wait(&status), 0);
		ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	events_close(&log);

	text = unit_load_file(path, &len);
	for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n"))
	{
		ck_assert_msg(matches("^\\{\"time\":[0-9.]+,\"pid\":[0-9]+,\"event\":\"fill\","
							  "\"filler\":\"(a+|b+|c+|d+)\"\\}$", line), "%.100s", line);
		lines++;
	}
	ck_assert_int_eq(lines, NPROC * NLINES);
	free(text);
	remove_path();
}
END_TEST

static Suite *
events_suite(void)
{
	Suite	   *s = suite_create("events");
	TCase	   *tc = tcase_create("core");

	tcase_add_test(tc, test_line_format);
	tcase_add_test(tc, test_disabled);
	tcase_add_test(tc, test_open_error);
	tcase_add_test(tc, test_long_values);
	tcase_add_test(tc, test_processes_append_whole_lines);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return unit_run_suite(events_suite());
}
