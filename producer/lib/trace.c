/* producer/lib/trace.c - build traces and spans, serialize them as trace record v1 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "json.h"
#include "record.h"
#include "sbuf.h"
#include "tracesift.h"
#include "tstime.h"

/* JSON given to a setter nests inside record > spans > span, so it may be
 * three levels less deep than a whole record. */
#define FIELD_MAX_DEPTH (REC_MAX_DEPTH_DEFAULT - 3)

struct meta_entry {
	char *key;  /* UTF-8 clean text */
	char *json; /* valid JSON text */
};

struct ts_span {
	ts_trace_t *trace;
	int parent;            /* index in trace->spans; -1 for the root */
	char id[REC_SPAN_ID_LEN + 1];
	char *name;
	ts_span_type_t type;
	int64_t start_us, end_us, first_token_us; /* monotonic; 0: not yet */
	char *input, *output;  /* JSON text */
	char *model, *err_type, *err_msg;
	struct meta_entry *meta;
	int nmeta, capmeta;
	char **tags;
	int ntags, captags;
	int has_usage;
	int64_t in_tokens, out_tokens;
};

struct ts_trace {
	ts_client_t *client;
	pthread_mutex_t lock;
	char id[REC_TRACE_ID_LEN + 1];
	char *project;
	int64_t start_wall_us, start_us;
	ts_span_t **spans;     /* spans[0] is the root */
	int nspans, capspans;
};

static const char *const type_names[] = { "general", "llm", "retrieval", "tool" };

/* ---- strings -------------------------------------------------------------- */

/* A copy of s in which every byte that is not valid UTF-8 becomes U+FFFD. */
static char *dup_clean(const char *s)
{
	size_t len = strlen(s), bad;
	if (json_utf8_check(s, len, &bad) == 0)
		return strdup(s);
	struct sbuf b;
	sbuf_init(&b);
	while (len > 0) {
		if (json_utf8_check(s, len, &bad) == 0)
			bad = len;
		sbuf_put(&b, s, bad);
		if (bad == len)
			break;
		sbuf_put(&b, "\xef\xbf\xbd", 3);
		s += bad + 1;
		len -= bad + 1;
	}
	return sbuf_detach(&b, NULL);
}

static int dup_json(const char *json, char **out)
{
	if (!json || json_check(json, strlen(json), FIELD_MAX_DEPTH, NULL, 0) != 0)
		return TS_ERR_INVALID;
	char *copy = strdup(json);
	if (!copy)
		return TS_ERR_NOMEM;
	*out = copy;
	return TS_OK;
}

/* The text as a JSON string. */
static int text_to_json(const char *text, char **out)
{
	if (!text)
		return TS_ERR_INVALID_ARG;
	char *clean = dup_clean(text);
	if (!clean)
		return TS_ERR_NOMEM;
	struct sbuf b;
	sbuf_init(&b);
	sbuf_put_jstr(&b, clean, strlen(clean));
	free(clean);
	*out = sbuf_detach(&b, NULL);
	return *out ? TS_OK : TS_ERR_NOMEM;
}

static void replace(char **field, char *value)
{
	free(*field);
	*field = value;
}

/* ---- lifecycle ------------------------------------------------------------ */

static void span_free(ts_span_t *s)
{
	if (!s)
		return;
	free(s->name);
	free(s->input);
	free(s->output);
	free(s->model);
	free(s->err_type);
	free(s->err_msg);
	for (int i = 0; i < s->nmeta; i++) {
		free(s->meta[i].key);
		free(s->meta[i].json);
	}
	free(s->meta);
	for (int i = 0; i < s->ntags; i++)
		free(s->tags[i]);
	free(s->tags);
	free(s);
}

/* Adds a span to t; the caller holds t->lock (or owns t alone). */
static ts_span_t *span_add(ts_trace_t *t, int parent, const char *name, ts_span_type_t type)
{
	if (t->nspans == t->capspans) {
		int cap = t->capspans ? t->capspans * 2 : 8;
		ts_span_t **ns = realloc(t->spans, (size_t)cap * sizeof(*ns));
		if (!ns)
			return NULL;
		t->spans = ns;
		t->capspans = cap;
	}
	ts_span_t *s = calloc(1, sizeof(*s));
	if (!s || !(s->name = dup_clean(name))) {
		free(s);
		return NULL;
	}
	s->trace = t;
	s->parent = parent;
	s->type = (unsigned)type <= TS_SPAN_TOOL ? type : TS_SPAN_GENERAL;
	s->start_us = tstime_mono_us();
	ids_random_hex(s->id, REC_SPAN_ID_LEN);
	t->spans[t->nspans++] = s;
	return s;
}

