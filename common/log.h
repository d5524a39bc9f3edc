/* SPDX-License-Identifier: BSD-3-Clause */
/* Logging facade shared by the daemon, the CLI and the bench: one call site
 * format, two renderings (human text for terminals, JSON lines for services).
 *
 * A file sets LOG_COMPONENT before including this header (or accepts "fanout")
 * and logs with LOG(INFO, "fmt", ...). Each record is written with a single
 * write(2), so lines from several threads never interleave. Not for fast paths:
 * per-packet or per-message events are counted in metrics instead. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>

enum log_level {
	LOG_LEVEL_ERR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_NOTICE,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

enum log_format {
	LOG_FORMAT_AUTO = 0, /* text when stderr is a terminal, JSON lines otherwise */
	LOG_FORMAT_TEXT,
	LOG_FORMAT_JSON,
};

#ifndef LOG_COMPONENT
#define LOG_COMPONENT "fanout"
#endif

#define LOG(level, ...) log_emit(LOG_LEVEL_##level, LOG_COMPONENT, __VA_ARGS__)

/* Sets the threshold and rendering; fd is where records go (2 by default).
 * Safe to call before any thread starts; not thread-safe against log_emit(). */
void log_setup(enum log_level level, enum log_format format, int fd);

/* Parses "err", "warn", "notice", "info", "debug". Returns 0 or -EINVAL. */
int log_level_parse(const char *name, enum log_level *out);
/* Changes the threshold while threads log (a reload); and a level's name. */
void log_set_level(enum log_level level);
const char *log_level_name(enum log_level level);

/* Parses "auto", "text", "json". Returns 0 or -EINVAL. */
int log_format_parse(const char *name, enum log_format *out);

bool log_enabled(enum log_level level);

/* Formats and writes one record. Messages longer than about 3 KiB are cut.
 * Thread-safe; preserves errno. */
void log_emit(enum log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Renders one record into buf (at most size bytes, always terminated) without
 * writing it; returns the length. Exposed for tests of both formats. */
int log_render(char *buf, int size, enum log_format format, enum log_level level,
	       const char *component, const char *msg);
