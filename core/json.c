/* core/json.c - a validating JSON scanner that allocates nothing
 *
 * One iterative scanner (skip_value) does the work for json_check() and for
 * the cursor that core/record.c walks records with.  Strings, where records
 * spend most of their bytes, are scanned 16 bytes at a time (SSE2) or 8 at a
 * time (portable SWAR) until a quote, a backslash, a control character or a
 * non-ASCII byte shows up; only those bytes take the slow path.
 */
#include "json.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

typedef const unsigned char *uptr;

/* --- errors ----------------------------------------------------------------- */

/* Records the first error; returns NULL so scanners can "return fail(...)". */
static uptr fail(struct json_cur *c, uptr at, enum json_err e, const char *what, int found)
{
	if (c->err != JSON_OK)
		return NULL;
	c->err = e;
	c->err_at = (size_t)(at - (uptr)c->buf);
	c->err_what = what;
	c->err_found = found;
	if (e == JSON_ERR_SYNTAX && at >= (uptr)c->end) {
		c->err_what = "unexpected end of input";
		c->err_found = 0;
	}
	return NULL;
}

static uptr syntax(struct json_cur *c, uptr at, const char *what)
{
	return fail(c, at, JSON_ERR_SYNTAX, what, 1);
}

void json_cur_errstr(const struct json_cur *c, char *errstr, size_t errstr_size)
{
	if (!errstr || !errstr_size)
		return;
	switch (c->err) {
	case JSON_OK:
		snprintf(errstr, errstr_size, "no error");
		break;
	case JSON_ERR_DEPTH:
		snprintf(errstr, errstr_size, "nesting deeper than %d at byte %zu",
		         c->max_depth, c->err_at);
		break;
	case JSON_ERR_UTF8:
		snprintf(errstr, errstr_size, "invalid UTF-8 at byte %zu%s%s", c->err_at,
		         c->err_what ? ": " : "", c->err_what ? c->err_what : "");
		break;
	case JSON_ERR_SYNTAX: {
		char found[24] = "";
		if (c->err_found && c->err_at < (size_t)(c->end - c->buf)) {
			unsigned char ch = (unsigned char)c->buf[c->err_at];
			if (ch >= 0x20 && ch < 0x7f)
				snprintf(found, sizeof(found), ", found '%c'", ch);
			else
				snprintf(found, sizeof(found), ", found byte 0x%02x", ch);
		}
		snprintf(errstr, errstr_size, "invalid JSON at byte %zu: %s%s", c->err_at,
		         c->err_what, found);
		break;
	}
	}
}

/* --- UTF-8 ------------------------------------------------------------------ */

/* Length of the well-formed UTF-8 sequence at p (p[0] >= 0x80), following
 * Unicode table 3-7; 0 when it is ill-formed, with *why saying how (NULL
 * when the input ends inside an otherwise good sequence). */
static size_t utf8_seq(uptr p, uptr end, const char **why)
{
	unsigned c = p[0], lo = 0x80, hi = 0xbf;
	size_t n;
	if (c < 0xc2) {
		*why = c < 0xc0 ? "unexpected continuation byte" : "overlong encoding";
		return 0;
	}
	if (c < 0xe0) {
		n = 2;
	} else if (c < 0xf0) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c < 0xf5) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		*why = c < 0xf8 ? "code point above U+10FFFF" : "invalid byte";
		return 0;
	}
	if ((size_t)(end - p) < 2 || p[1] < 0x80 || p[1] > 0xbf) {
		*why = (size_t)(end - p) < 2 ? NULL : "truncated sequence";
		return 0;
	}
	if (p[1] < lo || p[1] > hi) {
		*why = c == 0xed ? "surrogate code point" :
		       c == 0xf4 ? "code point above U+10FFFF" : "overlong encoding";
		return 0;
	}
	for (size_t i = 2; i < n; i++) {
		if ((size_t)(end - p) <= i || p[i] < 0x80 || p[i] > 0xbf) {
			*why = (size_t)(end - p) <= i ? NULL : "truncated sequence";
			return 0;
		}
	}
	return n;
}

