/* tests/integration/t1020-broker-down.c - an absent broker costs the caller nothing; a restarted one loses nothing
 *
 * Runs its own broker on KAFKA_PORT 19093 (run dir under build/) so that it
 * can stop and restart it without disturbing the other tests.
 */
#include <cjson/cJSON.h>

#include "test.h"
#include "tracesift.h"

#define OWN_PORT "19093"
#define NO_BROKER "127.0.0.1:19099" /* nothing listens here */

static ts_client_t *client_for(const char *brokers, const char *topic, const char *const props[][2])
{
	char err[256];
	ts_conf_t *conf = ts_conf_new();
	ts_conf_set(conf, "bootstrap.servers", brokers, err, sizeof(err));
	ts_conf_set(conf, "topic", topic, err, sizeof(err));
	for (int i = 0; props[i][0]; i++)
		if (ts_conf_set(conf, props[i][0], props[i][1], err, sizeof(err)) != TS_OK)
			t_note("conf %s: %s", props[i][0], err);
	ts_client_t *c = ts_client_new(conf, err, sizeof(err));
	if (!c) {
		t_note("client: %s", err);
		ts_conf_destroy(conf);
	}
	return c;
}

static int64_t timed_trace(ts_client_t *c, int n, int *rc)
{
	char q[64];
	int64_t t0 = t_now_ms();
	ts_trace_t *t = ts_trace_begin(c, "down");
	snprintf(q, sizeof(q), "question %d", n);
	ts_span_set_input(ts_trace_root(t), q);
	ts_span_t *s = ts_span_begin(t, NULL, "llm", TS_SPAN_LLM);
	ts_span_set_usage(s, 10, 10);
	*rc = ts_trace_end(t);
	return t_now_ms() - t0;
}

/* Default bound 0: a full queue drops and counts, and never waits. */
static void no_broker_never_blocks(void)
{
	const char *const props[][2] = {
		{ "queue.buffering.max.messages", "1000" },
		{ "close.timeout.ms", "1000" },
		{ NULL, NULL },
	};
	ts_client_t *c = client_for(NO_BROKER, "t-down", props);
	REQUIRE(c, "client");
	int64_t worst = 0;
	int ok = 0, full = 0, other = 0, rc;
	for (int i = 0; i < 5000; i++) {
		int64_t ms = timed_trace(c, i, &rc);
		worst = ms > worst ? ms : worst;
		ok += rc == TS_OK;
		full += rc == TS_ERR_QUEUE_FULL;
		other += rc != TS_OK && rc != TS_ERR_QUEUE_FULL;
	}
	t_note("5000 traces, broker absent: %d enqueued, %d dropped, worst call %lld ms", ok, full,
	       (long long)worst);
	CHECK(ok == 1000 && full == 4000 && other == 0, "ok %d full %d other %d", ok, full, other);
	CHECK(worst < t_timeout_ms(100), "a call took %lld ms with bound 0", (long long)worst);
	ts_stats_t st;
	ts_client_stats(c, &st);
	CHECK(st.dropped == 4000 && st.enqueued == 1000 && st.in_queue == 1000, "stats");

	int64_t t0 = t_now_ms();
	uint64_t undelivered = ts_client_destroy(c, &st);
	int64_t took = t_now_ms() - t0;
	t_note("destroy took %lld ms, %llu undelivered", (long long)took, (unsigned long long)undelivered);
	CHECK(undelivered == 1000, "destroy reports %llu undelivered, want 1000",
	      (unsigned long long)undelivered);
	CHECK(st.failed == 1000 && st.delivered == 0, "final stats failed %llu",
	      (unsigned long long)st.failed);
	CHECK(took < 1000 + t_timeout_ms(2500), "destroy took %lld ms with close.timeout.ms=1000",
	      (long long)took);
}