static void trace_free(ts_trace_t *t)
{
	for (int i = 0; i < t->nspans; i++)
		span_free(t->spans[i]);
	free(t->spans);
	free(t->project);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

ts_trace_t *ts_trace_begin(ts_client_t *client, const char *name)
{
	if (!client || !name)
		return NULL;
	ts_trace_t *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	pthread_mutex_init(&t->lock, NULL);
	t->client = client;
	t->start_wall_us = tstime_now_us();
	ids_random_hex(t->id, REC_TRACE_ID_LEN);
	if (!(t->project = strdup(client_project(client))) ||
	    !span_add(t, -1, name, TS_SPAN_GENERAL)) {
		trace_free(t);
		return NULL;
	}
	t->start_us = t->spans[0]->start_us;
	return t;
}

void ts_trace_abandon(ts_trace_t *t)
{
	if (t)
		trace_free(t);
}

static int is_lower_hex(const char *s, size_t n)
{
	int nonzero = 0;
	for (size_t i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
		nonzero |= s[i] != '0';
	}
	return nonzero && s[n] == '\0';
}

int ts_trace_set_id(ts_trace_t *t, const char *trace_id)
{
	if (!t || !trace_id || !is_lower_hex(trace_id, REC_TRACE_ID_LEN))
		return TS_ERR_INVALID_ARG;
	pthread_mutex_lock(&t->lock);
	memcpy(t->id, trace_id, REC_TRACE_ID_LEN + 1);
	pthread_mutex_unlock(&t->lock);
	return TS_OK;
}

const char *ts_trace_id(const ts_trace_t *t)
{
	return t ? t->id : NULL;
}

int ts_trace_set_project(ts_trace_t *t, const char *project)
{
	if (!t || !project || !*project)
		return TS_ERR_INVALID_ARG;
	char *p = dup_clean(project);
	if (!p)
		return TS_ERR_NOMEM;
	pthread_mutex_lock(&t->lock);
	replace(&t->project, p);
	pthread_mutex_unlock(&t->lock);
	return TS_OK;
}

ts_span_t *ts_trace_root(ts_trace_t *t)
{
	return t ? t->spans[0] : NULL;
}

ts_span_t *ts_span_begin(ts_trace_t *t, ts_span_t *parent, const char *name, ts_span_type_t type)
{
	if (!t || !name || (parent && parent->trace != t))
		return NULL;
	pthread_mutex_lock(&t->lock);
	int pidx = 0;
	if (parent)
		for (pidx = t->nspans - 1; pidx > 0 && t->spans[pidx] != parent; pidx--)
			;
	ts_span_t *s = span_add(t, pidx, name, type);
	pthread_mutex_unlock(&t->lock);
	return s;
}

void ts_span_end(ts_span_t *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->trace->lock);
	if (!s->end_us)
		s->end_us = tstime_mono_us();
	pthread_mutex_unlock(&s->trace->lock);
}

const char *ts_span_id(const ts_span_t *s)
{
	return s ? s->id : NULL;
}

/* ---- setters -------------------------------------------------------------- */

#define LOCKED(s, stmt) do { \
	pthread_mutex_lock(&(s)->trace->lock); \
	stmt; \
	pthread_mutex_unlock(&(s)->trace->lock); \
} while (0)

static int set_field_json(ts_span_t *s, char **field, const char *json)
{
	char *v;
	int rc;
	if (!s)
		return TS_ERR_INVALID_ARG;
	if ((rc = dup_json(json, &v)) != TS_OK)
		return rc;
	LOCKED(s, replace(field, v));
	return TS_OK;
}

static int set_field_text(ts_span_t *s, char **field, const char *text)
{
	char *v;
	int rc;
	if (!s)
		return TS_ERR_INVALID_ARG;
	if ((rc = text_to_json(text, &v)) != TS_OK)
		return rc;
	LOCKED(s, replace(field, v));
	return TS_OK;
}

int ts_span_set_input_json(ts_span_t *s, const char *json)
{
	return set_field_json(s, s ? &s->input : NULL, json);
}

int ts_span_set_input(ts_span_t *s, const char *text)
{
	return set_field_text(s, s ? &s->input : NULL, text);
}

