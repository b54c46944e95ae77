/* sink/opik.c - insert dataset items into Opik through its REST API (libcurl)
 *
 * Implemented from Opik's published OpenAPI document (docs/opik.md names the
 * version and where it was read):
 *   POST {base}/v1/private/datasets        {"name","description","project_name"}
 *        201 created, 409 exists: both mean the dataset is there
 *   PUT  {base}/v1/private/datasets/items  {"dataset_name","project_name",
 *        "items":[{"id","source","data"}]}: upsert by item id, 204
 * An item's id must be a UUID of version 7; ours is derived from (dataset,
 * item id) so that a retried or replayed item replaces itself.
 */
#include "opik.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "json.h"
#include "sample.h"
#include "sbuf.h"
#include "tstime.h"

#define ITEM_DEPTH  512          /* nesting followed inside an item */
#define ID_MAX      256          /* longest item id, in bytes */
#define NAME_MAX_B  1000         /* longest dataset or project name, in bytes */
#define EXTRA_MAX   64           /* item fields besides type/id/dataset/record */
#define RESP_MAX    (64 * 1024)  /* response body kept for error messages */
#define MSG_MAX     300          /* server message quoted in an error, in bytes */

static const char PATH_DATASETS[] = "/v1/private/datasets";
static const char PATH_ITEMS[] = "/v1/private/datasets/items";
static const char DESCRIPTION[] = "monitoring dataset written by tracesift";

struct opik {
	struct opik_conf conf;  /* defaults applied; its strings are not kept */
	CURL *curl;
	struct curl_slist *headers;
	char *base;             /* base_url without a trailing '/' */
	char *project;          /* NULL: none */
	char *key_env;          /* the variable's name, for messages; NULL: none */
	char *key;              /* NULL: none; wiped at destroy */
	size_t keylen;
	char **known;           /* datasets created or found existing */
	int nknown, capknown;
	struct sbuf url;
	struct sbuf resp;       /* the last response body, at most RESP_MAX bytes */
	int retry_after_seen;   /* the last response carried a usable Retry-After */
	int64_t retry_after_s;
	uint64_t rng;
	int retriable;
	int curl_global;        /* curl_global_init() succeeded */
	struct opik_stats st;
	char curlerr[CURL_ERROR_SIZE];
};

static void fail(char *err, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(char *err, size_t n, const char *fmt, ...)
{
	if (!err || !n)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, n, fmt, ap);
	va_end(ap);
}


/* --- the item id ---------------------------------------------------------- */

