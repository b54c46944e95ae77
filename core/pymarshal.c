/* core/pymarshal.c - Python marshal data written as the JSON text Python's json module writes */
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "pymarshal.h"

/* marshal's type codes (CPython, Python/marshal.c); FLAG_REF marks an object
 * that a later 'r' may name by its number (the order of the flagged type
 * bytes). */
#define TYPE_NULL           '0'
#define TYPE_NONE           'N'
#define TYPE_FALSE          'F'
#define TYPE_TRUE           'T'
#define TYPE_INT            'i'
#define TYPE_BINARY_FLOAT   'g'
#define TYPE_LONG           'l'
#define TYPE_REF            'r'
#define TYPE_TUPLE          '('
#define TYPE_SMALL_TUPLE    ')'
#define TYPE_LIST           '['
#define TYPE_DICT           '{'
#define TYPE_UNICODE        'u'
#define TYPE_INTERNED       't'
#define TYPE_ASCII          'a'
#define TYPE_ASCII_INTERNED 'A'
#define TYPE_SHORT_ASCII    'z'
#define TYPE_SHORT_ASCII_INTERNED 'Z'
#define FLAG_REF            0x80

/* A long of more 15-bit digits (about 1,150 decimal digits) is refused. */
#define LONG_DIGITS_MAX 256

typedef const unsigned char *uptr;

/* References kept without allocating: a value of a few fields has fewer. */
#define REFS_INLINE 64

struct pym {
	uptr end;
	uptr *refs;         /* where each flagged object begins, by number */
	size_t nrefs, caprefs;
	uptr inline_refs[REFS_INLINE];
	int replaying;      /* > 0 while an object is written again for an 'r' */
	int depth, max_depth;
	size_t limit;       /* out->len may not pass it */
	struct sbuf *out;
	int err;
};

static uptr refuse(struct pym *m, int err)
{
	if (!m->err)
		m->err = err;
	return NULL;
}

static int32_t get_i32(uptr p)
{
	return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
}

/* ---- numbers ------------------------------------------------------------- */

static size_t put_u64(char *o, uint64_t v)
{
	char tmp[24], *t = tmp + sizeof(tmp);
	do
		*--t = (char)('0' + v % 10);
	while ((v /= 10) > 0);
	size_t n = (size_t)(tmp + sizeof(tmp) - t);
	memcpy(o, t, n);
	return n;
}

/* A long: n (negative: the value is) 15-bit digits at p, least significant
 * first.  Writes its decimal text; returns the byte after it, or NULL. */
static uptr put_long(struct pym *m, uptr p, int quoted)
{
	if (m->end - p < 4)
		return refuse(m, PYM_REFUSED);
	int32_t n = get_i32(p);
	int neg = n < 0;
	size_t nd = neg ? (size_t)(-(int64_t)n) : (size_t)n;
	p += 4;
	if (nd > LONG_DIGITS_MAX || (size_t)(m->end - p) < nd * 2)
		return refuse(m, PYM_REFUSED);
	uint16_t d[LONG_DIGITS_MAX];
	for (size_t i = 0; i < nd; i++) {
		d[i] = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
		if (d[i] >> 15)
			return refuse(m, PYM_REFUSED);
	}
	p += nd * 2;
	while (nd > 0 && d[nd - 1] == 0)
		nd--;
	/* base 2^15 to base 10^4 by repeated division, most significant last */
	char text[LONG_DIGITS_MAX * 5 + 4], *t = text + sizeof(text);
	if (nd == 0)
		*--t = '0';
	while (nd > 0) {
		uint32_t rem = 0;
		for (size_t i = nd; i-- > 0;) {
			uint32_t cur = rem << 15 | d[i];
			d[i] = (uint16_t)(cur / 10000);
			rem = cur % 10000;
		}
		while (nd > 0 && d[nd - 1] == 0)
			nd--;
		for (int k = 0; k < 4 && (nd > 0 || rem > 0 || k == 0); k++, rem /= 10)
			*--t = (char)('0' + rem % 10);
	}
	if (neg && !(t[0] == '0' && t + 1 == text + sizeof(text)))
		*--t = '-';
	if (quoted)
		sbuf_putc(m->out, '"');
	sbuf_put(m->out, t, (size_t)(text + sizeof(text) - t));
	if (quoted)
		sbuf_putc(m->out, '"');
	return p;
}