/* First byte at or after p that is not ASCII (or end). */
static uptr skip_ascii(uptr p, uptr end)
{
#if defined(__SSE2__)
	while (end - p >= 16) {
		int mask = _mm_movemask_epi8(_mm_loadu_si128((const __m128i *)(const void *)p));
		if (mask)
			return p + __builtin_ctz((unsigned)mask);
		p += 16;
	}
#else
	while (end - p >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		if (w & 0x8080808080808080ull)
			break;
		p += 8;
	}
#endif
	while (p < end && *p < 0x80)
		p++;
	return p;
}

int json_utf8_check(const char *s, size_t len, size_t *bad_at)
{
	uptr p = (uptr)(s ? s : ""), start = p, end = p + (s ? len : 0);
	const char *why;
	for (;;) {
		p = skip_ascii(p, end);
		if (p >= end)
			return 0;
		size_t n = utf8_seq(p, end, &why);
		if (!n) {
			if (bad_at)
				*bad_at = (size_t)(p - start);
			return -1;
		}
		p += n;
	}
}

/* --- tokens ----------------------------------------------------------------- */

static inline uptr skip_ws(uptr p, uptr end)
{
	while (p < end && *p <= ' ' && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
		p++;
	return p;
}

/* First byte at or after p that needs a look in a string: '"', '\\', a
 * control character or a non-ASCII byte (or end). */
static inline uptr skip_plain(uptr p, uptr end)
{
#if defined(__SSE2__)
	const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
	const __m128i space = _mm_set1_epi8(0x20);
	while (end - p >= 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
		/* signed compare: bytes >= 0x80 are negative, so "< 0x20" catches them too */
		__m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote),
		                                      _mm_cmpeq_epi8(v, bslash)),
		                         _mm_cmplt_epi8(v, space));
		int mask = _mm_movemask_epi8(m);
		if (mask)
			return p + __builtin_ctz((unsigned)mask);
		p += 16;
	}
#else
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	while (end - p >= 8) {
		uint64_t w, q, b;
		memcpy(&w, p, 8);
		q = w ^ (ones * '"');
		b = w ^ (ones * '\\');
		if ((((q - ones) & ~q) | ((b - ones) & ~b) | ((w - ones * 0x20) & ~w) | w) & highs)
			break;
		p += 8;
	}
#endif
	while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
		p++;
	return p;
}

static inline int is_hex(unsigned ch)
{
	return (ch >= '0' && ch <= '9') || ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f');
}

/* The value of the 4 hex digits at p, or -1. */
static int hex4(uptr p, uptr end)
{
	int v = 0;
	if (end - p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		unsigned ch = p[i];
		if (!is_hex(ch))
			return -1;
		v = v * 16 + (int)(ch <= '9' ? ch - '0' : (ch | 0x20) - 'a' + 10);
	}
	return v;
}

/* p at a "\\u" whose 4 hex digits are wanting: the input ended early, or
 * something else is there. */
static uptr bad_hex4(struct json_cur *c, uptr p)
{
	uptr end = (uptr)c->end, q = p + 2;
	while (q < end && q < p + 6 && is_hex(*q))
		q++;
	if (q >= end)
		return syntax(c, end, "");
	return fail(c, p, JSON_ERR_SYNTAX, "expected 4 hex digits after \\u", 0);
}

