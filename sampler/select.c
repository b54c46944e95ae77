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

/* A dataset item: ITEM_PREFIX, id, then the rest (see docs/sampling.md). */
static char *build_item(struct sampler *s, const rd_kafka_message_t *m, const struct rec_info *info,
                        int cls, double draw, size_t *len, long *redactions)
{
	const struct sampler_conf *c = s->conf;
	const struct sclass *k = &c->classes[cls];
	struct sbuf b, rec;
	char ts[TSTIME_LEN];
	sbuf_init(&b);
	sbuf_reserve(&b, m->len + 512);
	sbuf_puts(&b, ITEM_PREFIX);
	sbuf_puts(&b, info->trace_id);
	sbuf_puts(&b, "\",\"dataset\":");
	sbuf_put_jstr(&b, k->dataset, strlen(k->dataset));
	sbuf_puts(&b, ",\"class\":");
	sbuf_put_jstr(&b, k->name, strlen(k->name));
	sbuf_printf(&b, ",\"rate\":%.17g,\"seed\":%llu,\"draw\":%.17g,\"source\":{\"topic\":",
	            k->rate, (unsigned long long)c->seed, draw);
	const char *topic = rd_kafka_topic_name(m->rkt);
	sbuf_put_jstr(&b, topic, strlen(topic));
	tstime_format(tstime_now_us(), ts);
	sbuf_printf(&b, ",\"partition\":%d,\"offset\":%lld},\"selected_at\":\"%s\",\"record\":",
	            (int)m->partition, (long long)m->offset, ts);
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
	int limited = 0;
	pthread_mutex_lock(&s->lock);
	s->classes[cls].seen++;
	if (selected && !within_limit(s, cls)) {
		selected = 0;
		limited = 1;
		s->classes[cls].rate_limited++;
	}
	pthread_mutex_unlock(&s->lock);
	(void)limited;
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