typedef unsigned __int128 u128;

static u128 pow10_128(int n)
{
	static const uint64_t small[20] = {
		1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull, 10000000ull,
		100000000ull, 1000000000ull, 10000000000ull, 100000000000ull, 1000000000000ull,
		10000000000000ull, 100000000000000ull, 1000000000000000ull, 10000000000000000ull,
		100000000000000000ull, 1000000000000000000ull, 10000000000000000000ull,
	};
	return n < 20 ? small[n] : (u128)small[19] * small[n - 19];
}

/* The sign of f * 2^e2 - 10^p, for 1e-5 <= 10^p <= 1e17 and 1e-4 <= x < 1e16. */
static int cmp_pow10(uint64_t f, int e2, int p)
{
	u128 a = f, b = 1;
	if (e2 >= 0)
		a <<= e2;
	else
		b <<= -e2;
	if (p >= 0)
		b *= pow10_128(p);
	else
		a *= pow10_128(-p);
	return a < b ? -1 : a > b;
}

/* Whether the decimal d * 10^q lies within the rounding interval of x =
 * f * 2^e2, where x / 10^q = f * A / D: d * 10^q against x's neighbours'
 * midpoints, times 2D / 10^q, is 2dD against (2f + 1)A above and (2f - 1)A
 * below (or (4f - 1)A / 2 when the next double down is half as far).  The
 * ends count when f is even: round-half-even reads them back as x. */
static int in_interval(u128 d, u128 D, uint64_t f, u128 A, int lower_closer)
{
	int even = !(f & 1);
	u128 twice = 2 * d * D;
	u128 hi = (2 * (u128)f + 1) * A;
	if (even ? twice > hi : twice >= hi)
		return 0;
	if (lower_closer) {
		u128 lo4 = (4 * (u128)f - 1) * A, four = 2 * twice;
		return even ? four >= lo4 : four > lo4;
	}
	u128 lo = (2 * (u128)f - 1) * A;
	return even ? twice >= lo : twice > lo;
}

/* The shortest digits that read back as x (finite) with 1e16 > x >= 1e-4,
 * found exactly with 128-bit integers: for k = 1, 2, ... digits, the first
 * k for which a k-digit decimal next to x reads back as x (the nearest, else
 * the one on x's other side).  Sets *digits (no trailing zeros) and *decpt (x is 0.DIGITS x 10^decpt);
 * returns the number of digits, 0 when x is out of that range.  Every value
 * below stays under 2^126. */
static int shortest_exact(double x, char *digits, int *decpt)
{
	uint64_t bits;
	memcpy(&bits, &x, 8);
	int be = (int)(bits >> 52 & 0x7ff);
	if (!(x >= 1e-4 && x < 1e16))
		return 0;
	uint64_t f = (bits & ((1ull << 52) - 1)) | 1ull << 52;
	int e2 = be - 1075;                 /* x = f * 2^e2 */
	int lower_closer = f == 1ull << 52; /* the next double down is half as far */
	int e10 = (int)floor(log10(x));     /* 10^e10 <= x < 10^(e10 + 1), made exact: */
	if (cmp_pow10(f, e2, e10) < 0)
		e10--;
	else if (cmp_pow10(f, e2, e10 + 1) >= 0)
		e10++;
	for (int k = 1; k <= 17; k++) {
		int q = e10 - k + 1;             /* the candidate is d * 10^q, 10^(k-1) <= d <= 10^k */
		u128 A = 1, D = 1;               /* x / 10^q = f * A / D */
		if (e2 >= 0)
			A <<= e2;
		else
			D <<= -e2;
		if (q >= 0)
			D *= pow10_128(q);
		else
			A *= pow10_128(-q);
		u128 N = (u128)f * A, d = N / D, r = N % D;
		if (2 * r > D || (2 * r == D && (d & 1)))
			d++;
		/* the nearest k-digit decimal; when x's interval is lopsided (a
		 * power of 2: the next double down is half as far), the one on the
		 * other side of x may be in it when the nearest is not */
		u128 other = d * D < N ? d + 1 : d - 1;
		if (!in_interval(d, D, f, A, lower_closer) && !(d && in_interval(other, D, f, A, lower_closer)))
			continue;
		if (!in_interval(d, D, f, A, lower_closer))
			d = other;
		uint64_t v = (uint64_t)d;
		while (v % 10 == 0) {
			v /= 10;
			q++;
		}
		int n = (int)put_u64(digits, v);
		*decpt = q + n;
		return n;
	}
	return 0;
}

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void c_locale_new(void)
{
	c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}

