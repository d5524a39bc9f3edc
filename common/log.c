/* SPDX-License-Identifier: BSD-3-Clause */
/* Logging facade: renders records as text or JSON lines and writes each with
 * one write(2). See log.h for the contract. */
#include "log.h"

#include "journal.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Changed by a reload (SIGHUP) while other threads log. */
static _Atomic int log_threshold = LOG_LEVEL_INFO;
static enum log_format log_format_active = LOG_FORMAT_AUTO;
static int log_fd = 2;
static int journal_fd = -1; /* stderr is the journal's stream: its fields instead */

static const char *const level_names[] = {"err", "warn", "notice", "info", "debug"};

void log_setup(enum log_level level, enum log_format format, int fd)
{
	atomic_store_explicit(&log_threshold, (int)level, memory_order_relaxed);
	log_fd = fd;
	if (format == LOG_FORMAT_AUTO)
		format = isatty(fd) ? LOG_FORMAT_TEXT : LOG_FORMAT_JSON;
	log_format_active = format;
	if (journal_fd < 0 && format == LOG_FORMAT_JSON && journal_is_stream(fd))
		journal_fd = journal_open();
}

void log_set_level(enum log_level level)
{
	atomic_store_explicit(&log_threshold, (int)level, memory_order_relaxed);
}

const char *log_level_name(enum log_level level)
{
	return (unsigned)level < sizeof(level_names) / sizeof(level_names[0]) ? level_names[level]
									      : "?";
}

int log_level_parse(const char *name, enum log_level *out)
{
	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

int log_format_parse(const char *name, enum log_format *out)
{
	if (strcmp(name, "auto") == 0)
		*out = LOG_FORMAT_AUTO;
	else if (strcmp(name, "text") == 0)
		*out = LOG_FORMAT_TEXT;
	else if (strcmp(name, "json") == 0)
		*out = LOG_FORMAT_JSON;
	else
		return -EINVAL;
	return 0;
}

bool log_enabled(enum log_level level)
{
	return (int)level <= atomic_load_explicit(&log_threshold, memory_order_relaxed);
}

/* Appends s to buf as the body of a JSON string; returns the new length. */
static int json_escape_into(char *buf, int len, int size, const char *s)
{
	for (; *s && len < size - 7; s++) {
		unsigned char ch = (unsigned char)*s;
		switch (ch) {
		case '"':
		case '\\':
			buf[len++] = '\\';
			buf[len++] = (char)ch;
			break;
		case '\n':
			buf[len++] = '\\';
			buf[len++] = 'n';
			break;
		case '\t':
			buf[len++] = '\\';
			buf[len++] = 't';
			break;
		default:
			if (ch < 0x20)
				len += snprintf(buf + len, (size_t)(size - len), "\\u%04x", ch);
			else
				buf[len++] = (char)ch;
		}
	}
	buf[len] = '\0';
	return len;
}

int log_render(char *buf, int size, enum log_format format, enum log_level level,
	       const char *component, const char *msg)
{
	struct timespec ts;
	struct tm tm;
	char stamp[40];
	int len;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	len = (int)strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(stamp + len, sizeof(stamp) - (size_t)len, ".%06ldZ", ts.tv_nsec / 1000);

	if (format == LOG_FORMAT_JSON) {
		len =
		    snprintf(buf, (size_t)size, "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":\"",
			     stamp, level_names[level]);
		len = json_escape_into(buf, len, size, component);
		len += snprintf(buf + len, (size_t)(size - len), "\",\"msg\":\"");
		len = json_escape_into(buf, len, size, msg);
		len += snprintf(buf + len, (size_t)(size - len), "\"}\n");
	} else {
		len = snprintf(buf, (size_t)size, "%s %-6s %s: %s\n", stamp, level_names[level],
			       component, msg);
	}
	if (len >= size) {
		len = size - 1;
		buf[len - 1] = '\n';
	}
	return len;
}

void log_emit(enum log_level level, const char *component, const char *fmt, ...)
{
	char msg[3072], line[4096];
	int saved = errno, len;
	va_list ap;

	if ((int)level > atomic_load_explicit(&log_threshold, memory_order_relaxed))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* syslog's priorities: err 3 .. debug 7 */
	if (journal_fd >= 0 && journal_send(journal_fd, (int)level + 3,
					    program_invocation_short_name, component, msg) == 0) {
		errno = saved;
		return;
	}
	len = log_render(line, sizeof(line),
			 log_format_active == LOG_FORMAT_AUTO ? LOG_FORMAT_TEXT : log_format_active,
			 level, component, msg);
	if (write(log_fd, line, (size_t)len) < 0) {
		/* Nowhere left to report a failing log sink. */
	}
	errno = saved;
}