/* p at a backslash inside a string; returns the byte after the escape. */
static uptr scan_escape(struct json_cur *c, uptr p)
{
	uptr end = (uptr)c->end;
	if (end - p < 2)
		return syntax(c, end, "");
	switch (p[1]) {
	case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
		return p + 2;
	case 'u':
		break;
	default:
		return fail(c, p, JSON_ERR_SYNTAX, "invalid escape in string", 0);
	}
	int u = hex4(p + 2, end);
	if (u < 0)
		return bad_hex4(c, p);
	if (u >= 0xdc00 && u <= 0xdfff)
		return fail(c, p, JSON_ERR_UTF8, "lone surrogate in \\u escape", 0);
	if (u < 0xd800 || u > 0xdbff)
		return p + 6;
	/* a high surrogate: a low one must follow */
	if (end - p <= 6 || (p[6] == '\\' && end - p <= 7))
		return syntax(c, end, "");
	if (p[6] == '\\' && p[7] == 'u') {
		int lo = hex4(p + 8, end);
		if (lo < 0)
			return bad_hex4(c, p + 6);
		if (lo >= 0xdc00 && lo <= 0xdfff)
			return p + 12;
	}
	return fail(c, p, JSON_ERR_UTF8, "lone surrogate in \\u escape", 0);
}

/* p just after the opening quote; returns the byte after the closing one. */
static uptr scan_string(struct json_cur *c, uptr p, int *escaped)
{
	uptr end = (uptr)c->end;
	const char *why;
	for (;;) {
		p = skip_plain(p, end);
		if (p >= end)
			return syntax(c, end, "");
		unsigned ch = *p;
		if (ch == '"')
			return p + 1;
		if (ch == '\\') {
			*escaped = 1;
			if (!(p = scan_escape(c, p)))
				return NULL;
		} else if (ch < 0x20) {
			return syntax(c, p, "control character in string");
		} else {
			do {
				size_t n = utf8_seq(p, end, &why);
				if (!n && !why) /* the input ends inside the string */
					return syntax(c, end, "");
				if (!n)
					return fail(c, p, JSON_ERR_UTF8, why, 0);
				p += n;
			} while (p < end && *p >= 0x80);
		}
	}
}

static inline int is_digit(uptr p, uptr end)
{
	return p < end && *p >= '0' && *p <= '9';
}

/* p at '-' or a digit; returns the byte after the number. */
static uptr scan_number(struct json_cur *c, uptr p)
{
	uptr end = (uptr)c->end;
	if (*p == '-')
		p++;
	if (p < end && *p == '0') {
		p++;
		if (is_digit(p, end))
			return fail(c, p - 1, JSON_ERR_SYNTAX, "leading zero in number", 0);
	} else if (is_digit(p, end)) {
		while (is_digit(p, end))
			p++;
	} else {
		return syntax(c, p, "expected a digit after '-'");
	}
	if (p < end && *p == '.') {
		p++;
		if (!is_digit(p, end))
			return syntax(c, p, "expected a digit after '.'");
		while (is_digit(p, end))
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (!is_digit(p, end))
			return syntax(c, p, "expected a digit in exponent");
		while (is_digit(p, end))
			p++;
	}
	return p;
}

static uptr scan_literal(struct json_cur *c, uptr p, const char *lit, size_t n,
                         const char *what)
{
	size_t have = (size_t)((uptr)c->end - p);
	if (have >= n && !memcmp(p, lit, n))
		return p + n;
	if (have < n && !memcmp(p, lit, have))
		return syntax(c, (uptr)c->end, "");
	return syntax(c, p, what);
}

/* --- values ----------------------------------------------------------------- */

static int depth_fail(struct json_cur *c, uptr p)
{
	fail(c, p, JSON_ERR_DEPTH, NULL, 0);
	return -1;
}

/* Consumes one value at c->p (after optional whitespace), containers and all,
 * nesting at most c->max_depth counting the containers already entered. */
