/* evaluator/eval.c - one evaluation run: score, store, aggregate, alert (see eval.h) */
#include "eval.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <librdkafka/rdkafka.h>

#include "errfmt.h"
#include "alert.h"
#include "json.h"
#include "judge.h"
#include "kclient.h"
#include "metric.h"
#include "tstime.h"

#define FLUSH_EVERY 64          /* score lines written together at most */
#define SYNC_MS 200             /* and fsynced at least this often (and at the end of a run) */
#define STOP_WAIT_MS 10000      /* how long in-flight judge requests may finish after a stop */

struct evaluator {
	struct eval_conf *conf;
	volatile sig_atomic_t *run;
	FILE *out;
	struct runs *runs;
	struct judge *judge;
	rd_kafka_t *rk;             /* alert records; NULL when brokers is "" */
	CURL *hook;                 /* webhook; NULL when none */
	struct eval_stats stats;
	char hook_host[256];        /* scheme://host of the webhook: what messages show of it */
};

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void utc_now(char *buf, size_t size)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, size - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* ---- set-up ------------------------------------------------------------------ */

static void hook_host(const char *url, char *out, size_t size)
{
	const char *p = strstr(url, "://");
	p = p ? p + 3 : url;
	size_t n = strcspn(p, "/?#");
	const char *at = memchr(p, '@', n);    /* user:password@ never shown */
	if (at) {
		n -= (size_t)(at + 1 - p);
		p = at + 1;
	}
	snprintf(out, size, "%.*s%.*s", (int)(strstr(url, "://") ? strstr(url, "://") + 3 - url : 0),
	         url, (int)n, p);
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	(void)opaque;
	if (m->_private)
		*(rd_kafka_resp_err_t *)m->_private = m->err;
}

/* The alert producer's properties (core/kclient.h): the tunables, then the
 * user's (kafka.* lines of the config file, then -X), then the required. */
static const struct kclient_prop alert_tune[] = {
	{ "message.timeout.ms", "10000", NULL },
	{ "linger.ms", "0", NULL },
	{ "client.id", "tracesift-evaluator", NULL },
};
static const struct kclient_prop alert_must[] = {
	{ "enable.idempotence", "true", "an alert is sent once: a retried send must not write its record twice" },
};
static const struct kclient_tables alert_props = {
	"the evaluator's alert producer", alert_tune, (int)(sizeof(alert_tune) / sizeof(alert_tune[0])),
	alert_must, (int)(sizeof(alert_must) / sizeof(alert_must[0]))
};

/* conf->kafka_props as the user's properties, the first from file, the last
 * nflags from -X; *n of them.  NULL when out of memory. */
static struct kclient_user *kafka_users(const struct eval_conf *c, const char *file, int nflags, int *n)
{
	*n = c->nkafka_props / 2;
	struct kclient_user *u = calloc((size_t)*n + 1, sizeof(*u));
	for (int i = 0; u && i < *n; i++)
		u[i] = (struct kclient_user){ .name = c->kafka_props[2 * i], .value = c->kafka_props[2 * i + 1],
		                              .file = i < *n - nflags ? file : NULL };
	return u;
}

int evaluator_check_kafka(const struct eval_conf *c, const char *file, int nflags, char *errstr, size_t size)
{
	int n, rc;
	struct kclient_user *u = kafka_users(c, file, nflags, &n);
	if (!u)
		return errfmt(errstr, size, "out of memory");
	rc = kclient_check(&alert_props, u, n, errstr, size);
	free(u);
	return rc;
}

static rd_kafka_t *alert_producer(const struct eval_conf *c, char *errstr, size_t size)
{
	char why[512] = "out of memory";
	int n;
	struct kclient_user *u = kafka_users(c, NULL, c->nkafka_props / 2, &n);
	rd_kafka_conf_t *kc = u ? kclient_conf_new(&alert_props, c->brokers, u, n, why, sizeof(why)) : NULL;
	free(u);
	if (!kc) {
		errfmt(errstr, size, "alert producer: %s", why);
		return NULL;
	}
	rd_kafka_conf_set_dr_msg_cb(kc, dr_cb);
	rd_kafka_t *rk = kclient_new(RD_KAFKA_PRODUCER, kc, why, sizeof(why));
	if (!rk)
		errfmt(errstr, size, "alert producer: %s", why);
	return rk;
}

struct evaluator *evaluator_new(struct eval_conf *conf, volatile sig_atomic_t *run, FILE *out,
                                char *errstr, size_t size)
{
	struct evaluator *ev = calloc(1, sizeof(*ev));
	if (!ev) {
		errfmt(errstr, size, "out of memory");
		return NULL;
	}
	ev->conf = conf;
	ev->run = run;
	ev->out = out;
	if (!(ev->runs = runs_open(conf->store, 1, errstr, size)))
		goto bad;
	if (econf_has_judge(conf) && !(ev->judge = judge_new(&conf->judge, errstr, size)))
		goto bad;
	if (*conf->brokers && !(ev->rk = alert_producer(conf, errstr, size)))
		goto bad;
	if (*conf->webhook_url) {
		if (strncmp(conf->webhook_url, "http://", 7) && strncmp(conf->webhook_url, "https://", 8)) {
			errfmt(errstr, size, "webhook url: expected http:// or https://");
			goto bad;
		}
		curl_global_init(CURL_GLOBAL_DEFAULT);
		if (!(ev->hook = curl_easy_init())) {
			errfmt(errstr, size, "webhook: cannot start libcurl");
			goto bad;
		}
		hook_host(conf->webhook_url, ev->hook_host, sizeof(ev->hook_host));
	}
	return ev;
bad:
	evaluator_destroy(ev);
	return NULL;
}

void evaluator_destroy(struct evaluator *ev)
{
	if (!ev)
		return;
	judge_destroy(ev->judge);
	if (ev->rk) {
		rd_kafka_flush(ev->rk, 10000);
		rd_kafka_destroy(ev->rk);
	}
	if (ev->hook)
		curl_easy_cleanup(ev->hook);
	runs_close(ev->runs);
	free(ev);
}

struct runs *evaluator_runs(struct evaluator *ev)
{
	return ev->runs;
}

