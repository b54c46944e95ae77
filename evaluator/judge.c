/* evaluator/judge.c - an OpenAI-compatible chat-completions client over libcurl's multi interface
 *
 * One CURLM holds every transfer; each of at most conf.inflight slots owns one
 * easy handle, made when first needed and reused for every attempt after, so
 * the multi handle's connection pool keeps connections open between requests.
 * A request is in exactly one place at a time: the queue (not started), a
 * slot (an attempt in flight) or the retry list (waiting for its backoff).
 * Every text this file shows (errors, debug lines) goes through show() or
 * redact(), which take out the API key.
 */
#include "judge.h"

#include <math.h>
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
#include "sbuf.h"

#define ANSWER_MAX   (8u << 20) /* bytes of one answer kept; more fails the attempt */
#define EXCERPT_MAX  200        /* bytes of a server's text shown in an error */
#define EXCERPT_SRC  2048       /* bytes of a body looked at to make the excerpt */
#define FRAGMENT_MIN 12         /* a run of this many of the key's characters is redacted too */
#define KEY_MAX      4096

struct req {
	struct req *next;
	void *tag;
	char *body;               /* the request's JSON */
	size_t body_len;
	const char *invalid;      /* not NULL: fails without an attempt, with this error */
	int attempts;
	int64_t t0_us;            /* when the first attempt started (0: not yet) */
	int64_t due_us;           /* on the retry list: when to try again */
	char last[160];           /* on the retry list: what the last attempt got */
};

struct slot {
	CURL *easy;               /* NULL until first used */
	struct req *req;          /* NULL: free */
	struct sbuf resp;
	int too_big;
	int retry_after_seen;
	int64_t retry_after_ms;
	int64_t start_us;
	char curlerr[CURL_ERROR_SIZE];
};

struct judge {
	struct judge_conf conf;   /* url, model, api_key point to the copies below */
	char *url, *model, *key;
	size_t keylen;
	char *endpoint;           /* URL/chat/completions */
	char *shown_url;          /* endpoint without user:password@, for debug lines */
	CURLM *multi;
	struct curl_slist *headers;
	struct slot *slots;
	int nslots, busy;
	struct req *queue, *queue_tail;
	struct req *waiting;      /* retry list, unordered */
	int pending;
	uint64_t rng;
	struct judge_stats st;
};

