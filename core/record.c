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
	struct span_ent small[SMALL_SPANS];
};

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

/* A non-negative integer, written without fraction or exponent, <= 2^53-1. */
static int check_count(struct rv *v, const char *field)
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
	if (len == 2 && s[0] == '-' && s[1] == '0')
		return 0;
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
	return 0;
}

/* A number >= 0 (so "-0" and "-0.0e5" pass), or null. */
static int check_ms(struct rv *v, const char *field)
{
	const char *s;
	size_t len, i;
	enum json_type t = json_cur_peek(&v->c);
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
	if (s[0] != '-')
		return 0;
	for (i = 1; i < len && s[i] != 'e' && s[i] != 'E'; i++)
		if (s[i] >= '1' && s[i] <= '9') {
			sch_fail(v, field, "expected a non-negative number or null");
			break;
		}
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

/* usage, latency_ms and error: objects with a few known members. */
static int check_small_object(struct rv *v, const char *field, unsigned where)
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
			r = check_count(v, f);
			break;
		case K_TOTAL: case K_TTFT: case K_INTER_TOKEN_MEAN:
			r = check_ms(v, f);
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

static int check_fields(struct rv *v, unsigned where, struct span_ent *ent);

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
			r = json_cur_enter(&v->c) ? -1 : check_fields(v, IN_SPAN, ent);
			v->span = -1;
		}
		if (r)
			return -1;
	}
	return r;
}

/* The members of the record (where IN_TOP) or of span v->span (IN_SPAN,
 * whose ids go to ent, may be NULL), whose '{' was consumed. */
static int check_fields(struct rv *v, unsigned where, struct span_ent *ent)
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
		case K_USAGE:          r = check_small_object(v, f, IN_USAGE); break;
		case K_LATENCY_MS:     r = check_small_object(v, f, IN_LATENCY); break;
		case K_ERROR:          r = check_small_object(v, f, IN_ERROR); break;
		case K_SPANS:          r = check_spans(v); break;
		default:               r = check_skip(v); break; /* input, output */
		}
		if (r)
			return -1;
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
	if (ent) {
		if (id && parent == id)
			sch_fail(v, "parent_span_id", "a span cannot be its own parent");
		ent->id = id;
		ent->parent = parent;
	}
	return 0;
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
	json_cur_init(&v->c, buf, len, lim->max_depth);

	enum json_type t = json_cur_peek(&v->c);
	if (t == JSON_OBJECT) {
		if (json_cur_enter(&v->c) == 0 && check_fields(v, IN_TOP, NULL) == 0)
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
	}
	if (v->ents != v->small)
		free(v->ents);
	return reason;
}