void evaluator_stats(const struct evaluator *ev, struct eval_stats *s)
{
	*s = ev->stats;
}

/* ---- run ids ----------------------------------------------------------------- */

void run_spec_batch(struct run_spec *s, const char *dataset, const struct store_batch *b)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->dataset, sizeof(s->dataset), "%s", dataset);
	snprintf(s->id, sizeof(s->id), "%s@b%06" PRId64, dataset, b->batch);
	s->batch = b->batch;
	s->first_seq = b->first_seq > 0 ? b->first_seq : 0;
	s->to_seq = -1;
	s->partial = b->partial;
}

void run_spec_range(struct run_spec *s, const char *dataset, int64_t from, int64_t to)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->dataset, sizeof(s->dataset), "%s", dataset);
	snprintf(s->id, sizeof(s->id), "%s@s%" PRId64 "-%" PRId64, dataset, from, to);
	s->batch = -1;
	s->first_seq = from;
	s->to_seq = to;
}

int run_spec_parse(struct run_spec *s, const char *id)
{
	const char *at = strrchr(id, '@');
	char ds[STORE_NAME_MAX + 1], *end;
	if (!at || at == id || (size_t)(at - id) > STORE_NAME_MAX)
		return -1;
	snprintf(ds, sizeof(ds), "%.*s", (int)(at - id), id);
	if (at[1] == 'b') {
		struct store_batch b = { .first_seq = 0 };
		errno = 0;
		b.batch = strtoll(at + 2, &end, 10);
		if (*end || errno || b.batch < 0)
			return -1;
		run_spec_batch(s, ds, &b);
	} else if (at[1] == 's') {
		errno = 0;
		int64_t from = strtoll(at + 2, &end, 10), to;
		if (*end != '-' || errno || from < 0)
			return -1;
		to = strtoll(end + 1, &end, 10);
		if (*end || errno || to < from)
			return -1;
		run_spec_range(s, ds, from, to);
	} else {
		return -1;
	}
	return strcmp(s->id, id) ? -1 : 0;
}

/* ---- one run --------------------------------------------------------------------- */

struct result {
	int64_t seq;
	int metric;
	int error;
	double score;
	char *reason;
	char item[STORE_ID_MAX + 1];
};

/* A judge request on its way. */
struct pending {
	int64_t seq;
	int metric;
	int tries;                 /* 1, or 2 after the reminder */
	double latency_ms;         /* of earlier tries */
	int64_t tokens;            /* of earlier tries */
	int attempts;
	cJSON *messages;
	char item[STORE_ID_MAX + 1];
};

