/* sampler/batch.c - the batcher: exact batches of N items per dataset, one writer per dataset
 *
 * Selected items reach the pending topic keyed by dataset, so every item of a
 * dataset is in one partition, read by one batcher at a time.  The batcher
 * numbers them (batch, position), writes them to the output topic and, at
 * every N-th, a trigger record.  Its state per dataset (open batch, items so
 * far) is written to a compacted state topic, in the same partition number
 * and the same transaction as the outputs and the consumed offsets, so a
 * batcher that takes the partition over (restart, rebalance) reads back
 * exactly the state that goes with the committed offsets.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "sampler.h"
#include "sbuf.h"
#include "tstime.h"

struct dstate {
	char *dataset;
	int32_t partition;  /* of the pending and the state topic */
	int64_t batch;      /* the open batch, from 1 */
	int pos;            /* items in it */
	int64_t opened_ms;  /* wall clock of its first item */
	char (*ids)[REC_TRACE_ID_LEN + 1]; /* batch_size of them */
	int dirty;          /* changed in the open transaction */
};

struct batcher {
	struct sampler *s;
	int n;              /* batch size */
	struct dstate *cur, *saved; /* now, and as of the last commit */
	int ncur, nsaved;
};

static void states_free(struct dstate *v, int n)
{
	for (int i = 0; i < n; i++) {
		free(v[i].dataset);
		free(v[i].ids);
	}
	free(v);
}

/* A deep copy of n states; NULL only when n > 0 and memory ran out. */
static struct dstate *states_copy(const struct dstate *v, int n, int batch_size)
{
	struct dstate *c = calloc((size_t)n + 1, sizeof(*c));
	if (!c)
		return NULL;
	for (int i = 0; i < n; i++) {
		c[i] = v[i];
		c[i].dataset = strdup(v[i].dataset);
		c[i].ids = malloc(sizeof(*c[i].ids) * (size_t)batch_size);
		if (!c[i].dataset || !c[i].ids) {
			states_free(c, i + 1);
			return NULL;
		}
		memcpy(c[i].ids, v[i].ids, sizeof(*c[i].ids) * (size_t)batch_size);
	}
	return c;
}

static struct dstate *state_find(struct batcher *b, const char *ds, size_t len)
{
	for (int i = 0; i < b->ncur; i++)
		if (strlen(b->cur[i].dataset) == len && !memcmp(b->cur[i].dataset, ds, len))
			return &b->cur[i];
	return NULL;
}

static struct dstate *state_add(struct batcher *b, const char *ds, size_t len, int32_t partition)
{
	struct dstate *nv = realloc(b->cur, sizeof(*nv) * (size_t)(b->ncur + 1));
	if (!nv)
		return NULL;
	b->cur = nv;
	struct dstate *d = &b->cur[b->ncur];
	memset(d, 0, sizeof(*d));
	d->dataset = strndup(ds, len);
	d->ids = calloc((size_t)b->n, sizeof(*d->ids));
	if (!d->dataset || !d->ids) {
		free(d->dataset);
		free(d->ids);
		return NULL;
	}
	d->partition = partition;
	d->batch = 1;
	b->ncur++;
	return d;
}

static int save(struct batcher *b)
{
	struct dstate *c = states_copy(b->cur, b->ncur, b->n);
	if (!c)
		return -1;
	states_free(b->saved, b->nsaved);
	b->saved = c;
	b->nsaved = b->ncur;
	return 0;
}

/* The state reader's properties (core/kclient.h): the tunables are set before
 * the user's, the required ones after.  It is assigned its partitions and
 * never commits, so its group is only a name. */
static const struct kclient_prop state_tune[] = {
	{ "group.id", "tracesift-sampler-state", NULL },
	{ "enable.auto.commit", "false", NULL },
};
static const struct kclient_prop state_must[] = {
	{ "enable.partition.eof", "true", "it reads the state topic to its end when the batch stage takes a partition" },
	{ "isolation.level", "read_committed", "the state of aborted transactions must not be restored" },
};
static const struct kclient_tables state_props = {
	"the sampler's state reader", state_tune, (int)(sizeof(state_tune) / sizeof(state_tune[0])),
	state_must, (int)(sizeof(state_must) / sizeof(state_must[0]))
};

int batcher_check(const struct sampler *s, char *errstr, size_t errstr_size)
{
	return kclient_check(&state_props, s->kafka, s->nkafka, errstr, errstr_size);
}

struct batcher *batcher_new(struct sampler *s, char *errstr, size_t errstr_size)
{
	struct batcher *b = calloc(1, sizeof(*b));
	if (!b) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	b->s = s;
	b->n = s->conf->batch_size;
	return b;
}

void batcher_destroy(struct batcher *b)
{
	if (!b)
		return;
	states_free(b->cur, b->ncur);
	states_free(b->saved, b->nsaved);
	free(b);
}

/* ---- state topic ------------------------------------------------------- */