int ts_span_set_output_json(ts_span_t *s, const char *json)
{
	return set_field_json(s, s ? &s->output : NULL, json);
}

int ts_span_set_output(ts_span_t *s, const char *text)
{
	return set_field_text(s, s ? &s->output : NULL, text);
}

/* Makes room for one more element in *arr (count n, capacity *cap);
 * returns 0, or -1 with *arr unchanged. */
static int grow(void **arr, int n, int *cap, size_t elem)
{
	if (n < *cap)
		return 0;
	int ncap = *cap ? *cap * 2 : 4;
	void *na = realloc(*arr, (size_t)ncap * elem);
	if (!na)
		return -1;
	*arr = na;
	*cap = ncap;
	return 0;
}

/* Takes key and json (both owned) into s's metadata, replacing the key's
 * earlier value. */
static int meta_put(ts_span_t *s, char *key, char *json)
{
	int rc = TS_OK, i;
	pthread_mutex_lock(&s->trace->lock);
	for (i = 0; i < s->nmeta && strcmp(s->meta[i].key, key); i++)
		;
	if (i < s->nmeta) {
		free(key);
		replace(&s->meta[i].json, json);
		key = json = NULL;
	} else if (grow((void **)&s->meta, s->nmeta, &s->capmeta, sizeof(*s->meta))) {
		rc = TS_ERR_NOMEM;
	} else {
		s->meta[s->nmeta].key = key;
		s->meta[s->nmeta].json = json;
		s->nmeta++;
		key = json = NULL;
	}
	pthread_mutex_unlock(&s->trace->lock);
	free(key);
	free(json);
	return rc;
}

int ts_span_set_metadata_json(ts_span_t *s, const char *key, const char *json)
{
	char *v, *k;
	int rc;
	if (!s || !key)
		return TS_ERR_INVALID_ARG;
	if ((rc = dup_json(json, &v)) != TS_OK)
		return rc;
	if (!(k = dup_clean(key))) {
		free(v);
		return TS_ERR_NOMEM;
	}
	return meta_put(s, k, v);
}

int ts_span_set_metadata(ts_span_t *s, const char *key, const char *value)
{
	char *v, *k;
	int rc;
	if (!s || !key)
		return TS_ERR_INVALID_ARG;
	if ((rc = text_to_json(value, &v)) != TS_OK)
		return rc;
	if (!(k = dup_clean(key))) {
		free(v);
		return TS_ERR_NOMEM;
	}
	return meta_put(s, k, v);
}

int ts_span_add_tag(ts_span_t *s, const char *tag)
{
	if (!s || !tag)
		return TS_ERR_INVALID_ARG;
	char *t = dup_clean(tag);
	if (!t)
		return TS_ERR_NOMEM;
	int rc = TS_OK;
	pthread_mutex_lock(&s->trace->lock);
	if (grow((void **)&s->tags, s->ntags, &s->captags, sizeof(*s->tags)))
		rc = TS_ERR_NOMEM;
	else
		s->tags[s->ntags++] = t;
	pthread_mutex_unlock(&s->trace->lock);
	if (rc != TS_OK)
		free(t);
	return rc;
}

int ts_span_set_model(ts_span_t *s, const char *model)
{
	if (!s || !model)
		return TS_ERR_INVALID_ARG;
	char *m = dup_clean(model);
	if (!m)
		return TS_ERR_NOMEM;
	LOCKED(s, replace(&s->model, m));
	return TS_OK;
}

int ts_span_set_usage(ts_span_t *s, int64_t input_tokens, int64_t output_tokens)
{
	if (!s || input_tokens < 0 || output_tokens < 0)
		return TS_ERR_INVALID_ARG;
	LOCKED(s, (s->has_usage = 1, s->in_tokens = input_tokens, s->out_tokens = output_tokens));
	return TS_OK;
}

int ts_span_set_error(ts_span_t *s, const char *type, const char *message)
{
	if (!s || !type)
		return TS_ERR_INVALID_ARG;
	char *t = dup_clean(type), *m = dup_clean(message ? message : "");
	if (!t || !m) {
		free(t);
		free(m);
		return TS_ERR_NOMEM;
	}
	LOCKED(s, (replace(&s->err_type, t), replace(&s->err_msg, m)));
	return TS_OK;
}

int ts_span_mark_first_token(ts_span_t *s)
{
	if (!s)
		return TS_ERR_INVALID_ARG;
	int64_t now = tstime_mono_us();
	LOCKED(s, if (!s->first_token_us) s->first_token_us = now);
	return TS_OK;
}