struct run_ctx {
	struct evaluator *ev;
	const struct run_spec *spec;
	struct run_writer *w;
	struct result *res;
	size_t nres, capres;
	uint64_t *done;            /* seq * nmetrics + metric of what scores.jsonl held at open, sorted */
	size_t ndone;
	int unflushed;
	double synced_ms;          /* when scores.jsonl was last fsynced */
	int budget_hit;
	int judge_down;            /* the judge stayed unavailable after its retries: pause the run */
	char down_why[300];
	int failed;                /* a write failed: stop */
	char err[512];
	int64_t items;
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int metric_index(const struct eval_conf *c, const char *name)
{
	for (int i = 0; i < c->nmetrics; i++)
		if (!strcmp(c->metrics[i].name, name))
			return i;
	return -1;
}

static int keep_result(struct run_ctx *x, int64_t seq, int metric, const char *item, int error,
                       double score, const char *reason)
{
	if (x->nres == x->capres) {
		size_t cap = x->capres ? x->capres * 2 : 256;
		struct result *r = realloc(x->res, cap * sizeof(*r));
		if (!r)
			return -1;
		x->res = r;
		x->capres = cap;
	}
	struct result *r = &x->res[x->nres];
	r->seq = seq;
	r->metric = metric;
	r->error = error;
	r->score = score;
	snprintf(r->item, sizeof(r->item), "%s", item);
	if (!(r->reason = strdup(reason ? reason : "")))
		return -1;
	x->nres++;
	return 0;
}

/* A line of scores.jsonl found at open: counted as done and kept for the aggregates. */
static int load_line(void *ctx, const cJSON *j)
{
	struct run_ctx *x = ctx;
	const cJSON *seq = cJSON_GetObjectItemCaseSensitive(j, "seq");
	const cJSON *metric = cJSON_GetObjectItemCaseSensitive(j, "metric");
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(j, "item");
	const cJSON *score = cJSON_GetObjectItemCaseSensitive(j, "score");
	const cJSON *error = cJSON_GetObjectItemCaseSensitive(j, "error");
	const cJSON *reason = cJSON_GetObjectItemCaseSensitive(j, "reason");
	int m;
	if (!cJSON_IsNumber(seq) || !cJSON_IsString(metric) || !cJSON_IsString(item) ||
	    (m = metric_index(x->ev->conf, metric->valuestring)) < 0)
		return 0;   /* a metric no longer configured: not part of this run any more */
	uint64_t key = (uint64_t)seq->valuedouble * (uint64_t)x->ev->conf->nmetrics + (uint64_t)m;
	uint64_t *d = realloc(x->done, (x->ndone + 1) * sizeof(*d));
	if (!d)
		return -1;
	x->done = d;
	d[x->ndone++] = key;
	int is_error = cJSON_IsString(error);
	return keep_result(x, (int64_t)seq->valuedouble, m, item->valuestring, is_error,
	                   cJSON_IsNumber(score) ? score->valuedouble : NAN,
	                   is_error ? error->valuestring :
	                   cJSON_IsString(reason) ? reason->valuestring : "");
}

static int is_done(const struct run_ctx *x, int64_t seq, int metric)
{
	uint64_t key = (uint64_t)seq * (uint64_t)x->ev->conf->nmetrics + (uint64_t)metric;
	return x->ndone && bsearch(&key, x->done, x->ndone, sizeof(key), cmp_u64) != NULL;
}

/* Stores one (item, metric) result. */
static void record(struct run_ctx *x, int64_t seq, int metric, const char *item,
                   const struct metric_result *r, double latency_ms, int64_t tokens,
                   int attempts, int budget)
{
	const struct metric *m = &x->ev->conf->metrics[metric];
	cJSON *j = cJSON_CreateObject();
	if (!j)
		goto oom;
	cJSON_AddStringToObject(j, "item", item);
	cJSON_AddNumberToObject(j, "seq", (double)seq);
	cJSON_AddStringToObject(j, "metric", m->name);
	if (r->error) {
		cJSON_AddNullToObject(j, "score");
		cJSON_AddStringToObject(j, "error", r->reason);
	} else {
		cJSON_AddNumberToObject(j, "score", r->score);
		cJSON_AddStringToObject(j, "reason", r->reason);
	}
	cJSON_AddNumberToObject(j, "latency_ms", round(latency_ms * 1000) / 1000);
	if (m->kind == METRIC_JUDGE) {
		cJSON_AddNumberToObject(j, "tokens", (double)tokens);
		cJSON_AddNumberToObject(j, "attempts", attempts);
	}
	if (budget)
		cJSON_AddTrueToObject(j, "budget");
	if (run_add(x->w, j, x->err, sizeof(x->err)) ||
	    keep_result(x, seq, metric, item, r->error, r->score, r->reason)) {
		cJSON_Delete(j);
		x->failed = 1;
		return;
	}
	cJSON_Delete(j);
	x->ev->stats.scores += !r->error;
	x->ev->stats.errors += r->error;
	if (++x->unflushed >= FLUSH_EVERY) {
		double now = now_ms();
		int sync = now - x->synced_ms >= SYNC_MS;
		if (run_flush(x->w, sync, x->err, sizeof(x->err)))
			x->failed = 1;
		if (sync)
			x->synced_ms = now;
		x->unflushed = 0;
	}
	return;
oom:
	snprintf(x->err, sizeof(x->err), "out of memory");
	x->failed = 1;
}

/* Copies src into dst (size > 0), cut at a UTF-8 character boundary when it does not fit. */
static void copy_text(char *dst, size_t size, const char *src)
{
	size_t n = json_utf8_cut(src, strlen(src), size - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void record_error(struct run_ctx *x, int64_t seq, int metric, const char *item,
                         const char *why, double latency, int64_t tokens, int attempts, int budget)
{
	struct metric_result r = { .score = NAN, .error = 1 };
	copy_text(r.reason, sizeof(r.reason), why);
	record(x, seq, metric, item, &r, latency, tokens, attempts, budget);
}

static void budget_text(const struct run_ctx *x, char *buf, size_t size)
{
	const struct judge_conf *jc = &x->ev->conf->judge;
	snprintf(buf, size, "not scored: the run's judge budget is spent (budget.requests = %" PRId64
	         ", budget.tokens = %" PRId64 ")", jc->budget_requests, jc->budget_tokens);
}

static void judge_done(void *ctx, const struct judge_answer *a)
{
	struct run_ctx *x = ctx;
	struct pending *p = a->tag;
	const struct metric *m = &x->ev->conf->metrics[p->metric];
	double latency = p->latency_ms + a->latency_ms;
	int64_t tokens = p->tokens + a->prompt_tokens + a->completion_tokens;
	int attempts = p->attempts + a->attempts;

	if (!a->ok && a->unavailable) {
		/* not this item's fault: leave it unscored, and the run paused, to try again later */
		if (!x->judge_down)
			copy_text(x->down_why, sizeof(x->down_why), a->error);
		x->judge_down = 1;
		goto done;
	}
	if (!a->ok) {
		char why[600];
		if (a->budget) {
			budget_text(x, why, sizeof(why));
			x->budget_hit = 1;
		} else {
			snprintf(why, sizeof(why), "judge: %s", a->error);
		}
		record_error(x, p->seq, p->metric, p->item, why, latency, tokens, attempts, a->budget);
		goto done;
	}
	struct metric_result r;
	memset(&r, 0, sizeof(r));
	if (judge_parse(m, a->content, a->len, &r) == 0) {
		record(x, p->seq, p->metric, p->item, &r, latency, tokens, attempts, 0);
		goto done;
	}
	if (p->tries == 1 && !judge_messages_remind(p->messages, a->content, a->len)) {
		char *text = cJSON_PrintUnformatted(p->messages);
		p->tries = 2;
		p->latency_ms = latency;
		p->tokens = tokens;
		p->attempts = attempts;
		if (text && judge_submit(x->ev->judge, text, p) == 0) {
			free(text);
			return;
		}
		free(text);
		if (judge_budget_spent(x->ev->judge)) {
			char why[600];
			budget_text(x, why, sizeof(why));
			x->budget_hit = 1;
			record_error(x, p->seq, p->metric, p->item, why, latency, tokens, attempts, 1);
			goto done;
		}
	}
	{
		char why[600];
		snprintf(why, sizeof(why), "judge answer not usable%s: %s",
		         p->tries == 2 ? " after a reminder" : "", r.reason);
		record_error(x, p->seq, p->metric, p->item, why, latency, tokens, attempts, 0);
	}
done:
	cJSON_Delete(p->messages);
	free(p);
}

/* Scores one item with every metric not done yet. */
static void score_item(struct run_ctx *x, int64_t seq, const char *json, size_t len)
{
	struct eval_conf *c = x->ev->conf;
	struct eval_item it;
	cJSON *root = cJSON_ParseWithLength(json, len);
	char id[STORE_ID_MAX + 1];

	memset(&it, 0, sizeof(it));
	if (root && item_fields(root, &c->fields, &it) == 0)
		snprintf(id, sizeof(id), "%s", it.id);
	else
		snprintf(id, sizeof(id), "seq-%" PRId64, seq);
	x->items++;
	for (int i = 0; i < c->nmetrics && !x->failed; i++) {
		const struct metric *m = &c->metrics[i];
		if (is_done(x, seq, i))
			continue;
		if (!root) {
			record_error(x, seq, i, id, "the item is not valid JSON", 0, 0, 0, 0);
			continue;
		}
		if (m->kind != METRIC_JUDGE) {
			struct metric_result r;
			memset(&r, 0, sizeof(r));
			double t0 = now_ms();
			heuristic_score(m, &it, &r);
			record(x, seq, i, id, &r, now_ms() - t0, 0, 0, 0);
			continue;
		}
		char why[512];
		if (x->budget_hit || judge_budget_spent(x->ev->judge)) {
			budget_text(x, why, sizeof(why));
			x->budget_hit = 1;
			record_error(x, seq, i, id, why, 0, 0, 0, 1);
			continue;
		}
		cJSON *msgs = judge_messages(m, &it, &c->fields, why, sizeof(why));
		if (!msgs) {
			record_error(x, seq, i, id, why, 0, 0, 0, 0);
			continue;
		}
		struct pending *p = calloc(1, sizeof(*p));
		char *text = cJSON_PrintUnformatted(msgs);
		if (!p || !text) {
			free(p);
			free(text);
			cJSON_Delete(msgs);
			snprintf(x->err, sizeof(x->err), "out of memory");
			x->failed = 1;
			break;
		}
		p->seq = seq;
		p->metric = i;
		p->tries = 1;
		p->messages = msgs;
		snprintf(p->item, sizeof(p->item), "%s", id);
		if (judge_submit(x->ev->judge, text, p)) {
			budget_text(x, why, sizeof(why));
			x->budget_hit = 1;
			record_error(x, seq, i, id, why, 0, 0, 0, 1);
			cJSON_Delete(msgs);
			free(p);
		}
		free(text);
	}
	item_release(&it);
	cJSON_Delete(root);
}

/* Lets the judge work until fewer than limit requests wait. */
static void drain(struct run_ctx *x, int limit)
{
	struct judge *j = x->ev->judge;
	if (!j)
		return;
	double stop_at = -1;
	while (judge_pending(j) > limit) {
		if (!*x->ev->run) {
			if (stop_at < 0)
				stop_at = now_ms() + STOP_WAIT_MS;
			else if (now_ms() > stop_at)
				return;
		}
		judge_poll(j, 100, judge_done, x);
	}
}

static cJSON *run_info(const struct run_ctx *x)
{
	const struct eval_conf *c = x->ev->conf;
	const struct run_spec *s = x->spec;
	char hash[17], now[40];
	snprintf(hash, sizeof(hash), "%016" PRIx64, c->hash);
	utc_now(now, sizeof(now));
	cJSON *j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "run", s->id);
	cJSON_AddStringToObject(j, "dataset", s->dataset);
	if (s->batch >= 0) {
		cJSON_AddNumberToObject(j, "batch", (double)s->batch);
		cJSON_AddNumberToObject(j, "first_seq", (double)s->first_seq);
		cJSON_AddBoolToObject(j, "partial", s->partial);
	} else {
		cJSON_AddNumberToObject(j, "from_seq", (double)s->first_seq);
		cJSON_AddNumberToObject(j, "to_seq", (double)s->to_seq);
	}
	cJSON_AddStringToObject(j, "config_hash", hash);
	if (econf_has_judge(c))
		cJSON_AddStringToObject(j, "judge_model", c->judge_model);
	else
		cJSON_AddNullToObject(j, "judge_model");
	cJSON *ms = cJSON_AddArrayToObject(j, "metrics");
	for (int i = 0; i < c->nmetrics; i++)
		cJSON_AddItemToArray(ms, cJSON_CreateString(c->metrics[i].name));
	cJSON_AddStringToObject(j, "started_at", now);
	return j;
}

static void add_num(cJSON *o, const char *k, double v)
{
	if (isnan(v))
		cJSON_AddNullToObject(o, k);
	else
		cJSON_AddNumberToObject(o, k, v);
}

/* The aggregates of every metric: an object keyed by metric name. */
static cJSON *aggregates(const struct run_ctx *x, struct metric_agg *aggs, double **sorted)
{
	const struct eval_conf *c = x->ev->conf;
	cJSON *o = cJSON_CreateObject();
	for (int i = 0; i < c->nmetrics; i++) {
		double *scores = malloc((x->nres + 1) * sizeof(*scores));
		int n = 0, errors = 0;
		for (size_t k = 0; scores && k < x->nres; k++) {
			if (x->res[k].metric != i)
				continue;
			if (x->res[k].error)
				errors++;
			else
				scores[n++] = x->res[k].score;
		}
		metric_agg_compute(scores, n, errors, c->metrics[i].threshold, &aggs[i]);
		sorted[i] = scores;
		cJSON *a = cJSON_AddObjectToObject(o, c->metrics[i].name);
		cJSON_AddNumberToObject(a, "n", aggs[i].n);
		cJSON_AddNumberToObject(a, "errors", aggs[i].errors);
		add_num(a, "mean", aggs[i].mean);
		add_num(a, "p50", aggs[i].p50);
		add_num(a, "p90", aggs[i].p90);
		add_num(a, "p99", aggs[i].p99);
		add_num(a, "min", aggs[i].min);
		add_num(a, "max", aggs[i].max);
		cJSON_AddNumberToObject(a, "threshold", aggs[i].threshold);
		cJSON_AddNumberToObject(a, "above", aggs[i].above);
		add_num(a, "share_above", aggs[i].share_above);
		cJSON_AddStringToObject(a, "better", c->metrics[i].good_high ? "high" : "low");
	}
	return o;
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return size * n;
}

/* POSTs the alert to the webhook, three tries.  Result in out. */
static void send_webhook(struct evaluator *ev, const char *body, char *out, size_t size)
{
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	long code = 0;
	CURLcode rc = CURLE_OK;
	for (int attempt = 0; attempt < 3; attempt++) {
		if (attempt)
			usleep((useconds_t)(250000u << attempt));
		curl_easy_reset(ev->hook);
		curl_easy_setopt(ev->hook, CURLOPT_URL, ev->conf->webhook_url);
		curl_easy_setopt(ev->hook, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(ev->hook, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(ev->hook, CURLOPT_TIMEOUT_MS, (long)ev->conf->webhook_timeout_ms);
		curl_easy_setopt(ev->hook, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(ev->hook, CURLOPT_WRITEFUNCTION, discard);
		rc = curl_easy_perform(ev->hook);
		code = 0;
		curl_easy_getinfo(ev->hook, CURLINFO_RESPONSE_CODE, &code);
		if (rc == CURLE_OK && code >= 200 && code < 300)
			break;
		if (rc == CURLE_OK && code >= 400 && code < 500 && code != 429)
			break;
	}
	curl_slist_free_all(h);
	if (rc != CURLE_OK)
		snprintf(out, size, "failed: %s: %s", ev->hook_host, curl_easy_strerror(rc));
	else if (code < 200 || code >= 300)
		snprintf(out, size, "failed: %s: HTTP %ld", ev->hook_host, code);
	else
		snprintf(out, size, "sent");
}

static void send_kafka(struct evaluator *ev, const char *key, const char *body, char *out, size_t size)
{
	rd_kafka_resp_err_t result = RD_KAFKA_RESP_ERR__IN_PROGRESS;
	rd_kafka_resp_err_t err = rd_kafka_producev(ev->rk, RD_KAFKA_V_TOPIC(ev->conf->alerts_topic),
		RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE((void *)body, strlen(body)),
		RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(&result), RD_KAFKA_V_END);
	if (err) {
		snprintf(out, size, "failed: %s", rd_kafka_err2str(err));
		return;
	}
	double stop = now_ms() + 15000;
	while (result == RD_KAFKA_RESP_ERR__IN_PROGRESS && now_ms() < stop)
		rd_kafka_poll(ev->rk, 100);
	if (result == RD_KAFKA_RESP_ERR__IN_PROGRESS) {
		/* still queued: it may yet be delivered; say so rather than guess */
		snprintf(out, size, "failed: no delivery report within 15 s");
		rd_kafka_purge(ev->rk, RD_KAFKA_PURGE_F_QUEUE);
		rd_kafka_poll(ev->rk, 100);
	} else if (result) {
		snprintf(out, size, "failed: %s", rd_kafka_err2str(result));
	} else {
		snprintf(out, size, "sent");
	}
}

/* Fires the rules that cross their bound, each once per run. */
static int fire_alerts(struct evaluator *ev, const cJSON *summary, char *errstr, size_t size)
{
	const cJSON *alerts = cJSON_GetObjectItemCaseSensitive(summary, "alerts");
	const cJSON *a;
	const char *run = cJSON_GetObjectItemCaseSensitive(summary, "run")->valuestring;
	cJSON_ArrayForEach(a, alerts) {
		if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "fired")))
			continue;
		const char *rule = cJSON_GetObjectItemCaseSensitive(a, "rule")->valuestring;
		char id[512], now[40], hook[300] = "off", kafka[300] = "off";
		snprintf(id, sizeof(id), "%s/%s", run, rule);
		if (runs_alert_fired(ev->runs, id))
			continue;
		utc_now(now, sizeof(now));
		const char *text = cJSON_GetObjectItemCaseSensitive(a, "text")->valuestring;
		cJSON *msg = cJSON_CreateObject();
		char line[1024];
		snprintf(line, sizeof(line), "tracesift alert: %s", text);
		cJSON_AddStringToObject(msg, "text", line);
		cJSON *body = cJSON_Duplicate(a, 1);
		cJSON_DeleteItemFromObjectCaseSensitive(body, "fired");
		cJSON_AddStringToObject(body, "id", id);
		cJSON_AddStringToObject(body, "run", run);
		cJSON_AddItemToObject(body, "dataset",
			cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(summary, "dataset"), 1));
		const cJSON *batch = cJSON_GetObjectItemCaseSensitive(summary, "batch");
		if (batch)
			cJSON_AddItemToObject(body, "batch", cJSON_Duplicate(batch, 1));
		cJSON_AddStringToObject(body, "fired_at", now);
		cJSON_AddItemToObject(msg, "alert", body);
		char *payload = cJSON_PrintUnformatted(msg);
		if (!payload) {
			cJSON_Delete(msg);
			return errfmt(errstr, size, "out of memory");
		}
		fprintf(stderr, "%% ALERT: %s\n", text);
		if (ev->hook)
			send_webhook(ev, payload, hook, sizeof(hook));
		if (ev->rk)
			send_kafka(ev, id, payload, kafka, sizeof(kafka));
		free(payload);
		if (strncmp(hook, "failed", 6) == 0 || strncmp(kafka, "failed", 6) == 0) {
			fprintf(stderr, "%% WARNING: alert '%s': webhook %s, kafka %s\n", id, hook, kafka);
			ev->stats.alert_failures++;
		}
		cJSON *rec = cJSON_Duplicate(body, 1);
		cJSON_AddStringToObject(rec, "webhook", hook);
		cJSON_AddStringToObject(rec, "kafka", kafka);
		cJSON_Delete(msg);
		int rc = runs_alert_record(ev->runs, rec, errstr, size);
		cJSON_Delete(rec);
		if (rc)
			return -1;
		ev->stats.alerts++;
	}
	return 0;
}

static void fmt_num(char *buf, size_t size, double v)
{
	if (isnan(v))
		snprintf(buf, size, "-");
	else if (fabs(v) >= 1000 || v == floor(v))
		snprintf(buf, size, "%.0f", v);
	else
		snprintf(buf, size, "%.3f", v);
}

static void print_table(FILE *out, const cJSON *summary)
{
	const cJSON *aggs = cJSON_GetObjectItemCaseSensitive(summary, "aggregates"), *a;
	fprintf(out, "%-22s %5s %6s %9s %9s %9s %9s %9s\n", "metric", "n", "errors", "mean", "p50",
	        "p90", "threshold", "above");
	cJSON_ArrayForEach(a, aggs) {
		char mean[32], p50[32], p90[32], thr[32], above[32];
		const cJSON *share = cJSON_GetObjectItemCaseSensitive(a, "share_above");
		fmt_num(mean, sizeof(mean), cJSON_GetObjectItemCaseSensitive(a, "mean")->valuedouble);
		if (cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(a, "mean")))
			strcpy(mean, "-");
		fmt_num(p50, sizeof(p50), cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(a, "p50")) ?
		        cJSON_GetObjectItemCaseSensitive(a, "p50")->valuedouble : NAN);
		fmt_num(p90, sizeof(p90), cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(a, "p90")) ?
		        cJSON_GetObjectItemCaseSensitive(a, "p90")->valuedouble : NAN);
		fmt_num(thr, sizeof(thr), cJSON_GetObjectItemCaseSensitive(a, "threshold")->valuedouble);
		if (cJSON_IsNumber(share))
			snprintf(above, sizeof(above), "%.0f%%", share->valuedouble * 100);
		else
			strcpy(above, "-");
		fprintf(out, "%-22s %5d %6d %9s %9s %9s %9s %9s\n", a->string,
		        cJSON_GetObjectItemCaseSensitive(a, "n")->valueint,
		        cJSON_GetObjectItemCaseSensitive(a, "errors")->valueint, mean, p50, p90, thr, above);
	}
}