/* A bound of 200 ms: a full queue makes the call wait that long, no longer. */
static void no_broker_waits_its_bound(void)
{
	const char *const props[][2] = {
		{ "queue.buffering.max.messages", "10" },
		{ "enqueue.timeout.ms", "200" },
		{ "close.timeout.ms", "0" },
		{ NULL, NULL },
	};
	ts_client_t *c = client_for(NO_BROKER, "t-down", props);
	REQUIRE(c, "client");
	int rc;
	for (int i = 0; i < 10; i++)
		timed_trace(c, i, &rc);
	for (int i = 0; i < 3; i++) {
		int64_t ms = timed_trace(c, i, &rc);
		CHECK(rc == TS_ERR_QUEUE_FULL, "rc %d", rc);
		CHECK(ms >= 195 && ms < 200 + t_timeout_ms(150), "call took %lld ms with bound 200",
		      (long long)ms);
	}
	CHECK(ts_client_destroy(c, NULL) == 10, "10 undelivered");
}

static int seen_count;
static char *seen_ids;

static void on_msg(const rd_kafka_message_t *m, void *opaque)
{
	(void)opaque;
	cJSON *j = cJSON_ParseWithLength(m->payload, m->len);
	cJSON *in = cJSON_GetObjectItem(j, "input");
	int n = cJSON_IsString(in) ? atoi(in->valuestring + 9) : -1;
	if (n >= 0 && n < 2000 && !seen_ids[n]++)
		seen_count++;
	cJSON_Delete(j);
}

static int own_broker(const char *verb)
{
	return t_system("KAFKA_PORT=" OWN_PORT " TRACESIFT_KAFKA_DIR='%s/build/kafka-" OWN_PORT "' "
	                "'%s/deploy/kafka/kafka.sh' %s >>'%s/build/test-logs/t1020-kafka.out' 2>&1",
	                getenv("TS_TOP"), getenv("TS_TOP"), verb, getenv("TS_TOP"));
}

/* Broker stopped in the middle and restarted within message.timeout.ms. */
static void restarted_broker_loses_nothing(void)
{
	char topic[128];
	REQUIRE(getenv("TS_TOP"), "TS_TOP not set (run through tests/run.sh)");
	REQUIRE(own_broker("up") == 0, "cannot start own broker on port " OWN_PORT);
	setenv("TS_BROKERS", "127.0.0.1:" OWN_PORT, 1);
	t_topic_name(topic, sizeof(topic), "down");
	REQUIRE(t_create_topic(topic, 2) == 0, "topic");
	const char *const props[][2] = {
		{ "message.timeout.ms", "180000" },
		{ "close.timeout.ms", "5000" },
		{ NULL, NULL },
	};
	ts_client_t *c = client_for("127.0.0.1:" OWN_PORT, topic, props);
	REQUIRE(c, "client");
	int rc, bad = 0;
	for (int i = 0; i < 1000; i++) {
		timed_trace(c, i, &rc);
		bad += rc != TS_OK;
	}
	CHECK(ts_client_flush(c, t_timeout_ms(30000)) == 0, "first half delivered");
	CHECK(own_broker("down") == 0, "stop own broker");
	int64_t worst = 0;
	for (int i = 1000; i < 2000; i++) {
		int64_t ms = timed_trace(c, i, &rc);
		worst = ms > worst ? ms : worst;
		bad += rc != TS_OK;
	}
	CHECK(bad == 0, "%d traces not enqueued", bad);
	CHECK(worst < t_timeout_ms(100), "a call took %lld ms while the broker was down", (long long)worst);
	ts_stats_t st;
	ts_client_stats(c, &st);
	CHECK(st.delivered == 1000 && st.in_queue == 1000, "delivered %llu in queue %llu",
	      (unsigned long long)st.delivered, (unsigned long long)st.in_queue);
	CHECK(own_broker("up") == 0, "restart own broker");
	uint64_t left = ts_client_flush(c, t_timeout_ms(60000));
	CHECK(left == 0, "%llu still queued after restart", (unsigned long long)left);
	CHECK(ts_client_destroy(c, &st) == 0, "undelivered after restart: %s", st.last_error);

	seen_ids = calloc(2000, 1);
	long got = t_consume(topic, 2001, t_timeout_ms(5000), "read_committed", on_msg, NULL);
	CHECK(got == 2000 && seen_count == 2000, "consumed %ld, distinct %d of 2000", got, seen_count);
	free(seen_ids);
}

int main(void)
{
	RUN(no_broker_never_blocks);
	RUN(no_broker_waits_its_bound);
	RUN(restarted_broker_loses_nothing);
	own_broker("clean");
	TEST_EXIT();
}
