/* core/redact.c - redaction of emails, phone numbers, API keys and user patterns in JSON text
 *
 * redact_json() walks the JSON text from string to string.  Between strings
 * it follows the brackets, commas and colons, to expect a key or a value
 * (that only picks the scanner: a string followed by ':' is a key, and keys
 * are left alone).  A key is scanned for its closing quote only.  In a value
 * the built-in scanners run on the raw, still escaped text, stopping only at
 * bytes that can start or anchor a match ('@' for emails; a digit, '+' or '('
 * for phone numbers; '-', '_', 'A', 'B' for the API key shapes) and at '"'
 * and '\\', found 64 bytes at a time with SSE2.  An escape sequence is never
 * part of a match: the end of the last escape (or of the last match) is a
 * barrier no match may start before, and forward scans stop at the backslash
 * because no scanner accepts one.  Matches are therefore whole runs of ASCII
 * (and, for the local part of an email, two-byte UTF-8 letters) between
 * escapes, and the replacement, JSON-escaped once when it is added, keeps the
 * string valid.
 *
 * User patterns (regcomp REG_EXTENDED) run after the built-ins on the decoded
 * text of each string value; a string they change is written back escaped.
 * A match is widened to whole UTF-8 characters, so the output stays UTF-8.
 *
 * A string value with no match is copied with the bytes around it: when
 * nothing matches, the output is the input, appended with one sbuf_put().
 */
#include "redact.h"

#include "json.h"

#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

typedef const unsigned char *uptr;

enum builtin { B_EMAIL, B_PHONE, B_API_KEY, B_COUNT };

static const char *const builtin_names[B_COUNT] = { "email", "phone", "api_key" };
static const char *const builtin_defaults[B_COUNT] = { "[EMAIL]", "[PHONE]", "[API_KEY]" };

#define MAX_GROUPS 10 /* \0 .. \9 */

/* One piece of a pattern's replacement: literal bytes, or a group. */
struct piece {
	int    group; /* -1: lit[off .. off+len) */
	size_t off, len;
};

struct pattern {
	regex_t       re;
	size_t        nsub;
	char         *lit;
	struct piece *pieces;
	int           npieces;
};

struct redactor {
	int             on[B_COUNT];
	char           *repl[B_COUNT];     /* JSON-escaped, without quotes */
	size_t          repl_len[B_COUNT];
	struct pattern *pats;
	int             npats;
};

/* --- set-up --------------------------------------------------------------- */

struct redactor *redact_new(void)
{
	return calloc(1, sizeof(struct redactor));
}

static void pattern_release(struct pattern *pt)
{
	regfree(&pt->re);
	free(pt->lit);
	free(pt->pieces);
}

void redact_destroy(struct redactor *r)
{
	if (!r)
		return;
	for (int i = 0; i < B_COUNT; i++)
		free(r->repl[i]);
	for (int i = 0; i < r->npats; i++)
		pattern_release(&r->pats[i]);
	free(r->pats);
	free(r);
}