void opik_item_uuid(const char *dataset, const char *id, size_t idlen, int64_t start_ms,
                    char out[37])
{
	/* FNV-1a 64 over dataset, a NUL byte, and the id */
	uint64_t h = 0xcbf29ce484222325ULL;
	for (const unsigned char *p = (const unsigned char *)dataset; *p; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	h = (h ^ 0) * 0x100000001b3ULL;
	for (size_t i = 0; i < idlen; i++)
		h = (h ^ (unsigned char)id[i]) * 0x100000001b3ULL;
	uint64_t a = sample_mix64(h);
	uint64_t b = sample_mix64(a ^ 0x9e3779b97f4a7c15ULL);
	uint64_t ms = start_ms < 0 ? 0 : (uint64_t)start_ms & 0xffffffffffffULL;
	/* RFC 9562 UUIDv7: unix_ts_ms(48) ver(4)=7 rand_a(12) var(2)=10 rand_b(62) */
	uint64_t hi = ms << 16 | 0x7000 | a >> 52;
	uint64_t lo = 0x8000000000000000ULL | b >> 2;
	snprintf(out, 37, "%08x-%04x-%04x-%04x-%012llx",
	         (unsigned)(hi >> 32), (unsigned)(hi >> 16 & 0xffff), (unsigned)(hi & 0xffff),
	         (unsigned)(lo >> 48), (unsigned long long)(lo & 0xffffffffffffULL));
}

/* --- converting an item ----------------------------------------------------- */

struct span {
	const char *s;
	size_t len;
};

struct member {
	struct span key, val; /* the key with its quotes, the value as written */
};

static int key_is(const struct json_str *k, const char *name)
{
	size_t nl = strlen(name);
	if (!k->escaped)
		return k->len == nl && !memcmp(k->s, name, nl);
	char tmp[32];
	size_t tl;
	if (json_str_decode(k, tmp, sizeof tmp, &tl))
		return 0;
	return tl == nl && !memcmp(tmp, name, nl);
}

static int cur_fail(const struct json_cur *c, const char *what, char *err, size_t n)
{
	char e[200];
	json_cur_errstr(c, e, sizeof e);
	fail(err, n, "%s: %s", what, e);
	return -1;
}

/* Reads a string value the cursor is on into out (NUL-terminated). */
static int cur_string(struct json_cur *c, const char *field, char *out, size_t size, size_t *outlen,
                      char *err, size_t n)
{
	struct json_str s;
	if (json_cur_peek(c) != JSON_STRING) {
		if (c->err)
			return cur_fail(c, "not JSON", err, n);
		fail(err, n, "field '%s': expected a string", field);
		return -1;
	}
	if (json_cur_string(c, &s))
		return cur_fail(c, "not JSON", err, n);
	if (json_str_decode(&s, out, size, outlen)) {
		fail(err, n, "field '%s': longer than %zu bytes", field, size - 1);
		return -1;
	}
	return 0;
}

/* Appends the Opik dataset item for one sampler item to out:
 *   {"id":UUID,"source":"sdk","data":{<the record's fields>,
 *    "tracesift":{"item_id":ID,<the item's other fields>}}}
 * Values are copied as written, so numbers and unknown fields pass unchanged.
 * Returns 0, or -1 with errstr (out may then hold part of the item). */
static int item_convert(struct sbuf *out, const char *dataset, const char *buf, size_t len,
                        char *err, size_t n)
{
	struct member extra[EXTRA_MAX];
	struct span idraw = { 0 }, rec = { 0 };
	char id[ID_MAX + 1], str[NAME_MAX_B + 1];
	size_t idlen = 0, sl;
	int nextra = 0, cnt = 0, r;
	struct json_cur c;
	struct json_str k;

	json_cur_init(&c, buf, len, ITEM_DEPTH);
	if (json_cur_peek(&c) != JSON_OBJECT) {
		if (c.err)
			return cur_fail(&c, "not JSON", err, n);
		fail(err, n, "expected a JSON object");
		return -1;
	}
	json_cur_enter(&c);
	while ((r = json_cur_member(&c, &cnt, &k)) == 1) {
		enum json_type t = json_cur_peek(&c);
		const char *vs = c.p;
		if (t == JSON_NONE)
			break;
		if (key_is(&k, "type")) {
			if (cur_string(&c, "type", str, sizeof str, &sl, err, n))
				return -1;
			if (sl != 4 || memcmp(str, "item", 4)) {
				fail(err, n, "field 'type': expected \"item\"");
				return -1;
			}
		} else if (key_is(&k, "id")) {
			if (cur_string(&c, "id", id, sizeof id, &idlen, err, n))
				return -1;
			if (!idlen) {
				fail(err, n, "field 'id': empty");
				return -1;
			}
			idraw.s = vs;
			idraw.len = (size_t)(c.p - vs);
		} else if (key_is(&k, "dataset")) {
			if (cur_string(&c, "dataset", str, sizeof str, &sl, err, n))
				return -1;
			if (sl != strlen(dataset) || memcmp(str, dataset, sl)) {
				fail(err, n, "field 'dataset': the item belongs to another dataset than '%s'", dataset);
				return -1;
			}
		} else if (key_is(&k, "record")) {
			if (t != JSON_OBJECT) {
				fail(err, n, "field 'record': expected an object");
				return -1;
			}
			if (json_cur_skip(&c))
				break;
			rec.s = vs;
			rec.len = (size_t)(c.p - vs);
		} else {
			if (json_cur_skip(&c))
				break;
			if (nextra == EXTRA_MAX) {
				fail(err, n, "more than %d fields", EXTRA_MAX + 4);
				return -1;
			}
			extra[nextra].key.s = k.s - 1;
			extra[nextra].key.len = k.len + 2;
			extra[nextra].val.s = vs;
			extra[nextra].val.len = (size_t)(c.p - vs);
			nextra++;
		}
	}
	if (c.err || json_cur_finish(&c))
		return cur_fail(&c, "not JSON", err, n);
	if (!idraw.s) {
		fail(err, n, "field 'id': missing");
		return -1;
	}
	if (!rec.s) {
		fail(err, n, "field 'record': missing");
		return -1;
	}

	/* the id goes first; its UUID needs the record's start_time, so a
	 * placeholder is filled in once the record was read */
	sbuf_put_lit(out, "{\"id\":\"");
	size_t uuid_at = out->len;
	sbuf_put_lit(out, "00000000-0000-0000-0000-000000000000\",\"source\":\"sdk\",\"data\":{");

	int64_t start_us = 0;
	int first = 1;
	json_cur_init(&c, rec.s, rec.len, ITEM_DEPTH);
	json_cur_enter(&c);
	cnt = 0;
	while ((r = json_cur_member(&c, &cnt, &k)) == 1) {
		enum json_type t = json_cur_peek(&c);
		const char *vs = c.p;
		if (t == JSON_NONE)
			break;
		if (t == JSON_STRING && key_is(&k, "start_time")) {
			struct json_str s;
			char ts[64];
			size_t tl;
			int64_t us;
			if (json_cur_string(&c, &s))
				break;
			if (!json_str_decode(&s, ts, sizeof ts, &tl) && !tstime_parse(ts, tl, &us) && us > 0)
				start_us = us;
		} else if (json_cur_skip(&c)) {
			break;
		}
		if (key_is(&k, "tracesift"))
			continue; /* ours replaces it */
		if (!first)
			sbuf_putc(out, ',');
		first = 0;
		sbuf_put(out, k.s - 1, k.len + 2);
		sbuf_putc(out, ':');
		sbuf_put(out, vs, (size_t)(c.p - vs));
	}
	if (r < 0 || c.err)
		return cur_fail(&c, "field 'record'", err, n);
	if (!first)
		sbuf_putc(out, ',');
	sbuf_put_lit(out, "\"tracesift\":{\"item_id\":");
	sbuf_put(out, idraw.s, idraw.len);
	for (int i = 0; i < nextra; i++) {
		sbuf_putc(out, ',');
		sbuf_put(out, extra[i].key.s, extra[i].key.len);
		sbuf_putc(out, ':');
		sbuf_put(out, extra[i].val.s, extra[i].val.len);
	}
	sbuf_put_lit(out, "}}}");
	if (out->oom) {
		fail(err, n, "out of memory");
		return -1;
	}
	char uuid[37];
	opik_item_uuid(dataset, id, idlen, start_us / 1000, uuid);
	memcpy(out->buf + uuid_at, uuid, 36);
	return 0;
}

/* --- HTTP ------------------------------------------------------------------ */

/* Replaces every copy of the key in s by "***" (or as many '*' as the key is
 * long, when shorter), in place. */
static void scrub(const struct opik *o, char *s)
{
	if (!o || !o->key || !o->keylen || !s)
		return;
	const char *rep = o->keylen >= 3 ? "***" : o->keylen == 2 ? "**" : "*";
	size_t rl = strlen(rep);
	char *p = s;
	while ((p = strstr(p, o->key))) {
		memmove(p + rl, p + o->keylen, strlen(p + o->keylen) + 1);
		memcpy(p, rep, rl);
		p += rl;
	}
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct opik *o = userdata;
	size_t n = size * nmemb;
	if (o->resp.len < RESP_MAX)
		sbuf_put(&o->resp, ptr, n < RESP_MAX - o->resp.len ? n : RESP_MAX - o->resp.len);
	return n;
}

/* Retry-After: delay-seconds or an HTTP date (RFC 9110 10.2.3). */
static int parse_retry_after(const char *v, size_t len, int64_t *secs)
{
	char tmp[64];
	while (len && (*v == ' ' || *v == '\t'))
		v++, len--;
	while (len && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	if (!len || len >= sizeof tmp)
		return -1;
	memcpy(tmp, v, len);
	tmp[len] = '\0';
	size_t digits = strspn(tmp, "0123456789");
	if (digits == len) {
		if (len > 9)
			*secs = 999999999;
		else
			*secs = strtoll(tmp, NULL, 10);
		return 0;
	}
	time_t t = curl_getdate(tmp, NULL);
	if (t == (time_t)-1)
		return -1;
	int64_t d = (int64_t)t - (int64_t)time(NULL);
	*secs = d < 0 ? 0 : d;
	return 0;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *userdata)
{
	struct opik *o = userdata;
	size_t n = size * nitems;
	if (n >= 5 && !memcmp(buf, "HTTP/", 5)) {
		o->retry_after_seen = 0; /* a new response (after a 100 Continue, say) */
	} else if (n > 12 && !strncasecmp(buf, "retry-after:", 12)) {
		int64_t s;
		if (!parse_retry_after(buf + 12, n - 12, &s)) {
			o->retry_after_s = s;
			o->retry_after_seen = 1;
		}
	}
	return n;
}

static int curl_retriable(CURLcode rc)
{
	switch (rc) {
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_NOT_BUILT_IN:
	case CURLE_BAD_FUNCTION_ARGUMENT:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_TOO_MANY_REDIRECTS:
	case CURLE_LOGIN_DENIED:
		return 0;
	default:
		return 1;
	}
}

/* Copies s into out (size bytes, at most MSG_MAX of text): control
 * characters become spaces (runs of them one), bytes that are not UTF-8
 * become '?', and the text is never cut inside a character. */
static void clean_text(const char *s, char *out, size_t size)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t w = 0, lim = size - 1 < MSG_MAX ? size - 1 : MSG_MAX;
	while (*p) {
		size_t sl = *p < 0x80 ? 1 : *p >= 0xf0 ? 4 : *p >= 0xe0 ? 3 : *p >= 0xc0 ? 2 : 0;
		size_t k = 0;
		while (k < sl && p[k])
			k++;
		if (!sl || k < sl || (sl > 1 && json_utf8_check((const char *)p, sl, NULL))) {
			sl = 1; /* not UTF-8: one byte, shown as '?' */
			if (w + 1 > lim)
				break;
			out[w++] = '?';
			p++;
			continue;
		}
		if (w + sl > lim)
			break;
		if (sl == 1) {
			char ch = *p < 0x20 || *p == 0x7f ? ' ' : (char)*p;
			if (ch != ' ' || (w && out[w - 1] != ' '))
				out[w++] = ch;
		} else {
			memcpy(out + w, p, sl);
			w += sl;
		}
		p += sl;
	}
	while (w && out[w - 1] == ' ')
		w--;
	out[w] = '\0';
}

/* The server's explanation in the last response body: "message", or the
 * "errors" list, as Opik's error bodies have them, else the body itself;
 * with the key scrubbed before it is cut (no prefix of it survives). */
static void resp_message(const struct opik *o, char *out, size_t size)
{
	struct sbuf m;
	out[0] = '\0';
	if (!o->resp.len)
		return;
	sbuf_init(&m);
	cJSON *j = cJSON_ParseWithLength(o->resp.buf, o->resp.len);
	const cJSON *msg = cJSON_GetObjectItemCaseSensitive(j, "message");
	const cJSON *errs = cJSON_GetObjectItemCaseSensitive(j, "errors");
	if (cJSON_IsString(msg)) {
		sbuf_puts(&m, msg->valuestring);
	} else if (cJSON_IsArray(errs)) {
		const cJSON *e;
		cJSON_ArrayForEach(e, errs) {
			if (!cJSON_IsString(e))
				continue;
			if (m.len)
				sbuf_put_lit(&m, "; ");
			sbuf_puts(&m, e->valuestring);
		}
	}
	cJSON_Delete(j);
	if (!m.len)
		sbuf_put(&m, o->resp.buf, o->resp.len);
	if (!m.oom && m.buf) {
		scrub(o, m.buf);
		clean_text(m.buf, out, size);
	}
	sbuf_release(&m);
}

static void describe_status(const struct opik *o, const char *method, const char *path, long st,
                            char *out, size_t size)
{
	char msg[MSG_MAX + 8], hint[200] = "";
	resp_message(o, msg, sizeof msg);
	if (st == 401 && o->key_env)
		snprintf(hint, sizeof hint, " (the API key in $%s was refused)", o->key_env);
	else if (st == 401)
		snprintf(hint, sizeof hint, " (no API key was sent: set opik.api_key_env)");
	else if (st == 403)
		snprintf(hint, sizeof hint, " (check opik.workspace and that the key may use it)");
	else if (st >= 300 && st < 400)
		snprintf(hint, sizeof hint, " (redirects are not followed: check opik.base_url)");
	else if (st == 404)
		snprintf(hint, sizeof hint, " (check opik.base_url: it ends in /api for a self-hosted Opik, "
		         "/opik/api for Opik Cloud)");
	snprintf(out, size, "%s %s: HTTP %ld%s%s%s", method, path, st, msg[0] ? ": " : "", msg, hint);
}

/* One attempt.  Returns the CURLcode and sets *status (0 without a response). */
static CURLcode http_once(struct opik *o, const char *method, const char *path,
                          const char *body, size_t len, long *status)
{
	o->url.len = 0;
	sbuf_puts(&o->url, o->base);
	sbuf_puts(&o->url, path);
	if (o->url.oom)
		return CURLE_OUT_OF_MEMORY;
	curl_easy_setopt(o->curl, CURLOPT_URL, o->url.buf);
	curl_easy_setopt(o->curl, CURLOPT_POST, 1L);
	curl_easy_setopt(o->curl, CURLOPT_CUSTOMREQUEST, strcmp(method, "POST") ? method : NULL);
	curl_easy_setopt(o->curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(o->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	o->resp.len = 0;
	if (o->resp.buf)
		o->resp.buf[0] = '\0';
	o->retry_after_seen = 0;
	o->curlerr[0] = '\0';
	o->st.requests++;
	CURLcode rc = curl_easy_perform(o->curl);
	*status = 0;
	if (rc == CURLE_OK)
		curl_easy_getinfo(o->curl, CURLINFO_RESPONSE_CODE, status);
	return rc;
}

/* Equal jitter: half the doubled delay, plus up to as much again at random. */
static int64_t backoff_ms(struct opik *o, int attempt)
{
	int64_t cap = o->conf.backoff_ms;
	for (int i = 0; i < attempt && cap < o->conf.backoff_max_ms; i++)
		cap *= 2;
	if (cap > o->conf.backoff_max_ms)
		cap = o->conf.backoff_max_ms;
	o->rng = sample_mix64(o->rng + 0x9e3779b97f4a7c15ULL);
	return cap / 2 + (int64_t)(o->rng % (uint64_t)(cap / 2 + 1));
}

/* Sleeps ms milliseconds; returns -1 early when conf.run was cleared. */
static int pause_ms(struct opik *o, int64_t ms)
{
	int64_t end = tstime_mono_us() + ms * 1000;
	for (;;) {
		if (o->conf.run && !*o->conf.run)
			return -1;
		int64_t left = end - tstime_mono_us();
		if (left <= 0)
			return 0;
		if (left > 50000)
			left = 50000;
		struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)left * 1000 };
		nanosleep(&ts, NULL);
	}
}

/* Sends one request until it succeeds, retrying what is transient.  A status
 * also_ok (or 0 for none) counts as success besides 2xx.  Returns 0, or -1
 * with errstr and o->retriable set. */
static int request(struct opik *o, const char *method, const char *path, const char *body,
                   size_t len, long also_ok, char *err, size_t n)
{
	char last[CURL_ERROR_SIZE + MSG_MAX + 256];
	for (int attempt = 0;; attempt++) {
		long st;
		int retry;
		CURLcode rc = http_once(o, method, path, body, len, &st);
		if (rc == CURLE_OK) {
			if ((st >= 200 && st < 300) || (also_ok && st == also_ok))
				return 0;
			retry = st == 408 || st == 429 || st >= 500;
			describe_status(o, method, path, st, last, sizeof last);
		} else {
			retry = curl_retriable(rc);
			scrub(o, o->curlerr);
			snprintf(last, sizeof last, "%s %s: %s", method, path,
			         o->curlerr[0] ? o->curlerr : curl_easy_strerror(rc));
		}
		if (!retry) {
			o->retriable = 0;
			fail(err, n, "%s", last);
			return -1;
		}
		if (attempt >= o->conf.max_retries) {
			o->retriable = 1;
			fail(err, n, "gave up after %d attempt%s: %s", attempt + 1, attempt ? "s" : "", last);
			return -1;
		}
		int64_t wait = backoff_ms(o, attempt);
		if (rc == CURLE_OK && o->retry_after_seen) {
			if (o->retry_after_s * 1000 > o->conf.retry_after_max_ms) {
				o->retriable = 1;
				fail(err, n, "%s (Retry-After: %lld s, more than opik.retry_after_max_ms allows)",
				     last, (long long)o->retry_after_s);
				return -1;
			}
			if (o->retry_after_s * 1000 > wait)
				wait = o->retry_after_s * 1000;
		}
		if (pause_ms(o, wait)) {
			o->retriable = 1;
			fail(err, n, "interrupted while waiting to retry: %s", last);
			return -1;
		}
		o->st.retries++;
	}
}

/* --- datasets and items --------------------------------------------------- */

static int dataset_ensure(struct opik *o, const char *dataset, char *err, size_t n)
{
	for (int i = 0; i < o->nknown; i++)
		if (!strcmp(o->known[i], dataset))
			return 0;
	if (o->nknown == o->capknown) {
		int cap = o->capknown ? 2 * o->capknown : 8;
		char **k = realloc(o->known, (size_t)cap * sizeof *k);
		if (!k) {
			o->retriable = 1;
			fail(err, n, "out of memory");
			return -1;
		}
		o->known = k;
		o->capknown = cap;
	}
	char *copy = strdup(dataset);
	struct sbuf b;
	sbuf_init(&b);
	sbuf_put_lit(&b, "{\"name\":");
	sbuf_put_jstr(&b, dataset, strlen(dataset));
	if (o->project) {
		sbuf_put_lit(&b, ",\"project_name\":");
		sbuf_put_jstr(&b, o->project, strlen(o->project));
	}
	sbuf_put_lit(&b, ",\"description\":");
	sbuf_put_jstr(&b, DESCRIPTION, sizeof DESCRIPTION - 1);
	sbuf_putc(&b, '}');
	if (b.oom || !copy) {
		sbuf_release(&b);
		free(copy);
		o->retriable = 1;
		fail(err, n, "out of memory");
		return -1;
	}
	/* 409: it exists already */
	int r = request(o, "POST", PATH_DATASETS, b.buf, b.len, 409, err, n);
	sbuf_release(&b);
	if (r) {
		free(copy);
		return -1;
	}
	o->known[o->nknown++] = copy;
	return 0;
}

static int name_check(const char *what, const char *s, char *err, size_t n)
{
	size_t len = s ? strlen(s) : 0;
	if (!len || len > NAME_MAX_B || json_utf8_check(s, len, NULL)) {
		fail(err, n, "%s: expected 1 to %d bytes of UTF-8", what, NAME_MAX_B);
		return -1;
	}
	return 0;
}

static int insert(struct opik *o, const char *dataset, const char *const *items,
                  const size_t *lens, int n, char *err, size_t en)
{
	struct sbuf conv, body, head;
	size_t *off = NULL;
	int r = -1;

	o->retriable = 0;
	if (name_check("dataset name", dataset, err, en))
		return -1;
	if (n <= 0)
		return 0;
	if (!items || !lens) {
		fail(err, en, "no items given");
		return -1;
	}

	/* every item converted before anything is sent */
	sbuf_init(&conv);
	sbuf_init(&body);
	sbuf_init(&head);
	off = malloc(((size_t)n + 1) * sizeof *off);
	if (!off) {
		o->retriable = 1;
		fail(err, en, "out of memory");
		goto out;
	}
	for (int i = 0; i < n; i++) {
		char e[300];
		off[i] = conv.len;
		if (!items[i] || item_convert(&conv, dataset, items[i], lens[i], e, sizeof e)) {
			fail(err, en, "item %d: %s", i, items[i] ? e : "missing");
			goto out;
		}
	}
	off[n] = conv.len;

	if (dataset_ensure(o, dataset, err, en))
		goto out;

	sbuf_put_lit(&head, "{\"dataset_name\":");
	sbuf_put_jstr(&head, dataset, strlen(dataset));
	if (o->project) {
		sbuf_put_lit(&head, ",\"project_name\":");
		sbuf_put_jstr(&head, o->project, strlen(o->project));
	}
	sbuf_put_lit(&head, ",\"items\":[");
	if (head.oom) {
		o->retriable = 1;
		fail(err, en, "out of memory");
		goto out;
	}
	for (int i = 0; i < n;) {
		int j = i;
		body.len = 0;
		sbuf_put(&body, head.buf, head.len);
		while (j < n && j - i < o->conf.batch_items) {
			size_t il = off[j + 1] - off[j];
			if (j > i && body.len + 1 + il + 2 > o->conf.batch_bytes)
				break;
			if (j > i)
				sbuf_putc(&body, ',');
			sbuf_put(&body, conv.buf + off[j], il);
			j++;
		}
		sbuf_put_lit(&body, "]}");
		if (body.oom) {
			o->retriable = 1;
			fail(err, en, "out of memory");
			goto out;
		}
		if (request(o, "PUT", PATH_ITEMS, body.buf, body.len, 0, err, en))
			goto out;
		o->st.batches++;
		o->st.items += (uint64_t)(j - i);
		i = j;
	}
	r = 0;
out:
	free(off);
	sbuf_release(&head);
	sbuf_release(&conv);
	sbuf_release(&body);
	return r;
}

int opik_insert(struct opik *o, const char *dataset, const char *const *items,
                const size_t *lens, int n, char *errstr, size_t errstr_size)
{
	if (errstr && errstr_size)
		errstr[0] = '\0';
	int r = insert(o, dataset, items, lens, n, errstr, errstr_size);
	if (r) {
		o->st.failures++;
		scrub(o, errstr);
	}
	return r;
}

int opik_retriable(const struct opik *o)
{
	return o ? o->retriable : 0;
}

void opik_stats_get(const struct opik *o, struct opik_stats *st)
{
	*st = o->st;
}

/* --- the handle ------------------------------------------------------------ */

void opik_conf_init(struct opik_conf *c)
{
	memset(c, 0, sizeof *c);
	c->batch_items = 100;
	c->timeout_ms = 30000;
	c->max_retries = 5;
	c->batch_bytes = 4u << 20;
	c->backoff_ms = 250;
	c->backoff_max_ms = 15000;
	c->retry_after_max_ms = 120000;
}

/* A header value must not end the header early. */
static int header_safe(const char *s)
{
	for (; *s; s++)
		if (*s == '\r' || *s == '\n')
			return 0;
	return 1;
}

static void wipe(char *s)
{
	if (!s)
		return;
	volatile char *p = s;
	while (*p)
		*p++ = '\0';
}

static int add_header(struct opik *o, const char *name, const char *value)
{
	struct sbuf h;
	sbuf_init(&h);
	sbuf_puts(&h, name);
	sbuf_putc(&h, ':');
	if (value[0]) { /* "Name:" alone tells libcurl not to send its own */
		sbuf_putc(&h, ' ');
		sbuf_puts(&h, value);
	}
	if (h.oom) {
		sbuf_release(&h);
		return -1;
	}
	struct curl_slist *l = curl_slist_append(o->headers, h.buf);
	wipe(h.buf);
	sbuf_release(&h);
	if (!l)
		return -1;
	o->headers = l;
	return 0;
}

static int conf_check(const struct opik_conf *c, char *err, size_t n)
{
	const char *u = c->base_url;
	if (!u || (strncmp(u, "http://", 7) && strncmp(u, "https://", 8)) || !header_safe(u) ||
	    strchr(u, ' ')) {
		fail(err, n, "opik.base_url: expected an http:// or https:// URL");
		return -1;
	}
	if (c->batch_items < 1 || c->batch_items > OPIK_BATCH_MAX) {
		fail(err, n, "opik.batch_items: expected 1 to %d", OPIK_BATCH_MAX);
		return -1;
	}
	if (c->timeout_ms < 1 || c->connect_timeout_ms < 0 || c->max_retries < 0 ||
	    c->max_retries > 1000 || c->backoff_ms < 1 || c->backoff_max_ms < c->backoff_ms ||
	    c->retry_after_max_ms < 0 || c->batch_bytes < 1) {
		fail(err, n, "opik: expected timeout_ms >= 1, connect_timeout_ms >= 0, max_retries 0 to 1000, "
		        "backoff_ms >= 1, backoff_max_ms >= backoff_ms, retry_after_max_ms >= 0, batch_bytes >= 1");
		return -1;
	}
	if (c->workspace && c->workspace[0] && (!header_safe(c->workspace) ||
	    name_check("opik.workspace", c->workspace, err, n))) {
		fail(err, n, "opik.workspace: expected 1 to %d bytes of UTF-8 on one line", NAME_MAX_B);
		return -1;
	}
	if (c->project && c->project[0] && name_check("opik.project", c->project, err, n))
		return -1;
	return 0;
}

struct opik *opik_new(const struct opik_conf *c, char *errstr, size_t errstr_size)
{
	if (!c || conf_check(c, errstr, errstr_size))
		return NULL;
	struct opik *o = calloc(1, sizeof *o);
	if (!o) {
		fail(errstr, errstr_size, "out of memory");
		return NULL;
	}
	o->conf = *c;
	o->conf.base_url = o->conf.workspace = o->conf.api_key_env = o->conf.project = NULL;
	if (!o->conf.connect_timeout_ms)
		o->conf.connect_timeout_ms = c->timeout_ms < 10000 ? c->timeout_ms : 10000;
	sbuf_init(&o->url);
	sbuf_init(&o->resp);
	o->rng = sample_mix64((uint64_t)tstime_mono_us() ^ (uint64_t)getpid() << 32 ^ (uint64_t)(uintptr_t)o);

	o->base = strdup(c->base_url);
	if (!o->base)
		goto oom;
	size_t bl = strlen(o->base);
	while (bl && o->base[bl - 1] == '/')
		o->base[--bl] = '\0';
	if (c->project && c->project[0] && !(o->project = strdup(c->project)))
		goto oom;

	if (c->api_key_env && c->api_key_env[0]) {
		const char *k = getenv(c->api_key_env);
		if (!(o->key_env = strdup(c->api_key_env)))
			goto oom;
		if (!k || !k[0]) {
			fail(errstr, errstr_size, "environment variable '%s' (opik.api_key_env) is not set or empty",
			     c->api_key_env);
			goto fail;
		}
		if (!header_safe(k)) {
			fail(errstr, errstr_size, "environment variable '%s' holds a key with a line break",
			     c->api_key_env);
			goto fail;
		}
		if (!(o->key = strdup(k)))
			goto oom;
		o->keylen = strlen(o->key);
	}

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fail(errstr, errstr_size, "cannot initialize libcurl");
		goto fail;
	}
	o->curl_global = 1;
	if (!(o->curl = curl_easy_init())) {
		fail(errstr, errstr_size, "cannot initialize libcurl");
		goto fail;
	}
	if (add_header(o, "Content-Type", "application/json") ||
	    add_header(o, "Accept", "application/json") ||
	    add_header(o, "Expect", "") /* no 100-continue round trip */ ||
	    (c->workspace && c->workspace[0] && add_header(o, "Comet-Workspace", c->workspace)) ||
	    (o->key && add_header(o, "authorization", o->key)))
		goto oom;

	CURL *h = o->curl;
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, o->headers);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "tracesift-sink (opik)");
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)o->conf.connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(h, CURLOPT_VERBOSE, 0L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, o->curlerr);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, o);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, o);
	return o;

oom:
	fail(errstr, errstr_size, "out of memory");
fail:
	opik_destroy(o);
	return NULL;
}

void opik_destroy(struct opik *o)
{
	if (!o)
		return;
	if (o->curl)
		curl_easy_cleanup(o->curl);
	if (o->curl_global)
		curl_global_cleanup();
	for (struct curl_slist *l = o->headers; l; l = l->next)
		wipe(l->data);
	curl_slist_free_all(o->headers);
	wipe(o->key);
	free(o->key);
	free(o->key_env);
	free(o->base);
	free(o->project);
	for (int i = 0; i < o->nknown; i++)
		free(o->known[i]);
	free(o->known);
	sbuf_release(&o->url);
	sbuf_release(&o->resp);
	free(o);
}
