/* bench/latency.c - delivery latency and batching by linger.ms, isolated and at a steady rate
 *
 * One client per linger.ms value (batch.size and the rest at their
 * defaults) sends isolated traces to a live broker: each is ended, then the
 * benchmark waits until the client's delivered counter moves (acks=all), and
 * pauses before the next.  An isolated trace is the worst case for linger.ms:
 * nothing else fills its batch, so it waits the whole linger before it is
 * sent.  Under a steady rate the wait averages about half of it.  The same
 * linger on a bare librdkafka producer would cost the same: this measures the
 * setting, not the library.
 *
 * The second part sends steady rates (200 records/s for 4 s, a busy service
 * process, then 2000 records/s for 2 s) of real-looking records (the first lines of
 * $BENCH_RECORDS_FILE, else 8 KB built traces) with a bare librdkafka producer
 * configured like libtracesift (idempotence, acks=all, zstd, batch.size,
 * linger.ms), because only there can the benchmark read librdkafka's
 * statistics: per linger.ms, the delivery latency of each record, how many
 * produce requests were sent, and how many bytes went on the wire per record
 * (zstd compresses a batch as a whole, so bigger batches compress better).
 *
 * Environment: BENCH_LAT_SAMPLES (40 per value).
 */
#include <pthread.h>
#include <stdatomic.h>

#include <cjson/cJSON.h>

#include "bench.h"
#include "record.h"
#include "traces.h"

/* ---- steady rate, bare producer ------------------------------------------- */

struct steady {
	rd_kafka_t *rk;
	int64_t *lat_ns;          /* per record, by index */
	atomic_long done, failed;
	double tx, txbytes, msgs; /* from the last statistics */
};

static void steady_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	struct steady *s = opaque;
	long i = (long)(intptr_t)m->_private;
	if (m->err)
		atomic_fetch_add(&s->failed, 1);
	else
		s->lat_ns[i] = bench_now_ns() - s->lat_ns[i];
	atomic_fetch_add(&s->done, 1);
}

static int steady_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
	(void)rk;
	struct steady *s = opaque;
	cJSON *j = cJSON_ParseWithLength(json, len);
	const cJSON *brokers = cJSON_GetObjectItemCaseSensitive(j, "brokers"), *b;
	double tx = 0, txbytes = 0;
	cJSON_ArrayForEach(b, brokers) {
		const cJSON *nodeid = cJSON_GetObjectItemCaseSensitive(b, "nodeid");
		if (!cJSON_IsNumber(nodeid) || nodeid->valuedouble < 0)
			continue; /* the bootstrap entry */
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(b, "tx");
		const cJSON *tb = cJSON_GetObjectItemCaseSensitive(b, "txbytes");
		tx += cJSON_IsNumber(t) ? t->valuedouble : 0;
		txbytes += cJSON_IsNumber(tb) ? tb->valuedouble : 0;
	}
	const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(j, "txmsgs");
	s->tx = tx;
	s->txbytes = txbytes;
	s->msgs = cJSON_IsNumber(msgs) ? msgs->valuedouble : 0;
	cJSON_Delete(j);
	return 0;
}

struct payloads {
	char **rec;
	size_t *len;
	char (*key)[REC_TRACE_ID_LEN];
	int n;
	double bytes;
	const char *what;
};