/* ---- small things --------------------------------------------------------- */

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void fail(char *errstr, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fail(char *errstr, size_t size, const char *fmt, ...)
{
	va_list ap;
	if (!errstr || !size)
		return;
	va_start(ap, fmt);
	vsnprintf(errstr, size, fmt, ap);
	va_end(ap);
}

/* snprintf that cuts a text too long for out on a UTF-8 character boundary. */
static void textf(char *out, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void textf(char *out, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out, size, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n >= size && size > 1) {
		size_t cut = size - 1;
		while (cut && ((unsigned char)out[cut] & 0xc0) == 0x80)
			cut--;
		out[cut] = '\0';
	}
}

static uint64_t rng_next(struct judge *j)
{
	uint64_t z = (j->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Overwrites a secret before its memory is freed. */
static void wipe(char *s)
{
	if (s) {
		volatile char *p = s;
		while (*p)
			*p++ = 0;
	}
}

static int has_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* ---- keeping the key out of what is shown -------------------------------- */

/* Replaces every occurrence of the key in s (NUL-terminated, in place) with "***". */
static void redact(const struct judge *j, char *s)
{
	if (!j->keylen || !s)
		return;
	const char *rep = j->keylen >= 3 ? "***" : j->keylen == 2 ? "**" : "*";
	size_t rl = strlen(rep);
	char *p = s;
	while ((p = strstr(p, j->key))) {
		memmove(p + rl, p + j->keylen, strlen(p + j->keylen) + 1);
		memcpy(p, rep, rl);
		p += rl;
	}
}

/* Replaces every run of FRAGMENT_MIN or more characters that also occurs in
 * the key (a server that echoes part of it) with "***"; s in place. */
static void redact_fragments(const struct judge *j, char *s)
{
	if (j->keylen < FRAGMENT_MIN || !s)
		return;
	size_t n = strlen(s), o = 0, i = 0;
	while (i < n) {
		size_t best = 0;
		for (size_t k = 0; k + FRAGMENT_MIN <= j->keylen && best < n - i; k++) {
			size_t m = 0;
			while (i + m < n && k + m < j->keylen && s[i + m] == j->key[k + m])
				m++;
			if (m > best)
				best = m;
		}
		if (best >= FRAGMENT_MIN) {
			memcpy(s + o, "***", 3); /* 3 <= best: never overtakes i */
			o += 3;
			i += best;
		} else {
			s[o++] = s[i++];
		}
	}
	s[o] = '\0';
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t len;
	if (s[0] < 0x80)
		return 1;
	else if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

/* Writes a short, printable excerpt of text[0..len) into out: the key taken
 * out, control characters and runs of white space made one space, invalid
 * UTF-8 as '?', cut at about EXCERPT_MAX bytes on a character boundary with
 * "..." after a cut. */
static void show(const struct judge *j, char *out, size_t size, const char *text, size_t len)
{
	size_t src_len = len < EXCERPT_SRC + j->keylen ? len : EXCERPT_SRC + j->keylen;
	char *src = malloc(src_len + 1), *clean = malloc(src_len + 1);
	if (!src || !clean || !size) {
		free(src);
		free(clean);
		if (size)
			snprintf(out, size, "(out of memory)");
		return;
	}
	for (size_t i = 0; i < src_len; i++) /* a NUL would hide what follows from strstr */
		src[i] = text[i] ? text[i] : ' ';
	src[src_len] = '\0';
	redact(j, src);

	size_t n = strlen(src), o = 0;
	int space = 1; /* drops leading white space */
	for (size_t i = 0; i < n && o < EXCERPT_SRC;) {
		unsigned char c = (unsigned char)src[i];
		if (c < 0x20 || c == 0x7f || c == ' ') {
			if (!space)
				clean[o++] = ' ';
			space = 1;
			i++;
			continue;
		}
		space = 0;
		size_t l = utf8_seq((const unsigned char *)src + i, n - i);
		if (!l) {
			clean[o++] = '?';
			i++;
		} else {
			memcpy(clean + o, src + i, l);
			o += l;
			i += l;
		}
	}
	while (o && clean[o - 1] == ' ')
		o--;
	clean[o] = '\0';
	redact_fragments(j, clean);

	n = strlen(clean);
	size_t cut = n;
	if (n > EXCERPT_MAX) {
		cut = EXCERPT_MAX;
		while (cut && ((unsigned char)clean[cut] & 0xc0) == 0x80)
			cut--;
	}
	snprintf(out, size, "%.*s%s", (int)cut, clean, cut < n || len > src_len ? "..." : "");
	free(src);
	free(clean);
}

/* ---- configuration ----------------------------------------------------- */

void judge_conf_default(struct judge_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->inflight = 16;
	c->timeout_ms = 60000;
	c->connect_timeout_ms = 10000;
	c->retries = 4;
	c->backoff_ms = 500;
	c->backoff_max_ms = 30000;
	c->temperature = 0;
	c->max_tokens = 300;
	c->json_mode = 0;
	c->budget_requests = 0;
	c->budget_tokens = 0;
	c->debug = 0;
}

static int check_int(const char *name, long v, long lo, long hi, char *errstr, size_t size)
{
	if (v < lo || v > hi) {
		fail(errstr, size, "judge %s %ld: expected %ld to %ld", name, v, lo, hi);
		return -1;
	}
	return 0;
}

static int check_conf(const struct judge_conf *c, char *errstr, size_t size)
{
	const char *u = c->url;
	if (!u || !*u) {
		fail(errstr, size, "judge url is not set");
		return -1;
	}
	size_t scheme = !strncasecmp(u, "http://", 7) ? 7 : !strncasecmp(u, "https://", 8) ? 8 : 0;
	if (!scheme || !u[scheme] || u[scheme] == '/') {
		/* the URL may hold a password: show its scheme and host part only when it is short */
		fail(errstr, size, "judge url '%.*s%s': expected http:// or https:// and a host",
		     (int)(strcspn(u, "@") < 64 ? strcspn(u, "@") : 64), u, strchr(u, '@') || strlen(u) > 64 ? "..." : "");
		return -1;
	}
	if (has_ctl(u) || strchr(u, ' ')) {
		fail(errstr, size, "judge url holds a space or a control character");
		return -1;
	}
	if (strchr(u, '?') || strchr(u, '#')) {
		fail(errstr, size, "judge url: expected a base URL without '?' or '#' (requests go to URL/chat/completions)");
		return -1;
	}
	if (!c->model || !*c->model) {
		fail(errstr, size, "judge model is not set");
		return -1;
	}
	if (json_utf8_check(c->model, strlen(c->model), NULL) || has_ctl(c->model)) {
		fail(errstr, size, "judge model '%.64s': holds a control character or invalid UTF-8", c->model);
		return -1;
	}
	if (c->api_key && *c->api_key) {
		/* never show the key: say what is wrong with it only */
		if (has_ctl(c->api_key)) {
			fail(errstr, size, "judge api key holds a line break or a control character");
			return -1;
		}
		if (strlen(c->api_key) > KEY_MAX) {
			fail(errstr, size, "judge api key is longer than %d bytes", KEY_MAX);
			return -1;
		}
	}
	if (check_int("inflight", c->inflight, 1, 1024, errstr, size) ||
	    check_int("timeout.ms", c->timeout_ms, 1, 86400000, errstr, size) ||
	    check_int("connect.timeout.ms", c->connect_timeout_ms, 1, 86400000, errstr, size) ||
	    check_int("retries", c->retries, 0, 100, errstr, size) ||
	    check_int("backoff.ms", c->backoff_ms, 0, 86400000, errstr, size) ||
	    check_int("backoff.max.ms", c->backoff_max_ms, c->backoff_ms, 86400000, errstr, size) ||
	    check_int("max.tokens", c->max_tokens, 0, 10000000, errstr, size) ||
	    check_int("json.mode", c->json_mode, 0, 1, errstr, size) ||
	    check_int("debug", c->debug, 0, 1, errstr, size))
		return -1;
	if (!isfinite(c->temperature) || c->temperature > 2) {
		fail(errstr, size, "judge temperature %g: expected 0 to 2 (or below 0: not sent)", c->temperature);
		return -1;
	}
	return 0;
}

/* ---- responses ------------------------------------------------------------ */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct slot *s = userdata;
	size_t n = size * nmemb;
	if (s->resp.len + n > ANSWER_MAX) {
		s->too_big = 1;
		return 0; /* CURLE_WRITE_ERROR */
	}
	sbuf_put(&s->resp, ptr, n);
	return s->resp.oom ? 0 : n;
}

/* Retry-After: delay-seconds or an HTTP date (RFC 9110 10.2.3), as the
 * milliseconds to wait from now. */
static int parse_retry_after(const char *v, size_t len, int64_t *ms)
{
	char tmp[64];
	while (len && (*v == ' ' || *v == '\t'))
		v++, len--;
	while (len && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	if (!len || len >= sizeof(tmp))
		return -1;
	memcpy(tmp, v, len);
	tmp[len] = '\0';
	if (strspn(tmp, "0123456789") == len) {
		*ms = len > 9 ? INT64_C(999999999000) : strtoll(tmp, NULL, 10) * 1000;
		return 0;
	}
	time_t t = curl_getdate(tmp, NULL);
	if (t == (time_t)-1)
		return -1;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	int64_t d = (int64_t)t * 1000 - ((int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000);
	*ms = d < 0 ? 0 : d;
	return 0;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *userdata)
{
	struct slot *s = userdata;
	size_t n = size * nitems;
	int64_t ms;
	if (n >= 5 && !memcmp(buf, "HTTP/", 5))
		s->retry_after_seen = 0; /* a new response (after a 100 Continue, say) */
	else if (n > 12 && !strncasecmp(buf, "retry-after:", 12) && !parse_retry_after(buf + 12, n - 12, &ms)) {
		s->retry_after_ms = ms;
		s->retry_after_seen = 1;
	}
	return n;
}

/* Failures worth another attempt: the server or the path to it may do
 * better later.  Anything else (a bad URL, TLS verification, ...) will not. */
static int curl_retriable(CURLcode rc)
{
	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return 1;
	default:
		return 0;
	}
}

/* What a failed transfer met, in a few words. */
static void describe_curl(const struct judge *j, struct slot *s, CURLcode rc, char *out, size_t size)
{
	if (rc == CURLE_OPERATION_TIMEDOUT) {
		curl_off_t connected = 0;
		curl_easy_getinfo(s->easy, CURLINFO_CONNECT_TIME_T, &connected);
		if (!connected && !strncmp(s->curlerr, "Connection timed out", 20))
			snprintf(out, size, "connect timeout after %d ms", j->conf.connect_timeout_ms);
		else
			snprintf(out, size, "timeout after %d ms", j->conf.timeout_ms);
	} else if (rc == CURLE_GOT_NOTHING) {
		snprintf(out, size, "empty reply from server");
	} else if (s->too_big) {
		snprintf(out, size, "answer larger than %u bytes", ANSWER_MAX);
	} else if (s->resp.oom) {
		snprintf(out, size, "out of memory for the answer");
	} else {
		const char *what = s->curlerr[0] ? s->curlerr : curl_easy_strerror(rc);
		textf(out, size, "%s", what);
		redact(j, out);
	}
}

/* The message of an OpenAI-style error body {"error": {"message": ...}}
 * ({"error": "..."} too), or NULL. */
static const char *error_message(const cJSON *root)
{
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
	if (cJSON_IsString(e))
		return e->valuestring;
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
	return cJSON_IsString(m) ? m->valuestring : NULL;
}

static int64_t usage_num(const cJSON *usage, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(usage, name);
	return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 9e15 ? (int64_t)v->valuedouble : 0;
}

/* Parses a 2xx body; fills a (content points into *root, freed by the
 * caller) or a->error. */
static int parse_answer(const struct judge *j, const struct sbuf *body, cJSON **root, struct judge_answer *a)
{
	char ex[EXCERPT_MAX + 8];
	const char *why = NULL, *m;
	*root = body->len ? cJSON_ParseWithLength(body->buf, body->len) : NULL;
	if (!body->len) {
		textf(a->error, sizeof(a->error), "answer is not a chat completion: empty body");
		return -1;
	}
	if (!*root) {
		show(j, ex, sizeof(ex), body->buf, body->len);
		textf(a->error, sizeof(a->error), "answer is not a chat completion: not JSON: %s", ex);
		return -1;
	}
	const cJSON *usage = cJSON_GetObjectItemCaseSensitive(*root, "usage");
	a->prompt_tokens = usage_num(usage, "prompt_tokens");
	a->completion_tokens = usage_num(usage, "completion_tokens");
	const cJSON *choices = cJSON_GetObjectItemCaseSensitive(*root, "choices");
	const cJSON *c0 = cJSON_IsArray(choices) ? cJSON_GetArrayItem(choices, 0) : NULL;
	const cJSON *msg = cJSON_GetObjectItemCaseSensitive(c0, "message");
	const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
	if (!cJSON_IsArray(choices) && (m = error_message(*root))) {
		show(j, ex, sizeof(ex), m, strlen(m));
		textf(a->error, sizeof(a->error), "answer is not a chat completion: error: %s", ex);
		return -1;
	}
	if (!cJSON_IsArray(choices))
		why = "no \"choices\" array";
	else if (!c0)
		why = "\"choices\" is empty";
	else if (!cJSON_IsObject(msg))
		why = "no choices[0].message object";
	else if (!content || cJSON_IsNull(content))
		why = "choices[0].message.content is null or missing";
	else if (!cJSON_IsString(content))
		why = "choices[0].message.content is not a string";
	if (why) {
		textf(a->error, sizeof(a->error), "answer is not a chat completion: %s", why);
		return -1;
	}
	a->ok = 1;
	a->content = content->valuestring;
	a->len = strlen(content->valuestring);
	return 0;
}

/* ---- the life of a request ------------------------------------------------- */

static int budget_spent(const struct judge *j)
{
	return (j->conf.budget_requests > 0 && j->st.run_attempts >= j->conf.budget_requests) ||
	       (j->conf.budget_tokens > 0 && j->st.run_tokens >= j->conf.budget_tokens);
}

static void budget_error(const struct judge *j, char *out, size_t size)
{
	if (j->conf.budget_requests > 0 && j->st.run_attempts >= j->conf.budget_requests)
		snprintf(out, size, "budget spent: %lld requests of %lld",
		         (long long)j->st.run_attempts, (long long)j->conf.budget_requests);
	else
		snprintf(out, size, "budget spent: %lld tokens of %lld",
		         (long long)j->st.run_tokens, (long long)j->conf.budget_tokens);
}

static void req_free(struct req *r)
{
	if (r) {
		free(r->body);
		free(r);
	}
}

/* Reports r through done and frees it. */
static void finish(struct judge *j, struct req *r, struct judge_answer *a, judge_done_fn done, void *ctx)
{
	a->tag = r->tag;
	a->attempts = r->attempts;
	a->latency_ms = r->t0_us ? (double)(now_us() - r->t0_us) / 1000.0 : 0;
	if (!a->ok) {
		j->st.failures++;
		if (!a->content) {
			a->content = "";
			a->len = 0;
		}
	}
	j->pending--;
	req_free(r);
	if (done)
		done(ctx, a);
}

static void finish_error(struct judge *j, struct req *r, int budget, const char *error,
                         judge_done_fn done, void *ctx)
{
	struct judge_answer a;
	memset(&a, 0, sizeof(a));
	a.budget = budget;
	textf(a.error, sizeof(a.error), "%s", error);
	finish(j, r, &a, done, ctx);
}

/* The budget is spent: every request not in flight ends with budget = 1. */
static void fail_unstarted(struct judge *j, judge_done_fn done, void *ctx)
{
	char why[128], msg[sizeof(((struct judge_answer *)0)->error)];
	struct req *q = j->queue, *w = j->waiting;
	j->queue = j->queue_tail = j->waiting = NULL; /* done may submit again after a reset */
	budget_error(j, why, sizeof(why));
	while (q) {
		struct req *r = q;
		q = q->next;
		finish_error(j, r, !r->invalid, r->invalid ? r->invalid : why, done, ctx);
	}
	while (w) {
		struct req *r = w;
		w = w->next;
		textf(msg, sizeof(msg), "%s; after %d attempt%s, the last: %s", why, r->attempts,
		         r->attempts == 1 ? "" : "s", r->last);
		finish_error(j, r, 1, msg, done, ctx);
	}
}

static struct req *take_due(struct judge *j, int64_t now)
{
	for (struct req **p = &j->waiting; *p; p = &(*p)->next) {
		if ((*p)->due_us <= now) {
			struct req *r = *p;
			*p = r->next;
			r->next = NULL;
			return r;
		}
	}
	return NULL;
}

static struct req *take_queued(struct judge *j)
{
	struct req *r = j->queue;
	if (r) {
		j->queue = r->next;
		if (!j->queue)
			j->queue_tail = NULL;
		r->next = NULL;
	}
	return r;
}

static CURL *easy_new(struct judge *j, struct slot *s)
{
	CURL *h = curl_easy_init();
	if (!h)
		return NULL;
	curl_easy_setopt(h, CURLOPT_URL, j->endpoint);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, j->headers);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "tracesift-evaluator");
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)j->conf.timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)j->conf.connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L); /* the key goes to this host only */
	curl_easy_setopt(h, CURLOPT_VERBOSE, 0L);         /* it would print the headers */
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, s->curlerr);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, s);
	curl_easy_setopt(h, CURLOPT_PRIVATE, s);
	return h;
}

