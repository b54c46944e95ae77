/* replay/range.c - one time range of a topic: offsets for times, end offsets fixed at start
 *
 * A consumer without a group: every partition is assign()ed at the first
 * offset of the range, nothing is ever committed, and each partition stops at
 * the end offset captured when the range opened.  A partition is done when
 * the message before its end offset was read, when a message at or past the
 * end arrives, or when the consumer reports the partition's end (EOF) at or
 * past it: control records of transactions and aborted messages take offsets
 * but are never delivered, so the last offsets of a range may never show up
 * as messages.
 */
#include <stdlib.h>
#include <string.h>

#include "replay.h"

static struct range_part *part_of(struct range *r, int32_t partition)
{
	if (partition >= 0 && partition < r->nparts && r->parts[partition].partition == partition)
		return &r->parts[partition];
	for (int i = 0; i < r->nparts; i++)
		if (r->parts[i].partition == partition)
			return &r->parts[i];
	return NULL;
}

/* Marks the partition done and stops fetching it. */
static void part_done(struct range *r, struct range_part *p)
{
	if (p->done)
		return;
	p->done = 1;
	p->pos = p->end;
	r->ndone++;
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, r->topic, p->partition);
	rd_kafka_pause_partitions(r->rk, l);
	rd_kafka_topic_partition_list_destroy(l);
}

/* offsetsForTimes of ms on every partition into out[i]: the first offset
 * whose timestamp is >= ms, or hi[i] when there is none. */
static int offsets_for(struct range *r, int64_t ms, const int64_t *hi, int64_t *out, int timeout_ms,
                       char *errstr, size_t size)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(r->nparts);
	for (int i = 0; i < r->nparts; i++)
		rd_kafka_topic_partition_list_add(l, r->topic, r->parts[i].partition)->offset = ms;
	rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(r->rk, l, timeout_ms);
	for (int i = 0; !err && i < l->cnt; i++) {
		if (l->elems[i].err) {
			err = l->elems[i].err;
			break;
		}
		struct range_part *p = part_of(r, l->elems[i].partition);
		if (!p)
			continue;
		int64_t o = l->elems[i].offset;
		out[p - r->parts] = o < 0 ? hi[p - r->parts] : o;
	}
	rd_kafka_topic_partition_list_destroy(l);
	if (err) {
		snprintf(errstr, size, "topic '%s': offsets for time %lld: %s", r->topic, (long long)ms,
		         rd_kafka_err2str(err));
		return -1;
	}
	return 0;
}

struct range *range_open(rd_kafka_conf_t *conf, const char *topic, int64_t from_ms, int64_t to_ms,
                         int timeout_ms, char *errstr, size_t size)
{
	char err[512];
	int64_t *lo = NULL, *hi = NULL, *from = NULL, *to = NULL;
	struct range *r = calloc(1, sizeof(*r));
	if (!r || !(r->topic = strdup(topic))) {
		snprintf(errstr, size, "out of memory");
		goto fail;
	}
	r->from_ms = from_ms;
	if (rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof(err)) ||
	    !(r->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err)))) {
		snprintf(errstr, size, "%s", err);
		goto fail;
	}
	conf = NULL; /* the handle owns it */

	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(r->rk, topic, NULL);
	rd_kafka_resp_err_t merr = rd_kafka_metadata(r->rk, 0, rkt, &md, timeout_ms);
	rd_kafka_topic_destroy(rkt);
	if (!merr && (md->topic_cnt != 1 || md->topics[0].err))
		merr = md->topic_cnt != 1 ? RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC : md->topics[0].err;
	if (!merr && md->topics[0].partition_cnt <= 0)
		merr = RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION;
	if (merr == RD_KAFKA_RESP_ERR__TIMED_OUT || merr == RD_KAFKA_RESP_ERR__TRANSPORT) {
		snprintf(errstr, size, "topic '%s': no answer from the brokers within %d ms (%s): are they reachable?",
		         topic, timeout_ms, rd_kafka_err2str(merr));
		if (md)
			rd_kafka_metadata_destroy(md);
		goto fail;
	}
	if (merr) {
		snprintf(errstr, size, "topic '%s': %s", topic, rd_kafka_err2str(merr));
		if (md)
			rd_kafka_metadata_destroy(md);
		goto fail;
	}
	r->nparts = md->topics[0].partition_cnt;
	r->parts = calloc((size_t)r->nparts, sizeof(*r->parts));
	lo = calloc((size_t)r->nparts, sizeof(*lo));
	hi = calloc((size_t)r->nparts, sizeof(*hi));
	from = calloc((size_t)r->nparts, sizeof(*from));
	to = calloc((size_t)r->nparts, sizeof(*to));
	if (!r->parts || !lo || !hi || !from || !to) {
		rd_kafka_metadata_destroy(md);
		snprintf(errstr, size, "out of memory");
		goto fail;
	}
	/* partition ids are 0 .. n-1; keep them in that order */
	for (int i = 0; i < r->nparts; i++)
		r->parts[i].partition = i;
	for (int i = 0; i < r->nparts; i++) {
		int32_t id = md->topics[0].partitions[i].id;
		if (id < 0 || id >= r->nparts) {
			rd_kafka_metadata_destroy(md);
			snprintf(errstr, size, "topic '%s': unexpected partition id %d", topic, (int)id);
			goto fail;
		}
	}
	rd_kafka_metadata_destroy(md);

	for (int i = 0; i < r->nparts; i++) {
		rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(r->rk, topic, i, &lo[i], &hi[i], timeout_ms);
		if (e) {
			snprintf(errstr, size, "topic '%s' partition %d: cannot read its offsets: %s", topic, i,
			         rd_kafka_err2str(e));
			goto fail;
		}
		from[i] = lo[i];
		to[i] = hi[i];
	}
	if (from_ms >= 0 && offsets_for(r, from_ms, hi, from, timeout_ms, errstr, size))
		goto fail;
	if (to_ms >= 0 && offsets_for(r, to_ms, hi, to, timeout_ms, errstr, size))
		goto fail;

	rd_kafka_topic_partition_list_t *assign = rd_kafka_topic_partition_list_new(r->nparts);
	for (int i = 0; i < r->nparts; i++) {
		struct range_part *p = &r->parts[i];
		p->low = lo[i];
		p->end = to[i] < hi[i] ? to[i] : hi[i];
		p->start = from[i] > lo[i] ? from[i] : lo[i];
		if (p->start > p->end)
			p->start = p->end;
		p->pos = p->start;
		p->first_ts = -1;
		r->total += p->end - p->start;
		if (p->start >= p->end) {
			p->done = 1;
			r->ndone++;
		} else {
			rd_kafka_topic_partition_list_add(assign, topic, i)->offset = p->start;
		}
	}
	rd_kafka_resp_err_t aerr = assign->cnt ? rd_kafka_assign(r->rk, assign) : RD_KAFKA_RESP_ERR_NO_ERROR;
	rd_kafka_topic_partition_list_destroy(assign);
	if (aerr) {
		snprintf(errstr, size, "topic '%s': assign: %s", topic, rd_kafka_err2str(aerr));
		goto fail;
	}
	free(lo);
	free(hi);
	free(from);
	free(to);
	return r;

