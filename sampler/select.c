/* sampler/select.c - the selector: classify, decide, dead-letter, and build dataset items */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "record.h"
#include "sample.h"
#include "sampler.h"
#include "sbuf.h"
#include "tstime.h"

static int64_t wall_ms(void)
{
	return tstime_now_us() / 1000;
}

/* The largest dead letter sent whole: the producer's limit less room for
 * key and headers.  A larger one is cut to its first DLQ_KEEP_BYTES and
 * says so in headers, rather than stopping the sampler. */
#define DLQ_MAX_BYTES (4 * 1024 * 1024 - 65536)
#define DLQ_KEEP_BYTES (64 * 1024)

/* Sends the original message to the dead-letter topic with why. */
static int dead_letter(struct sampler *s, struct eos *e, const rd_kafka_message_t *m,
                       const char *reason, const char *detail, int counter)
{
	char part[16], off[24], bytes[24];
	const char *topic = rd_kafka_topic_name(m->rkt);
	size_t len = m->len, key_len = m->key_len > 1024 ? 1024 : m->key_len;
	snprintf(part, sizeof(part), "%d", (int)m->partition);
	snprintf(off, sizeof(off), "%lld", (long long)m->offset);
	rd_kafka_headers_t *h = rd_kafka_headers_new(7);
	rd_kafka_header_add(h, "ts-reason", -1, reason, -1);
	rd_kafka_header_add(h, "ts-error", -1, detail, -1);
	rd_kafka_header_add(h, "ts-source-topic", -1, topic, -1);
	rd_kafka_header_add(h, "ts-source-partition", -1, part, -1);
	rd_kafka_header_add(h, "ts-source-offset", -1, off, -1);
	if (len > DLQ_MAX_BYTES || key_len != m->key_len) {
		snprintf(bytes, sizeof(bytes), "%zu", m->len);
		rd_kafka_header_add(h, "ts-truncated", -1, "true", -1);
		rd_kafka_header_add(h, "ts-original-bytes", -1, bytes, -1);
		if (len > DLQ_MAX_BYTES)
			len = DLQ_KEEP_BYTES;
	}
	int rc = eos_produce(e, s->conf->dlq, RD_KAFKA_PARTITION_UA, m->key, key_len,
	                     m->payload, len, h);
	rd_kafka_headers_destroy(h);
	if (rc == 0) {
		pthread_mutex_lock(&s->lock);
		s->dead[counter]++;
		pthread_mutex_unlock(&s->lock);
	}
	return rc;
}

/* Whether the class's rate limit lets one more through now (and counts it). */
static int within_limit(struct sampler *s, int cls)
{
	const struct sclass *c = &s->conf->classes[cls];
	struct class_counts *cc = &s->classes[cls];
	if (c->limit <= 0)
		return 1;
	int64_t now = wall_ms(), window = now - now % c->limit_window_ms;
	if (cc->window_start_ms != window) {
		cc->window_start_ms = window;
		cc->window_count = 0;
	}
	if (cc->window_count >= c->limit)
		return 0;
	cc->window_count++;
	return 1;
}

static void put_slice(struct sbuf *b, const char *rec, struct rec_slice sl)
{
	if (sl.len)
		sbuf_put(b, rec + sl.off, sl.len);
	else
		sbuf_puts(b, "null");
}

/* The part of the record an item carries: all of it, or a projection. */
static void put_record(struct sbuf *b, const struct sampler_conf *c, const char *rec, size_t len,
                       const struct rec_info *info)
{
	if (c->projection == PROJ_FULL) {
		sbuf_put(b, rec, len);
		return;
	}
	sbuf_puts(b, "{\"trace_id\":\"");
	sbuf_puts(b, info->trace_id);
	sbuf_putc(b, '"');
	static const struct { int bit; const char *name; } fields[] = {
		{ PROJ_INPUT, "input" }, { PROJ_OUTPUT, "output" },
		{ PROJ_CONTEXT, "context" }, { PROJ_METADATA, "metadata" },
	};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (!(c->proj_fields & fields[i].bit))
			continue;
		struct rec_slice sl = fields[i].bit == PROJ_INPUT ? info->input :
		                      fields[i].bit == PROJ_OUTPUT ? info->output :
		                      fields[i].bit == PROJ_CONTEXT ? info->context : info->metadata;
		sbuf_printf(b, ",\"%s\":", fields[i].name);
		put_slice(b, rec, sl);
	}
	sbuf_putc(b, '}');
}