static int errf(char *errstr, size_t errstr_size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int errf(char *errstr, size_t errstr_size, const char *fmt, ...)
{
	if (errstr && errstr_size) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(errstr, errstr_size, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* The escaped body of a JSON string (what sbuf_put_jstr writes between the quotes). */
static void put_escaped(struct sbuf *o, const char *s, size_t n)
{
	size_t at = o->len;
	sbuf_put_jstr(o, s, n);
	if (o->oom)
		return;
	/* drop the quotes sbuf_put_jstr added */
	memmove(o->buf + at, o->buf + at + 1, o->len - at - 2);
	o->len -= 2;
	o->buf[o->len] = '\0';
}

int redact_add_builtin(struct redactor *r, const char *name, const char *replacement,
                       char *errstr, size_t errstr_size)
{
	int b;
	for (b = 0; b < B_COUNT; b++)
		if (name && !strcmp(name, builtin_names[b]))
			break;
	if (b == B_COUNT)
		return errf(errstr, errstr_size,
		            "unknown built-in pattern '%s' (known: email, phone, api_key)",
		            name ? name : "(null)");
	if (!replacement)
		replacement = builtin_defaults[b];
	if (json_utf8_check(replacement, strlen(replacement), NULL))
		return errf(errstr, errstr_size, "replacement for '%s' is not valid UTF-8", name);
	struct sbuf s;
	sbuf_init(&s);
	sbuf_put(&s, "", 0);
	put_escaped(&s, replacement, strlen(replacement));
	size_t len;
	char *esc = sbuf_detach(&s, &len);
	if (!esc)
		return errf(errstr, errstr_size, "out of memory");
	free(r->repl[b]);
	r->repl[b] = esc;
	r->repl_len[b] = len;
	r->on[b] = 1;
	return 0;
}

/* Splits a replacement into literal runs and group references. */
static int parse_replacement(struct pattern *pt, const char *ere, const char *repl,
                             char *errstr, size_t errstr_size)
{
	size_t n = strlen(repl);
	pt->lit = malloc(n + 1);
	pt->pieces = malloc((n + 1) * sizeof(*pt->pieces));
	if (!pt->lit || !pt->pieces)
		return errf(errstr, errstr_size, "out of memory");
	size_t lit = 0;
	for (size_t i = 0; i < n;) {
		if (repl[i] == '\\' && repl[i + 1] >= '0' && repl[i + 1] <= '9') {
			int g = repl[i + 1] - '0';
			if ((size_t)g > pt->nsub)
				return errf(errstr, errstr_size,
				            "replacement '%s': pattern '%s' has no group %d", repl, ere, g);
			pt->pieces[pt->npieces++] = (struct piece){ g, 0, 0 };
			i += 2;
			continue;
		}
		char c = repl[i];
		i += c == '\\' && repl[i + 1] == '\\' ? 2 : 1;
		if (!pt->npieces || pt->pieces[pt->npieces - 1].group >= 0)
			pt->pieces[pt->npieces++] = (struct piece){ -1, lit, 0 };
		pt->lit[lit++] = c;
		pt->pieces[pt->npieces - 1].len++;
	}
	return 0;
}

int redact_add_pattern(struct redactor *r, const char *ere, const char *replacement,
                       char *errstr, size_t errstr_size)
{
	if (!ere)
		return errf(errstr, errstr_size, "no pattern given");
	if (!replacement)
		replacement = "";
	if (json_utf8_check(replacement, strlen(replacement), NULL))
		return errf(errstr, errstr_size, "replacement for pattern '%s' is not valid UTF-8", ere);
	struct pattern pt;
	memset(&pt, 0, sizeof(pt));
	int rc = regcomp(&pt.re, ere, REG_EXTENDED);
	if (rc) {
		char why[256];
		regerror(rc, &pt.re, why, sizeof(why));
		return errf(errstr, errstr_size, "invalid pattern '%s': %s", ere, why);
	}
	pt.nsub = pt.re.re_nsub;
	if (regexec(&pt.re, "", 0, NULL, 0) == 0) {
		regfree(&pt.re);
		return errf(errstr, errstr_size, "pattern '%s' matches the empty string", ere);
	}
	if (parse_replacement(&pt, ere, replacement, errstr, errstr_size)) {
		pattern_release(&pt);
		return -1;
	}
	struct pattern *np = realloc(r->pats, (size_t)(r->npats + 1) * sizeof(*np));
	if (!np) {
		pattern_release(&pt);
		return errf(errstr, errstr_size, "out of memory");
	}
	r->pats = np;
	r->pats[r->npats++] = pt;
	return 0;
}

/* --- byte classes ------------------------------------------------------------ */

static inline int is_digit(unsigned c) { return c - '0' < 10u; }
static inline int is_upper(unsigned c) { return c - 'A' < 26u; }
static inline int is_lower(unsigned c) { return c - 'a' < 26u; }
static inline int is_alpha(unsigned c) { return (c | 0x20) - 'a' < 26u; }
static inline int is_alnum(unsigned c) { return is_digit(c) || is_alpha(c); }
static inline int is_word(unsigned c) { return is_alnum(c) || c == '_'; }
/* what API key bodies are made of */
static inline int is_keych(unsigned c) { return is_word(c) || c == '-'; }

static inline int is_local(unsigned c)
{
	return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

/* RFC 6750 b64token, the credentials of "Bearer" */
static inline int is_b64tok(unsigned c)
{
	return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' ||
	       c == '/' || c == '=';
}

static inline uptr skip_ws(uptr p, uptr end)
{
	while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
		p++;
	return p;
}

static inline uptr skip_alnum(uptr p, uptr end)
{
	while (p < end && is_alnum(*p))
		p++;
	return p;
}

/* Where the special bytes of 64 bytes of input lie (bit i: base[i]), and
 * where the quotes and backslashes lie.  Special are the bytes where a
 * built-in scanner looks: '"' and '\\' (the string's end, escapes), and what
 * can start or anchor a match: '@', a digit, '+', '(', '-', '_', 'A', 'B'.
 * Records are dense with them (digits in times and ids, '_' and '-'), so the
 * scanners walk these bits rather than compare again after each stop. */
struct blk {
	uptr     base;
	uint64_t spec, qb;
};

enum { QB = 0, SPEC = 1 };

static void blk_load(struct blk *b, uptr p, uptr end)
{
	b->base = p;
#if defined(__SSE2__)
	unsigned char tail[64];
	if (end - p < 64) { /* the last bytes, padded with NULs (not special) */
		memset(tail, 0, sizeof(tail));
		memcpy(tail, p, (size_t)(end - p));
		p = tail;
	}
	const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
	const __m128i at = _mm_set1_epi8('@'), plus = _mm_set1_epi8('+');
	const __m128i lpar = _mm_set1_epi8('('), dash = _mm_set1_epi8('-');
	const __m128i under = _mm_set1_epi8('_');
	const __m128i below_a = _mm_set1_epi8('A' - 1), above_b = _mm_set1_epi8('B' + 1);
	const __m128i below_0 = _mm_set1_epi8('0' - 1), above_9 = _mm_set1_epi8('9' + 1);
	uint64_t spec = 0, qb = 0;
	for (int i = 0; i < 4; i++) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * i));
		__m128i q = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash));
		__m128i m2 = _mm_or_si128(_mm_cmpeq_epi8(v, at), _mm_cmpeq_epi8(v, plus));
		__m128i m3 = _mm_or_si128(_mm_cmpeq_epi8(v, lpar), _mm_cmpeq_epi8(v, dash));
		__m128i m4 = _mm_or_si128(_mm_cmpeq_epi8(v, under),
		                          _mm_and_si128(_mm_cmpgt_epi8(v, below_a),
		                                        _mm_cmplt_epi8(v, above_b)));
		__m128i m5 = _mm_and_si128(_mm_cmpgt_epi8(v, below_0), _mm_cmplt_epi8(v, above_9));
		__m128i m = _mm_or_si128(_mm_or_si128(q, m2), _mm_or_si128(_mm_or_si128(m3, m4), m5));
		qb |= (uint64_t)(unsigned)_mm_movemask_epi8(q) << (16 * i);
		spec |= (uint64_t)(unsigned)_mm_movemask_epi8(m) << (16 * i);
	}
	b->spec = spec;
	b->qb = qb;