/* Starts one attempt of r in the free slot s; on failure r is finished. */
static void start(struct judge *j, struct slot *s, struct req *r, judge_done_fn done, void *ctx)
{
	if (!s->easy && !(s->easy = easy_new(j, s))) {
		finish_error(j, r, 0, "cannot start the request: libcurl: out of memory", done, ctx);
		return;
	}
	if (s->resp.oom) {
		sbuf_release(&s->resp);
		sbuf_init(&s->resp);
	}
	s->resp.len = 0;
	if (s->resp.buf)
		s->resp.buf[0] = '\0';
	s->too_big = 0;
	s->retry_after_seen = 0;
	s->curlerr[0] = '\0';
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, r->body);
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
	CURLMcode mc = curl_multi_add_handle(j->multi, s->easy);
	if (mc != CURLM_OK) {
		char msg[128];
		snprintf(msg, sizeof(msg), "cannot start the request: libcurl: %s", curl_multi_strerror(mc));
		finish_error(j, r, 0, msg, done, ctx);
		return;
	}
	s->req = r;
	s->start_us = now_us();
	if (!r->t0_us)
		r->t0_us = s->start_us;
	r->attempts++;
	j->busy++;
	j->st.attempts++;
	j->st.run_attempts++;
}

/* Fills free slots: due retries first, then the queue, while the budget lasts. */
static void start_ready(struct judge *j, judge_done_fn done, void *ctx)
{
	int64_t now = now_us();
	for (int i = 0; i < j->nslots && j->busy < j->nslots; i++) {
		struct slot *s = &j->slots[i];
		if (s->req)
			continue;
		for (;;) {
			if (budget_spent(j)) {
				fail_unstarted(j, done, ctx);
				return;
			}
			struct req *r = take_due(j, now);
			if (!r)
				r = take_queued(j);
			if (!r)
				return;
			if (r->invalid) {
				finish_error(j, r, 0, r->invalid, done, ctx);
				continue;
			}
			start(j, s, r, done, ctx);
			if (s->req)
				break;
		}
	}
	if (budget_spent(j) && (j->queue || j->waiting))
		fail_unstarted(j, done, ctx);
}