static void run_ctx_release(struct run_ctx *x)
{
	for (size_t i = 0; i < x->nres; i++)
		free(x->res[i].reason);
	free(x->res);
	free(x->done);
	run_close(x->w);
}

/* Mark the batch evaluated (after the summary and the alerts). */
static int finish_batch(struct evaluator *ev, const struct run_spec *s, char *errstr, size_t size)
{
	if (s->batch < 0)
		return 0;
	return store_mark_evaluated(ev->conf->store, s->dataset, s->batch, errstr, size);
}

int eval_run(struct evaluator *ev, struct store_reader *r, const struct run_spec *spec,
             char *errstr, size_t size)
{
	struct eval_conf *c = ev->conf;
	struct run_ctx x;
	int rc = -1;

	if (runs_state(ev->runs, spec->id) == 2) {
		/* the summary is there: what may be left is the alerts and the mark */
		cJSON *summary = runs_read_json(ev->runs, spec->id, "summary.json", errstr, size);
		if (!summary)
			return -1;
		rc = fire_alerts(ev, summary, errstr, size);
		cJSON_Delete(summary);
		return rc ? -1 : finish_batch(ev, spec, errstr, size);
	}
	memset(&x, 0, sizeof(x));
	x.ev = ev;
	x.spec = spec;
	cJSON *info = run_info(&x);
	if (!info)
		return errfmt(errstr, size, "out of memory");
	x.w = run_open(ev->runs, spec->id, info, errstr, size);
	cJSON_Delete(info);
	if (!x.w)
		return -1;
	if (runs_scores(ev->runs, spec->id, load_line, &x, errstr, size))
		goto out;
	if (x.ndone)
		qsort(x.done, x.ndone, sizeof(*x.done), cmp_u64);
	cJSON *started = runs_read_json(ev->runs, spec->id, "run.json", errstr, size);
	if (!started)
		goto out;
	if (ev->judge)
		judge_budget_reset(ev->judge);

	struct store_iter *it = store_iter_new(r, spec->dataset, spec->first_seq, spec->batch,
	                                       errstr, size);
	if (!it) {
		cJSON_Delete(started);
		goto out;
	}
	const char *json;
	size_t len;
	int n = 0;
	int window = ev->judge ? c->judge.inflight * 2 : 0;
	while (*ev->run && !x.failed && !x.judge_down &&
	       (n = store_next(it, &json, &len, errstr, size)) == 1) {
		int64_t seq = store_item_seq(it);
		if (spec->to_seq >= 0 && seq >= spec->to_seq)
			break;
		score_item(&x, seq, json, len);
		drain(&x, window);
	}
	store_iter_free(it);
	if (n < 0 && *ev->run) {
		cJSON_Delete(started);
		goto out;
	}
	drain(&x, 0);
	if (x.failed || run_flush(x.w, 1, x.err, sizeof(x.err))) {
		cJSON_Delete(started);
		errfmt(errstr, size, "run '%s': %s", spec->id, x.err);
		goto out;
	}
	if (!*ev->run) {
		cJSON_Delete(started);
		rc = 1;
		goto out;
	}
	if (x.judge_down) {
		cJSON_Delete(started);
		ev->stats.paused++;
		errfmt(errstr, size, "the judge is unavailable (%s): run %s paused, its scores so far kept",
		       x.down_why, spec->id);
		rc = 2;
		goto out;
	}

	/* the summary */
	char now[40];
	utc_now(now, sizeof(now));
	struct metric_agg *aggs = calloc((size_t)c->nmetrics, sizeof(*aggs));
	double **sorted = calloc((size_t)c->nmetrics, sizeof(*sorted));
	cJSON *summary = started;
	int64_t items = 0, errors = 0;
	{
		/* items: distinct sequence numbers among the results (they come in any order) */
		uint64_t *seqs = malloc((x.nres + 1) * sizeof(*seqs));
		for (size_t k = 0; k < x.nres; k++) {
			errors += x.res[k].error;
			if (seqs)
				seqs[k] = (uint64_t)x.res[k].seq;
		}
		if (seqs && x.nres)
			qsort(seqs, x.nres, sizeof(*seqs), cmp_u64);
		for (size_t k = 0; seqs && k < x.nres; k++)
			items += k == 0 || seqs[k] != seqs[k - 1];
		free(seqs);
	}
	cJSON_AddStringToObject(summary, "ended_at", now);
	cJSON_AddStringToObject(summary, "status", x.budget_hit ? "budget" : "complete");
	cJSON_AddNumberToObject(summary, "items", (double)items);
	cJSON_AddNumberToObject(summary, "scores", (double)(x.nres - (size_t)errors));
	cJSON_AddNumberToObject(summary, "errors", (double)errors);
	if (ev->judge) {
		struct judge_stats js;
		judge_stats(ev->judge, &js);
		cJSON_AddNumberToObject(summary, "judge_requests", (double)js.run_attempts);
		cJSON_AddNumberToObject(summary, "judge_tokens", (double)js.run_tokens);
	}
	if (!aggs || !sorted) {
		free(aggs);
		free(sorted);
		cJSON_Delete(summary);
		errfmt(errstr, size, "out of memory");
		goto out;
	}
	cJSON_AddItemToObject(summary, "aggregates", aggregates(&x, aggs, sorted));
	cJSON *alerts = cJSON_AddArrayToObject(summary, "alerts");
	for (int i = 0; i < c->nalerts; i++) {
		const struct alert_rule *ar = &c->alerts[i];
		int m = metric_index(c, ar->metric);
		double v = alert_value(ar, sorted[m], aggs[m].n, aggs[m].errors);
		int fired = alert_fires(ar, v);
		char agg[64], text[600], vbuf[32], bbuf[32];
		alert_agg_text(ar, agg, sizeof(agg));
		fmt_num(vbuf, sizeof(vbuf), v);
		fmt_num(bbuf, sizeof(bbuf), ar->bound);
		snprintf(text, sizeof(text), "%s: %s %s = %s %s %s on run %s (%d items)", ar->name,
		         ar->metric, agg, vbuf, fired ? alert_op_text(ar->op) : "within", bbuf,
		         spec->id, aggs[m].n + aggs[m].errors);
		cJSON *a = cJSON_CreateObject();
		cJSON_AddStringToObject(a, "rule", ar->name);
		cJSON_AddStringToObject(a, "when", ar->when);
		cJSON_AddStringToObject(a, "metric", ar->metric);
		cJSON_AddStringToObject(a, "aggregate", agg);
		add_num(a, "value", v);
		cJSON_AddNumberToObject(a, "bound", ar->bound);
		cJSON_AddBoolToObject(a, "fired", fired);
		cJSON_AddStringToObject(a, "text", text);
		cJSON_AddItemToArray(alerts, a);
	}
	for (int i = 0; i < c->nmetrics; i++)
		free(sorted[i]);
	free(sorted);
	free(aggs);
	if (run_finish(x.w, summary, errstr, size)) {
		cJSON_Delete(summary);
		goto out;
	}
	x.w = NULL;
	ev->stats.runs++;
	ev->stats.items += items;
	if (ev->out) {
		fprintf(ev->out, "run %s: %" PRId64 " items, %" PRId64 " errors%s\n", spec->id, items,
		        errors, x.budget_hit ? " (stopped: judge budget spent)" : "");
		print_table(ev->out, summary);
		fflush(ev->out);
	}
	if (x.budget_hit)
		fprintf(stderr, "%% WARNING: run %s stopped scoring with the judge: its budget is spent; "
		        "the items left are recorded as errors\n", spec->id);
	rc = fire_alerts(ev, summary, errstr, size) ? -1 : finish_batch(ev, spec, errstr, size);
	cJSON_Delete(summary);
out:
	run_ctx_release(&x);
	return rc;
}