#else
	/* Bytes where a built-in scanner looks: the string's end, escapes, and
	 * what can start or anchor a match. */
	static const unsigned char special[256] = {
		['"'] = 1, ['\\'] = 1, ['@'] = 1, ['+'] = 1, ['('] = 1, ['-'] = 1, ['_'] = 1,
		['A'] = 1, ['B'] = 1, ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1,
		['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
	};
	uint64_t spec = 0, qb = 0;
	size_t n = end - p < 64 ? (size_t)(end - p) : 64;
	for (size_t i = 0; i < n; i++) {
		spec |= (uint64_t)special[p[i]] << i;
		qb |= (uint64_t)(p[i] == '"' || p[i] == '\\') << i;
	}
	b->spec = spec;
	b->qb = qb;
#endif
}

/* The first byte at or after p that is special (which: SPEC) or a quote or
 * backslash (QB); end when there is none. */
static inline uptr blk_next(struct blk *b, uptr p, uptr end, int which)
{
	for (;;) {
		if (p >= end)
			return end;
		size_t off = (size_t)(p - b->base);
		if (off >= 64) {
			blk_load(b, p, end);
			off = 0;
		}
		uint64_t m = (which == SPEC ? b->spec : b->qb) >> off;
		if (m)
			return p + __builtin_ctzll(m);
		p = b->base + 64;
	}
}

/* p at a backslash: the byte after the escape sequence. */
static inline uptr skip_escape(uptr p, uptr end)
{
	p += (end - p > 1 && p[1] == 'u') ? 6 : 2;
	return p > end ? end : p;
}

/* --- matches ----------------------------------------------------------------- */

struct span {
	uptr so, eo;
	int  kind;
};

/* The matches of one string, in order, never overlapping. */
struct spans {
	struct span *v;
	size_t       n, cap;
	int          oom;
	struct span  small[16];
};

static void spans_init(struct spans *sp)
{
	sp->v = sp->small;
	sp->n = 0;
	sp->cap = sizeof(sp->small) / sizeof(sp->small[0]);
	sp->oom = 0;
}

static void spans_release(struct spans *sp)
{
	if (sp->v != sp->small)
		free(sp->v);
}

static void spans_push(struct spans *sp, uptr so, uptr eo, int kind)
{
	if (sp->n == sp->cap) {
		struct span *nv = malloc(sp->cap * 2 * sizeof(*nv));
		if (!nv) {
			sp->oom = 1;
			return;
		}
		memcpy(nv, sp->v, sp->n * sizeof(*nv));
		spans_release(sp);
		sp->v = nv;
		sp->cap *= 2;
	}
	sp->v[sp->n++] = (struct span){ so, eo, kind };
}

/* The state of the built-in scan of one string. */
struct scan {
	const struct redactor *r;
	uptr                   end; /* of the whole input */
	uptr                   bar; /* no match starts before: the string's start, the
	                               end of the last escape or of the last match */
	struct spans          *sp;
	struct blk            *blk;
};

/* The byte before p, or a space at the barrier (an escape counts as a break). */
static inline unsigned prev_ch(const struct scan *x, uptr p)
{
	return p > x->bar ? p[-1] : ' ';
}

static uptr found(struct scan *x, uptr so, uptr eo, int kind)
{
	spans_push(x->sp, so, eo, kind);
	x->bar = eo;
	return eo;
}

/* --- emails: local@domain.tld ---------------------------------------------- */

