/* core/record.c - trace record v1: limits and the validator
 *
 * rec_validate() walks the record once with json.h's cursor: every byte is
 * checked as JSON while the known fields are checked against the schema in
 * docs/trace-format.md.  Unknown fields, input, output and metadata are only
 * skipped (which checks them as JSON).  The first schema violation is kept
 * and the walk goes on, because a syntax error later in the record outranks
 * it; a trace_id problem outranks the other schema violations.  Span ids are
 * kept in a table (on the stack for small records) for the checks that need
 * all of them: unique ids, parents that exist, no cycles.
 *
 * On the way it notes where the top-level fields the sampler asks about lie
 * (struct rec_slice: the cursor's position before and after each value) and
 * the figures it reads anyway (latency, tokens), so classifying a record costs
 * no second parse.  Output is the one field walked a level deeper, for
 * output.context.  rec_has_tag() and friends then walk only those slices.
 */
#include "record.h"

#include "json.h"
#include "tstime.h"

#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SAFE_INT 9007199254740991ull /* 2^53 - 1 */
#define SMALL_SPANS 64

static const char *const reason_names[REC_REASON_COUNT] = {
	[REC_OK]          = "ok",
	[REC_TOO_LARGE]   = "too_large",
	[REC_NOT_JSON]    = "not_json",
	[REC_BAD_UTF8]    = "bad_utf8",
	[REC_TOO_DEEP]    = "too_deep",
	[REC_NO_TRACE_ID] = "no_trace_id",
	[REC_SCHEMA]      = "schema",
};

void rec_limits_default(struct rec_limits *lim)
{
	lim->max_bytes = REC_MAX_BYTES_DEFAULT;
	lim->max_depth = REC_MAX_DEPTH_DEFAULT;
	lim->max_spans = REC_MAX_SPANS_DEFAULT;
}

const char *rec_reason_name(enum rec_reason r)
{
	return (unsigned)r < REC_REASON_COUNT ? reason_names[r] : "unknown";
}

/* --- the known fields ------------------------------------------------------- */

enum key {
	K_V, K_TRACE_ID, K_SPAN_ID, K_PARENT_SPAN_ID, K_NAME, K_TYPE, K_PROJECT,
	K_START_TIME, K_END_TIME, K_INPUT, K_OUTPUT, K_TAGS, K_METADATA, K_MODEL,
	K_USAGE, K_LATENCY_MS, K_ERROR, K_SPANS,
	/* inside usage, latency_ms, error */
	K_INPUT_TOKENS, K_OUTPUT_TOKENS, K_TOTAL_TOKENS,
	K_TOTAL, K_TTFT, K_INTER_TOKEN_MEAN,
	K_ERR_TYPE, K_MESSAGE,
	K_COUNT
};

enum { IN_TOP = 1, IN_SPAN = 2, IN_USAGE = 4, IN_LATENCY = 8, IN_ERROR = 16 };

static const struct {
	const char *name;
	unsigned char len, where;
	const char *path; /* for members of usage, latency_ms, error */
} keys[K_COUNT] = {
#define KEY(k, s, w) [k] = { s, sizeof(s) - 1, w, NULL }
#define SUB(k, s, w, p) [k] = { s, sizeof(s) - 1, w, p }
	KEY(K_V,                "v",                   IN_TOP),
	KEY(K_TRACE_ID,         "trace_id",            IN_TOP),
	KEY(K_SPAN_ID,          "span_id",             IN_SPAN),
	KEY(K_PARENT_SPAN_ID,   "parent_span_id",      IN_SPAN),
	KEY(K_NAME,             "name",                IN_TOP | IN_SPAN),
	KEY(K_TYPE,             "type",                IN_SPAN),
	KEY(K_PROJECT,          "project",             IN_TOP),
	KEY(K_START_TIME,       "start_time",          IN_TOP | IN_SPAN),
	KEY(K_END_TIME,         "end_time",            IN_TOP | IN_SPAN),
	KEY(K_INPUT,            "input",               IN_TOP | IN_SPAN),
	KEY(K_OUTPUT,           "output",              IN_TOP | IN_SPAN),
	KEY(K_TAGS,             "tags",                IN_TOP | IN_SPAN),
	KEY(K_METADATA,         "metadata",            IN_TOP | IN_SPAN),
	KEY(K_MODEL,            "model",               IN_TOP | IN_SPAN),
	KEY(K_USAGE,            "usage",               IN_TOP | IN_SPAN),
	KEY(K_LATENCY_MS,       "latency_ms",          IN_TOP | IN_SPAN),
	KEY(K_ERROR,            "error",               IN_TOP | IN_SPAN),
	KEY(K_SPANS,            "spans",               IN_TOP),
	SUB(K_INPUT_TOKENS,     "input_tokens",        IN_USAGE,   "usage.input_tokens"),
	SUB(K_OUTPUT_TOKENS,    "output_tokens",       IN_USAGE,   "usage.output_tokens"),
	SUB(K_TOTAL_TOKENS,     "total_tokens",        IN_USAGE,   "usage.total_tokens"),
	SUB(K_TOTAL,            "total",               IN_LATENCY, "latency_ms.total"),
	SUB(K_TTFT,             "time_to_first_token", IN_LATENCY, "latency_ms.time_to_first_token"),
	SUB(K_INTER_TOKEN_MEAN, "inter_token_mean",    IN_LATENCY, "latency_ms.inter_token_mean"),
	SUB(K_ERR_TYPE,         "type",                IN_ERROR,   "error.type"),
	SUB(K_MESSAGE,          "message",             IN_ERROR,   "error.message"),
#undef KEY
#undef SUB
};