static int state_from_json(struct batcher *b, const char *key, size_t klen, int32_t partition,
                           const char *json, size_t len)
{
	cJSON *j = cJSON_ParseWithLength(json, len);
	const cJSON *batch = cJSON_GetObjectItemCaseSensitive(j, "batch");
	const cJSON *pos = cJSON_GetObjectItemCaseSensitive(j, "pos");
	const cJSON *opened = cJSON_GetObjectItemCaseSensitive(j, "opened_ms");
	const cJSON *items = cJSON_GetObjectItemCaseSensitive(j, "items");
	int ok = cJSON_IsNumber(batch) && cJSON_IsNumber(pos) && cJSON_IsArray(items) &&
	         pos->valueint >= 0 && pos->valueint < b->n && cJSON_GetArraySize(items) == pos->valueint;
	struct dstate *d = NULL;
	if (ok && !(d = state_find(b, key, klen)) && !(d = state_add(b, key, klen, partition)))
		ok = 0;
	if (ok) {
		d->batch = (int64_t)batch->valuedouble;
		d->pos = pos->valueint;
		d->opened_ms = cJSON_IsNumber(opened) ? (int64_t)opened->valuedouble : 0;
		for (int i = 0; i < d->pos; i++) {
			const cJSON *id = cJSON_GetArrayItem(items, i);
			snprintf(d->ids[i], sizeof(d->ids[i]), "%s", cJSON_IsString(id) ? id->valuestring : "");
		}
	}
	cJSON_Delete(j);
	return ok ? 0 : -1;
}

/* Reads partition p of the state topic up to its end (read_committed). */
static int state_load(struct batcher *b, int32_t p)
{
	const struct sampler_conf *c = b->s->conf;
	char err[512];
	rd_kafka_conf_t *conf = kclient_conf_new(&state_props, c->brokers, b->s->kafka, b->s->nkafka, err,
	                                         sizeof(err));
	rd_kafka_t *rk = conf ? kclient_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err)) : NULL;
	if (!rk) {
		fprintf(stderr, "%% ERROR: batch: state reader: %s\n", err);
		return -1;
	}
	rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(parts, c->state, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
	rd_kafka_assign(rk, parts);
	rd_kafka_topic_partition_list_destroy(parts);
	int rc = -1, records = 0;
	for (int idle = 0; idle < 600;) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
		if (!m) {
			idle++;
			continue;
		}
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			rd_kafka_message_destroy(m);
			rc = 0;
			break;
		}
		if (m->err) {
			fprintf(stderr, "%% ERROR: batch: reading state topic '%s' [%d]: %s\n", c->state, (int)p,
			        rd_kafka_message_errstr(m));
			rd_kafka_message_destroy(m);
			break;
		}
		if (m->key && m->payload &&
		    state_from_json(b, m->key, m->key_len, p, m->payload, m->len) == 0)
			records++;
		rd_kafka_message_destroy(m);
	}
	if (rc)
		fprintf(stderr, "%% ERROR: batch: cannot read state topic '%s' [%d] to its end\n", c->state, (int)p);
	rd_kafka_assign(rk, NULL);
	rd_kafka_destroy(rk);
	return rc;
}

static int state_write(struct eos *e, const struct sampler_conf *c, const struct dstate *d)
{
	struct sbuf v;
	sbuf_init(&v);
	sbuf_puts(&v, "{\"dataset\":");
	sbuf_put_jstr(&v, d->dataset, strlen(d->dataset));
	sbuf_printf(&v, ",\"batch\":%lld,\"pos\":%d,\"opened_ms\":%lld,\"items\":[",
	            (long long)d->batch, d->pos, (long long)d->opened_ms);
	for (int i = 0; i < d->pos; i++)
		sbuf_printf(&v, "%s\"%s\"", i ? "," : "", d->ids[i]);
	sbuf_puts(&v, "]}");
	size_t len;
	char *buf = sbuf_detach(&v, &len);
	if (!buf)
		return -1;
	return eos_produce_owned(e, c->state, d->partition, d->dataset, strlen(d->dataset), buf, len, NULL);
}

/* ---- batches ----------------------------------------------------------- */

static int close_batch(struct batcher *b, struct eos *e, struct dstate *d, int partial)
{
	const struct sampler_conf *c = b->s->conf;
	char ts[TSTIME_LEN];
	struct sbuf v;
	sbuf_init(&v);
	sbuf_puts(&v, "{\"type\":\"batch\",\"dataset\":");
	sbuf_put_jstr(&v, d->dataset, strlen(d->dataset));
	tstime_format(tstime_now_us(), ts);
	sbuf_printf(&v, ",\"batch\":%lld,\"size\":%d,\"batch_size\":%d,\"partial\":%s,\"closed_at\":\"%s\",\"items\":[",
	            (long long)d->batch, d->pos, b->n, partial ? "true" : "false", ts);
	for (int i = 0; i < d->pos; i++)
		sbuf_printf(&v, "%s\"%s\"", i ? "," : "", d->ids[i]);
	sbuf_puts(&v, "]}");
	size_t len;
	char *buf = sbuf_detach(&v, &len);
	if (!buf || eos_produce_owned(e, c->output, RD_KAFKA_PARTITION_UA, d->dataset,
	                              strlen(d->dataset), buf, len, NULL))
		return -1;
	pthread_mutex_lock(&b->s->lock);
	b->s->batches++;
	b->s->partial_batches += partial != 0;
	pthread_mutex_unlock(&b->s->lock);
	d->batch++;
	d->pos = 0;
	d->opened_ms = 0;
	d->dirty = 1;
	return 0;
}