static uptr email_at(struct scan *x, uptr at)
{
	uptr end = x->end, ls = at, q = at + 1, best = NULL;
	/* the local part: at most 64 bytes; letters of two UTF-8 bytes (Latin
	 * after U+00C0, Greek, Cyrillic, ...: josé@, müller@) count, wider ones
	 * (CJK, fullwidth or typographic punctuation) end it */
	while (ls > x->bar && at - ls < 64) {
		if (is_local(ls[-1]))
			ls--;
		else if (ls[-1] >= 0x80 && ls[-1] < 0xc0 && ls - x->bar >= 2 && ls[-2] >= 0xc3 &&
		         ls[-2] < 0xe0)
			ls -= 2;
		else
			break;
	}
	while (ls < at && *ls == '.')
		ls++;
	if (ls == at)
		return at + 1;
	/* labels of letters, digits and inner hyphens; the last one kept is a
	 * TLD of 2+ letters after at least one dot */
	for (int labels = 1;; labels++) {
		uptr l = q;
		int alpha = 1;
		if (q >= end || !is_alnum(*q))
			break;
		while (q < end && (is_alnum(*q) || *q == '-')) {
			alpha &= is_alpha(*q);
			q++;
		}
		if (q[-1] == '-')
			break;
		if (labels >= 2 && alpha && q - l >= 2)
			best = q;
		if (end - q < 2 || *q != '.' || !is_alnum(q[1]))
			break;
		q++;
	}
	return best ? found(x, ls, best, B_EMAIL) : at + 1;
}

/* --- phone numbers ------------------------------------------------------------ */

#define PH_GROUPS 12
#define PH_MAX    15 /* E.164: at most 15 digits */

/* A run of digits, perhaps in parentheses, and the byte that joined it to the
 * group before ('\0' for the first, ')' straight after a parenthesis). */
struct grp {
	uptr          open, ds, de, close;
	unsigned char paren, sep;
};

static inline size_t nd(const struct grp *g)
{
	return (size_t)(g->de - g->ds);
}

/* International: +CC (or 00CC) and groups, 9 to 15 digits; returns the last group. */
static int ph_intl(const struct grp *g, int n, int i, size_t skip)
{
	size_t d = nd(&g[i]) - skip;
	int k = i;
	while (k + 1 < n && d + nd(&g[k + 1]) <= PH_MAX)
		d += nd(&g[++k]);
	return d >= 9 && d <= PH_MAX ? k : -1;
}

/* North American: [1 ]NXX NXX XXXX as (212) 555-0199, 415-555-0134, 415.555.0134. */
static int ph_nanp(const struct grp *g, int n, int i)
{
	int j = i;
	if (!g[j].paren && nd(&g[j]) == 1 && g[j].ds[0] == '1' && j + 1 < n && g[j + 1].sep != ')')
		j++;
	if (j + 2 >= n)
		return -1;
	const struct grp *a = &g[j], *b = &g[j + 1], *c = &g[j + 2];
	if (nd(a) != 3 || nd(b) != 3 || nd(c) != 4 || b->paren || c->paren)
		return -1;
	if (a->ds[0] < '2' || b->ds[0] < '2')
		return -1;
	if (a->paren) {
		if (b->sep == '.' || c->sep == ')')
			return -1;
	} else if (b->sep != c->sep) {
		return -1;
	}
	return j + 2;
}

/* National with a trunk 0: 020 7946 0958, (030) 1234 5678, 07700-900123. */
static int ph_trunk(const struct grp *g, int n, int i)
{
	const struct grp *a = &g[i];
	if (a->ds[0] != '0' || nd(a) < 2 || a->ds[1] == '0')
		return -1;
	size_t d = nd(a);
	int k = i;
	while (k + 1 < n && nd(&g[k + 1]) >= 2 && !g[k + 1].paren && g[k + 1].sep != '.' &&
	       d + nd(&g[k + 1]) <= 11)
		d += nd(&g[++k]);
	return k > i && d >= 10 ? k : -1;
}

/* After a number: not inside a word, an address or a longer figure. */
static int ph_end_ok(const struct scan *x, uptr e)
{
	if (e >= x->end)
		return 1;
	unsigned c = *e;
	if (is_word(c) || c == '@')
		return 0;
	if ((c == '/' || c == ':' || c == ',' || c == '.' || c == '-' || c == '+') &&
	    x->end - e > 1 && is_digit(e[1]))
		return 0;
	return 1;
}