/* The top-level fields whose position goes into struct rec_info. */
enum field {
	F_NAME, F_MODEL, F_TAGS, F_METADATA, F_ERROR, F_INPUT, F_OUTPUT, F_USAGE,
	F_LATENCY_MS, F_CONTEXT, F_COUNT
};

/* field + 1 of a key at the top level, 0: not kept */
static const unsigned char field_of[K_COUNT] = {
	[K_NAME] = F_NAME + 1, [K_MODEL] = F_MODEL + 1, [K_TAGS] = F_TAGS + 1,
	[K_METADATA] = F_METADATA + 1, [K_ERROR] = F_ERROR + 1, [K_INPUT] = F_INPUT + 1,
	[K_OUTPUT] = F_OUTPUT + 1, [K_USAGE] = F_USAGE + 1, [K_LATENCY_MS] = F_LATENCY_MS + 1,
};

/* The known key that key names in an object of kind where, or -1. */
static int key_lookup(const struct json_str *key, unsigned where)
{
	char buf[32];
	const char *s = key->s;
	size_t len = key->len;
	int k = -1;
	if (key->escaped) {
		if (json_str_decode(key, buf, sizeof(buf), &len))
			return -1;
		s = buf;
	}
#define IS(lit) (!memcmp(s, lit, sizeof(lit) - 1))
	switch (len) {
	case 1:  k = IS("v") ? K_V : -1; break;
	case 4:  k = IS("name") ? K_NAME : IS("tags") ? K_TAGS :
	             IS("type") ? (where == IN_ERROR ? K_ERR_TYPE : K_TYPE) : -1; break;
	case 5:  k = IS("input") ? K_INPUT : IS("usage") ? K_USAGE : IS("error") ? K_ERROR :
	             IS("spans") ? K_SPANS : IS("model") ? K_MODEL : IS("total") ? K_TOTAL : -1; break;
	case 6:  k = IS("output") ? K_OUTPUT : -1; break;
	case 7:  k = IS("span_id") ? K_SPAN_ID : IS("project") ? K_PROJECT :
	             IS("message") ? K_MESSAGE : -1; break;
	case 8:  k = IS("trace_id") ? K_TRACE_ID : IS("metadata") ? K_METADATA :
	             IS("end_time") ? K_END_TIME : -1; break;
	case 10: k = IS("start_time") ? K_START_TIME : IS("latency_ms") ? K_LATENCY_MS : -1; break;
	case 12: k = IS("input_tokens") ? K_INPUT_TOKENS : IS("total_tokens") ? K_TOTAL_TOKENS : -1; break;
	case 13: k = IS("output_tokens") ? K_OUTPUT_TOKENS : -1; break;
	case 14: k = IS("parent_span_id") ? K_PARENT_SPAN_ID : -1; break;
	case 16: k = IS("inter_token_mean") ? K_INTER_TOKEN_MEAN : -1; break;
	case 19: k = IS("time_to_first_token") ? K_TTFT : -1; break;
	}
#undef IS
	return k >= 0 && (keys[k].where & where) ? k : -1;
}

/* --- validation state ------------------------------------------------------- */

struct span_ent {
	uint64_t id;     /* 0: none (ids are never all zeros) */
	uint64_t parent; /* 0: none */
	int      pidx;   /* index of the parent span, -1: none */
	int      state;  /* cycle check: 0 new, 1 on the path, 2 done */
};

struct rv {
	struct json_cur c;
	const struct rec_limits *lim;
	int  span;                /* span being checked, -1 at the top level */
	int  sch_set, tid_set;
	char sch[256], tid[160];  /* the first schema / trace_id violation */
	char trace_id[REC_TRACE_ID_LEN + 1];
	struct span_ent *ents;    /* one per span (up to lim->max_spans) */
	int  nspans, cap;
	/* the top-level fields for struct rec_info */
	struct rec_slice fields[F_COUNT];
	double  latency_total, ttft;
	int64_t total_tokens;
	int64_t start_us, end_us;
	int     has_error;
	struct span_ent small[SMALL_SPANS];
};

/* Notes that field's value, which started at at or after whitespace there,
 * ends at the cursor. */
static void field_set(struct rv *v, int field, const char *at)
{
	while (*at == ' ' || *at == '\n' || *at == '\t' || *at == '\r')
		at++;
	if (field == F_ERROR)
		v->has_error = *at != 'n';
	size_t off = (size_t)(at - v->c.buf), len = (size_t)(v->c.p - at);
	if (off + len <= UINT32_MAX) {
		v->fields[field].off = (uint32_t)off;
		v->fields[field].len = (uint32_t)len;
	}
}