/* ---- loops ----------------------------------------------------------------------- */

static int dataset_wanted(const struct eval_conf *c, const char *name)
{
	if (!c->datasets)
		return 1;
	for (char **p = c->datasets; *p; p++)
		if (!strcmp(*p, name))
			return 1;
	return 0;
}

int eval_resume(struct evaluator *ev, char *errstr, size_t size)
{
	char **ids;
	int n = runs_list(ev->runs, &ids, errstr, size), rc = 0;
	if (n < 0)
		return -1;
	struct store_reader *r = NULL;
	for (int i = 0; i < n; i++) {
		struct run_spec s;
		if (rc || !*ev->run || runs_state(ev->runs, ids[i]) != 1 || run_spec_parse(&s, ids[i]))
			continue;
		if (!r && !(r = store_reader_open(ev->conf->store, errstr, size))) {
			rc = -1;
			continue;
		}
		cJSON *info = runs_read_json(ev->runs, ids[i], "run.json", errstr, size);
		const cJSON *fs = cJSON_GetObjectItemCaseSensitive(info, "first_seq");
		const cJSON *p = cJSON_GetObjectItemCaseSensitive(info, "partial");
		if (s.batch >= 0 && cJSON_IsNumber(fs))
			s.first_seq = (int64_t)fs->valuedouble;
		s.partial = cJSON_IsTrue(p);
		cJSON_Delete(info);
		fprintf(stderr, "%% resuming run %s\n", s.id);
		rc = eval_run(ev, r, &s, errstr, size);
	}
	store_reader_close(r);
	for (int i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	return rc;
}

typedef int (*dataset_fn)(struct evaluator *ev, struct store_reader *r, const char *dataset,
                          int *done, char *errstr, size_t size);

/* Calls fn for each configured dataset of the store as it is now. */
static int each_dataset(struct evaluator *ev, dataset_fn fn, int *done, char *errstr, size_t size)
{
	struct store_reader *r = store_reader_open(ev->conf->store, errstr, size);
	const char *const *names;
	int rc = 0;
	*done = 0;
	if (!r)
		return -1;
	int nds = store_datasets(r, &names);
	for (int d = 0; d < nds && !rc && *ev->run; d++)
		if (dataset_wanted(ev->conf, names[d]))
			rc = fn(ev, r, names[d], done, errstr, size);
	store_reader_close(r);
	return rc;
}

/* Every complete batch of dataset not evaluated yet, in order. */
static int batches_of(struct evaluator *ev, struct store_reader *r, const char *dataset, int *done,
                      char *errstr, size_t size)
{
	const struct store_batch *b;
	int rc = 0, nb = store_batches(r, dataset, &b);
	for (int i = 0; i < nb && !rc && *ev->run; i++) {
		if (b[i].state != BATCH_COMPLETE)
			continue;
		struct run_spec s;
		run_spec_batch(&s, dataset, &b[i]);
		rc = eval_run(ev, r, &s, errstr, size);
		*done += rc == 0;
	}
	return rc;
}

/* What arrived in dataset since the cursor, as one range run. */
static int arrivals_of(struct evaluator *ev, struct store_reader *r, const char *dataset, int *done,
                       char *errstr, size_t size)
{
	int64_t from = runs_cursor(ev->runs, dataset), to = store_count(r, dataset);
	if (to <= from)
		return 0;
	struct run_spec s;
	run_spec_range(&s, dataset, from, to);
	int rc = eval_run(ev, r, &s, errstr, size);
	if (rc == 0) {
		(*done)++;
		rc = runs_set_cursor(ev->runs, dataset, to, errstr, size);
	}
	return rc;
}

int eval_pending_batches(struct evaluator *ev, int *done, char *errstr, size_t size)
{
	return each_dataset(ev, batches_of, done, errstr, size);
}

int eval_schedule(struct evaluator *ev, int *done, char *errstr, size_t size)
{
	return each_dataset(ev, arrivals_of, done, errstr, size);
}

/* ---- show ------------------------------------------------------------------------- */

struct worst {
	const struct eval_conf *c;
	cJSON *summary;
	struct { char item[STORE_ID_MAX + 1]; char metric[65]; double score; int error; char reason[200]; } *w;
	int n, cap;
};

static int collect(void *ctx, const cJSON *line)
{
	struct worst *ws = ctx;
	const cJSON *score = cJSON_GetObjectItemCaseSensitive(line, "score");
	const cJSON *error = cJSON_GetObjectItemCaseSensitive(line, "error");
	const cJSON *metric = cJSON_GetObjectItemCaseSensitive(line, "metric");
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(line, "item");
	const cJSON *reason = cJSON_GetObjectItemCaseSensitive(line, "reason");
	const cJSON *aggs = cJSON_GetObjectItemCaseSensitive(ws->summary, "aggregates");
	const cJSON *agg = cJSON_GetObjectItemCaseSensitive(aggs, cJSON_GetStringValue(metric));
	const cJSON *thr = cJSON_GetObjectItemCaseSensitive(agg, "threshold");
	if (!cJSON_IsString(metric) || !cJSON_IsString(item) || !cJSON_IsNumber(thr))
		return 0;
	int is_error = cJSON_IsString(error);
	int good_high = !strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(agg, "better")) ?
	                        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(agg, "better")) : "", "high");
	/* the bad side of the threshold: above it, or below it where higher is better */
	if (!is_error && !(cJSON_IsNumber(score) && (good_high ? score->valuedouble < thr->valuedouble :
	                                             score->valuedouble > thr->valuedouble)))
		return 0;
	if (ws->n == ws->cap) {
		int cap = ws->cap ? ws->cap * 2 : 64;
		void *p = realloc(ws->w, (size_t)cap * sizeof(*ws->w));
		if (!p)
			return -1;
		ws->w = p;
		ws->cap = cap;
	}
	snprintf(ws->w[ws->n].item, sizeof(ws->w[ws->n].item), "%s", item->valuestring);
	snprintf(ws->w[ws->n].metric, sizeof(ws->w[ws->n].metric), "%s", metric->valuestring);
	ws->w[ws->n].score = is_error ? NAN : score->valuedouble;
	ws->w[ws->n].error = is_error;
	snprintf(ws->w[ws->n].reason, sizeof(ws->w[ws->n].reason), "%s",
	         is_error ? error->valuestring : cJSON_IsString(reason) ? reason->valuestring : "");
	ws->n++;
	return 0;
}

