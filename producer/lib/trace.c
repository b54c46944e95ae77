/* producer/lib/trace.c - build traces and spans, serialize them as trace record v1 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "json.h"
#include "pymarshal.h"
#include "record.h"
#include "sbuf.h"
#include "tracesift.h"
#include "tstime.h"

/* JSON given to a setter nests inside record > spans > span, so it may be
 * three levels less deep than a whole record. */
#define FIELD_MAX_DEPTH (REC_MAX_DEPTH_DEFAULT - 3)

/* JSON text and its length; json is NULL while the field is not set. */
struct jtext {
	char *json;
	size_t len;
};

struct meta_entry {
	char *key;          /* UTF-8 clean text */
	struct jtext value;
};

/* Span names are usually short: those that fit live in the span. */
#define SPAN_NAME_INLINE 40

struct ts_span {
	ts_trace_t *trace;
	ts_span_t *parent;     /* NULL for the root and the root's children */
	char id[REC_SPAN_ID_LEN + 1];
	char *name;            /* name_buf, or a malloc'd copy when longer */
	char name_buf[SPAN_NAME_INLINE];
	ts_span_type_t type;
	int64_t start_us, end_us, first_token_us; /* monotonic; 0: not yet */
	struct jtext input, output;
	char *model, *err_type, *err_msg;
	struct meta_entry *meta;
	int nmeta, capmeta;
	char **tags;
	int ntags, captags;
	int has_usage;
	int64_t in_tokens, out_tokens;
};

/* The first TRACE_INLINE_SPANS spans (the root included) live in the trace,
 * so that a usual trace is one allocation; later ones are allocated one by
 * one. */
#define TRACE_INLINE_SPANS 8

struct ts_trace {
	ts_client_t *client;
	pthread_mutex_t lock;
	char id[REC_TRACE_ID_LEN + 1];
	char *project;         /* set by ts_trace_set_project; NULL: the client's */
	int64_t start_wall_us, start_us;
	ts_span_t **spans;     /* spans[0] is the root; first_spans until it grows */
	int nspans, capspans;
	ts_span_t *first_spans[TRACE_INLINE_SPANS];
	ts_span_t inline_spans[TRACE_INLINE_SPANS];
};

/* Each type as it appears in the record: a JSON string. */
static const char *const type_json[] = { "\"general\"", "\"llm\"", "\"retrieval\"", "\"tool\"" };

/* ---- the calling thread's scratch buffer ---------------------------------- */

/* Records (and text escaped as JSON) are written into a buffer of the
 * calling thread's, kept from one call to the next, and then copied into an
 * allocation of their exact size: one allocation per record, like
 * rd_kafka_producev's own copy, and no spare capacity held in librdkafka's
 * queue, which counts only the length against its bound.  A thread's buffer
 * is freed when the thread exits. */
#define SCRATCH_KEEP_MAX (256 * 1024) /* a buffer grown larger is freed after use */

static pthread_key_t scratch_key;
static int scratch_key_ok;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p)
{
	sbuf_release(p);
	free(p);
}

static void scratch_key_create(void)
{
	scratch_key_ok = pthread_key_create(&scratch_key, scratch_free) == 0;
}

/* So that no thread calls scratch_free() once the library is unloaded. */
__attribute__((destructor)) static void scratch_key_delete(void)
{
	if (scratch_key_ok)
		pthread_key_delete(scratch_key);
}

/* The thread's scratch buffer, emptied; or, when it has none (out of
 * memory), fallback, initialized. */
static struct sbuf *scratch_get(struct sbuf *fallback)
{
	pthread_once(&scratch_once, scratch_key_create);
	struct sbuf *s = scratch_key_ok ? pthread_getspecific(scratch_key) : NULL;
	if (!s && scratch_key_ok && (s = malloc(sizeof(*s)))) {
		sbuf_init(s);
		if (pthread_setspecific(scratch_key, s)) {
			free(s);
			s = NULL;
		}
	}
	if (!s) {
		sbuf_init(fallback);
		return fallback;
	}
	if (s->oom) /* a failed buffer starts over */
		sbuf_release(s);
	s->len = 0;
	return s;
}