static uptr phone_at(struct scan *x, uptr p)
{
	uptr end = x->end, q = p;
	unsigned pc = prev_ch(x, p);
	struct grp g[PH_GROUPS];
	int n = 0, plus = 0;
	unsigned char sep = 0;

	/* a figure inside a word, an address, a date, a decimal or a list of numbers */
	if (is_word(pc) || pc == '@' || pc == '+' ||
	    ((pc == '.' || pc == ',' || pc == '-' || pc == '/' || pc == ':') && p - x->bar >= 2 &&
	     is_digit(p[-2])))
		return is_digit(*p) ? skip_alnum(p, end) : p + 1;
	if (*q == '+')
		plus = 1, q++;
	while (n < PH_GROUPS) {
		uptr o = q, ds;
		int paren = q < end && *q == '(';
		q += paren;
		for (ds = q; q < end && is_digit(*q);)
			q++;
		if (q == ds)
			break;
		if (q - ds > PH_MAX) /* a long run of digits is no phone number */
			return skip_alnum(q, end);
		if (paren) {
			if (q >= end || *q != ')')
				break;
			q++;
		}
		g[n++] = (struct grp){ o, ds, paren ? q - 1 : q, q, (unsigned char)paren, sep };
		if (q >= end)
			break;
		if (paren && is_digit(*q)) {
			sep = ')';
			continue;
		}
		if ((*q == ' ' || *q == '-' || *q == '.') && end - q > 1 &&
		    (is_digit(q[1]) || (q[1] == '(' && *q != '.' && end - q > 2 && is_digit(q[2])))) {
			sep = *q++;
			continue;
		}
		break;
	}
	/* try each start: the first group, then each group after a space */
	for (int i = 0; i < n;) {
		int k = -1;
		if (i == 0 && plus) {
			if (nd(&g[0]) == 1 && g[0].ds[0] == '1' && !g[0].paren && n > 1)
				k = ph_nanp(g, n, 1);
			if (k < 0)
				k = ph_intl(g, n, 0, 0);
		} else {
			if (!g[i].paren && nd(&g[i]) >= 3 && g[i].ds[0] == '0' && g[i].ds[1] == '0')
				k = ph_intl(g, n, i, 2);
			if (k < 0)
				k = ph_nanp(g, n, i);
			if (k < 0)
				k = ph_trunk(g, n, i);
		}
		if (k >= 0 && (k == n - 1 ? ph_end_ok(x, g[k].close) : g[k + 1].sep == ' '))
			return found(x, i == 0 ? p : g[i].open, g[k].close, B_PHONE);
		do
			i++;
		while (i < n && g[i].sep != ' ');
	}
	if (n == 0)
		return is_digit(*p) ? skip_alnum(p, end) : p + 1;
	/* the rest of the figure: "T21:32:21.341276Z" after a date, "b2" of a hex id */
	for (q = g[n - 1].close; q < end && (is_word(*q) || *q == ':' || *q == '.');)
		q++;
	return q;
}

/* --- API keys ---------------------------------------------------------------- */

/* p - k is where a key would start: inside the string, not inside a word. */
static inline int key_start(const struct scan *x, uptr p, size_t k)
{
	return (size_t)(p - x->bar) >= k && !is_keych(prev_ch(x, p - k));
}

/* p at '-': sk-… (OpenAI, Anthropic), xoxb-… and friends (Slack) */
static uptr key_dash(struct scan *x, uptr p)
{
	uptr end = x->end, q;
	if (key_start(x, p, 2) && p[-2] == 's' && p[-1] == 'k') {
		for (q = p + 1; q < end && is_keych(*q);)
			q++;
		if (q - p > 20)
			return found(x, p - 2, q, B_API_KEY);
	}
	if (key_start(x, p, 4) &&
	    ((p[-4] == 'x' && p[-3] == 'o' && p[-2] == 'x' &&
	      (p[-1] == 'a' || p[-1] == 'b' || p[-1] == 'p' || p[-1] == 'r' || p[-1] == 's')) ||
	     !memcmp(p - 4, "xapp", 4))) {
		for (q = p + 1; q < end && (is_alnum(*q) || *q == '-');)
			q++;
		if (q - p > 10)
			return found(x, p - 4, q, B_API_KEY);
	}
	return p + 1;
}

/* p at '_': ghp_… gho_… ghu_… ghs_… ghr_…, github_pat_… (GitHub), sk_live_… (Stripe) */
static uptr key_under(struct scan *x, uptr p)
{
	uptr end = x->end, q;
	if (key_start(x, p, 3) && p[-3] == 'g' && p[-2] == 'h' &&
	    (p[-1] == 'p' || p[-1] == 'o' || p[-1] == 'u' || p[-1] == 's' || p[-1] == 'r')) {
		for (q = p + 1; q < end && is_alnum(*q);)
			q++;
		if (q - p > 30)
			return found(x, p - 3, q, B_API_KEY);
	}
	if (key_start(x, p, 6) && !memcmp(p - 6, "github", 6) && end - p > 5 &&
	    !memcmp(p + 1, "pat_", 4)) {
		for (q = p + 5; q < end && is_word(*q);)
			q++;
		if (q - (p + 5) >= 22)
			return found(x, p - 6, q, B_API_KEY);
	}
	if (key_start(x, p, 2) && (p[-2] == 's' || p[-2] == 'r') && p[-1] == 'k' && end - p > 6 &&
	    (!memcmp(p + 1, "live_", 5) || !memcmp(p + 1, "test_", 5))) {
		for (q = p + 6; q < end && is_alnum(*q);)
			q++;
		if (q - (p + 6) >= 16)
			return found(x, p - 2, q, B_API_KEY);
	}
	return p + 1;
}

/* p at 'A': AKIA…/ASIA… (AWS access key ids), AIza… (Google) */
static uptr key_a(struct scan *x, uptr p)
{
	uptr end = x->end, q;
	if (is_alnum(prev_ch(x, p)))
		return skip_alnum(p, end);
	if (end - p >= 20 && (!memcmp(p, "AKIA", 4) || !memcmp(p, "ASIA", 4))) {
		for (q = p + 4; q < end && (is_digit(*q) || is_upper(*q));)
			q++;
		if (q - p == 20 && (q >= end || !is_alnum(*q)))
			return found(x, p, q, B_API_KEY);
	}
	if (end - p >= 39 && !memcmp(p, "AIza", 4)) {
		for (q = p + 4; q < end && is_keych(*q);)
			q++;
		if (q - p >= 39)
			return found(x, p, q, B_API_KEY);
	}
	return skip_alnum(p, end);
}