int eval_show(struct runs *rs, const char *id, int worst, FILE *out, char *errstr, size_t size)
{
	cJSON *summary = runs_read_json(rs, id, "summary.json", errstr, size);
	cJSON *info = summary ? NULL : runs_read_json(rs, id, "run.json", errstr, size);
	if (!summary && !info)
		return -1;
	cJSON *j = summary ? summary : info;
	const cJSON *v;
	fprintf(out, "run        %s\n", id);
	fprintf(out, "dataset    %s\n", cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "dataset")));
	if ((v = cJSON_GetObjectItemCaseSensitive(j, "batch")))
		fprintf(out, "batch      %.0f%s\n", v->valuedouble,
		        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "partial")) ? " (partial)" : "");
	else
		fprintf(out, "items      %.0f to %.0f\n",
		        cJSON_GetObjectItemCaseSensitive(j, "from_seq")->valuedouble,
		        cJSON_GetObjectItemCaseSensitive(j, "to_seq")->valuedouble - 1);
	v = cJSON_GetObjectItemCaseSensitive(j, "judge_model");
	fprintf(out, "judge      %s\n", cJSON_IsString(v) ? v->valuestring : "none (heuristic metrics only)");
	fprintf(out, "config     %s\n", cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "config_hash")));
	fprintf(out, "started    %s\n", cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "started_at")));
	if (!summary) {
		fprintf(out, "status     unfinished (the evaluator resumes it when it starts)\n");
		cJSON_Delete(info);
		return 0;
	}
	fprintf(out, "ended      %s\n", cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "ended_at")));
	fprintf(out, "status     %s\n", cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "status")));
	fprintf(out, "items      %.0f (%.0f scores, %.0f errors)\n",
	        cJSON_GetObjectItemCaseSensitive(j, "items")->valuedouble,
	        cJSON_GetObjectItemCaseSensitive(j, "scores")->valuedouble,
	        cJSON_GetObjectItemCaseSensitive(j, "errors")->valuedouble);
	if ((v = cJSON_GetObjectItemCaseSensitive(j, "judge_requests")))
		fprintf(out, "judge use  %.0f requests, %.0f tokens\n", v->valuedouble,
		        cJSON_GetObjectItemCaseSensitive(j, "judge_tokens")->valuedouble);
	fprintf(out, "\n");
	print_table(out, summary);
	const cJSON *a;
	int any = 0;
	cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(summary, "alerts")) {
		if (!any++)
			fprintf(out, "\nalerts\n");
		fprintf(out, "  %s %s\n", cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "fired")) ?
		        "FIRED" : "ok   ", cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "text")));
	}
	struct worst ws = { .summary = summary };
	int rc = runs_scores(rs, id, collect, &ws, errstr, size);
	if (!rc && worst > 0) {
		fprintf(out, "\nworst items (errors, then scores on the bad side of their threshold)\n");
		int shown = 0;
		for (int pass = 0; pass < 2; pass++)
			for (int i = 0; i < ws.n && shown < worst; i++)
				if (ws.w[i].error == !pass) {
					char s[32];
					fmt_num(s, sizeof(s), ws.w[i].score);
					fprintf(out, "  %-34s %-20s %8s  %s\n", ws.w[i].item, ws.w[i].metric,
					        ws.w[i].error ? "error" : s, ws.w[i].reason);
					shown++;
				}
		if (!shown)
			fprintf(out, "  none\n");
	}
	free(ws.w);
	cJSON_Delete(summary);
	return rc;
}