static double read_c(const char *text)
{
	return c_locale ? strtod_l(text, NULL, c_locale) : strtod(text, NULL);
}

/* shortest_exact() for every other normal double x > 0, with printf and
 * strtod (slower).  When the shortest has 15 digits or fewer, the 15-digit
 * decimal nearest x is it and zeros (any such decimal reads back as the
 * double it came from); else 16 digits when the nearest 16 or one of its
 * neighbours reads back as x, else the nearest 17.  0 for a subnormal. */
static int shortest_printf(double x, char *digits, int *decpt)
{
	char buf[48];
	if (x < 2.2250738585072014e-308)
		return 0;
	pthread_once(&c_locale_once, c_locale_new);
	for (int prec = 15; prec <= 17; prec++) {
		/* "d.ddde±x" in the C locale, whatever the program's locale says */
		locale_t old = c_locale ? uselocale(c_locale) : (locale_t)0;
		snprintf(buf, sizeof(buf), "%.*e", prec - 1, x);
		if (old)
			uselocale(old);
		int ok = read_c(buf) == x || prec == 17;
		for (int step = -1; !ok && prec == 16 && step <= 1; step += 2) {
			/* the next 16-digit decimal up or down: the last digit +-1, carried */
			char alt[48];
			memcpy(alt, buf, sizeof(alt));
			char *e = strchr(alt, 'e'), *c = e - 1;
			while (c >= alt && (*c < '0' || *c > '9' || *c == (step > 0 ? '9' : '0'))) {
				if (*c >= '0' && *c <= '9')
					*c = step > 0 ? '0' : '9';
				c--;
			}
			if (c < alt || (c == alt && step < 0 && *c == '1'))
				continue; /* 9.99...e+N up, or 1.00...e+N down: another exponent */
			*c = (char)(*c + step);
			if (read_c(alt) == x) {
				memcpy(buf, alt, sizeof(buf));
				ok = 1;
			}
		}
		if (!ok)
			continue;
		int n = 0;
		const char *t = buf;
		for (; *t && *t != 'e'; t++)
			if (*t >= '0' && *t <= '9')
				digits[n++] = *t;
		while (n > 1 && digits[n - 1] == '0')
			n--;
		*decpt = atoi(t + 1) + 1;
		return n;
	}
	return 0;
}

size_t pymarshal_float_repr(double x, char *o)
{
	char digits[24], *start = o;
	int decpt, n;
	if (signbit(x)) {
		*o++ = '-';
		x = -x;
	}
	if (x == 0) {
		memcpy(o, "0.0", 3);
		return (size_t)(o + 3 - start);
	}
	if (!(n = shortest_exact(x, digits, &decpt)) && !(n = shortest_printf(x, digits, &decpt)))
		return 0;
	if (decpt <= -4 || decpt > 16) { /* d.ddde±XX, as float_repr_style "short" */
		*o++ = digits[0];
		if (n > 1) {
			*o++ = '.';
			memcpy(o, digits + 1, (size_t)n - 1);
			o += n - 1;
		}
		int e = decpt - 1;
		*o++ = 'e';
		*o++ = e < 0 ? '-' : '+';
		if (e < 0)
			e = -e;
		if (e < 10)
			*o++ = '0';
		o += put_u64(o, (uint64_t)e);
	} else if (decpt <= 0) { /* 0.000ddd */
		*o++ = '0';
		*o++ = '.';
		memset(o, '0', (size_t)-decpt);
		o += -decpt;
		memcpy(o, digits, (size_t)n);
		o += n;
	} else if (decpt >= n) { /* ddd000.0 */
		memcpy(o, digits, (size_t)n);
		o += n;
		memset(o, '0', (size_t)(decpt - n));
		o += decpt - n;
		memcpy(o, ".0", 2);
		o += 2;
	} else { /* dd.ddd */
		memcpy(o, digits, (size_t)decpt);
		o += decpt;
		*o++ = '.';
		memcpy(o, digits + decpt, (size_t)(n - decpt));
		o += n - decpt;
	}
	return (size_t)(o - start);
}