static void debug_line(const struct judge *j, const struct slot *s, const struct req *r,
                       long status, const char *what, int64_t end_us)
{
	curl_off_t up = 0, down = 0;
	curl_easy_getinfo(s->easy, CURLINFO_SIZE_UPLOAD_T, &up);
	curl_easy_getinfo(s->easy, CURLINFO_SIZE_DOWNLOAD_T, &down);
	char line[512];
	if (status)
		snprintf(line, sizeof(line), "%% judge: POST %s attempt %d: HTTP %ld, %.1f ms, %lld bytes sent, %lld received",
		         j->shown_url, r->attempts, status, (double)(end_us - s->start_us) / 1000.0,
		         (long long)up, (long long)down);
	else
		snprintf(line, sizeof(line), "%% judge: POST %s attempt %d: %s, %.1f ms, %lld bytes sent, %lld received",
		         j->shown_url, r->attempts, what, (double)(end_us - s->start_us) / 1000.0,
		         (long long)up, (long long)down);
	redact(j, line);
	fprintf(stderr, "%s\n", line);
}

/* A retry's wait: the answer's Retry-After, else full jitter over an
 * exponential ceiling; both capped by backoff_max_ms. */
static int64_t backoff_ms(struct judge *j, const struct slot *s, int attempts)
{
	int64_t max = j->conf.backoff_max_ms;
	if (s->retry_after_seen)
		return s->retry_after_ms < max ? s->retry_after_ms : max;
	int64_t ceil = j->conf.backoff_ms;
	for (int i = 1; i < attempts && ceil < max; i++)
		ceil *= 2;
	if (ceil > max)
		ceil = max;
	return ceil > 0 ? (int64_t)(rng_next(j) % (uint64_t)(ceil + 1)) : 0;
}