/* p at 'B': "Bearer <token>" keeps "Bearer " and redacts the token */
static uptr key_bearer(struct scan *x, uptr p)
{
	static const char rest[] = "earer ";
	uptr end = x->end, t, q;
	if (is_alnum(prev_ch(x, p)))
		return skip_alnum(p, end);
	if (end - p < 8)
		return p + 1;
	for (int i = 0; i < 5; i++)
		if ((p[1 + i] | 0x20) != (unsigned char)rest[i])
			return skip_alnum(p, end);
	if (p[6] != ' ')
		return skip_alnum(p, end);
	for (t = p + 7; t < end && *t == ' ';)
		t++;
	int digit = 0, upper = 0, lower = 0;
	for (q = t;;) {
		if (q < end && is_b64tok(*q)) {
			digit |= is_digit(*q);
			upper |= q > t && is_upper(*q);
			lower |= is_lower(*q);
			q++;
		} else if (end - q > 1 && q[0] == '\\' && q[1] == '/') { /* "\/", as PHP writes '/' */
			q += 2;
		} else {
			break;
		}
	}
	while (q > t && q[-1] == '.')
		q--;
	if (q - t >= 16 && (digit || (upper && lower)))
		return found(x, t, q, B_API_KEY);
	return t;
}

/* Keys whose string value is a secret as a whole (compared lowercased,
 * without '_' and '-', as the end of the key: "openai_api_key", "X-Auth-Token"). */
enum { SECRET_NONE, SECRET_TOKEN, SECRET_AUTH };

/* Whether the key s..e ends with name (lowercase, no '_' or '-'), ignoring
 * case and the key's '_' and '-'. */
static int key_ends_with(uptr s, uptr e, const char *name, size_t n)
{
	while (n > 0) {
		if (e == s)
			return 0;
		unsigned c = *--e;
		if (c == '_' || c == '-')
			continue;
		if ((is_upper(c) ? c | 0x20 : c) != (unsigned char)name[--n])
			return 0;
	}
	return 1;
}

static int secret_key(uptr s, uptr e)
{
	static const struct {
		const char *name;
		size_t      len;
	} tokens[] = {
#define T(lit) { lit, sizeof(lit) - 1 }
		T("apikey"), T("apitoken"), T("apisecret"), T("accesstoken"), T("refreshtoken"),
		T("idtoken"), T("authtoken"), T("sessiontoken"), T("clientsecret"), T("secret"),
		T("secretkey"), T("privatekey"), T("accesskey"), T("token"),
#undef T
	};
	if (e - s < 5 || e - s > 64)
		return SECRET_NONE;
	/* every name ends in "en", "on", "ey" or "et": most keys stop here */
	unsigned last = e[-1] | 0x20, prev = e[-2] | 0x20;
	if (!((prev == 'e' && (last == 'n' || last == 'y' || last == 't')) ||
	      (prev == 'o' && last == 'n')) ||
	    memchr(s, '\\', (size_t)(e - s)))
		return SECRET_NONE;
	if (key_ends_with(s, e, "authorization", 13))
		return SECRET_AUTH;
	for (size_t i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++)
		if (key_ends_with(s, e, tokens[i].name, tokens[i].len))
			return SECRET_TOKEN;
	return SECRET_NONE;
}

/* A single opaque token: 16+ bytes of [A-Za-z0-9._~+/=:-], letters and digits. */
static int opaque_token(uptr s, uptr e)
{
	int digit = 0, alpha = 0;
	if (e - s < 16)
		return 0;
	for (uptr p = s; p < e; p++) {
		if (*p == '\\' && e - p > 1 && p[1] == '/') {
			p++;
			continue;
		}
		if (!is_b64tok(*p) && *p != ':')
			return 0;
		digit |= is_digit(*p);
		alpha |= is_alpha(*p);
	}
	return digit && alpha;
}

/* The value s..e of a secret-looking key: the whole of it, or for
 * "authorization" what follows the scheme, replaces what the scan found. */
static void secret_value(struct spans *sp, int kind, uptr s, uptr e)
{
	uptr so = NULL;
	if (kind == SECRET_AUTH) {
		uptr p = s;
		while (p < e && (is_alpha(*p) || *p == '-'))
			p++;
		if (p > s && p < e && *p == ' ') {
			while (p < e && *p == ' ')
				p++;
			if (p < e)
				so = p;
		}
	}
	if (!so && opaque_token(s, e))
		so = s;
	if (so) {
		sp->n = 0;
		spans_push(sp, so, e, B_API_KEY);
	}
}

/* Scans the string whose body starts at p with the built-ins; returns its
 * closing quote (or end). */