/* strtod() of a number's text that is not NUL-terminated; -1 when out of memory. */
static __attribute__((noinline)) double num_slow(const char *s, size_t len)
{
	char small[64], *t = len < sizeof(small) ? small : malloc(len + 1);
	double d;
	if (!t)
		return -1;
	memcpy(t, s, len);
	t[len] = '\0';
	d = strtod(t, NULL);
	if (t != small)
		free(t);
	return d;
}

/* The value of a JSON number the cursor checked.  Most figures in records
 * ("1512.518") have few digits and a small exponent: then the digits are an
 * exact integer (at most 2^53) and one multiplication or division by an exact
 * power of ten rounds correctly (Clinger's fast path).  Others go to strtod()
 * on a NUL-terminated copy. */
static double num_value(const char *s, size_t len)
{
	static const double p10[] = {
		1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
		1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22
	};
	const char *p = s, *end = s + len, *dot = NULL;
	uint64_t m = 0;
	int e = 0, x = 0, neg = *p == '-';
	if (len > 19) /* so at most 19 digits: m cannot wrap */
		goto slow;
	for (p += neg; p < end; p++) {
		unsigned d = (unsigned)(unsigned char)*p - '0';
		if (d < 10)
			m = m * 10 + d;
		else if (*p == '.')
			dot = p;
		else
			break;
	}
	if (dot)
		e = -(int)(p - dot - 1);
	if (p < end) { /* 'e' or 'E', a sign, digits */
		int xneg = *++p == '-';
		p += *p == '-' || *p == '+';
		for (; p < end; p++)
			if (x < 100000) /* beyond any double either way */
				x = x * 10 + (*p - '0');
		e += xneg ? -x : x;
	}
	if (m == 0)
		return neg ? -0.0 : 0.0;
	if (m <= UINT64_C(1) << 53 && e >= -22 && e <= 22) {
		double d = e < 0 ? (double)m / p10[-e] : (double)m * p10[e];
		return neg ? -d : d;
	}
slow:
	return num_slow(s, len);
}

/* Records a schema violation of field (a path below the current span) unless
 * one was recorded already. */
static void sch_fail(struct rv *v, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void sch_fail(struct rv *v, const char *field, const char *fmt, ...)
{
	va_list ap;
	char pre[32] = "";
	int n;
	if (v->sch_set)
		return;
	v->sch_set = 1;
	if (v->span >= 0)
		snprintf(pre, sizeof(pre), "spans[%d].", v->span);
	n = snprintf(v->sch, sizeof(v->sch), "field '%s%s': ", pre, field);
	if (n < 0 || (size_t)n >= sizeof(v->sch))
		return;
	va_start(ap, fmt);
	vsnprintf(v->sch + n, sizeof(v->sch) - (size_t)n, fmt, ap);
	va_end(ap);
}

static const char *type_name(enum json_type t)
{
	switch (t) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY:  return "an array";
	case JSON_STRING: return "a string";
	case JSON_NUMBER: return "a number";
	case JSON_TRUE:
	case JSON_FALSE:  return "a boolean";
	case JSON_NULL:   return "null";
	default:          return "nothing";
	}
}

/* Each check consumes one value; it returns -1 only when the JSON itself is
 * broken (the cursor has the error), and records schema violations. */

static int check_skip(struct rv *v)
{
	return json_cur_skip(&v->c);
}

/* A string (non-empty if nonempty). */
static int check_string(struct rv *v, const char *field, int nonempty)
{
	struct json_str s;
	enum json_type t = json_cur_peek(&v->c);
	if (t != JSON_STRING) {
		if (t != JSON_NONE)
			sch_fail(v, field, "expected %s, found %s",
			         nonempty ? "a non-empty string" : "a string", type_name(t));
		return check_skip(v);
	}
	if (json_cur_string(&v->c, &s))
		return -1;
	if (nonempty && s.len == 0)
		sch_fail(v, field, "expected a non-empty string");
	return 0;
}

static int check_string_or_null(struct rv *v, const char *field)
{
	enum json_type t = json_cur_peek(&v->c);
	if (t != JSON_STRING && t != JSON_NULL && t != JSON_NONE)
		sch_fail(v, field, "expected a string or null, found %s", type_name(t));
	return check_skip(v);
}

static int check_object(struct rv *v, const char *field)
{
	enum json_type t = json_cur_peek(&v->c);
	if (t != JSON_OBJECT && t != JSON_NONE)
		sch_fail(v, field, "expected an object, found %s", type_name(t));
	return check_skip(v);
}

/* A string of want lowercase hex digits, not all zeros.  Returns the JSON
 * status; *ok says whether the id is good, and hex (want+1 bytes) gets it. */