/* Done with s, which scratch_get() returned. */
static void scratch_put(struct sbuf *s, struct sbuf *fallback)
{
	if (s == fallback || s->cap > SCRATCH_KEEP_MAX)
		sbuf_release(s);
}

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
		sbuf_put_lit(&b, "\xef\xbf\xbd");
		s += bad + 1;
		len -= bad + 1;
	}
	return sbuf_detach(&b, NULL);
}

static int dup_json(const char *json, struct jtext *out)
{
	size_t len;
	if (!json || json_check(json, len = strlen(json), FIELD_MAX_DEPTH, NULL, 0) != 0)
		return TS_ERR_INVALID;
	char *copy = malloc(len + 1);
	if (!copy)
		return TS_ERR_NOMEM;
	memcpy(copy, json, len + 1);
	out->json = copy;
	out->len = len;
	return TS_OK;
}

/* The text as a JSON string. */
static int text_to_json(const char *text, struct jtext *out)
{
	if (!text)
		return TS_ERR_INVALID_ARG;
	size_t len = strlen(text), bad;
	char *clean = NULL;
	if (json_utf8_check(text, len, &bad) != 0) {
		if (!(clean = dup_clean(text)))
			return TS_ERR_NOMEM;
		text = clean;
		len = strlen(clean);
	}
	struct sbuf fallback, *b = scratch_get(&fallback);
	sbuf_put_jstr(b, text, len);
	free(clean);
	out->json = sbuf_copy(b, &out->len);
	scratch_put(b, &fallback);
	return out->json ? TS_OK : TS_ERR_NOMEM;
}

static void replace(char **field, char *value)
{
	free(*field);
	*field = value;
}

static void replace_json(struct jtext *field, struct jtext value)
{
	free(field->json);
	*field = value;
}

/* ---- lifecycle ------------------------------------------------------------ */

/* Frees what the span holds, not the span itself. */
static void span_release(ts_span_t *s)
{
	if (s->name != s->name_buf)
		free(s->name);
	free(s->input.json);
	free(s->output.json);
	free(s->model);
	free(s->err_type);
	free(s->err_msg);
	for (int i = 0; i < s->nmeta; i++) {
		free(s->meta[i].key);
		free(s->meta[i].value.json);
	}
	free(s->meta);
	for (int i = 0; i < s->ntags; i++)
		free(s->tags[i]);
	free(s->tags);
}

/* Sets s->name to a clean copy of name, in the span when it fits. */
static int span_set_name(ts_span_t *s, const char *name)
{
	size_t len = strlen(name), bad;
	if (len < sizeof(s->name_buf) && json_utf8_check(name, len, &bad) == 0) {
		memcpy(s->name_buf, name, len + 1);
		s->name = s->name_buf;
		return 0;
	}
	s->name = dup_clean(name);
	return s->name ? 0 : -1;
}

/* Adds a span that began at start_us to t; the caller holds t->lock (or
 * owns t alone). */
static ts_span_t *span_add(ts_trace_t *t, ts_span_t *parent, const char *name, ts_span_type_t type,
                           int64_t start_us)
{
	if (t->nspans == t->capspans) {
		int cap = t->capspans * 2;
		ts_span_t **ns;
		if (t->spans == t->first_spans) {
			if ((ns = malloc((size_t)cap * sizeof(*ns))))
				memcpy(ns, t->first_spans, sizeof(t->first_spans));
		} else {
			ns = realloc(t->spans, (size_t)cap * sizeof(*ns));
		}
		if (!ns)
			return NULL;
		t->spans = ns;
		t->capspans = cap;
	}
	ts_span_t *s = t->nspans < TRACE_INLINE_SPANS ? &t->inline_spans[t->nspans]
	                                              : calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	if (span_set_name(s, name)) {
		if (t->nspans >= TRACE_INLINE_SPANS)
			free(s);
		return NULL;
	}
	s->trace = t;
	s->parent = parent;
	s->type = (unsigned)type <= TS_SPAN_TOOL ? type : TS_SPAN_GENERAL;
	s->start_us = start_us;
	ids_random_hex(s->id, REC_SPAN_ID_LEN);
	t->spans[t->nspans++] = s;
	return s;
}