static uptr scan_builtins(struct scan *x, uptr p)
{
	const struct redactor *r = x->r;
	uptr end = x->end;
	for (;;) {
		p = blk_next(x->blk, p, end, SPEC);
		if (p >= end)
			return end;
		switch (*p) {
		case '"':
			return p;
		case '\\':
			p = x->bar = skip_escape(p, end);
			break;
		case '@':
			p = r->on[B_EMAIL] ? email_at(x, p) : p + 1;
			break;
		case '-':
			p = r->on[B_API_KEY] ? key_dash(x, p) : p + 1;
			break;
		case '_':
			p = r->on[B_API_KEY] ? key_under(x, p) : p + 1;
			break;
		case 'A':
			p = r->on[B_API_KEY] ? key_a(x, p) : p + 1;
			break;
		case 'B':
			p = r->on[B_API_KEY] ? key_bearer(x, p) : p + 1;
			break;
		default: /* a digit, '+' or '(' */
			p = r->on[B_PHONE] ? phone_at(x, p) : p + 1;
		}
	}
}

/* The closing quote of the string whose body starts at p (or end). */
static uptr scan_plain(struct blk *b, uptr p, uptr end)
{
	for (;;) {
		p = blk_next(b, p, end, QB);
		if (p >= end || *p == '"')
			return p;
		p = skip_escape(p, end);
	}
}

/* Which containers are open, to tell keys from values before scanning.  It
 * only guides the choice of scanner; whether a ':' follows decides. */
#define NEST_MAX 4096

struct nest {
	int      depth;
	int      key;   /* the next string is expected to be a key */
	uint64_t obj[NEST_MAX / 64];
};

/* Walks structure, numbers and literals from p to the next '"' (or end). */
static inline uptr gap(struct nest *ns, uptr p, uptr end)
{
	for (; p < end; p++) {
		unsigned c = *p;
		if (c == '"')
			return p;
		if (c == ':') {
			ns->key = 0;
		} else if (c == ',') {
			int d = ns->depth - 1;
			ns->key = d >= 0 && d < NEST_MAX && (ns->obj[d / 64] >> (d % 64) & 1);
		} else if (c == '{' || c == '[') {
			int d = ns->depth++;
			ns->key = c == '{';
			if (d < NEST_MAX) {
				uint64_t bit = (uint64_t)1 << (d % 64);
				ns->obj[d / 64] = c == '{' ? ns->obj[d / 64] | bit : ns->obj[d / 64] & ~bit;
			}
		} else if (c == '}' || c == ']') {
			ns->depth -= ns->depth > 0;
		}
	}
	return end;
}

/* --- writing ------------------------------------------------------------------ */

/* The string body s..e with the spans replaced, still escaped. */
static void put_spans(const struct redactor *r, const struct spans *sp, uptr s, uptr e,
                      struct sbuf *o)
{
	for (size_t i = 0; i < sp->n; i++) {
		sbuf_put(o, s, (size_t)(sp->v[i].so - s));
		sbuf_put(o, r->repl[sp->v[i].kind], r->repl_len[sp->v[i].kind]);
		s = sp->v[i].eo;
	}
	sbuf_put(o, s, (size_t)(e - s));
}

/* Moves a (regex) match boundary to the start of the UTF-8 character it cuts. */
static size_t char_start(const char *d, size_t i)
{
	while (i > 0 && ((unsigned char)d[i] & 0xc0) == 0x80)
		i--;
	return i;
}

static size_t char_end(const char *d, size_t n, size_t i)
{
	while (i < n && ((unsigned char)d[i] & 0xc0) == 0x80)
		i++;
	return i;
}

/* Replaces the matches of pt in d[0..dn) (NUL-terminated) into o (emptied
 * first).  Returns how many, 0 (o untouched) or -1 on allocation failure. */
static long apply_pattern(const struct pattern *pt, const char *d, size_t dn, struct sbuf *o)
{
	regmatch_t m[MAX_GROUPS];
	size_t nm = pt->nsub + 1 < MAX_GROUPS ? pt->nsub + 1 : MAX_GROUPS;
	size_t pos = 0, done = 0;
	long n = 0;
	while (pos <= dn) {
#ifdef REG_STARTEND
		m[0].rm_so = (regoff_t)pos;
		m[0].rm_eo = (regoff_t)dn;
		int rc = regexec(&pt->re, d, nm, m, REG_STARTEND);
#else
		int rc = regexec(&pt->re, d + pos, nm, m, pos ? REG_NOTBOL : 0);
		for (size_t i = 0; !rc && i < nm; i++)
			if (m[i].rm_so >= 0)
				m[i].rm_so += (regoff_t)pos, m[i].rm_eo += (regoff_t)pos;
#endif
		if (rc == REG_NOMATCH)
			break;
		if (rc)
			return -1;
		size_t so = (size_t)m[0].rm_so, eo = (size_t)m[0].rm_eo;
		if (eo == so) { /* an empty match replaces nothing */
			pos = char_end(d, dn, so + 1);
			continue;
		}
		so = char_start(d, so);
		eo = char_end(d, dn, eo);
		if (!n)
			o->len = 0;
		sbuf_put(o, d + done, so - done);
		for (int i = 0; i < pt->npieces; i++) {
			const struct piece *pc = &pt->pieces[i];
			if (pc->group < 0) {
				sbuf_put(o, pt->lit + pc->off, pc->len);
			} else if (pc->group == 0) {
				sbuf_put(o, d + so, eo - so);
			} else if ((size_t)pc->group < nm && m[pc->group].rm_so >= 0 &&
			           m[pc->group].rm_eo > m[pc->group].rm_so) {
				size_t gs = char_start(d, (size_t)m[pc->group].rm_so);
				size_t ge = char_end(d, dn, (size_t)m[pc->group].rm_eo);
				sbuf_put(o, d + gs, ge - gs);
			}
		}
		done = pos = eo;
		n++;
	}
	if (n)
		sbuf_put(o, d + done, dn - done);
	return o->oom ? -1 : n;
}