static int check_hex_id(struct rv *v, size_t want, char *hex, int *ok)
{
	struct json_str s;
	char buf[40];
	size_t len = 0, i, zeros = 0;
	enum json_type t = json_cur_peek(&v->c);
	*ok = 0;
	if (t != JSON_STRING)
		return check_skip(v);
	if (json_cur_string(&v->c, &s))
		return -1;
	if (json_str_decode(&s, buf, sizeof(buf), &len) || len != want)
		return 0;
	for (i = 0; i < len; i++) {
		if (!((buf[i] >= '0' && buf[i] <= '9') || (buf[i] >= 'a' && buf[i] <= 'f')))
			return 0;
		zeros += buf[i] == '0';
	}
	memcpy(hex, buf, len + 1);
	*ok = zeros == len ? -1 : 1; /* -1: well formed but all zeros */
	return 0;
}

static uint64_t hex_u64(const char *hex)
{
	uint64_t u = 0;
	for (int i = 0; i < REC_SPAN_ID_LEN; i++)
		u = u << 4 | (uint64_t)(hex[i] <= '9' ? hex[i] - '0' : hex[i] - 'a' + 10);
	return u;
}

static int check_trace_id(struct rv *v)
{
	char hex[REC_TRACE_ID_LEN + 1];
	int ok;
	if (check_hex_id(v, REC_TRACE_ID_LEN, hex, &ok))
		return -1;
	if (ok == 1)
		memcpy(v->trace_id, hex, sizeof(hex));
	else if (!v->tid_set)
		snprintf(v->tid, sizeof(v->tid), "field 'trace_id': %s", ok ? "all zeros is not a valid trace id" :
		         "expected 32 lowercase hex characters");
	v->tid_set |= ok != 1;
	return 0;
}

/* span_id or parent_span_id (which may be null); *id gets it or 0. */
static int check_span_id(struct rv *v, const char *field, int nullable, uint64_t *id)
{
	char hex[REC_SPAN_ID_LEN + 1];
	int ok;
	*id = 0;
	if (nullable && json_cur_peek(&v->c) == JSON_NULL)
		return check_skip(v);
	if (check_hex_id(v, REC_SPAN_ID_LEN, hex, &ok))
		return -1;
	if (ok == 1)
		*id = hex_u64(hex);
	else if (ok == -1)
		sch_fail(v, field, "all zeros is not a valid span id");
	else
		sch_fail(v, field, "expected %s16 lowercase hex characters", nullable ? "null or " : "");
	return 0;
}

static int check_time(struct rv *v, const char *field, int64_t *us, int *have)
{
	struct json_str s;
	char buf[64];
	size_t len;
	enum json_type t = json_cur_peek(&v->c);
	if (t != JSON_STRING) {
		if (t != JSON_NONE)
			sch_fail(v, field, "expected an RFC 3339 timestamp, found %s", type_name(t));
		return check_skip(v);
	}
	if (json_cur_string(&v->c, &s))
		return -1;
	if (json_str_decode(&s, buf, sizeof(buf), &len) || tstime_parse(buf, len, us)) {
		sch_fail(v, field, "expected an RFC 3339 timestamp like 2024-05-01T12:00:00.000000Z");
		return 0;
	}
	*have = 1;
	return 0;
}

static int check_type(struct rv *v)
{
	static const char *const types[] = { "llm", "retrieval", "tool", "general" };
	struct json_str s;
	enum json_type t = json_cur_peek(&v->c);
	if (t != JSON_STRING) {
		if (t != JSON_NONE)
			sch_fail(v, "type", "expected one of llm, retrieval, tool, general");
		return check_skip(v);
	}
	if (json_cur_string(&v->c, &s))
		return -1;
	char buf[16];
	size_t len;
	if (!json_str_decode(&s, buf, sizeof(buf), &len))
		for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			if (strlen(types[i]) == len && !memcmp(types[i], buf, len))
				return 0;
	sch_fail(v, "type", "expected one of llm, retrieval, tool, general");
	return 0;
}

static int check_version(struct rv *v)
{
	const char *s;
	size_t len;
	enum json_type t = json_cur_peek(&v->c);
	if (t != JSON_NUMBER) {
		if (t != JSON_NONE)
			sch_fail(v, "v", "expected 1, found %s", type_name(t));
		return check_skip(v);
	}
	if (json_cur_number(&v->c, &s, &len))
		return -1;
	if (len != 1 || s[0] != '1')
		sch_fail(v, "v", "expected 1, found %.*s", len > 24 ? 24 : (int)len, s);
	return 0;
}

/* A non-negative integer, written without fraction or exponent, <= 2^53-1;
 * *out (may be NULL) gets it when it is one. */
static int check_count(struct rv *v, const char *field, int64_t *out)
{
	const char *s;
	size_t len;
	enum json_type t = json_cur_peek(&v->c);
	if (t != JSON_NUMBER) {
		if (t != JSON_NONE)
			sch_fail(v, field, "expected a non-negative integer, found %s", type_name(t));
		return check_skip(v);
	}
	if (json_cur_number(&v->c, &s, &len))
		return -1;
	if (len == 2 && s[0] == '-' && s[1] == '0') {
		if (out)
			*out = 0;
		return 0;
	}
	uint64_t n = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9') {
			sch_fail(v, field, "expected a non-negative integer");
			return 0;
		}
		if (n <= MAX_SAFE_INT)
			n = n * 10 + (uint64_t)(s[i] - '0');
	}
	if (n > MAX_SAFE_INT)
		sch_fail(v, field, "expected a non-negative integer no larger than 2^53-1");
	else if (out)
		*out = (int64_t)n;
	return 0;
}