static int batch_process(void *ctx, struct eos *e, const rd_kafka_message_t *m)
{
	struct batcher *b = ctx;
	const struct sampler_conf *c = b->s->conf;
	const char *v = m->payload;
	if (!m->key || m->key_len == 0 || m->len < ITEM_SPLICE_AT + 2 ||
	    memcmp(v, ITEM_PREFIX, ITEM_PREFIX_LEN) || v[ITEM_SPLICE_AT - 1] != '"') {
		/* Only the selector writes here; anything else is skipped and said. */
		fprintf(stderr, "%% ERROR: batch: '%s' [%d] offset %lld is not an item: skipped\n",
		        rd_kafka_topic_name(m->rkt), (int)m->partition, (long long)m->offset);
		return 0;
	}
	struct dstate *d = state_find(b, m->key, m->key_len);
	if (!d && !(d = state_add(b, m->key, m->key_len, m->partition)))
		return -1;
	char splice[64];
	int sl = snprintf(splice, sizeof(splice), ",\"batch\":%lld,\"position\":%d",
	                  (long long)d->batch, d->pos);
	char *out = malloc(m->len + (size_t)sl);
	if (!out)
		return -1;
	memcpy(out, v, ITEM_SPLICE_AT);
	memcpy(out + ITEM_SPLICE_AT, splice, (size_t)sl);
	memcpy(out + ITEM_SPLICE_AT + sl, v + ITEM_SPLICE_AT, m->len - ITEM_SPLICE_AT);
	if (eos_produce_owned(e, c->output, RD_KAFKA_PARTITION_UA, m->key, m->key_len, out,
	                      m->len + (size_t)sl, NULL))
		return -1;
	memcpy(d->ids[d->pos], v + ITEM_PREFIX_LEN, REC_TRACE_ID_LEN);
	d->ids[d->pos][REC_TRACE_ID_LEN] = '\0';
	if (d->pos++ == 0)
		d->opened_ms = tstime_now_us() / 1000;
	d->dirty = 1;
	pthread_mutex_lock(&b->s->lock);
	b->s->batched_items++;
	pthread_mutex_unlock(&b->s->lock);
	if (d->pos == b->n)
		return close_batch(b, e, d, 0);
	return 0;
}

static int batch_tick(void *ctx, struct eos *e)
{
	struct batcher *b = ctx;
	int wait = b->s->conf->batch_max_wait_ms;
	if (wait <= 0)
		return 0;
	int64_t now = tstime_now_us() / 1000;
	for (int i = 0; i < b->ncur; i++) {
		struct dstate *d = &b->cur[i];
		if (d->pos > 0 && now - d->opened_ms >= wait && close_batch(b, e, d, 1))
			return -1;
	}
	return 0;
}

static int batch_before_commit(void *ctx, struct eos *e)
{
	struct batcher *b = ctx;
	for (int i = 0; i < b->ncur; i++) {
		if (!b->cur[i].dirty)
			continue;
		if (state_write(e, b->s->conf, &b->cur[i]))
			return -1;
		b->cur[i].dirty = 0;
	}
	return 0;
}

static void batch_committed(void *ctx)
{
	struct batcher *b = ctx;
	if (save(b))
		fprintf(stderr, "%% ERROR: batch: out of memory saving state\n");
}

static void batch_aborted(void *ctx)
{
	struct batcher *b = ctx;
	struct dstate *c = states_copy(b->saved, b->nsaved, b->n);
	if (!c) {
		fprintf(stderr, "%% ERROR: batch: out of memory restoring state\n");
		abort();
	}
	states_free(b->cur, b->ncur);
	b->cur = c;
	b->ncur = b->nsaved;
}

static int batch_assigned(void *ctx, struct eos *e, const rd_kafka_topic_partition_list_t *parts)
{
	(void)e;
	struct batcher *b = ctx;
	for (int i = 0; i < parts->cnt; i++)
		if (state_load(b, parts->elems[i].partition))
			return -1;
	return save(b);
}

static void batch_revoked(void *ctx, struct eos *e, const rd_kafka_topic_partition_list_t *parts)
{
	(void)e;
	struct batcher *b = ctx;
	int keep = 0;
	for (int i = 0; i < b->ncur; i++) {
		int gone = 0;
		for (int j = 0; j < parts->cnt; j++)
			gone |= parts->elems[j].partition == b->cur[i].partition;
		if (gone) {
			free(b->cur[i].dataset);
			free(b->cur[i].ids);
		} else {
			b->cur[keep++] = b->cur[i];
		}
	}
	b->ncur = keep;
	save(b);
}

const struct eos_ops batch_ops = {
	.process = batch_process,
	.assigned = batch_assigned,
	.revoked = batch_revoked,
	.before_commit = batch_before_commit,
	.committed = batch_committed,
	.aborted = batch_aborted,
	.tick = batch_tick,
};