/* An attempt ended: report the request, or put it on the retry list. */
static void on_finished(struct judge *j, struct slot *s, CURLcode rc, judge_done_fn done, void *ctx)
{
	struct req *r = s->req;
	int64_t end = now_us();
	long status = 0;
	char head[160], detail[EXCERPT_MAX + 8] = "";
	int retry = 0, http = 0;
	struct judge_answer a;
	cJSON *root = NULL;

	curl_multi_remove_handle(j->multi, s->easy);
	s->req = NULL;
	j->busy--;
	memset(&a, 0, sizeof(a));
	if (rc == CURLE_OK)
		curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);

	if (rc != CURLE_OK) {
		describe_curl(j, s, rc, head, sizeof(head));
		retry = !s->too_big && !s->resp.oom && curl_retriable(rc);
	} else if (status >= 200 && status < 300) {
		if (!parse_answer(j, &s->resp, &root, &a)) {
			j->st.prompt_tokens += a.prompt_tokens;
			j->st.completion_tokens += a.completion_tokens;
			j->st.run_tokens += a.prompt_tokens + a.completion_tokens;
		}
		if (j->conf.debug)
			debug_line(j, s, r, status, NULL, end);
		finish(j, r, &a, done, ctx);
		cJSON_Delete(root);
		return;
	} else {
		http = 1;
		snprintf(head, sizeof(head), "HTTP %ld", status);
		cJSON *e = s->resp.len && s->resp.len < 65536 ? cJSON_ParseWithLength(s->resp.buf, s->resp.len) : NULL;
		const char *m = e ? error_message(e) : NULL;
		if (m)
			show(j, detail, sizeof(detail), m, strlen(m));
		else if (s->resp.len)
			show(j, detail, sizeof(detail), s->resp.buf, s->resp.len);
		cJSON_Delete(e);
		retry = status == 429 || (status >= 500 && status <= 599);
	}
	if (j->conf.debug)
		debug_line(j, s, r, status, head, end);

	if (retry && r->attempts <= j->conf.retries) {
		textf(r->last, sizeof(r->last), "%s%s%s", head, detail[0] ? ": " : "", detail);
		r->due_us = end + backoff_ms(j, s, r->attempts) * 1000;
		r->next = j->waiting;
		j->waiting = r;
		j->st.retries++;
		return;
	}
	a.unavailable = retry;
	if (http && r->attempts > 1)
		textf(a.error, sizeof(a.error), "%s after %d attempts%s%s", head, r->attempts,
		         detail[0] ? ": " : "", detail);
	else if (http)
		textf(a.error, sizeof(a.error), "%s%s%s", head, detail[0] ? ": " : "", detail);
	else if (r->attempts > 1)
		textf(a.error, sizeof(a.error), "%s (%d attempts)", head, r->attempts);
	else
		textf(a.error, sizeof(a.error), "%s", head);
	finish(j, r, &a, done, ctx);
}