/* A number >= 0 (so "-0" and "-0.0e5" pass), or null; *out (may be NULL)
 * gets the number, -1 for null. */
static int check_ms(struct rv *v, const char *field, double *out)
{
	const char *s;
	size_t len, i;
	enum json_type t = json_cur_peek(&v->c);
	if (out)
		*out = -1;
	if (t == JSON_NULL)
		return check_skip(v);
	if (t != JSON_NUMBER) {
		if (t != JSON_NONE)
			sch_fail(v, field, "expected a non-negative number or null, found %s",
			         type_name(t));
		return check_skip(v);
	}
	if (json_cur_number(&v->c, &s, &len))
		return -1;
	if (s[0] == '-')
		for (i = 1; i < len && s[i] != 'e' && s[i] != 'E'; i++)
			if (s[i] >= '1' && s[i] <= '9') {
				sch_fail(v, field, "expected a non-negative number or null");
				return 0;
			}
	if (out)
		*out = num_value(s, len);
	return 0;
}

static int check_tags(struct rv *v, const char *field)
{
	enum json_type t = json_cur_peek(&v->c);
	int n = 0, r;
	if (t != JSON_ARRAY) {
		if (t != JSON_NONE)
			sch_fail(v, field, "expected an array of strings, found %s", type_name(t));
		return check_skip(v);
	}
	if (json_cur_enter(&v->c))
		return -1;
	while ((r = json_cur_element(&v->c, &n)) == 1) {
		t = json_cur_peek(&v->c);
		if (t != JSON_STRING && t != JSON_NONE) {
			char f[48];
			snprintf(f, sizeof(f), "%s[%d]", field, n - 1);
			sch_fail(v, f, "expected a string, found %s", type_name(t));
		}
		if (check_skip(v))
			return -1;
	}
	return r;
}

/* usage, latency_ms and error: objects with a few known members; top: the
 * record's own, whose figures go into v (a constant where it is inlined). */
static inline __attribute__((always_inline))
int small_object(struct rv *v, const char *field, unsigned where, const int top)
{
	enum json_type t = json_cur_peek(&v->c);
	struct json_str key;
	unsigned seen = 0;
	int n = 0, r, k;
	const char *f;
	if (where == IN_ERROR && t == JSON_NULL)
		return check_skip(v);
	if (t != JSON_OBJECT) {
		if (t != JSON_NONE)
			sch_fail(v, field, "expected %s, found %s",
			         where == IN_ERROR ? "null or an object" : "an object", type_name(t));
		return check_skip(v);
	}
	if (json_cur_enter(&v->c))
		return -1;
	while ((r = json_cur_member(&v->c, &n, &key)) == 1) {
		if ((k = key_lookup(&key, where)) < 0) {
			if (check_skip(v))
				return -1;
			continue;
		}
		f = keys[k].path;
		if (seen & 1u << (k - K_INPUT_TOKENS))
			sch_fail(v, f, "appears twice");
		seen |= 1u << (k - K_INPUT_TOKENS);
		switch (k) {
		case K_INPUT_TOKENS: case K_OUTPUT_TOKENS: case K_TOTAL_TOKENS:
			r = check_count(v, f, top && k == K_TOTAL_TOKENS ? &v->total_tokens : NULL);
			break;
		case K_TOTAL: case K_TTFT: case K_INTER_TOKEN_MEAN:
			r = check_ms(v, f, !top ? NULL : k == K_TOTAL ? &v->latency_total :
			                   k == K_TTFT ? &v->ttft : NULL);
			break;
		default: /* K_ERR_TYPE, K_MESSAGE */
			r = check_string(v, f, 0);
			break;
		}
		if (r)
			return -1;
	}
	if (r == 0 && where == IN_ERROR) {
		for (k = K_ERR_TYPE; k <= K_MESSAGE; k++)
			if (!(seen & 1u << (k - K_INPUT_TOKENS)))
				sch_fail(v, keys[k].path, "missing");
	}
	return r;
}

static int check_small_object(struct rv *v, const char *field, unsigned where)
{
	return small_object(v, field, where, 0);
}

static int check_small_object_top(struct rv *v, const char *field, unsigned where)
{
	return small_object(v, field, where, 1);
}

static int check_span_fields(struct rv *v, struct span_ent *ent);

/* The record's output: any JSON, walked one level when it is an object to
 * find output.context (the first member of that name). */
static int check_output(struct rv *v)
{
	static const char name[] = "context";
	struct json_str key;
	char buf[sizeof(name)];
	size_t len;
	int n = 0, r;
	if (json_cur_peek(&v->c) != JSON_OBJECT)
		return check_skip(v);
	if (json_cur_enter(&v->c))
		return -1;
	while ((r = json_cur_member(&v->c, &n, &key)) == 1) {
		const char *at = v->c.p;
		int is_context = !v->fields[F_CONTEXT].len && key.len >= sizeof(name) - 1 &&
			(!key.escaped ? key.len == sizeof(name) - 1 && !memcmp(key.s, name, key.len) :
			 !json_str_decode(&key, buf, sizeof(buf), &len) && len == sizeof(name) - 1 &&
			 !memcmp(buf, name, len));
		if (check_skip(v))
			return -1;
		if (is_context)
			field_set(v, F_CONTEXT, at);
	}
	return r;
}