/* ---- strings ------------------------------------------------------------- */

/* s[0..n), UTF-8 in which marshal may have written lone surrogates (ED A0-BF
 * xx, "surrogatepass"), as a JSON string with each of those as '?', as
 * str.encode("utf-8", "replace") does after json.  Anything else that is
 * not UTF-8 is refused. */
static int put_string(struct pym *m, uptr s, size_t n, int ascii)
{
	size_t bad;
	if (json_utf8_check((const char *)s, n, &bad) == 0) {
		sbuf_put_jstr(m->out, (const char *)s, n);
		return 0;
	}
	if (ascii)
		return -1;
	struct sbuf clean;
	sbuf_init(&clean);
	while (n > 0) {
		if (json_utf8_check((const char *)s, n, &bad) == 0)
			bad = n;
		sbuf_put(&clean, s, bad);
		if (bad == n)
			break;
		if (n - bad < 3 || s[bad] != 0xed || s[bad + 1] < 0xa0 || s[bad + 1] > 0xbf ||
		    (s[bad + 2] & 0xc0) != 0x80) {
			sbuf_release(&clean);
			return -1;
		}
		sbuf_putc(&clean, '?');
		s += bad + 3;
		n -= bad + 3;
	}
	if (clean.oom) {
		m->out->oom = 1;
		sbuf_release(&clean);
		return -1;
	}
	sbuf_put_jstr(m->out, clean.buf ? clean.buf : "", clean.len);
	sbuf_release(&clean);
	return 0;
}

/* ---- values -------------------------------------------------------------- */

static uptr convert(struct pym *m, uptr p, int key);

/* A container's n items (a dict's n: until TYPE_NULL) after p, as JSON. */
static uptr put_items(struct pym *m, uptr p, int64_t n, int dict)
{
	if (++m->depth > m->max_depth)
		return refuse(m, PYM_TOO_DEEP);
	sbuf_putc(m->out, dict ? '{' : '[');
	for (int64_t i = 0; dict || i < n; i++) {
		if (dict) {
			if (p >= m->end)
				return refuse(m, PYM_REFUSED);
			if (*p == TYPE_NULL) {
				p++;
				break;
			}
		}
		if (i)
			sbuf_putc(m->out, ',');
		if (dict) {
			if (!(p = convert(m, p, 1)))
				return NULL;
			sbuf_putc(m->out, ':');
		}
		if (!(p = convert(m, p, 0)))
			return NULL;
	}
	sbuf_putc(m->out, dict ? '}' : ']');
	m->depth--;
	return p;
}

/* Writes the object at p as JSON (as a dict key when key: a string); returns
 * the byte after it, or NULL with m->err set. */