static int skip_value(struct json_cur *c)
{
	uptr p = (uptr)c->p, end = (uptr)c->end;
	const int base = c->depth, max = c->max_depth;
	int depth = base, esc = 0;
	/* bit i: the container at depth base+i+1 is an object */
	uint64_t objs[JSON_DEPTH_MAX / 64];
	uint64_t bit;

value:
	p = skip_ws(p, end);
	if (p >= end)
		return syntax(c, p, ""), -1;
	switch (*p) {
	case '{':
		if (depth >= max)
			return depth_fail(c, p);
		bit = (uint64_t)1 << ((depth - base) & 63);
		objs[(depth - base) >> 6] |= bit;
		depth++;
		p = skip_ws(p + 1, end);
		if (p < end && *p == '}') {
			p++;
			depth--;
			goto after;
		}
		goto key;
	case '[':
		if (depth >= max)
			return depth_fail(c, p);
		bit = (uint64_t)1 << ((depth - base) & 63);
		objs[(depth - base) >> 6] &= ~bit;
		depth++;
		p = skip_ws(p + 1, end);
		if (p < end && *p == ']') {
			p++;
			depth--;
			goto after;
		}
		goto value;
	case '"':
		p = scan_string(c, p + 1, &esc);
		break;
	case '-': case '0': case '1': case '2': case '3': case '4':
	case '5': case '6': case '7': case '8': case '9':
		p = scan_number(c, p);
		break;
	case 't':
		p = scan_literal(c, p, "true", 4, "expected 'true'");
		break;
	case 'f':
		p = scan_literal(c, p, "false", 5, "expected 'false'");
		break;
	case 'n':
		p = scan_literal(c, p, "null", 4, "expected 'null'");
		break;
	default:
		syntax(c, p, "expected a value");
		return -1;
	}
	if (!p)
		return -1;

after:
	if (depth == base) {
		c->p = (const char *)p;
		return 0;
	}
	p = skip_ws(p, end);
	if (p >= end)
		return syntax(c, p, ""), -1;
	bit = objs[(depth - base - 1) >> 6] >> ((depth - base - 1) & 63) & 1;
	if (*p == ',') {
		p = skip_ws(p + 1, end);
		if (!bit) {
			if (p < end && *p == ']')
				return fail(c, p, JSON_ERR_SYNTAX, "trailing comma before ']'", 0), -1;
			goto value;
		}
		if (p < end && *p == '}')
			return fail(c, p, JSON_ERR_SYNTAX, "trailing comma before '}'", 0), -1;
		goto key;
	}
	if (*p == (bit ? '}' : ']')) {
		p++;
		depth--;
		goto after;
	}
	syntax(c, p, bit ? "expected ',' or '}' after object member" :
	                   "expected ',' or ']' after array element");
	return -1;

key:
	if (p >= end || *p != '"')
		return syntax(c, p, "expected a string as object key"), -1;
	if (!(p = scan_string(c, p + 1, &esc)))
		return -1;
	p = skip_ws(p, end);
	if (p >= end || *p != ':')
		return syntax(c, p, "expected ':' after object key"), -1;
	p++;
	goto value;
}

/* --- the cursor ------------------------------------------------------------- */

void json_cur_init(struct json_cur *c, const char *buf, size_t len, int max_depth)
{
	memset(c, 0, sizeof(*c));
	if (!buf) {
		buf = "";
		len = 0;
	}
	c->buf = c->p = buf;
	c->end = buf + len;
	c->max_depth = max_depth < 0 ? 0 : max_depth > JSON_DEPTH_MAX ? JSON_DEPTH_MAX : max_depth;
}

enum json_type json_cur_peek(struct json_cur *c)
{
	if (c->err)
		return JSON_NONE;
	uptr p = skip_ws((uptr)c->p, (uptr)c->end);
	c->p = (const char *)p;
	if (p >= (uptr)c->end) {
		syntax(c, p, "");
		return JSON_NONE;
	}
	switch (*p) {
	case '{': return JSON_OBJECT;
	case '[': return JSON_ARRAY;
	case '"': return JSON_STRING;
	case 't': return JSON_TRUE;
	case 'f': return JSON_FALSE;
	case 'n': return JSON_NULL;
	case '-': case '0': case '1': case '2': case '3': case '4':
	case '5': case '6': case '7': case '8': case '9':
		return JSON_NUMBER;
	}
	syntax(c, p, "expected a value");
	return JSON_NONE;
}