static void reap(struct judge *j, judge_done_fn done, void *ctx)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(j->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		char *priv = NULL;
		CURLcode rc = m->data.result;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
		struct slot *s = (struct slot *)(void *)priv;
		if (s && s->req)
			on_finished(j, s, rc, done, ctx);
	}
}

/* ---- the interface ---------------------------------------------------------- */

/* libcurl wants curl_global_init() once before anything else, and not while
 * another thread uses libcurl (unless it was built thread-safe, 7.84 and
 * later).  The evaluator has one thread, so the first judge_new() does it and
 * nothing undoes it: curl_global_cleanup() at a judge_destroy() would pull
 * TLS state from under a later judge. */
static int curl_ready;

struct judge *judge_new(const struct judge_conf *c, char *errstr, size_t errstr_size)
{
	if (!c) {
		fail(errstr, errstr_size, "judge: no configuration");
		return NULL;
	}
	if (check_conf(c, errstr, errstr_size))
		return NULL;
	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			fail(errstr, errstr_size, "judge: cannot initialize libcurl");
			return NULL;
		}
		curl_ready = 1;
	}
	struct judge *j = calloc(1, sizeof(*j));
	if (!j)
		goto oom;
	j->conf = *c;
	if (!(j->url = strdup(c->url)) || !(j->model = strdup(c->model)))
		goto oom;
	if (c->api_key && *c->api_key) {
		if (!(j->key = strdup(c->api_key)))
			goto oom;
		j->keylen = strlen(j->key);
	}
	j->conf.url = j->url;
	j->conf.model = j->model;
	j->conf.api_key = j->key;

	size_t ul = strlen(j->url);
	while (ul && j->url[ul - 1] == '/')
		ul--;
	struct sbuf b;
	sbuf_init(&b);
	sbuf_printf(&b, "%.*s/chat/completions", (int)ul, j->url);
	if (!(j->endpoint = sbuf_detach(&b, NULL)))
		goto oom;
	/* debug lines show the endpoint without any user:password@ */
	const char *host = strstr(j->endpoint, "://") + 3;
	const char *at = memchr(host, '@', strcspn(host, "/"));
	sbuf_printf(&b, "%.*s%s", (int)(host - j->endpoint), j->endpoint, at ? at + 1 : host);
	if (!(j->shown_url = sbuf_detach(&b, NULL)))
		goto oom;

	struct curl_slist *l;
	if (!(l = curl_slist_append(j->headers, "Content-Type: application/json")))
		goto oom;
	j->headers = l;
	if (!(l = curl_slist_append(j->headers, "Accept: application/json")))
		goto oom;
	j->headers = l;
	if (!(l = curl_slist_append(j->headers, "Expect:"))) /* no 100-continue round trip */
		goto oom;
	j->headers = l;
	if (j->key) {
		sbuf_printf(&b, "Authorization: Bearer %s", j->key);
		char *h = sbuf_detach(&b, NULL);
		if (!h)
			goto oom;
		l = curl_slist_append(j->headers, h);
		wipe(h);
		free(h);
		if (!l)
			goto oom;
		j->headers = l;
	}

	j->nslots = c->inflight;
	if (!(j->slots = calloc((size_t)j->nslots, sizeof(*j->slots))))
		goto oom;
	for (int i = 0; i < j->nslots; i++)
		sbuf_init(&j->slots[i].resp);
	if (!(j->multi = curl_multi_init()))
		goto oom;
	curl_multi_setopt(j->multi, CURLMOPT_MAXCONNECTS, (long)c->inflight);
	j->rng = (uint64_t)now_us() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)j;
	return j;

