/* tests/integration/t1010-producer.c - 20,000 traces from 4 threads arrive exactly once, byte for byte */
#include <pthread.h>

#include <cjson/cJSON.h>

#include "record.h"
#include "test.h"
#include "tracesift.h"

#define THREADS 4
#define PER_THREAD 5000
#define TOTAL (THREADS * PER_THREAD)

static char topic[128];
static ts_client_t *client;
static char *expected[TOTAL]; /* the bytes of the prebuilt records (odd n) */
static int seen[TOTAL];
static int bad_content, bad_key, dup_count;

static void id_of(int n, char *out)
{
	snprintf(out, 33, "%08x%024x", 0x7e57u, n + 1);
}

static int n_of(const char *id, size_t len)
{
	if (len != 32)
		return -1;
	int n = (int)strtol(id + 8, NULL, 16) - 1;
	return n >= 0 && n < TOTAL ? n : -1;
}

static void *tracer(void *arg)
{
	int first = (int)(intptr_t)arg * PER_THREAD;
	char id[33], buf[512], err[256];
	for (int n = first; n < first + PER_THREAD; n++) {
		id_of(n, id);
		if (n % 2) {
			int len = snprintf(buf, sizeof(buf),
				"{\"v\":1,\"trace_id\":\"%s\",\"name\":\"prebuilt-%d\",\"project\":\"t\","
				"\"start_time\":\"2026-11-26T10:00:00.000001Z\",\"end_time\":\"2026-11-26T10:00:00.5Z\","
				"\"input\":{\"question\":\"q%d \\u00e9\"},\"spans\":[],\"x-unknown\":[%d]}",
				id, n, n, n);
			expected[n] = strdup(buf);
			int rc = ts_publish_json(client, buf, (size_t)len, err, sizeof(err));
			if (rc != TS_OK)
				t_note("publish %d: %s (%s)", n, ts_err_str(rc), err);
			continue;
		}
		ts_trace_t *t = ts_trace_begin(client, "built");
		ts_trace_set_id(t, id);
		snprintf(buf, sizeof(buf), "question %d", n);
		ts_span_set_input(ts_trace_root(t), buf);
		ts_span_t *r = ts_span_begin(t, NULL, "retrieval", TS_SPAN_RETRIEVAL);
		ts_span_t *k = ts_span_begin(t, r, "rerank", TS_SPAN_TOOL);
		ts_span_end(k);
		ts_span_end(r);
		ts_span_t *l = ts_span_begin(t, NULL, "llm", TS_SPAN_LLM);
		ts_span_set_usage(l, n, 7);
		ts_span_mark_first_token(l);
		int rc = ts_trace_end(t);
		if (rc != TS_OK)
			t_note("trace_end %d: %s", n, ts_err_str(rc));
	}
	return NULL;
}

static void check_built(const rd_kafka_message_t *m, int n)
{
	char err[512];
	if (rec_validate(m->payload, m->len, NULL, NULL, err, sizeof(err)) != REC_OK) {
		t_note("record %d invalid: %s", n, err);
		bad_content++;
		return;
	}
	cJSON *j = cJSON_ParseWithLength(m->payload, m->len);
	char q[64];
	snprintf(q, sizeof(q), "question %d", n);
	cJSON *in = cJSON_GetObjectItem(j, "input"), *spans = cJSON_GetObjectItem(j, "spans");
	cJSON *usage = cJSON_GetObjectItem(j, "usage");
	cJSON *s1 = cJSON_GetArrayItem(spans, 1), *s0 = cJSON_GetArrayItem(spans, 0);
	if (!cJSON_IsString(in) || strcmp(in->valuestring, q) || cJSON_GetArraySize(spans) != 3 ||
	    strcmp(cJSON_GetObjectItem(s1, "parent_span_id")->valuestring,
	           cJSON_GetObjectItem(s0, "span_id")->valuestring) ||
	    cJSON_GetObjectItem(usage, "input_tokens")->valuedouble != n) {
		t_note("record %d has wrong content: %.*s", n, (int)m->len, (const char *)m->payload);
		bad_content++;
	}
	cJSON_Delete(j);
}

static void on_msg(const rd_kafka_message_t *m, void *opaque)
{
	(void)opaque;
	int n = n_of(m->key, m->key_len);
	char id[33];
	if (n < 0) {
		bad_key++;
		return;
	}
	id_of(n, id);
	if (m->len < 40 || !memmem(m->payload, m->len, id, 32))
		bad_key++;
	if (seen[n]++) {
		dup_count++;
		return;
	}
	if (n % 2) {
		if (m->len != strlen(expected[n]) || memcmp(m->payload, expected[n], m->len)) {
			t_note("record %d differs", n);
			bad_content++;
		}
	} else {
		check_built(m, n);
	}
}

static void threads_exactly_once(void)
{
	char err[256];
	t_topic_name(topic, sizeof(topic), "producer");
	REQUIRE(t_create_topic(topic, 3) == 0, "create topic");
	ts_conf_t *conf = ts_conf_new();
	ts_conf_set(conf, "bootstrap.servers", t_brokers(), err, sizeof(err));
	ts_conf_set(conf, "topic", topic, err, sizeof(err));
	ts_conf_set(conf, "enqueue.timeout.ms", "30000", err, sizeof(err));
	client = ts_client_new(conf, err, sizeof(err));
	REQUIRE(client, "client: %s", err);

	pthread_t th[THREADS];
	for (intptr_t i = 0; i < THREADS; i++)
		pthread_create(&th[i], NULL, tracer, (void *)i);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	uint64_t left = ts_client_flush(client, t_timeout_ms(60000));
	CHECK(left == 0, "%llu still queued after flush", (unsigned long long)left);

	ts_stats_t st;
	ts_client_stats(client, &st);
	CHECK(st.enqueued == TOTAL && st.delivered == TOTAL && st.failed == 0 && st.dropped == 0 &&
	      st.rejected == 0 && st.in_queue == 0,
	      "stats enqueued %llu delivered %llu failed %llu dropped %llu rejected %llu (%s)",
	      (unsigned long long)st.enqueued, (unsigned long long)st.delivered,
	      (unsigned long long)st.failed, (unsigned long long)st.dropped,
	      (unsigned long long)st.rejected, st.last_error);
	CHECK(ts_client_destroy(client, NULL) == 0, "destroy reports undelivered traces");

	long got = t_consume(topic, TOTAL + 1, t_timeout_ms(5000), "read_committed", on_msg, NULL);
	int missing = 0;
	for (int n = 0; n < TOTAL; n++)
		missing += !seen[n];
	CHECK(got == TOTAL, "consumed %ld of %d", got, TOTAL);
	CHECK(missing == 0, "%d missing", missing);
	CHECK(dup_count == 0, "%d duplicates", dup_count);
	CHECK(bad_key == 0, "%d wrong keys", bad_key);
	CHECK(bad_content == 0, "%d wrong records", bad_content);
}

int main(void)
{
	RUN(threads_exactly_once);
	for (int n = 0; n < TOTAL; n++)
		free(expected[n]);
	TEST_EXIT();
}