int json_cur_skip(struct json_cur *c)
{
	return c->err ? -1 : skip_value(c);
}

int json_cur_enter(struct json_cur *c)
{
	if (c->err)
		return -1;
	uptr p = skip_ws((uptr)c->p, (uptr)c->end);
	if (p >= (uptr)c->end || (*p != '{' && *p != '['))
		return syntax(c, p, "expected an object or array"), -1;
	if (c->depth >= c->max_depth)
		return depth_fail(c, p);
	c->depth++;
	c->p = (const char *)p + 1;
	return 0;
}

/* Reads what follows a member/element: the closing byte (returns 0) or a
 * comma when *n > 0 (returns 1, positioned after it). */
static int cur_next(struct json_cur *c, int *n, unsigned char close)
{
	uptr end = (uptr)c->end, p;
	if (c->err)
		return -1;
	p = skip_ws((uptr)c->p, end);
	if (p < end && *p == close) {
		c->depth--;
		c->p = (const char *)p + 1;
		return 0;
	}
	if (*n > 0) {
		if (p >= end || *p != ',')
			return syntax(c, p, close == '}' ? "expected ',' or '}' after object member" :
			                                   "expected ',' or ']' after array element"), -1;
		p = skip_ws(p + 1, end);
		if (p < end && *p == close)
			return fail(c, p, JSON_ERR_SYNTAX, close == '}' ? "trailing comma before '}'" :
			            "trailing comma before ']'", 0), -1;
	}
	(*n)++;
	c->p = (const char *)p;
	return 1;
}

int json_cur_member(struct json_cur *c, int *n, struct json_str *key)
{
	int r = cur_next(c, n, '}');
	if (r <= 0)
		return r;
	uptr p = (uptr)c->p, end = (uptr)c->end;
	if (p >= end || *p != '"')
		return syntax(c, p, "expected a string as object key"), -1;
	key->s = (const char *)p + 1;
	key->escaped = 0;
	if (!(p = scan_string(c, p + 1, &key->escaped)))
		return -1;
	key->len = (size_t)(p - 1 - (uptr)key->s);
	p = skip_ws(p, end);
	if (p >= end || *p != ':')
		return syntax(c, p, "expected ':' after object key"), -1;
	c->p = (const char *)p + 1;
	return 1;
}

int json_cur_element(struct json_cur *c, int *n)
{
	int r = cur_next(c, n, ']');
	if (r == 1 && (uptr)c->p >= (uptr)c->end)
		return syntax(c, (uptr)c->p, ""), -1;
	return r;
}

int json_cur_string(struct json_cur *c, struct json_str *out)
{
	if (c->err)
		return -1;
	uptr p = skip_ws((uptr)c->p, (uptr)c->end);
	if (p >= (uptr)c->end || *p != '"')
		return syntax(c, p, "expected a string"), -1;
	out->s = (const char *)p + 1;
	out->escaped = 0;
	if (!(p = scan_string(c, p + 1, &out->escaped)))
		return -1;
	out->len = (size_t)(p - 1 - (uptr)out->s);
	c->p = (const char *)p;
	return 0;
}

int json_cur_number(struct json_cur *c, const char **s, size_t *len)
{
	if (c->err)
		return -1;
	uptr p = skip_ws((uptr)c->p, (uptr)c->end), q;
	if (p >= (uptr)c->end || (*p != '-' && (*p < '0' || *p > '9')))
		return syntax(c, p, "expected a number"), -1;
	if (!(q = scan_number(c, p)))
		return -1;
	*s = (const char *)p;
	*len = (size_t)(q - p);
	c->p = (const char *)q;
	return 0;
}

