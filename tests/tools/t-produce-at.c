/* tests/tools/t-produce-at.c - publish messages with the Kafka timestamps a test chooses
 *
 * usage: t-produce-at TOPIC < LINES     (broker from $TS_BROKERS)
 *        t-produce-at --delete-before TOPIC PARTITION OFFSET
 * Each line is PARTITION<TAB>TIMESTAMP_MS<TAB>KEY<TAB>VALUE: PARTITION -1 lets
 * the partitioner choose by key, an empty KEY sends no key, VALUE is the rest
 * of the line.  Idempotent producer; exit 0 when every message was delivered.
 * --delete-before deletes the records before OFFSET (DeleteRecords), as
 * retention would.
 */
#include "test.h"

static long failed;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	(void)opaque;
	if (m->err) {
		if (!failed++)
			fprintf(stderr, "t-produce-at: %s\n", rd_kafka_err2str(m->err));
	}
}

static int delete_before(const char *topic, int32_t partition, int64_t offset)
{
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(conf, "bootstrap.servers", t_brokers(), err, sizeof(err))) {
		rd_kafka_conf_destroy(conf);
		return 1;
	}
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!rk) {
		rd_kafka_conf_destroy(conf);
		fprintf(stderr, "t-produce-at: %s\n", err);
		return 1;
	}
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, topic, partition)->offset = offset;
	rd_kafka_DeleteRecords_t *del = rd_kafka_DeleteRecords_new(l);
	rd_kafka_topic_partition_list_destroy(l);
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_DeleteRecords(rk, &del, 1, NULL, q);
	rd_kafka_DeleteRecords_destroy(del);
	int rc = 1;
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, t_timeout_ms(30000));
	if (!ev) {
		fprintf(stderr, "t-produce-at: DeleteRecords: no answer\n");
	} else if (rd_kafka_event_error(ev)) {
		fprintf(stderr, "t-produce-at: DeleteRecords: %s\n", rd_kafka_event_error_string(ev));
	} else {
		const rd_kafka_topic_partition_list_t *res =
			rd_kafka_DeleteRecords_result_offsets(rd_kafka_event_DeleteRecords_result(ev));
		if (res && res->cnt == 1 && !res->elems[0].err)
			rc = 0;
		else
			fprintf(stderr, "t-produce-at: DeleteRecords: %s\n",
			        res && res->cnt == 1 ? rd_kafka_err2str(res->elems[0].err) : "no result");
	}
	if (ev)
		rd_kafka_event_destroy(ev);
	rd_kafka_queue_destroy(q);
	rd_kafka_destroy(rk);
	return rc;
}

int main(int argc, char **argv)
{
	char err[512];
	if (argc == 5 && !strcmp(argv[1], "--delete-before"))
		return delete_before(argv[2], (int32_t)atoi(argv[3]), strtoll(argv[4], NULL, 10));
	if (argc != 2) {
		fprintf(stderr, "usage: t-produce-at TOPIC < 'PARTITION\\tTIMESTAMP_MS\\tKEY\\tVALUE' lines\n");
		return 2;
	}
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(conf, "bootstrap.servers", t_brokers(), err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "linger.ms", "5", err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "message.max.bytes", "8000000", err, sizeof(err))) {
		fprintf(stderr, "t-produce-at: %s\n", err);
		return 1;
	}
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!rk) {
		fprintf(stderr, "t-produce-at: %s\n", err);
		return 1;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	long sent = 0, lineno = 0;
	while ((n = getline(&line, &cap, stdin)) > 0) {
		lineno++;
		if (line[n - 1] == '\n')
			line[--n] = '\0';
		char *p1 = strchr(line, '\t'), *p2 = p1 ? strchr(p1 + 1, '\t') : NULL;
		char *p3 = p2 ? strchr(p2 + 1, '\t') : NULL;
		if (!p3) {
			fprintf(stderr, "t-produce-at: line %ld: expected 4 tab-separated fields\n", lineno);
			return 2;
		}
		*p1 = *p2 = *p3 = '\0';
		int32_t part = (int32_t)atoi(line);
		int64_t ts = strtoll(p1 + 1, NULL, 10);
		const char *key = p2 + 1, *val = p3 + 1;
		size_t klen = strlen(key), vlen = (size_t)(line + n - val);
		rd_kafka_resp_err_t e;
		while ((e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(argv[1]), RD_KAFKA_V_PARTITION(part),
		                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		                              RD_KAFKA_V_KEY(klen ? key : NULL, klen),
		                              RD_KAFKA_V_VALUE(vlen ? (void *)val : NULL, vlen),
		                              RD_KAFKA_V_TIMESTAMP(ts), RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
			rd_kafka_poll(rk, 100);
		if (e) {
			fprintf(stderr, "t-produce-at: line %ld: %s\n", lineno, rd_kafka_err2str(e));
			return 1;
		}
		rd_kafka_poll(rk, 0);
		sent++;
	}
	free(line);
	rd_kafka_flush(rk, t_timeout_ms(60000));
	int left = rd_kafka_outq_len(rk);
	rd_kafka_destroy(rk);
	if (failed || left) {
		fprintf(stderr, "t-produce-at: %ld of %ld not delivered, %d still queued\n", failed, sent, left);
		return 1;
	}
	return 0;
}