int ts_span_set_ttft_ms(ts_span_t *s, double ms)
{
	if (!s || !(ms >= 0 && ms < 1e12))
		return TS_ERR_INVALID_ARG;
	LOCKED(s, s->first_token_us = s->start_us + (int64_t)(ms * 1000.0 + 0.5));
	return TS_OK;
}

/* ---- serialization -------------------------------------------------------- */

static void put_key(struct sbuf *b, const char *key)
{
	sbuf_putc(b, ',');
	sbuf_putc(b, '"');
	sbuf_puts(b, key);
	sbuf_put(b, "\":", 2);
}

static void put_str(struct sbuf *b, const char *key, const char *val)
{
	put_key(b, key);
	sbuf_put_jstr(b, val, strlen(val));
}

/* Microseconds as milliseconds with three decimals, without printf. */
static void put_ms(struct sbuf *b, int64_t us)
{
	char tmp[32], *p = tmp + sizeof(tmp);
	if (us < 0)
		us = 0;
	int64_t frac = us % 1000, whole = us / 1000;
	for (int i = 0; i < 3; i++, frac /= 10)
		*--p = (char)('0' + frac % 10);
	*--p = '.';
	do
		*--p = (char)('0' + whole % 10);
	while ((whole /= 10) > 0);
	sbuf_put(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

static void put_int(struct sbuf *b, int64_t v)
{
	char tmp[24], *p = tmp + sizeof(tmp);
	uint64_t u = v < 0 ? 0 : (uint64_t)v;
	do
		*--p = (char)('0' + u % 10);
	while ((u /= 10) > 0);
	sbuf_put(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

static void put_time(struct sbuf *b, const char *key, const ts_trace_t *t, int64_t mono_us)
{
	char ts[TSTIME_LEN];
	put_key(b, key);
	sbuf_putc(b, '"');
	sbuf_put(b, ts, tstime_format(t->start_wall_us + (mono_us - t->start_us), ts));
	sbuf_putc(b, '"');
}

static void put_usage(struct sbuf *b, int64_t in, int64_t out)
{
	put_key(b, "usage");
	sbuf_puts(b, "{\"input_tokens\":");
	put_int(b, in);
	sbuf_puts(b, ",\"output_tokens\":");
	put_int(b, out);
	sbuf_puts(b, ",\"total_tokens\":");
	put_int(b, in + out);
	sbuf_putc(b, '}');
}

/* The fields a span and the root have in common. */
static void put_common(struct sbuf *b, const ts_span_t *s, const char *model,
                       int64_t ttft_from, int64_t first_token_us)
{
	if (s->input) {
		put_key(b, "input");
		sbuf_puts(b, s->input);
	}
	if (s->output) {
		put_key(b, "output");
		sbuf_puts(b, s->output);
	}
	if (s->ntags || s == s->trace->spans[0]) {
		put_key(b, "tags");
		sbuf_putc(b, '[');
		for (int i = 0; i < s->ntags; i++) {
			if (i)
				sbuf_putc(b, ',');
			sbuf_put_jstr(b, s->tags[i], strlen(s->tags[i]));
		}
		sbuf_putc(b, ']');
	}
	if (s->nmeta || s == s->trace->spans[0]) {
		put_key(b, "metadata");
		sbuf_putc(b, '{');
		for (int i = 0; i < s->nmeta; i++) {
			if (i)
				sbuf_putc(b, ',');
			sbuf_put_jstr(b, s->meta[i].key, strlen(s->meta[i].key));
			sbuf_putc(b, ':');
			sbuf_puts(b, s->meta[i].json);
		}
		sbuf_putc(b, '}');
	}
	if (model)
		put_str(b, "model", model);
	put_key(b, "latency_ms");
	sbuf_puts(b, "{\"total\":");
	put_ms(b, s->end_us - s->start_us);
	if (first_token_us) {
		sbuf_puts(b, ",\"time_to_first_token\":");
		put_ms(b, first_token_us - ttft_from);
	}
	sbuf_putc(b, '}');
	put_key(b, "error");
	if (s->err_type) {
		sbuf_puts(b, "{\"type\":");
		sbuf_put_jstr(b, s->err_type, strlen(s->err_type));
		sbuf_puts(b, ",\"message\":");
		sbuf_put_jstr(b, s->err_msg, strlen(s->err_msg));
		sbuf_putc(b, '}');
	} else {
		sbuf_puts(b, "null");
	}
}

/* The record of t, whose spans have all ended; the caller owns t alone. */
static char *trace_serialize(const ts_trace_t *t, size_t *len)
{
	const ts_span_t *root = t->spans[0];
	size_t estimate = 512;
	for (int i = 0; i < t->nspans; i++) {
		const ts_span_t *s = t->spans[i];
		estimate += 400 + strlen(s->name) * 2;
		estimate += s->input ? strlen(s->input) : 0;
		estimate += s->output ? strlen(s->output) : 0;
		for (int j = 0; j < s->nmeta; j++)
			estimate += strlen(s->meta[j].key) + strlen(s->meta[j].json) + 4;
		for (int j = 0; j < s->ntags; j++)
			estimate += strlen(s->tags[j]) + 3;
	}
	struct sbuf b;
	sbuf_init(&b);
	sbuf_reserve(&b, estimate);

	/* The root's usage, first token and model default to what its spans say. */
	int has_usage = root->has_usage;
	int64_t in = root->in_tokens, out = root->out_tokens;
	int64_t first = root->first_token_us;
	const char *model = root->model;
	for (int i = 1; i < t->nspans; i++) {
		const ts_span_t *s = t->spans[i];
		if (!root->has_usage && s->has_usage) {
			has_usage = 1;
			in += s->in_tokens;
			out += s->out_tokens;
		}
		if (!root->first_token_us && s->first_token_us &&
		    (!first || s->first_token_us < first))
			first = s->first_token_us;
		if (!model && s->model && s->type == TS_SPAN_LLM)
			model = s->model;
	}

	sbuf_puts(&b, "{\"v\":1,\"trace_id\":\"");
	sbuf_put(&b, t->id, REC_TRACE_ID_LEN);
	sbuf_putc(&b, '"');
	put_str(&b, "name", root->name);
	put_str(&b, "project", t->project);
	put_time(&b, "start_time", t, root->start_us);
	put_time(&b, "end_time", t, root->end_us);
	put_common(&b, root, model, t->start_us, first);
	if (has_usage)
		put_usage(&b, in, out);
	put_key(&b, "spans");
	sbuf_putc(&b, '[');
	for (int i = 1; i < t->nspans; i++) {
		const ts_span_t *s = t->spans[i];
		if (i > 1)
			sbuf_putc(&b, ',');
		sbuf_puts(&b, "{\"span_id\":\"");
		sbuf_put(&b, s->id, REC_SPAN_ID_LEN);
		sbuf_puts(&b, "\",\"parent_span_id\":");
		if (s->parent > 0) {
			sbuf_putc(&b, '"');
			sbuf_put(&b, t->spans[s->parent]->id, REC_SPAN_ID_LEN);
			sbuf_putc(&b, '"');
		} else {
			sbuf_puts(&b, "null");
		}
		put_str(&b, "name", s->name);
		put_str(&b, "type", type_names[s->type]);
		put_time(&b, "start_time", t, s->start_us);
		put_time(&b, "end_time", t, s->end_us);
		put_common(&b, s, s->model, s->start_us, s->first_token_us);
		if (s->has_usage)
			put_usage(&b, s->in_tokens, s->out_tokens);
		sbuf_putc(&b, '}');
	}
	sbuf_put(&b, "]}", 2);
	return sbuf_detach(&b, len);
}

char *trace_render(ts_trace_t *t, size_t *len)
{
	pthread_mutex_lock(&t->lock);
	int64_t now = tstime_mono_us();
	/* A span cannot end after the trace that holds it. */
	for (int i = t->nspans - 1; i >= 0; i--) {
		ts_span_t *s = t->spans[i];
		if (!s->end_us || s->end_us > now)
			s->end_us = now;
	}
	char *rec = trace_serialize(t, len);
	pthread_mutex_unlock(&t->lock);
	return rec;
}

int ts_trace_end(ts_trace_t *t)
{
	if (!t)
		return TS_ERR_INVALID_ARG;
	size_t len;
	char *rec = trace_render(t, &len);
	char id[REC_TRACE_ID_LEN + 1];
	memcpy(id, t->id, sizeof(id));
	ts_client_t *c = t->client;
	trace_free(t);
	if (!rec)
		return TS_ERR_NOMEM;
	return client_enqueue_owned(c, id, rec, len);
}