static uptr convert(struct pym *m, uptr p, int key)
{
	if (p >= m->end)
		return refuse(m, PYM_REFUSED);
	if (m->limit && m->out->len > m->limit)
		return refuse(m, PYM_TOO_LARGE);
	unsigned code = *p;
	if ((code & FLAG_REF) && !m->replaying) {
		if (m->nrefs == m->caprefs) {
			size_t cap = m->caprefs * 2;
			uptr *r = m->refs == m->inline_refs ? malloc(cap * sizeof(*r))
			                                    : realloc(m->refs, cap * sizeof(*r));
			if (!r) {
				m->out->oom = 1;
				return refuse(m, PYM_REFUSED);
			}
			if (m->refs == m->inline_refs)
				memcpy(r, m->inline_refs, sizeof(m->inline_refs));
			m->refs = r;
			m->caprefs = cap;
		}
		m->refs[m->nrefs++] = p;
	}
	p++;
	size_t left = (size_t)(m->end - p);
	switch (code & ~FLAG_REF) {
	case TYPE_NONE:
		sbuf_puts(m->out, key ? "\"null\"" : "null");
		return p;
	case TYPE_TRUE:
		sbuf_puts(m->out, key ? "\"true\"" : "true");
		return p;
	case TYPE_FALSE:
		sbuf_puts(m->out, key ? "\"false\"" : "false");
		return p;
	case TYPE_INT: {
		if (left < 4)
			return refuse(m, PYM_REFUSED);
		int64_t v = get_i32(p);
		char buf[24], *o = buf;
		if (key)
			*o++ = '"';
		if (v < 0)
			*o++ = '-';
		o += put_u64(o, (uint64_t)(v < 0 ? -v : v));
		if (key)
			*o++ = '"';
		sbuf_put(m->out, buf, (size_t)(o - buf));
		return p + 4;
	}
	case TYPE_LONG:
		return put_long(m, p, key);
	case TYPE_BINARY_FLOAT: {
		if (left < 8)
			return refuse(m, PYM_REFUSED);
		uint64_t bits = 0;
		for (int i = 7; i >= 0; i--)
			bits = bits << 8 | p[i];
		double x;
		memcpy(&x, &bits, 8);
		if (!isfinite(x)) /* json refuses NaN and infinities (allow_nan=False) */
			return refuse(m, PYM_REFUSED);
		char buf[40], *o = buf;
		if (key)
			*o++ = '"';
		size_t n = pymarshal_float_repr(x, o);
		if (!n) /* a subnormal */
			return refuse(m, PYM_REFUSED);
		o += n;
		if (key)
			*o++ = '"';
		sbuf_put(m->out, buf, (size_t)(o - buf));
		return p + 8;
	}
	case TYPE_SHORT_ASCII:
	case TYPE_SHORT_ASCII_INTERNED:
	case TYPE_ASCII:
	case TYPE_ASCII_INTERNED:
	case TYPE_UNICODE:
	case TYPE_INTERNED: {
		unsigned t = code & ~FLAG_REF;
		int shortlen = t == TYPE_SHORT_ASCII || t == TYPE_SHORT_ASCII_INTERNED;
		if (left < (shortlen ? 1u : 4u))
			return refuse(m, PYM_REFUSED);
		int64_t n = shortlen ? *p : get_i32(p);
		p += shortlen ? 1 : 4;
		if (n < 0 || (size_t)n > (size_t)(m->end - p))
			return refuse(m, PYM_REFUSED);
		if (put_string(m, p, (size_t)n, t != TYPE_UNICODE && t != TYPE_INTERNED))
			return refuse(m, PYM_REFUSED);
		return p + n;
	}
	case TYPE_SMALL_TUPLE:
		if (key || left < 1)
			return refuse(m, PYM_REFUSED);
		return put_items(m, p + 1, *p, 0);
	case TYPE_TUPLE:
	case TYPE_LIST: {
		if (key || left < 4)
			return refuse(m, PYM_REFUSED);
		int64_t n = get_i32(p);
		if (n < 0 || (size_t)n > left) /* each item takes a byte at least */
			return refuse(m, PYM_REFUSED);
		return put_items(m, p + 4, n, 0);
	}
	case TYPE_DICT:
		if (key)
			return refuse(m, PYM_REFUSED);
		return put_items(m, p, 0, 1);
	case TYPE_REF: {
		if (left < 4)
			return refuse(m, PYM_REFUSED);
		int64_t i = get_i32(p);
		if (i < 0 || (size_t)i >= m->nrefs)
			return refuse(m, PYM_REFUSED);
		/* written again; a reference to a container being written (a
		 * cycle) ends at max_depth, as each pass enters it once more */
		m->replaying++;
		uptr done = convert(m, m->refs[i], key);
		m->replaying--;
		return done ? p + 4 : NULL;
	}
	default: /* bytes, sets, complex, code, ...: not as json writes them */
		return refuse(m, PYM_REFUSED);
	}
}

int pymarshal_to_json(const void *data, size_t len, int max_depth, size_t max_bytes,
                      struct sbuf *out)
{
	size_t was = out->len;
	struct pym m = {
		.end = (uptr)data + len, .max_depth = max_depth, .out = out,
		.limit = max_bytes ? was + max_bytes : 0, .caprefs = REFS_INLINE,
	};
	m.refs = m.inline_refs;
	uptr end = data ? convert(&m, (uptr)data, 0) : refuse(&m, PYM_REFUSED);
	if (m.refs != m.inline_refs)
		free(m.refs);
	if (end && end != m.end)
		m.err = PYM_REFUSED; /* bytes after the value */
	if (!m.err && m.limit && out->len > m.limit)
		m.err = PYM_TOO_LARGE;
	if (m.err || out->oom) {
		out->len = was;
		if (out->buf)
			out->buf[was] = '\0';
		return m.err ? m.err : PYM_REFUSED;
	}
	return PYM_OK;
}