static void trace_free(ts_trace_t *t)
{
	for (int i = 0; i < t->nspans; i++) {
		span_release(t->spans[i]);
		if (i >= TRACE_INLINE_SPANS)
			free(t->spans[i]);
	}
	if (t->spans != t->first_spans)
		free(t->spans);
	free(t->project);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

/* A new trace whose root began at start_us (now or earlier); NULL when out
 * of memory. */
static ts_trace_t *trace_new(ts_client_t *client, const char *name, int64_t start_us, int64_t now)
{
	ts_trace_t *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	pthread_mutex_init(&t->lock, NULL);
	t->client = client;
	t->spans = t->first_spans;
	t->capspans = TRACE_INLINE_SPANS;
	t->start_wall_us = tstime_now_us() - (now - start_us);
	ids_random_hex(t->id, REC_TRACE_ID_LEN);
	if (!span_add(t, NULL, name, TS_SPAN_GENERAL, start_us)) {
		trace_free(t);
		return NULL;
	}
	t->start_us = start_us;
	return t;
}

ts_trace_t *ts_trace_begin(ts_client_t *client, const char *name)
{
	if (!client || !name)
		return NULL;
	int64_t now = tstime_mono_us();
	return trace_new(client, name, now, now);
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
	/* The record names no parent for the root's children. */
	ts_span_t *s = span_add(t, parent == t->spans[0] ? NULL : parent, name, type, tstime_mono_us());
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

static int set_field_json(ts_span_t *s, struct jtext *field, const char *json)
{
	struct jtext v;
	int rc;
	if (!s)
		return TS_ERR_INVALID_ARG;
	if ((rc = dup_json(json, &v)) != TS_OK)
		return rc;
	LOCKED(s, replace_json(field, v));
	return TS_OK;
}

static int set_field_text(ts_span_t *s, struct jtext *field, const char *text)
{
	struct jtext v;
	int rc;
	if (!s)
		return TS_ERR_INVALID_ARG;
	if ((rc = text_to_json(text, &v)) != TS_OK)
		return rc;
	LOCKED(s, replace_json(field, v));
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

/* Takes key and value (both owned) into s's metadata, replacing the key's
 * earlier value. */
static int meta_put(ts_span_t *s, char *key, struct jtext value)
{
	int rc = TS_OK, i;
	pthread_mutex_lock(&s->trace->lock);
	for (i = 0; i < s->nmeta && strcmp(s->meta[i].key, key); i++)
		;
	if (i < s->nmeta) {
		free(key);
		replace_json(&s->meta[i].value, value);
		key = value.json = NULL;
	} else if (grow((void **)&s->meta, s->nmeta, &s->capmeta, sizeof(*s->meta))) {
		rc = TS_ERR_NOMEM;
	} else {
		s->meta[s->nmeta].key = key;
		s->meta[s->nmeta].value = value;
		s->nmeta++;
		key = value.json = NULL;
	}
	pthread_mutex_unlock(&s->trace->lock);
	free(key);
	free(value.json);
	return rc;
}

int ts_span_set_metadata_json(ts_span_t *s, const char *key, const char *json)
{
	struct jtext v;
	char *k;
	int rc;
	if (!s || !key)
		return TS_ERR_INVALID_ARG;
	if ((rc = dup_json(json, &v)) != TS_OK)
		return rc;
	if (!(k = dup_clean(key))) {
		free(v.json);
		return TS_ERR_NOMEM;
	}
	return meta_put(s, k, v);
}

int ts_span_set_metadata(ts_span_t *s, const char *key, const char *value)
{
	struct jtext v;
	char *k;
	int rc;
	if (!s || !key)
		return TS_ERR_INVALID_ARG;
	if ((rc = text_to_json(value, &v)) != TS_OK)
		return rc;
	if (!(k = dup_clean(key))) {
		free(v.json);
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

/* ---- one call per span ------------------------------------------------------ */

int64_t ts_now_ns(void)
{
	return tstime_mono_ns();
}

/* start_ns (ts_now_ns()'s clock) as a time of tstime_mono_us()'s, the same
 * clock in microseconds: 0, negative or later than now is now. */
static int64_t start_time(int64_t start_ns, int64_t now)
{
	int64_t us = start_ns / 1000;
	return start_ns > 0 && us < now ? us : now;
}

/* What the one-call functions set on a span, made and checked before the
 * span is touched, so that a refused argument leaves everything as it was. */
struct span_fields {
	struct jtext input, output;
	char *err_type, *err_msg;
};

static void fields_release(struct span_fields *f)
{
	free(f->input.json);
	free(f->output.json);
	free(f->err_type);
	free(f->err_msg);
}

/* A field's JSON from data[0..len) (NULL: not set, out left empty): JSON
 * text, checked, or Python marshal data, written as JSON here; either at
 * most limit bytes of JSON, else TS_ERR_INVALID like any value refused. */
static int value_init(struct jtext *out, const void *data, size_t len, int marshal, size_t limit)
{
	if (!data)
		return TS_OK;
	if (!marshal) {
		if (len > limit)
			return TS_ERR_INVALID;
		if (json_check(data, len, FIELD_MAX_DEPTH, NULL, 0) != 0)
			return TS_ERR_INVALID;
		if (!(out->json = malloc(len + 1)))
			return TS_ERR_NOMEM;
		memcpy(out->json, data, len);
		out->json[len] = '\0';
		out->len = len;
		return TS_OK;
	}
	struct sbuf fallback, *b = scratch_get(&fallback);
	int rc = pymarshal_to_json(data, len, FIELD_MAX_DEPTH, limit, b);
	if (rc == PYM_OK)
		out->json = sbuf_copy(b, &out->len);
	int oom = b->oom;
	scratch_put(b, &fallback);
	if (oom || (rc == PYM_OK && !out->json))
		return TS_ERR_NOMEM;
	return rc == PYM_OK ? TS_OK : TS_ERR_INVALID;
}

/* Fills f from the arguments; on failure frees what it made and returns
 * the error. */
static int fields_init(struct span_fields *f, const ts_client_t *c, int flags,
                       const void *input, size_t input_len, const void *output, size_t output_len,
                       const char *error_type, const char *error_message)
{
	size_t limit = client_max_field_bytes(c);
	int rc;
	memset(f, 0, sizeof(*f));
	if ((rc = value_init(&f->input, input, input_len, flags & TS_INPUT_MARSHAL, limit)) != TS_OK ||
	    (rc = value_init(&f->output, output, output_len, flags & TS_OUTPUT_MARSHAL, limit)) != TS_OK)
		goto fail;
	if (error_type) {
		f->err_type = dup_clean(error_type);
		f->err_msg = dup_clean(error_message ? error_message : "");
		if (!f->err_type || !f->err_msg) {
			rc = TS_ERR_NOMEM;
			goto fail;
		}
	}
	return TS_OK;
fail:
	fields_release(f);
	return rc;
}

/* Moves f's fields into s, replacing what they replace; the caller holds
 * s's trace's lock (or owns it alone). */
static void fields_apply(ts_span_t *s, struct span_fields *f)
{
	if (f->input.json)
		replace_json(&s->input, f->input);
	if (f->output.json)
		replace_json(&s->output, f->output);
	if (f->err_type) {
		replace(&s->err_type, f->err_type);
		replace(&s->err_msg, f->err_msg);
	}
}

/* A new trace named name, begun at start_ns (as start_time() reads it), f's
 * fields on its root span.  Takes f's fields (frees them when it fails);
 * NULL when out of memory. */
static ts_trace_t *trace_new_fields(ts_client_t *client, const char *name, int64_t start_ns,
                                    struct span_fields *f)
{
	int64_t now = tstime_mono_us();
	ts_trace_t *t = trace_new(client, name, start_time(start_ns, now), now);
	if (!t) {
		fields_release(f);
		return NULL;
	}
	fields_apply(t->spans[0], f);
	return t;
}

int ts_trace_begin_with(ts_client_t *client, const char *name, int64_t start_ns, int flags,
                        const void *input, size_t input_len, ts_trace_t **trace)
{
	struct span_fields f;
	int rc;
	if (!client || !name || !trace)
		return TS_ERR_INVALID_ARG;
	if ((rc = fields_init(&f, client, flags, input, input_len, NULL, 0, NULL, NULL)) != TS_OK)
		return rc;
	ts_trace_t *t = trace_new_fields(client, name, start_ns, &f);
	if (!t)
		return TS_ERR_NOMEM;
	*trace = t;
	return TS_OK;
}

int ts_trace_end_with(ts_trace_t *t, int flags, const void *output, size_t output_len,
                      const char *error_type, const char *error_message)
{
	struct span_fields f;
	int rc;
	if (!t)
		return TS_ERR_INVALID_ARG;
	if ((rc = fields_init(&f, t->client, flags, NULL, 0, output, output_len, error_type,
	                      error_message)) != TS_OK) {
		if (rc != TS_ERR_INVALID) /* only a refused value leaves the trace to the caller */
			ts_trace_abandon(t);
		return rc;
	}
	pthread_mutex_lock(&t->lock);
	fields_apply(t->spans[0], &f);
	pthread_mutex_unlock(&t->lock);
	return ts_trace_end(t);
}

int ts_trace_record(ts_client_t *client, const char *name, int64_t start_ns, int flags,
                    const void *input, size_t input_len, const void *output, size_t output_len,
                    const char *error_type, const char *error_message)
{
	struct span_fields f;
	int rc;
	if (!client || !name)
		return TS_ERR_INVALID_ARG;
	if ((rc = fields_init(&f, client, flags, input, input_len, output, output_len, error_type,
	                      error_message)) != TS_OK)
		return rc;
	ts_trace_t *t = trace_new_fields(client, name, start_ns, &f);
	if (!t)
		return TS_ERR_NOMEM;
	return ts_trace_end(t);
}

/* span_add() for the one-call functions: a span of t under parent with the
 * fields of f, begun at start_ns and, when ended, ended now.  Takes f's
 * fields (frees them when it fails). */
static int span_add_fields(ts_trace_t *t, ts_span_t *parent, const char *name, ts_span_type_t type,
                           int64_t start_ns, int ended, struct span_fields *f, ts_span_t **span)
{
	pthread_mutex_lock(&t->lock);
	int64_t now = tstime_mono_us();
	ts_span_t *s = span_add(t, parent == t->spans[0] ? NULL : parent, name, type, start_time(start_ns, now));
	if (s) {
		fields_apply(s, f);
		if (ended)
			s->end_us = now;
	}
	pthread_mutex_unlock(&t->lock);
	if (!s) {
		fields_release(f);
		return TS_ERR_NOMEM;
	}
	if (span)
		*span = s;
	return TS_OK;
}

int ts_span_begin_with(ts_trace_t *t, ts_span_t *parent, const char *name, ts_span_type_t type,
                       int64_t start_ns, int flags, const void *input, size_t input_len,
                       ts_span_t **span)
{
	struct span_fields f;
	int rc;
	if (!t || !name || !span || (parent && parent->trace != t))
		return TS_ERR_INVALID_ARG;
	if ((rc = fields_init(&f, t->client, flags, input, input_len, NULL, 0, NULL, NULL)) != TS_OK)
		return rc;
	return span_add_fields(t, parent, name, type, start_ns, 0, &f, span);
}

int ts_span_end_with(ts_span_t *s, int flags, const void *output, size_t output_len,
                     const char *error_type, const char *error_message)
{
	struct span_fields f;
	int rc;
	if (!s)
		return TS_ERR_INVALID_ARG;
	if ((rc = fields_init(&f, s->trace->client, flags, NULL, 0, output, output_len, error_type,
	                      error_message)) != TS_OK)
		return rc;
	pthread_mutex_lock(&s->trace->lock);
	fields_apply(s, &f);
	if (!s->end_us)
		s->end_us = tstime_mono_us();
	pthread_mutex_unlock(&s->trace->lock);
	return TS_OK;
}

int ts_span_record(ts_trace_t *t, ts_span_t *parent, const char *name, ts_span_type_t type,
                   int64_t start_ns, int flags, const void *input, size_t input_len,
                   const void *output, size_t output_len, const char *error_type,
                   const char *error_message, ts_span_t **span)
{
	struct span_fields f;
	int rc;
	if (!t || !name || (parent && parent->trace != t))
		return TS_ERR_INVALID_ARG;
	if ((rc = fields_init(&f, t->client, flags, input, input_len, output, output_len, error_type,
	                      error_message)) != TS_OK)
		return rc;
	return span_add_fields(t, parent, name, type, start_ns, 1, &f, span);
}

/* ---- serialization -------------------------------------------------------- */

static void put_jstr_z(struct sbuf *b, const char *str)
{
	sbuf_put_jstr(b, str, strlen(str));
}

/* Writes v (0 to 99) as two digits. */
static void put2(char *o, int v)
{
	static const char two_digits[201] =
		"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
		"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
		"8081828384858687888990919293949596979899";
	memcpy(o, two_digits + 2 * v, 2);
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

/* A record's timestamps nearly always fall in the same minute, so the
 * "YYYY-MM-DDTHH:MM:" of the last minute written is kept and only the
 * seconds are formatted.  The bytes are those of tstime_format(). */
struct stamp_cache {
	int64_t minute;  /* unix_us / 60000000 of head; -1: none yet */
	char head[17];
};

/* Writes the wall-clock time unix_us as a quoted RFC 3339 string. */
static void put_stamp(struct sbuf *b, struct stamp_cache *c, int64_t unix_us)
{
	char out[TSTIME_LEN + 1];
	out[0] = '"';
	if (unix_us < 0) { /* before 1970: a clock gone wrong; no shortcut */
		size_t n = tstime_format(unix_us, out + 1);
		out[n + 1] = '"';
		sbuf_put(b, out, n + 2);
		return;
	}
	int64_t minute = unix_us / 60000000;
	int us = (int)(unix_us % 60000000); /* into the minute */
	if (minute != c->minute) {
		tstime_format(unix_us, out + 1);
		memcpy(c->head, out + 1, sizeof(c->head));
		c->minute = minute;
	} else {
		memcpy(out + 1, c->head, sizeof(c->head));
	}
	put2(out + 18, us / 1000000);
	out[20] = '.';
	put2(out + 21, us / 10000 % 100);
	put2(out + 23, us / 100 % 100);
	put2(out + 25, us % 100);
	out[27] = 'Z';
	out[28] = '"';
	sbuf_put(b, out, 29);
}

/* The monotonic time mono_us of t as wall-clock time, quoted. */
static void put_time(struct sbuf *b, struct stamp_cache *c, const ts_trace_t *t, int64_t mono_us)
{
	put_stamp(b, c, t->start_wall_us + (mono_us - t->start_us));
}

static void put_usage(struct sbuf *b, int64_t in, int64_t out)
{
	sbuf_put_lit(b, ",\"usage\":{\"input_tokens\":");
	put_int(b, in);
	sbuf_put_lit(b, ",\"output_tokens\":");
	put_int(b, out);
	sbuf_put_lit(b, ",\"total_tokens\":");
	put_int(b, in + out);
	sbuf_putc(b, '}');
}

/* The fields a span and the root have in common. */
static void put_common(struct sbuf *b, const ts_span_t *s, int is_root, const char *model,
                       int64_t ttft_from, int64_t first_token_us)
{
	if (s->input.json) {
		sbuf_put_lit(b, ",\"input\":");
		sbuf_put(b, s->input.json, s->input.len);
	}
	if (s->output.json) {
		sbuf_put_lit(b, ",\"output\":");
		sbuf_put(b, s->output.json, s->output.len);
	}
	if (s->ntags || is_root) {
		sbuf_put_lit(b, ",\"tags\":[");
		for (int i = 0; i < s->ntags; i++) {
			if (i)
				sbuf_putc(b, ',');
			put_jstr_z(b, s->tags[i]);
		}
		sbuf_putc(b, ']');
	}
	if (s->nmeta || is_root) {
		sbuf_put_lit(b, ",\"metadata\":{");
		for (int i = 0; i < s->nmeta; i++) {
			if (i)
				sbuf_putc(b, ',');
			put_jstr_z(b, s->meta[i].key);
			sbuf_putc(b, ':');
			sbuf_put(b, s->meta[i].value.json, s->meta[i].value.len);
		}
		sbuf_putc(b, '}');
	}
	if (model) {
		sbuf_put_lit(b, ",\"model\":");
		put_jstr_z(b, model);
	}
	sbuf_put_lit(b, ",\"latency_ms\":{\"total\":");
	put_ms(b, s->end_us - s->start_us);
	if (first_token_us) {
		sbuf_put_lit(b, ",\"time_to_first_token\":");
		put_ms(b, first_token_us - ttft_from);
	}
	sbuf_putc(b, '}');
	if (s->err_type) {
		sbuf_put_lit(b, ",\"error\":{\"type\":");
		put_jstr_z(b, s->err_type);
		sbuf_put_lit(b, ",\"message\":");
		put_jstr_z(b, s->err_msg);
		sbuf_putc(b, '}');
	} else {
		sbuf_put_lit(b, ",\"error\":null");
	}
}

/* Writes the record of t, whose spans have all ended, to b; the caller
 * holds t->lock (or owns t alone). */
static void trace_serialize(const ts_trace_t *t, struct sbuf *b)
{
	const ts_span_t *root = t->spans[0];
	struct stamp_cache stamps = { .minute = -1 };

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

	sbuf_put_lit(b, "{\"v\":1,\"trace_id\":\"");
	sbuf_put(b, t->id, REC_TRACE_ID_LEN);
	sbuf_put_lit(b, "\",\"name\":");
	put_jstr_z(b, root->name);
	sbuf_put_lit(b, ",\"project\":");
	put_jstr_z(b, t->project ? t->project : client_project(t->client));
	sbuf_put_lit(b, ",\"start_time\":");
	put_time(b, &stamps, t, root->start_us);
	sbuf_put_lit(b, ",\"end_time\":");
	put_time(b, &stamps, t, root->end_us);
	put_common(b, root, 1, model, t->start_us, first);
	if (has_usage)
		put_usage(b, in, out);
	sbuf_put_lit(b, ",\"spans\":[");
	for (int i = 1; i < t->nspans; i++) {
		const ts_span_t *s = t->spans[i];
		if (i > 1)
			sbuf_putc(b, ',');
		sbuf_put_lit(b, "{\"span_id\":\"");
		sbuf_put(b, s->id, REC_SPAN_ID_LEN);
		if (s->parent) {
			sbuf_put_lit(b, "\",\"parent_span_id\":\"");
			sbuf_put(b, s->parent->id, REC_SPAN_ID_LEN);
			sbuf_putc(b, '"');
		} else {
			sbuf_put_lit(b, "\",\"parent_span_id\":null");
		}
		sbuf_put_lit(b, ",\"name\":");
		put_jstr_z(b, s->name);
		sbuf_put_lit(b, ",\"type\":");
		sbuf_puts(b, type_json[s->type]);
		sbuf_put_lit(b, ",\"start_time\":");
		put_time(b, &stamps, t, s->start_us);
		sbuf_put_lit(b, ",\"end_time\":");
		put_time(b, &stamps, t, s->end_us);
		put_common(b, s, 0, s->model, s->start_us, s->first_token_us);
		if (s->has_usage)
			put_usage(b, s->in_tokens, s->out_tokens);
		sbuf_putc(b, '}');
	}
	sbuf_put_lit(b, "]}");
}

/* Ends every open span of t now and writes its record to b. */
static void trace_end_spans_and_serialize(ts_trace_t *t, struct sbuf *b)
{
	pthread_mutex_lock(&t->lock);
	int64_t now = tstime_mono_us();
	/* A span cannot end after the trace that holds it. */
	for (int i = t->nspans - 1; i >= 0; i--) {
		ts_span_t *s = t->spans[i];
		if (!s->end_us || s->end_us > now)
			s->end_us = now;
	}
	trace_serialize(t, b);
	pthread_mutex_unlock(&t->lock);
}

char *trace_render(ts_trace_t *t, size_t *len)
{
	struct sbuf fallback, *b = scratch_get(&fallback);
	trace_end_spans_and_serialize(t, b);
	char *rec = sbuf_copy(b, len);
	scratch_put(b, &fallback);
	return rec;
}

int ts_trace_end(ts_trace_t *t)
{
	if (!t)
		return TS_ERR_INVALID_ARG;
	struct sbuf fallback, *b = scratch_get(&fallback);
	trace_end_spans_and_serialize(t, b);
	char id[REC_TRACE_ID_LEN + 1];
	memcpy(id, t->id, sizeof(id));
	ts_client_t *c = t->client;
	/* The trace is freed before the record is copied out of b, so that the
	 * copy can take memory the trace held rather than new memory. */
	trace_free(t);
	size_t len;
	char *rec = sbuf_copy(b, &len);
	scratch_put(b, &fallback);
	if (!rec)
		return TS_ERR_NOMEM;
	return client_enqueue_owned(c, id, rec, len);
}