static void payloads_load(struct payloads *p, int want)
{
	p->rec = calloc((size_t)want, sizeof(*p->rec));
	p->len = calloc((size_t)want, sizeof(*p->len));
	p->key = calloc((size_t)want, sizeof(*p->key));
	const char *path = getenv("BENCH_RECORDS_FILE");
	FILE *f = path && *path ? fopen(path, "r") : NULL;
	if (f) {
		char *line = NULL;
		size_t cap = 0;
		ssize_t len;
		p->what = "the throughput benchmark's input records";
		while (p->n < want && (len = getline(&line, &cap, f)) > 0) {
			while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
				len--;
			const char *id = strstr(line, "\"trace_id\":\"");
			if (!len || !id)
				continue;
			memcpy(p->key[p->n], id + 12, REC_TRACE_ID_LEN);
			p->rec[p->n] = malloc((size_t)len);
			memcpy(p->rec[p->n], line, (size_t)len);
			p->len[p->n++] = (size_t)len;
			p->bytes += (double)len;
		}
		free(line);
		fclose(f);
		if (p->n == want)
			return;
	}
	/* No input file: render built traces of about 8 KB. */
	char err[256];
	p->what = "built 5-span traces";
	ts_conf_t *conf = ts_conf_new();
	ts_conf_set(conf, "bootstrap.servers", "127.0.0.1:1", err, sizeof(err));
	ts_conf_set(conf, "close.timeout.ms", "0", err, sizeof(err));
	ts_client_t *c = ts_client_new(conf, err, sizeof(err));
	if (!c)
		bench_die("ts_client_new: %s", err);
	size_t pad = traces_calibrate(c, 8192);
	struct traces_buf tb;
	traces_buf_init(&tb, pad);
	for (; p->n < want; p->n++) {
		ts_trace_t *t = traces_build(c, &tb, pad, (uint64_t)p->n);
		p->rec[p->n] = trace_render(t, &p->len[p->n]);
		memcpy(p->key[p->n], ts_trace_id(t), REC_TRACE_ID_LEN);
		p->bytes += (double)p->len[p->n];
		ts_trace_abandon(t);
	}
	traces_buf_release(&tb);
	ts_client_destroy(c, NULL);
}

struct steady_result {
	double p50, p99, max;   /* ms */
	double reqs_per_s, msgs_per_req, wire_per_rec, wire_ratio, json_per_rec;
	int failed;
};

static struct steady_result steady_run(const struct payloads *p, int n, const char *linger, double rate)
{
	char topic[128], err[512];
	struct steady_result r = { 0 };
	struct steady *s = calloc(1, sizeof(*s));
	s->lat_ns = calloc((size_t)n, sizeof(*s->lat_ns));
	bench_topic_name(topic, sizeof(topic), "rate");
	if (bench_create_topic(topic, 6))
		bench_die("cannot create topic '%s'", topic);
	const char *kv[][2] = {
		{ "bootstrap.servers", bench_brokers() }, { "enable.idempotence", "true" },
		{ "acks", "all" }, { "compression.codec", "zstd" }, { "linger.ms", linger },
		{ "batch.size", BENCH_DEFAULT_BATCH }, { "message.max.bytes", "1114112" },
		{ "statistics.interval.ms", "100" },
	};
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
		if (rd_kafka_conf_set(conf, kv[i][0], kv[i][1], err, sizeof(err)))
			bench_die("%s: %s", kv[i][0], err);
	rd_kafka_conf_set_opaque(conf, s);
	rd_kafka_conf_set_dr_msg_cb(conf, steady_dr);
	rd_kafka_conf_set_stats_cb(conf, steady_stats);
	if (!(s->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err))))
		bench_die("rd_kafka_new: %s", err);
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(s->rk, topic, NULL);
	/* Warm up (connection, producer id), then count from zero. */
	rd_kafka_producev(s->rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_VALUE("{}", 2), RD_KAFKA_V_END);
	rd_kafka_flush(s->rk, 30000);
	rd_kafka_poll(s->rk, 200);
	double tx0 = s->tx, txbytes0 = s->txbytes;
	int64_t t0 = bench_now_ns(), period = (int64_t)(1e9 / rate);
	for (int i = 0; i < n; i++) {
		int64_t due = t0 + i * period;
		while (bench_now_ns() < due)
			rd_kafka_poll(s->rk, 1);
		s->lat_ns[i] = bench_now_ns();
		if (rd_kafka_producev(s->rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		                      RD_KAFKA_V_KEY(p->key[i], REC_TRACE_ID_LEN),
		                      RD_KAFKA_V_VALUE(p->rec[i], p->len[i]),
		                      RD_KAFKA_V_OPAQUE((void *)(intptr_t)i), RD_KAFKA_V_END))
			bench_die("producev failed");
		rd_kafka_poll(s->rk, 0);
	}
	double secs = (double)(bench_now_ns() - t0) / 1e9;
	rd_kafka_flush(s->rk, 60000);
	rd_kafka_poll(s->rk, 300); /* one more statistics */
	rd_kafka_topic_destroy(rkt);
	rd_kafka_destroy(s->rk);
	bench_delete_topic(topic);
	r.failed = (int)atomic_load(&s->failed);
	r.p50 = (double)bench_pct_i64(s->lat_ns, (size_t)n, 50) / 1e6;
	r.p99 = (double)bench_pct_i64(s->lat_ns, (size_t)n, 99) / 1e6;
	r.max = (double)s->lat_ns[n - 1] / 1e6;
	double reqs = s->tx - tx0, json = 0;
	for (int i = 0; i < n; i++)
		json += (double)p->len[i];
	r.reqs_per_s = reqs / secs;
	r.msgs_per_req = reqs > 0 ? n / reqs : 0;
	r.wire_per_rec = (s->txbytes - txbytes0) / n;
	r.wire_ratio = json / (s->txbytes - txbytes0);
	r.json_per_rec = json / n;
	free(s->lat_ns);
	free(s);
	return r;
}