fail:
	if (conf)
		rd_kafka_conf_destroy(conf);
	free(lo);
	free(hi);
	free(from);
	free(to);
	range_destroy(r);
	return NULL;
}

/* Errors after which reading cannot go on. */
static int permanent(rd_kafka_resp_err_t err)
{
	switch (err) {
	case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
	case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
	case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
	case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
	case RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET:
	case RD_KAFKA_RESP_ERR__FATAL:
		return 1;
	default:
		return 0;
	}
}

int range_next(struct range *r, int timeout_ms, rd_kafka_message_t **out, char *errstr, size_t size)
{
	*out = NULL;
	if (r->ndone == r->nparts)
		return 2;
	rd_kafka_message_t *m = rd_kafka_consumer_poll(r->rk, timeout_ms);
	if (!m)
		return 0;
	struct range_part *p = m->rkt && !strcmp(rd_kafka_topic_name(m->rkt), r->topic) ?
	                       part_of(r, m->partition) : NULL;
	if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
		if (p && !p->done) {
			if (m->offset > p->pos)
				p->pos = m->offset < p->end ? m->offset : p->end;
			if (m->offset >= p->end)
				part_done(r, p);
		}
		rd_kafka_message_destroy(m);
		return r->ndone == r->nparts ? 2 : 0;
	}
	if (m->err) {
		int perm = permanent(m->err);
		if (p)
			snprintf(errstr, size, "topic '%s' partition %d: %s", r->topic, (int)p->partition,
			         rd_kafka_message_errstr(m));
		else
			snprintf(errstr, size, "%s", rd_kafka_message_errstr(m));
		rd_kafka_message_destroy(m);
		return perm ? -1 : -2;
	}
	if (!p || p->done || m->offset < p->start) {
		rd_kafka_message_destroy(m);
		return 0;
	}
	if (m->offset >= p->end) {
		part_done(r, p);
		rd_kafka_message_destroy(m);
		return r->ndone == r->nparts ? 2 : 0;
	}
	if (!p->seen) {
		p->seen = 1;
		p->first_ts = rd_kafka_message_timestamp(m, NULL);
	}
	p->pos = m->offset + 1;
	if (p->pos >= p->end)
		part_done(r, p);
	*out = m;
	return 1;
}

int64_t range_done(const struct range *r)
{
	int64_t n = 0;
	for (int i = 0; i < r->nparts; i++)
		n += r->parts[i].pos - r->parts[i].start;
	return n;
}

void range_destroy(struct range *r)
{
	if (!r)
		return;
	if (r->rk) {
		rd_kafka_consumer_close(r->rk);
		rd_kafka_destroy(r->rk);
	}
	free(r->parts);
	free(r->topic);
	free(r);
}