/* A new entry in the span table; NULL when out of memory. */
static struct span_ent *span_add(struct rv *v)
{
	if (v->nspans == v->cap) {
		int cap = v->cap < INT_MAX / 4 ? v->cap * 4 : INT_MAX;
		struct span_ent *e;
		if (cap == v->cap)
			return NULL;
		if (v->ents == v->small) {
			if ((e = malloc((size_t)cap * sizeof(*e))))
				memcpy(e, v->small, sizeof(v->small));
		} else {
			e = realloc(v->ents, (size_t)cap * sizeof(*e));
		}
		if (!e)
			return NULL;
		v->ents = e;
		v->cap = cap;
	}
	struct span_ent *e = &v->ents[v->nspans++];
	memset(e, 0, sizeof(*e));
	e->pidx = -1;
	return e;
}

static int check_spans(struct rv *v)
{
	enum json_type t = json_cur_peek(&v->c);
	int n = 0, r, oom = 0;
	if (t != JSON_ARRAY) {
		if (t != JSON_NONE)
			sch_fail(v, "spans", "expected an array of spans, found %s", type_name(t));
		return check_skip(v);
	}
	if (json_cur_enter(&v->c))
		return -1;
	while ((r = json_cur_element(&v->c, &n)) == 1) {
		t = json_cur_peek(&v->c);
		if (n > v->lim->max_spans) {
			sch_fail(v, "spans", "more than %d spans", v->lim->max_spans);
			r = check_skip(v);
		} else if (t != JSON_OBJECT) {
			if (t != JSON_NONE) {
				char f[32];
				snprintf(f, sizeof(f), "spans[%d]", n - 1);
				sch_fail(v, f, "expected a span object, found %s", type_name(t));
			}
			r = check_skip(v);
		} else {
			struct span_ent *ent = oom ? NULL : span_add(v);
			if (!ent && !oom) {
				oom = 1;
				sch_fail(v, "spans", "out of memory checking %d spans", n);
			}
			v->span = n - 1;
			r = json_cur_enter(&v->c) ? -1 : check_span_fields(v, ent);
			v->span = -1;
		}
		if (r)
			return -1;
	}
	return r;
}

/* The members of the record (where IN_TOP) or of span v->span (IN_SPAN,
 * whose ids go to ent, may be NULL), whose '{' was consumed.  Inlined into
 * check_top_fields() and check_span_fields() with where a constant, so spans
 * pay nothing for what only the top level notes. */
static inline __attribute__((always_inline))
int check_fields(struct rv *v, unsigned where, struct span_ent *ent)
{
	static const int top_required[] = { K_V, K_TRACE_ID, K_NAME, K_START_TIME, K_END_TIME };
	static const int span_required[] = { K_SPAN_ID, K_NAME, K_TYPE, K_START_TIME, K_END_TIME };
	const int *required = where == IN_TOP ? top_required : span_required;
	struct json_str key;
	uint32_t seen = 0;
	int64_t start = 0, end = 0;
	int have_start = 0, have_end = 0, n = 0, r, k;
	uint64_t id = 0, parent = 0;

	while ((r = json_cur_member(&v->c, &n, &key)) == 1) {
		if ((k = key_lookup(&key, where)) < 0) {
			if (check_skip(v))
				return -1;
			continue;
		}
		const char *f = keys[k].name;
		if (seen & 1u << k) {
			if (k == K_TRACE_ID && !v->tid_set) {
				v->tid_set = 1;
				snprintf(v->tid, sizeof(v->tid), "field 'trace_id': appears twice");
			}
			sch_fail(v, f, "appears twice");
		}
		seen |= 1u << k;
		const char *at = v->c.p; /* the value starts after whitespace */
		switch (k) {
		case K_V:              r = check_version(v); break;
		case K_TRACE_ID:       r = check_trace_id(v); break;
		case K_SPAN_ID:        r = check_span_id(v, f, 0, &id); break;
		case K_PARENT_SPAN_ID: r = check_span_id(v, f, 1, &parent); break;
		case K_NAME:           r = check_string(v, f, 1); break;
		case K_TYPE:           r = check_type(v); break;
		case K_PROJECT:        r = check_string(v, f, 0); break;
		case K_START_TIME:     r = check_time(v, f, &start, &have_start); break;
		case K_END_TIME:       r = check_time(v, f, &end, &have_end); break;
		case K_TAGS:           r = check_tags(v, f); break;
		case K_METADATA:       r = check_object(v, f); break;
		case K_MODEL:          r = check_string_or_null(v, f); break;
		case K_USAGE:
		case K_LATENCY_MS:
		case K_ERROR: {
			unsigned in = k == K_USAGE ? IN_USAGE : k == K_LATENCY_MS ? IN_LATENCY : IN_ERROR;
			r = where == IN_TOP ? check_small_object_top(v, f, in) : check_small_object(v, f, in);
			break;
		}
		case K_SPANS:          r = check_spans(v); break;
		case K_OUTPUT:         r = where == IN_TOP ? check_output(v) : check_skip(v); break;
		default:               r = check_skip(v); break; /* input */
		}
		if (r)
			return -1;
		if (where == IN_TOP && field_of[k])
			field_set(v, field_of[k] - 1, at);
	}
	if (r)
		return -1;
	for (int i = 0; i < 5; i++) {
		if (seen & 1u << required[i])
			continue;
		if (required[i] == K_TRACE_ID) {
			if (!v->tid_set)
				snprintf(v->tid, sizeof(v->tid), "field 'trace_id': missing");
			v->tid_set = 1;
		} else {
			sch_fail(v, keys[required[i]].name, "missing");
		}
	}
	if (have_start && have_end && end < start)
		sch_fail(v, "end_time", "earlier than start_time");
	if (where == IN_TOP) {
		v->start_us = have_start ? start : 0;
		v->end_us = have_end ? end : 0;
	}
	if (ent) {
		if (id && parent == id)
			sch_fail(v, "parent_span_id", "a span cannot be its own parent");
		ent->id = id;
		ent->parent = parent;
	}
	return 0;
}

