/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests of the logging facade: both renderings, escaping, the level
 * threshold and the single-write records. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define LOG_COMPONENT "test"
#include "journal.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static void test_text_render(void **state)
{
	char buf[256];
	int n = log_render(buf, sizeof(buf), LOG_FORMAT_TEXT, LOG_LEVEL_WARN, "persist", "hello");
	assert_int_equal(n, (int)strlen(buf));
	assert_non_null(strstr(buf, " warn   persist: hello\n"));
	assert_int_equal(buf[4], '-'); /* ISO date first */
}

static void test_json_render_escapes(void **state)
{
	char buf[256];
	log_render(buf, sizeof(buf), LOG_FORMAT_JSON, LOG_LEVEL_ERR, "c\"x", "a\"b\\c\nd\x01");
	assert_non_null(strstr(buf, "\"level\":\"err\""));
	assert_non_null(strstr(buf, "\"component\":\"c\\\"x\""));
	assert_non_null(strstr(buf, "\"msg\":\"a\\\"b\\\\c\\nd\\u0001\"}\n"));
}

static void test_truncation_keeps_newline(void **state)
{
	char buf[64], msg[200];
	memset(msg, 'x', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	int n = log_render(buf, sizeof(buf), LOG_FORMAT_TEXT, LOG_LEVEL_INFO, "c", msg);
	assert_int_equal(n, 63);
	assert_int_equal(buf[n - 1], '\n');
}

static void test_threshold_and_sink(void **state)
{
	int fds[2];
	char buf[512];
	ssize_t n;

	assert_int_equal(pipe(fds), 0);
	log_setup(LOG_LEVEL_NOTICE, LOG_FORMAT_JSON, fds[1]);
	errno = EBADF;
	LOG(DEBUG, "hidden %d", 1);
	LOG(NOTICE, "shown %d", 2);
	assert_int_equal(errno, EBADF); /* logging preserves errno */
	close(fds[1]);
	n = read(fds[0], buf, sizeof(buf) - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	close(fds[0]);
	assert_null(strstr(buf, "hidden"));
	assert_non_null(strstr(buf, "\"msg\":\"shown 2\""));
	assert_non_null(strstr(buf, "\"component\":\"test\""));
	log_setup(LOG_LEVEL_INFO, LOG_FORMAT_TEXT, 2);
}

/* The journal's native protocol: NAME=value lines, and a value with a
 * newline in the binary form (NAME, newline, 64-bit little-endian length,
 * the bytes, newline). JOURNAL_STREAM is believed only for its own fd. */
static void test_journal_fields(void **state)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	char path[64], buf[512], stream[64];
	static const char want[] = "PRIORITY=4\nSYSLOG_IDENTIFIER=fanoutd\nFANOUT_COMPONENT=api\n"
				   "MESSAGE\n\x0c\0\0\0\0\0\0\0two\nlines ok\n";
	struct stat st;
	int rx, tx;
	ssize_t n;

	(void)state;
	snprintf(path, sizeof(path), "/tmp/fanout-journal-%d", (int)getpid());
	memcpy(a.sun_path, path, strlen(path) + 1);
	rx = socket(AF_UNIX, SOCK_DGRAM, 0);
	assert_int_equal(bind(rx, (struct sockaddr *)&a, sizeof(a)), 0);
	setenv("FANOUT_JOURNAL_SOCKET", path, 1);
	tx = journal_open();
	assert_true(tx >= 0);
	assert_int_equal(journal_send(tx, 4, "fanoutd", "api", "two\nlines ok"), 0);
	n = recv(rx, buf, sizeof(buf), 0);
	assert_int_equal(n, sizeof(want) - 1);
	assert_memory_equal(buf, want, sizeof(want) - 1);
	/* JOURNAL_STREAM names one fd's device and inode, no other */
	assert_int_equal(fstat(rx, &st), 0);
	snprintf(stream, sizeof(stream), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", stream, 1);
	assert_true(journal_is_stream(rx));
	assert_false(journal_is_stream(tx));
	unsetenv("JOURNAL_STREAM");
	assert_false(journal_is_stream(rx));
	close(tx);
	close(rx);
	unlink(path);
	unsetenv("FANOUT_JOURNAL_SOCKET");
}

static void test_parse(void **state)
{
	enum log_level level;
	enum log_format format;
	assert_int_equal(log_level_parse("debug", &level), 0);
	assert_int_equal(level, LOG_LEVEL_DEBUG);
	assert_int_equal(log_level_parse("verbose", &level), -EINVAL);
	assert_int_equal(log_format_parse("json", &format), 0);
	assert_int_equal(format, LOG_FORMAT_JSON);
	assert_int_equal(log_format_parse("xml", &format), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_text_render),
	    cmocka_unit_test(test_json_render_escapes),
	    cmocka_unit_test(test_truncation_keeps_newline),
	    cmocka_unit_test(test_threshold_and_sink),
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_journal_fields),
	};
	return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