oom:
	fail(errstr, errstr_size, "judge: out of memory");
	judge_destroy(j);
	return NULL;
}

void judge_destroy(struct judge *j)
{
	if (!j)
		return;
	for (int i = 0; j->slots && i < j->nslots; i++) {
		struct slot *s = &j->slots[i];
		if (s->req) {
			curl_multi_remove_handle(j->multi, s->easy);
			req_free(s->req);
		}
		if (s->easy)
			curl_easy_cleanup(s->easy);
		sbuf_release(&s->resp);
	}
	free(j->slots);
	if (j->multi)
		curl_multi_cleanup(j->multi);
	for (struct req *r = j->queue, *n; r; r = n) {
		n = r->next;
		req_free(r);
	}
	for (struct req *r = j->waiting, *n; r; r = n) {
		n = r->next;
		req_free(r);
	}
	for (struct curl_slist *l = j->headers; l; l = l->next)
		wipe(l->data);
	curl_slist_free_all(j->headers);
	wipe(j->key);
	free(j->key);
	free(j->url);
	free(j->model);
	free(j->endpoint);
	free(j->shown_url);
	free(j);
}

int judge_submit(struct judge *j, const char *messages, void *tag)
{
	if (budget_spent(j))
		return -1;
	struct req *r = calloc(1, sizeof(*r));
	if (!r)
		return -1;
	r->tag = tag;
	size_t len = messages ? strlen(messages) : 0;
	const char *m = messages ? messages + strspn(messages, " \t\r\n") : "";
	if (!messages)
		r->invalid = "messages: none given";
	else if (json_check(messages, len, 64, NULL, 0))
		r->invalid = "messages: not valid JSON";
	else if (*m != '[')
		r->invalid = "messages: expected a JSON array";
	if (!r->invalid) {
		struct sbuf b;
		sbuf_init(&b);
		sbuf_put_lit(&b, "{\"model\":");
		sbuf_put_jstr(&b, j->model, strlen(j->model));
		sbuf_put_lit(&b, ",\"messages\":");
		sbuf_put(&b, messages, len);
		/* reasoning models (OpenAI's o-series, GPT-5) refuse both: the
		 * settings can leave them out */
		if (j->conf.temperature >= 0)
			sbuf_printf(&b, ",\"temperature\":%.15g", j->conf.temperature);
		if (j->conf.max_tokens > 0)
			sbuf_printf(&b, ",\"max_tokens\":%d", j->conf.max_tokens);
		if (j->conf.json_mode)
			sbuf_put_lit(&b, ",\"response_format\":{\"type\":\"json_object\"}");
		sbuf_putc(&b, '}');
		if (!(r->body = sbuf_detach(&b, &r->body_len))) {
			free(r);
			return -1;
		}
	}
	if (j->queue_tail)
		j->queue_tail->next = r;
	else
		j->queue = r;
	j->queue_tail = r;
	j->pending++;
	j->st.requests++;
	return 0;
}

int judge_poll(struct judge *j, int timeout_ms, judge_done_fn done, void *ctx)
{
	int64_t deadline = now_us() + (int64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000;
	for (;;) {
		int running;
		start_ready(j, done, ctx);
		curl_multi_perform(j->multi, &running);
		reap(j, done, ctx);
		start_ready(j, done, ctx);
		if (!j->pending)
			return 0;
		int64_t now = now_us(), wait = deadline - now;
		if (wait <= 0)
			return j->pending;
		if (j->busy < j->nslots)
			for (const struct req *r = j->waiting; r; r = r->next)
				if (r->due_us - now < wait)
					wait = r->due_us - now;
		if (wait < 0)
			wait = 0;
		/* curl_multi_poll also returns when one of libcurl's own timers is due */
		curl_multi_poll(j->multi, NULL, 0, (int)((wait + 999) / 1000), NULL);
	}
}

int judge_pending(const struct judge *j)
{
	return j->pending;
}

void judge_budget_reset(struct judge *j)
{
	j->st.run_attempts = 0;
	j->st.run_tokens = 0;
}

int judge_budget_spent(const struct judge *j)
{
	return budget_spent(j);
}

void judge_stats(const struct judge *j, struct judge_stats *s)
{
	*s = j->st;
}