int select_prepare(struct sampler *s)
{
	const struct sampler_conf *c = s->conf;
	struct sbuf b;
	for (int i = 0; i < c->nclasses; i++) {
		const struct sclass *k = &c->classes[i];
		sbuf_init(&b);
		sbuf_puts(&b, "\",\"dataset\":");
		sbuf_put_jstr(&b, k->dataset, strlen(k->dataset));
		sbuf_puts(&b, ",\"class\":");
		sbuf_put_jstr(&b, k->name, strlen(k->name));
		sbuf_printf(&b, ",\"rate\":%.17g,\"seed\":%llu,\"draw\":", k->rate,
		            (unsigned long long)c->seed);
		if (!(s->classes[i].item_head = sbuf_detach(&b, &s->classes[i].item_head_len)))
			return -1;
	}
	sbuf_init(&b);
	sbuf_puts(&b, ",\"source\":{\"topic\":");
	sbuf_put_jstr(&b, c->input, strlen(c->input));
	sbuf_puts(&b, ",\"partition\":");
	return (s->source_head = sbuf_detach(&b, &s->source_head_len)) ? 0 : -1;
}

void select_release(struct sampler *s)
{
	for (int i = 0; s->classes && i < s->conf->nclasses; i++)
		free(s->classes[i].item_head);
	free(s->source_head);
}

static void put_i64(struct sbuf *b, int64_t v)
{
	char tmp[24], *p = tmp + sizeof(tmp);
	uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;
	do
		*--p = (char)('0' + u % 10);
	while ((u /= 10) > 0);
	if (v < 0)
		*--p = '-';
	sbuf_put(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

/* A dataset item: ITEM_PREFIX, id, then the rest (see docs/sampling.md).
 * What a class shares was formatted once by select_prepare. */
static char *build_item(struct sampler *s, const rd_kafka_message_t *m, const struct rec_info *info,
                        int cls, double draw, size_t *len, long *redactions)
{
	const struct sampler_conf *c = s->conf;
	const struct class_counts *k = &s->classes[cls];
	struct sbuf b, rec;
	char ts[TSTIME_LEN], num[32];
	sbuf_init(&b);
	sbuf_reserve(&b, m->len + 512);
	sbuf_put(&b, ITEM_PREFIX, ITEM_PREFIX_LEN);
	sbuf_put(&b, info->trace_id, REC_TRACE_ID_LEN);
	sbuf_put(&b, k->item_head, k->item_head_len);
	int n = snprintf(num, sizeof(num), "%.17g", draw);
	sbuf_put(&b, num, (size_t)n);
	sbuf_put(&b, s->source_head, s->source_head_len);
	put_i64(&b, m->partition);
	sbuf_puts(&b, ",\"offset\":");
	put_i64(&b, m->offset);
	sbuf_puts(&b, "},\"selected_at\":\"");
	sbuf_put(&b, ts, tstime_format(tstime_now_us(), ts));
	sbuf_puts(&b, "\",\"record\":");
	*redactions = 0;
	if (s->redactor) {
		sbuf_init(&rec);
		put_record(&rec, c, m->payload, m->len, info);
		if (!rec.oom)
			*redactions = redact_json(s->redactor, rec.buf, rec.len, &b);
		if (rec.oom || *redactions < 0)
			b.oom = 1;
		sbuf_release(&rec);
	} else {
		put_record(&b, c, m->payload, m->len, info);
	}
	sbuf_putc(&b, '}');
	return sbuf_detach(&b, len);
}

static int select_process(void *ctx, struct eos *e, const rd_kafka_message_t *m)
{
	struct sampler *s = ctx;
	const struct sampler_conf *c = s->conf;
	struct rec_info info;
	char err[512];
	enum rec_reason r = rec_validate(m->payload, m->len, &s->limits, &info, err, sizeof(err));
	if (r != REC_OK)
		return dead_letter(s, e, m, rec_reason_name(r), err, r);

	int cls = sconf_classify(c, m->payload, &info);
	double draw = sample_draw(c->seed, info.trace_id);
	int selected = sample_selected(draw, c->classes[cls].rate);
	pthread_mutex_lock(&s->lock);
	s->classes[cls].seen++;
	if (selected && !within_limit(s, cls)) {
		selected = 0;
		s->classes[cls].rate_limited++;
	}
	pthread_mutex_unlock(&s->lock);
	if (!selected)
		return 0;

	size_t len;
	long redactions;
	char *item = build_item(s, m, &info, cls, draw, &len, &redactions);
	if (!item) {
		fprintf(stderr, "%% ERROR: select: out of memory building an item\n");
		return -1;
	}
	if (len > ITEM_MAX_BYTES) {
		free(item);
		snprintf(err, sizeof(err), "item of %zu bytes is over the limit of %d", len, ITEM_MAX_BYTES);
		return dead_letter(s, e, m, "item_too_large", err, REC_REASON_COUNT);
	}
	pthread_mutex_lock(&s->lock);
	s->classes[cls].selected++;
	s->redactions += (uint64_t)redactions;
	pthread_mutex_unlock(&s->lock);
	const char *ds = c->classes[cls].dataset;
	const char *topic = c->batch_size > 0 ? c->pending : c->output;
	return eos_produce_owned(e, topic, RD_KAFKA_PARTITION_UA, ds, strlen(ds), item, len, NULL);
}

const struct eos_ops select_ops = {
	.process = select_process,
};