int main(void)
{
	bench_name = "latency";
	static const char *const lingers[] = { "0", "5", "20", "50", "100" };
	enum { NL = sizeof(lingers) / sizeof(lingers[0]) };
	int samples = (int)bench_env_long("BENCH_LAT_SAMPLES", 40);
	if (samples < 1 || samples > 1000)
		samples = 40;
	double p50[NL], p90[NL], mx[NL], mn[NL];
	size_t bytes = 0;
	int fails = 0;
	for (int l = 0; l < NL; l++) {
		char topic[128], err[512];
		bench_topic_name(topic, sizeof(topic), "lat");
		if (bench_create_topic(topic, 6))
			bench_die("cannot create topic '%s'", topic);
		ts_conf_t *conf = ts_conf_new();
		ts_conf_set(conf, "bootstrap.servers", bench_brokers(), err, sizeof(err));
		ts_conf_set(conf, "topic", topic, err, sizeof(err));
		ts_conf_set(conf, "linger.ms", lingers[l], err, sizeof(err));
		ts_client_t *c = ts_client_new(conf, err, sizeof(err));
		if (!c)
			bench_die("ts_client_new: %s", err);
		size_t pad = traces_calibrate(c, 2048);
		bytes = traces_size(c, pad);
		struct traces_buf tb;
		traces_buf_init(&tb, pad);
		/* Warm up: connection, metadata, producer id. */
		for (int i = 0; i < 5; i++)
			ts_trace_end(traces_build(c, &tb, pad, (uint64_t)i));
		ts_client_flush(c, 30000);
		int64_t ms[1000];
		int n = 0;
		for (int i = 0; i < samples; i++) {
			ts_stats_t st;
			ts_client_stats(c, &st);
			uint64_t before = st.delivered + st.failed;
			ts_trace_t *t = traces_build(c, &tb, pad, (uint64_t)(100 + i));
			int64_t t0 = bench_now_ns();
			if (ts_trace_end(t) != TS_OK) {
				fails++;
				continue;
			}
			int64_t deadline = t0 + 30000000000LL;
			do {
				struct timespec ts = { 0, 50000 };
				nanosleep(&ts, NULL);
				ts_client_stats(c, &st);
			} while (st.delivered + st.failed == before && bench_now_ns() < deadline);
			if (st.delivered + st.failed == before || st.failed) {
				fails++;
				continue;
			}
			ms[n++] = bench_now_ns() - t0;
			struct timespec gap = { 0, 2000000 };
			nanosleep(&gap, NULL);
		}
		traces_buf_release(&tb);
		ts_client_destroy(c, NULL);
		bench_delete_topic(topic);
		double v[1000];
		for (int i = 0; i < n; i++)
			v[i] = (double)ms[i] / 1e6;
		p50[l] = (double)bench_pct_i64(ms, (size_t)n, 50) / 1e6;
		p90[l] = (double)bench_pct_i64(ms, (size_t)n, 90) / 1e6;
		mn[l] = bench_min(v, (size_t)n);
		mx[l] = bench_max(v, (size_t)n);
		bench_log("linger.ms=%s: p50 %.1f ms", lingers[l], p50[l]);
	}
	/* Two steady rates: a busy service process, and ten times that. */
	const double rates[] = { 200, 2000 }, secs[] = { 4, 2 };
	enum { NR = 2 };
	struct payloads pl = { 0 };
	payloads_load(&pl, (int)(rates[1] * secs[1]));
	struct steady_result sr[NR][NL];
	for (int q = 0; q < NR; q++)
		for (int l = 0; l < NL; l++) {
			bench_log("steady %.0f records/s, linger.ms=%s", rates[q], lingers[l]);
			sr[q][l] = steady_run(&pl, (int)(rates[q] * secs[q]), lingers[l], rates[q]);
			fails += sr[q][l].failed;
		}

	FILE *f = bench_section_open();
	fprintf(f, "## Delivery latency by linger.ms\n\n"
	        "Time from `ts_trace_end` to the delivery report (acks=all) of an isolated trace "
	        "(%zu bytes; one at a time, %d per value, live local broker, other settings at their "
	        "defaults).  An isolated trace waits the whole linger.ms.  Under a steady rate a record "
	        "waits less when it joins a batch that is already waiting, and a batch that reaches "
	        "batch.size leaves at once (next table).\n\n"
	        "| linger.ms | p50 ms | p90 ms | min..max ms |\n| ---: | ---: | ---: | --- |\n",
	        bytes, samples);
	for (int l = 0; l < NL; l++)
		fprintf(f, "| %s | %.1f | %.1f | %.1f..%.1f |\n", lingers[l], p50[l], p90[l], mn[l], mx[l]);
	fprintf(f, "\n### At a steady rate\n\n"
	        "Records (%s, %.0f bytes on average) sent at a steady rate through a bare librdkafka "
	        "producer set up like libtracesift (idempotence, acks=all, zstd, batch.size=1000000, "
	        "the linger.ms shown), to a new 6-partition topic, keyed by trace_id: %.0f records/s "
	        "for %.0f s, then %.0f records/s for %.0f s.  Latency is from produce to delivery "
	        "report; requests and bytes come from librdkafka's statistics (\"wire bytes\": what "
	        "the producer sent to the broker, compressed batches and protocol).\n\n"
	        "| records/s | linger.ms | latency p50 ms | p99 ms | max ms | produce requests/s | "
	        "records per request | wire bytes per record | JSON bytes / wire bytes |\n"
	        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
	        pl.what, pl.bytes / pl.n, rates[0], secs[0], rates[1], secs[1]);
	for (int q = 0; q < NR; q++)
		for (int l = 0; l < NL; l++)
			fprintf(f, "| %.0f | %s | %.1f | %.1f | %.1f | %.0f | %.1f | %.0f | %.2f |\n",
			        rates[q], lingers[l], sr[q][l].p50, sr[q][l].p99, sr[q][l].max,
			        sr[q][l].reqs_per_s, sr[q][l].msgs_per_req, sr[q][l].wire_per_rec,
			        sr[q][l].wire_ratio);
	fprintf(f, "\n");
	if (fails)
		fprintf(f, "%d samples failed.\n\n", fails);
	fclose(f);
	return fails ? 1 : 0;
}
