/* core/json.h - a validating JSON scanner that allocates nothing */
#ifndef TS_JSON_H
#define TS_JSON_H

#include <stddef.h>

/* The deepest nesting the scanner follows; a larger max_depth counts as this. */
#define JSON_DEPTH_MAX 4096

/* Checks that buf[0..len) is exactly one JSON value (RFC 8259; surrounding
 * whitespace allowed), that every string is valid UTF-8 (no overlongs, no
 * surrogates, escapes well formed), and that arrays/objects nest at most
 * max_depth deep.  Returns 0, or -1 with errstr like
 * "invalid JSON at byte 17: expected ':' after object key" /
 * "invalid UTF-8 at byte 40" / "nesting deeper than 64 at byte 300".
 * Byte offsets count from 0. */
int json_check(const char *buf, size_t len, int max_depth,
               char *errstr, size_t errstr_size);

/* Checks that s[0..len) is valid UTF-8; returns 0, or -1 and sets *bad_at
 * (may be NULL) to the offset where the first ill-formed sequence starts. */
int json_utf8_check(const char *s, size_t len, size_t *bad_at);

/* The longest prefix of s[0..n) that is at most max bytes and does not end
 * inside a UTF-8 character: where to cut a text that must fit. */
size_t json_utf8_cut(const char *s, size_t n, size_t max);

/* --- a cursor for validators that check a schema while they scan ----------
 * (core/record.c).  The cursor checks exactly what json_check() checks.  It is
 * embedded by the caller (json_cur_init(), nothing to release).  After the
 * first error every call fails (-1, or JSON_NONE) and json_cur_errstr() says
 * what went wrong, in json_check()'s words. */

enum json_err { JSON_OK = 0, JSON_ERR_SYNTAX, JSON_ERR_UTF8, JSON_ERR_DEPTH };

enum json_type {
	JSON_NONE = 0, JSON_OBJECT, JSON_ARRAY, JSON_STRING, JSON_NUMBER,
	JSON_TRUE, JSON_FALSE, JSON_NULL
};

struct json_cur {
	const char   *buf, *p, *end;
	int           depth, max_depth;
	enum json_err err;
	size_t        err_at;   /* byte offset of the error */
	const char   *err_what; /* what was wrong (static text) */
	int           err_found; /* append the byte found at err_at */
};

/* A string token as written, between its quotes (escapes not decoded). */
struct json_str {
	const char *s;
	size_t      len;
	int         escaped; /* it holds at least one backslash escape */
};

void json_cur_init(struct json_cur *c, const char *buf, size_t len, int max_depth);
/* Skips whitespace and returns the type of the value that starts there,
 * without consuming it; JSON_NONE (and an error) when no value starts there. */
enum json_type json_cur_peek(struct json_cur *c);
/* Consumes one whole value, checking it.  0 / -1. */
int json_cur_skip(struct json_cur *c);
/* Consumes the '{' or '[' of a container json_cur_peek() reported.  0 / -1
 * (JSON_ERR_DEPTH when it would nest deeper than max_depth). */
int json_cur_enter(struct json_cur *c);
/* Inside an entered object: returns 1 with *key set and the ':' consumed when
 * another member follows, 0 when the '}' was consumed, -1 on error.  *n counts
 * the members read so far (start it at 0). */
int json_cur_member(struct json_cur *c, int *n, struct json_str *key);
/* Inside an entered array: 1 when another element follows, 0 when the ']'
 * was consumed, -1 on error.  *n as for json_cur_member(). */
int json_cur_element(struct json_cur *c, int *n);
/* Consumes a string / number value (json_cur_peek() said so).  The number's
 * text is s[0..len).  0 / -1. */
int json_cur_string(struct json_cur *c, struct json_str *out);
int json_cur_number(struct json_cur *c, const char **s, size_t *len);
/* After the top value: only whitespace may follow.  0 / -1. */
int json_cur_finish(struct json_cur *c);
/* Formats the cursor's error into errstr. */
void json_cur_errstr(const struct json_cur *c, char *errstr, size_t errstr_size);

/* Whether a string the cursor checked decodes to val[0..vlen); compares as
 * it decodes, without a buffer. */
int json_str_equals(const struct json_str *str, const char *val, size_t vlen);

/* Decodes a string the cursor checked into out (NUL-terminated, UTF-8).
 * Returns 0 and sets *outlen (may be NULL), or -1 when it does not fit. */
int json_str_decode(const struct json_str *str, char *out, size_t size, size_t *outlen);

#endif