int json_cur_finish(struct json_cur *c)
{
	if (c->err)
		return -1;
	uptr p = skip_ws((uptr)c->p, (uptr)c->end);
	if (p < (uptr)c->end)
		return syntax(c, p, "unexpected data after the value"), -1;
	c->p = (const char *)p;
	return 0;
}

/* --- whole documents and strings -------------------------------------------- */

int json_check(const char *buf, size_t len, int max_depth,
               char *errstr, size_t errstr_size)
{
	struct json_cur c;
	json_cur_init(&c, buf, len, max_depth);
	if (skip_value(&c) == 0 && json_cur_finish(&c) == 0)
		return 0;
	json_cur_errstr(&c, errstr, errstr_size);
	return -1;
}

static size_t utf8_put(char *o, unsigned u)
{
	if (u < 0x80) {
		o[0] = (char)u;
		return 1;
	}
	if (u < 0x800) {
		o[0] = (char)(0xc0 | u >> 6);
		o[1] = (char)(0x80 | (u & 0x3f));
		return 2;
	}
	if (u < 0x10000) {
		o[0] = (char)(0xe0 | u >> 12);
		o[1] = (char)(0x80 | (u >> 6 & 0x3f));
		o[2] = (char)(0x80 | (u & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | u >> 18);
	o[1] = (char)(0x80 | (u >> 12 & 0x3f));
	o[2] = (char)(0x80 | (u >> 6 & 0x3f));
	o[3] = (char)(0x80 | (u & 0x3f));
	return 4;
}

/* Decodes the character at *p (a raw byte or one escape, which the cursor
 * checked) into tmp and moves *p past it; returns its length in bytes. */
static size_t str_next(uptr *pp, uptr end, char tmp[4])
{
	uptr p = *pp;
	size_t n = 1;
	if (*p != '\\') {
		tmp[0] = (char)*p;
		*pp = p + 1;
		return 1;
	}
	switch (p[1]) {
	case 'b': tmp[0] = '\b'; break;
	case 'f': tmp[0] = '\f'; break;
	case 'n': tmp[0] = '\n'; break;
	case 'r': tmp[0] = '\r'; break;
	case 't': tmp[0] = '\t'; break;
	case 'u': {
		unsigned u = (unsigned)hex4(p + 2, end);
		if (u >= 0xd800 && u <= 0xdbff) {
			unsigned lo = (unsigned)hex4(p + 8, end);
			u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
			p += 6;
		}
		n = utf8_put(tmp, u);
		p += 4;
		break;
	}
	default: tmp[0] = (char)p[1]; break; /* " \ / */
	}
	*pp = p + 2;
	return n;
}

int json_str_equals(const struct json_str *str, const char *val, size_t vlen)
{
	if (!str->escaped)
		return str->len == vlen && !memcmp(str->s, val, vlen);
	if (str->len < vlen) /* decoding never lengthens a string */
		return 0;
	uptr p = (uptr)str->s, end = p + str->len;
	size_t o = 0;
	while (p < end) {
		char tmp[4];
		size_t n = str_next(&p, end, tmp);
		if (o + n > vlen || memcmp(val + o, tmp, n))
			return 0;
		o += n;
	}
	return o == vlen;
}

int json_str_decode(const struct json_str *str, char *out, size_t size, size_t *outlen)
{
	uptr p = (uptr)str->s, end = p + str->len;
	size_t o = 0;
	if (!size)
		return -1;
	if (!str->escaped) {
		if (str->len >= size)
			return -1;
		memcpy(out, str->s, str->len);
		o = str->len;
		goto done;
	}
	while (p < end) {
		char tmp[4];
		size_t n = str_next(&p, end, tmp);
		if (o + n >= size)
			return -1;
		memcpy(out + o, tmp, n);
		o += n;
	}
done:
	out[o] = '\0';
	if (outlen)
		*outlen = o;
	return 0;
}

size_t json_utf8_cut(const char *s, size_t n, size_t max)
{
	if (n <= max)
		return n;
	size_t k = max;
	while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
		k--;
	return k;
}
