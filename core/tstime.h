/* core/tstime.h - clocks and RFC 3339 timestamps with microseconds */
#ifndef TS_TSTIME_H
#define TS_TSTIME_H

#include <stddef.h>
#include <stdint.h>

/* "2026-11-26T20:57:01.123456Z" and its NUL */
#define TSTIME_LEN 28

/* Wall clock, microseconds since the Unix epoch. */
int64_t tstime_now_us(void);
/* Monotonic clock (CLOCK_MONOTONIC), microseconds and nanoseconds; only
 * differences mean anything. */
int64_t tstime_mono_us(void);
int64_t tstime_mono_ns(void);
/* Writes unix_us as RFC 3339 UTC with 6 fraction digits into out
 * (TSTIME_LEN bytes); returns the length (27). */
size_t tstime_format(int64_t unix_us, char *out);
/* Parses RFC 3339 (date 'T' time, optional fraction of up to 9 digits,
 * 'Z' or +hh:mm/-hh:mm); len bytes, not NUL-terminated.  Returns 0 and sets
 * *unix_us, or -1 when the text is not such a timestamp. */
int tstime_parse(const char *s, size_t len, int64_t *unix_us);
/* Parses a time a person gives on a command line (NUL-terminated): an RFC 3339
 * timestamp as tstime_parse() reads it, a date YYYY-MM-DD (its midnight UTC),
 * or milliseconds since the epoch (1 to 15 digits, as Kafka timestamps are
 * written).  Returns 0 and sets *unix_us, or -1 when s is none of these. */
int tstime_parse_arg(const char *s, int64_t *unix_us);

#endif