/* Scratch buffers of one redact_json() call. */
struct work {
	struct sbuf a, b, c;
};

/* Writes the string value s..e (its body, between the quotes) with the spans
 * and the user patterns applied; *copied is where the input not yet written
 * starts.  Returns the replacements made, or -1. */
static long rewrite(const struct redactor *r, const struct spans *sp, uptr s, uptr e,
                    struct sbuf *out, uptr *copied, struct work *w)
{
	if (!r->npats) {
		sbuf_put(out, *copied, (size_t)(s - *copied));
		put_spans(r, sp, s, e, out);
		*copied = e;
		return (long)sp->n;
	}
	/* the text after the built-ins, escaped ... */
	const char *t = (const char *)s;
	size_t tn = (size_t)(e - s);
	if (sp->n) {
		w->a.len = 0;
		put_spans(r, sp, s, e, &w->a);
		if (w->a.oom)
			return -1;
		t = w->a.buf;
		tn = w->a.len;
	}
	/* ... and decoded, NUL-terminated: even with REG_STARTEND, which gives
	 * regexec() the length, sanitizers check the string up to its NUL */
	struct json_str js = { t, tn, memchr(t, '\\', tn) != NULL };
	w->b.len = 0;
	if (sbuf_reserve(&w->b, tn + 1) || json_str_decode(&js, w->b.buf, tn + 1, &w->b.len))
		return -1;
	const char *d = w->b.buf;
	size_t dn = w->b.len;
	long n = 0;
	for (int i = 0; i < r->npats; i++) {
		long k = apply_pattern(&r->pats[i], d, dn, &w->c);
		if (k < 0)
			return -1;
		if (k) {
			struct sbuf tmp = w->b;
			w->b = w->c;
			w->c = tmp;
			d = w->b.buf;
			dn = w->b.len;
			n += k;
		}
	}
	if (!n && !sp->n)
		return 0;
	sbuf_put(out, *copied, (size_t)(s - *copied));
	if (n)
		put_escaped(out, d, dn);
	else
		sbuf_put(out, t, tn);
	*copied = e;
	return n + (long)sp->n;
}

long redact_json(const struct redactor *r, const char *in, size_t len, struct sbuf *out)
{
	uptr p = (uptr)in, end = p + len, copied = p;
	int builtins = r->on[B_EMAIL] | r->on[B_PHONE] | r->on[B_API_KEY];
	int pending = SECRET_NONE; /* the next string is the value of a secret-looking key */
	long count = 0;
	struct spans sp;
	struct work w;
	struct blk blk = { p, 0, 0 };
	struct nest ns;

	if (!builtins && !r->npats) {
		sbuf_put(out, in, len);
		return out->oom ? -1 : 0;
	}
	blk_load(&blk, p, end);
	ns.depth = 0;
	ns.key = 0;
	spans_init(&sp);
	sbuf_init(&w.a);
	sbuf_init(&w.b);
	sbuf_init(&w.c);
	while ((p = gap(&ns, p, end)) < end) {
		uptr s = p + 1, e;
		struct scan x = { r, end, s, &sp, &blk };
		sp.n = 0;
		if (ns.key || !builtins)
			e = scan_plain(&blk, s, end);
		else
			e = scan_builtins(&x, s);
		if (e >= end) /* not JSON: copy the rest as it is */
			break;
		uptr a = skip_ws(e + 1, end);
		if (a < end && *a == ':') { /* an object key */
			pending = r->on[B_API_KEY] ? secret_key(s, e) : SECRET_NONE;
			p = skip_ws(a + 1, end);
			if (p >= end || *p != '"')
				pending = SECRET_NONE;
			ns.key = 0;
			continue;
		}
		if (ns.key && builtins) /* guessed wrong (not after valid JSON's '{' or ','): scan it */
			scan_builtins(&x, s);
		if (pending)
			secret_value(&sp, pending, s, e);
		pending = SECRET_NONE;
		if (sp.oom)
			break;
		if (sp.n || r->npats) {
			long n = rewrite(r, &sp, s, e, out, &copied, &w);
			if (n < 0) {
				count = -1;
				break;
			}
			count += n;
		}
		p = e + 1;
	}
	if (sp.oom)
		count = -1;
	if (count >= 0)
		sbuf_put(out, copied, (size_t)(end - copied));
	spans_release(&sp);
	sbuf_release(&w.a);
	sbuf_release(&w.b);
	sbuf_release(&w.c);
	if (count < 0 || out->oom) {
		out->oom = 1;
		return -1;
	}
	return count;
}