static int check_top_fields(struct rv *v)
{
	return check_fields(v, IN_TOP, NULL);
}

static int check_span_fields(struct rv *v, struct span_ent *ent)
{
	return check_fields(v, IN_SPAN, ent);
}

/* --- checks across spans ---------------------------------------------------- */

struct span_key {
	uint64_t id;
	int      idx;
};

static int key_cmp(const void *a, const void *b)
{
	const struct span_key *x = a, *y = b;
	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int key_find(const struct span_key *sk, int n, uint64_t id)
{
	int lo = 0, hi = n;
	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		if (sk[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && sk[lo].id == id ? sk[lo].idx : -1;
}

/* Span ids unique, parents among them, no cycles.  Runs only on records
 * without other violations, so every span has its id. */
static void check_span_ids(struct rv *v)
{
	struct span_key small[SMALL_SPANS], *sk = small;
	int n = v->nspans, i, run, dup = -1, first = -1;
	if (n == 0)
		return;
	if (n > SMALL_SPANS && !(sk = malloc((size_t)n * sizeof(*sk)))) {
		sch_fail(v, "spans", "out of memory checking %d spans", n);
		return;
	}
	for (i = 0; i < n; i++) {
		sk[i].id = v->ents[i].id;
		sk[i].idx = i;
	}
	qsort(sk, (size_t)n, sizeof(*sk), key_cmp);
	/* sorted by (id, index): a run of equal ids starts with the span that has
	 * the id first; report the repeat that comes earliest in the record */
	for (i = 1, run = 0; i < n; i++) {
		if (sk[i].id != sk[i - 1].id)
			run = i;
		else if (dup < 0 || sk[i].idx < dup)
			dup = sk[i].idx, first = sk[run].idx;
	}
	if (dup >= 0) {
		v->span = dup;
		sch_fail(v, "span_id", "same as spans[%d].span_id", first);
		goto out;
	}
	for (i = 0; i < n; i++) {
		struct span_ent *e = &v->ents[i];
		if (!e->parent)
			continue;
		if ((e->pidx = key_find(sk, n, e->parent)) < 0) {
			v->span = i;
			sch_fail(v, "parent_span_id", "no span has id %016" PRIx64, e->parent);
			goto out;
		}
	}
	for (i = 0; i < n; i++) {
		int j;
		for (j = i; j >= 0 && v->ents[j].state == 0; j = v->ents[j].pidx)
			v->ents[j].state = 1;
		if (j >= 0 && v->ents[j].state == 1) {
			v->span = i;
			sch_fail(v, "parent_span_id", "the chain of parents loops");
			goto out;
		}
		for (j = i; j >= 0 && v->ents[j].state == 1; j = v->ents[j].pidx)
			v->ents[j].state = 2;
	}
out:
	v->span = -1;
	if (sk != small)
		free(sk);
}

/* --- the validator ---------------------------------------------------------- */

static enum rec_reason json_reason(const struct json_cur *c)
{
	switch (c->err) {
	case JSON_ERR_UTF8:  return REC_BAD_UTF8;
	case JSON_ERR_DEPTH: return REC_TOO_DEEP;
	default:             return REC_NOT_JSON;
	}
}

enum rec_reason rec_validate(const char *buf, size_t len, const struct rec_limits *lim,
                             struct rec_info *info, char *errstr, size_t errstr_size)
{
	struct rec_limits deflim;
	struct rv *v, vs;
	enum rec_reason reason = REC_OK;
	char dummy[1];

	if (!lim) {
		rec_limits_default(&deflim);
		lim = &deflim;
	}
	if (!errstr || !errstr_size) {
		errstr = dummy;
		errstr_size = sizeof(dummy);
	}
	errstr[0] = '\0';
	if (info)
		memset(info, 0, sizeof(*info));
	if (len > lim->max_bytes) {
		snprintf(errstr, errstr_size, "record is %zu bytes, over the limit of %zu",
		         len, lim->max_bytes);
		return REC_TOO_LARGE;
	}

	v = &vs;
	memset(v, 0, offsetof(struct rv, small));
	v->lim = lim;
	v->span = -1;
	v->ents = v->small;
	v->cap = SMALL_SPANS;
	v->latency_total = v->ttft = -1;
	v->total_tokens = -1;
	json_cur_init(&v->c, buf, len, lim->max_depth);

	enum json_type t = json_cur_peek(&v->c);
	if (t == JSON_OBJECT) {
		if (json_cur_enter(&v->c) == 0 && check_top_fields(v) == 0)
			json_cur_finish(&v->c);
	} else if (t != JSON_NONE && json_cur_skip(&v->c) == 0 && json_cur_finish(&v->c) == 0) {
		snprintf(v->sch, sizeof(v->sch), "expected a JSON object, found %s", type_name(t));
		v->sch_set = 1;
	}

	if (v->c.err) {
		json_cur_errstr(&v->c, errstr, errstr_size);
		reason = json_reason(&v->c);
	} else if (v->tid_set) {
		snprintf(errstr, errstr_size, "%s", v->tid);
		reason = REC_NO_TRACE_ID;
	} else {
		if (!v->sch_set)
			check_span_ids(v);
		if (v->sch_set) {
			snprintf(errstr, errstr_size, "%s", v->sch);
			reason = REC_SCHEMA;
		}
	}
	if (info && !v->c.err && !v->tid_set) {
		memcpy(info->trace_id, v->trace_id, sizeof(info->trace_id));
		info->nspans = v->nspans;
		info->name = v->fields[F_NAME];
		info->model = v->fields[F_MODEL];
		info->tags = v->fields[F_TAGS];
		info->metadata = v->fields[F_METADATA];
		info->error = v->fields[F_ERROR];
		info->input = v->fields[F_INPUT];
		info->output = v->fields[F_OUTPUT];
		info->usage = v->fields[F_USAGE];
		info->latency_ms = v->fields[F_LATENCY_MS];
		info->context = v->fields[F_CONTEXT];
		info->latency_total = v->latency_total;
		info->ttft = v->ttft;
		info->total_tokens = v->total_tokens;
		info->start_us = v->start_us;
		info->end_us = v->end_us;
		info->has_error = v->has_error;
	}
	if (v->ents != v->small)
		free(v->ents);
	return reason;
}

/* --- questions about a validated record ------------------------------------ */

/* A cursor over a slice of a validated record; 0, or -1 when it is absent. */
static int slice_cur(struct json_cur *c, const char *buf, struct rec_slice s)
{
	if (!buf || !s.len)
		return -1;
	json_cur_init(c, buf + s.off, s.len, JSON_DEPTH_MAX);
	return 0;
}

int rec_str_equals(const char *buf, struct rec_slice s, const char *value)
{
	struct json_cur c;
	struct json_str str;
	if (slice_cur(&c, buf, s) || json_cur_peek(&c) != JSON_STRING || json_cur_string(&c, &str))
		return 0;
	return json_str_equals(&str, value, strlen(value));
}

int rec_has_tag(const char *buf, const struct rec_info *info, const char *tag)
{
	struct json_cur c;
	struct json_str str;
	size_t tlen = strlen(tag);
	int n = 0;
	if (slice_cur(&c, buf, info->tags) || json_cur_peek(&c) != JSON_ARRAY || json_cur_enter(&c))
		return 0;
	while (json_cur_element(&c, &n) == 1) {
		if (json_cur_peek(&c) != JSON_STRING) {
			if (json_cur_skip(&c))
				return 0;
		} else if (json_cur_string(&c, &str)) {
			return 0;
		} else if (json_str_equals(&str, tag, tlen)) {
			return 1;
		}
	}
	return 0;
}

int rec_meta_equals(const char *buf, const struct rec_info *info, const char *key,
                    const char *value)
{
	struct json_cur c;
	struct json_str k, str;
	size_t klen = strlen(key), vlen = strlen(value), len;
	const char *s;
	int n = 0;
	if (slice_cur(&c, buf, info->metadata) || json_cur_peek(&c) != JSON_OBJECT ||
	    json_cur_enter(&c))
		return 0;
	while (json_cur_member(&c, &n, &k) == 1) {
		if (!json_str_equals(&k, key, klen)) {
			if (json_cur_skip(&c))
				return 0;
			continue;
		}
		switch (json_cur_peek(&c)) {
		case JSON_STRING:
			return !json_cur_string(&c, &str) && json_str_equals(&str, value, vlen);
		case JSON_NUMBER:
			return !json_cur_number(&c, &s, &len) && len == vlen && !memcmp(s, value, len);
		case JSON_TRUE:
			return !strcmp(value, "true");
		case JSON_FALSE:
			return !strcmp(value, "false");
		default:
			return 0;
		}
	}
	return 0;
}
