/* tests/unit/t1001-trace-build.c - building traces and their records, without a broker */
#include <pthread.h>

#include <cjson/cJSON.h>

#include "lib/internal.h"
#include "record.h"
#include "test.h"
#include "tracesift.h"
#include "tstime.h"

static ts_client_t *offline_client(void)
{
	char err[256];
	ts_conf_t *conf = ts_conf_new();
	/* nothing listens on port 1: enqueueing works, delivery never happens */
	ts_conf_set(conf, "bootstrap.servers", "127.0.0.1:1", err, sizeof(err));
	ts_conf_set(conf, "project", "unit", err, sizeof(err));
	ts_conf_set(conf, "close.timeout.ms", "0", err, sizeof(err));
	ts_client_t *c = ts_client_new(conf, err, sizeof(err));
	if (!c) {
		t_note("ts_client_new: %s", err);
		ts_conf_destroy(conf);
	}
	return c;
}

/* Renders t, checks the validator accepts it, and parses it. */
static cJSON *render_parse(ts_trace_t *t, char **raw)
{
	size_t len;
	char *rec = trace_render(t, &len), err[512];
	if (!rec)
		return NULL;
	struct rec_info info;
	enum rec_reason r = rec_validate(rec, len, NULL, &info, err, sizeof(err));
	CHECK(r == REC_OK, "validator rejects a built record: %s\n%s", err, rec);
	CHECK(!strcmp(info.trace_id, ts_trace_id(t)), "trace_id %s vs %s", info.trace_id, ts_trace_id(t));
	cJSON *j = cJSON_ParseWithLength(rec, len);
	if (raw)
		*raw = rec;
	else
		free(rec);
	return j;
}

static const char *str_at(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double num_at(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

static void full_rag_trace(void)
{
	ts_client_t *c = offline_client();
	REQUIRE(c, "no client");
	ts_trace_t *t = ts_trace_begin(c, "rag_query");
	REQUIRE(t, "no trace");
	CHECK(ts_trace_set_id(t, "0af7651916cd43dd8448eb211c80319c") == TS_OK, "set id");
	ts_span_t *root = ts_trace_root(t);
	CHECK(ts_span_set_input_json(root, "{\"question\":\"what is \\\"kafka\\\"?\"}") == TS_OK, "input");
	CHECK(ts_span_add_tag(root, "rag") == TS_OK && ts_span_add_tag(root, "prod") == TS_OK, "tags");
	CHECK(ts_span_set_metadata(root, "user_tier", "free") == TS_OK, "meta");
	CHECK(ts_span_set_metadata(root, "user_tier", "pro") == TS_OK, "meta replace");
	CHECK(ts_span_set_metadata_json(root, "ab", "[1,2]") == TS_OK, "meta json");

	ts_span_t *ret = ts_span_begin(t, NULL, "retrieval", TS_SPAN_RETRIEVAL);
	ts_span_t *rr = ts_span_begin(t, ret, "rerank", TS_SPAN_TOOL);
	CHECK(ret && rr, "spans");
	CHECK(ts_span_set_output_json(ret, "{\"documents\":[{\"id\":\"d1\",\"text\":\"x\",\"score\":0.5}]}") == TS_OK, "out");
	ts_span_end(rr);
	ts_span_end(ret);
	ts_span_t *llm = ts_span_begin(t, NULL, "llm_call", TS_SPAN_LLM);
	CHECK(ts_span_set_model(llm, "llama-3.1-8b-instruct") == TS_OK, "model");
	CHECK(ts_span_set_usage(llm, 120, 30) == TS_OK, "usage");
	CHECK(ts_span_set_ttft_ms(llm, 12.5) == TS_OK, "ttft");
	CHECK(ts_span_set_output(llm, "line one\nline \"two\"\t\x01") == TS_OK, "text output");
	ts_span_end(llm);
	CHECK(ts_span_set_output_json(root, "{\"answer\":\"a\",\"context\":[\"x\"]}") == TS_OK, "root out");

	char *raw = NULL;
	cJSON *j = render_parse(t, &raw);
	REQUIRE(j, "record does not parse");
	CHECK(num_at(j, "v") == 1, "v");
	CHECK(!strcmp(str_at(j, "trace_id"), "0af7651916cd43dd8448eb211c80319c"), "trace_id");
	CHECK(!strcmp(str_at(j, "name"), "rag_query"), "name");
	CHECK(!strcmp(str_at(j, "project"), "unit"), "project from conf");
	int64_t st, en;
	CHECK(tstime_parse(str_at(j, "start_time"), strlen(str_at(j, "start_time")), &st) == 0 &&
	      tstime_parse(str_at(j, "end_time"), strlen(str_at(j, "end_time")), &en) == 0 && en >= st,
	      "times");
	CHECK(!strcmp(str_at(cJSON_GetObjectItem(j, "input"), "question"), "what is \"kafka\"?"), "input");
	cJSON *tags = cJSON_GetObjectItem(j, "tags");
	CHECK(cJSON_GetArraySize(tags) == 2 && !strcmp(cJSON_GetArrayItem(tags, 1)->valuestring, "prod"), "tags");
	cJSON *meta = cJSON_GetObjectItem(j, "metadata");
	CHECK(cJSON_GetArraySize(meta) == 2 && !strcmp(str_at(meta, "user_tier"), "pro"), "metadata replaced");
	CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(meta, "ab")) == 2, "metadata json");
	CHECK(!strcmp(str_at(j, "model"), "llama-3.1-8b-instruct"), "model comes from the llm span");
	cJSON *usage = cJSON_GetObjectItem(j, "usage");
	CHECK(num_at(usage, "input_tokens") == 120 && num_at(usage, "total_tokens") == 150, "usage summed");
	cJSON *lat = cJSON_GetObjectItem(j, "latency_ms");
	CHECK(num_at(lat, "total") >= 0, "latency total");
	CHECK(num_at(lat, "time_to_first_token") >= 12.5, "root ttft measured from trace start");
	CHECK(cJSON_IsNull(cJSON_GetObjectItem(j, "error")), "error null");

	cJSON *spans = cJSON_GetObjectItem(j, "spans");
	REQUIRE(cJSON_GetArraySize(spans) == 3, "3 spans, got %d", cJSON_GetArraySize(spans));
	cJSON *s0 = cJSON_GetArrayItem(spans, 0), *s1 = cJSON_GetArrayItem(spans, 1),
	      *s2 = cJSON_GetArrayItem(spans, 2);
	CHECK(cJSON_IsNull(cJSON_GetObjectItem(s0, "parent_span_id")), "top-level span has null parent");
	CHECK(!strcmp(str_at(s1, "parent_span_id"), str_at(s0, "span_id")), "rerank under retrieval");
	CHECK(!strcmp(str_at(s0, "span_id"), ts_span_id(ret)), "span id");
	CHECK(!strcmp(str_at(s0, "type"), "retrieval") && !strcmp(str_at(s1, "type"), "tool") &&
	      !strcmp(str_at(s2, "type"), "llm"), "types");
	CHECK(!strcmp(str_at(s2, "output"), "line one\nline \"two\"\t\x01"), "text escaped and back");
	CHECK(num_at(cJSON_GetObjectItem(s2, "latency_ms"), "time_to_first_token") == 12.5, "span ttft");
	CHECK(num_at(cJSON_GetObjectItem(s2, "usage"), "output_tokens") == 30, "span usage");
	cJSON_Delete(j);
	free(raw);
	ts_trace_abandon(t);
	CHECK(ts_client_destroy(c, NULL) == 0, "nothing enqueued, nothing undelivered");
}

static void bad_input_is_refused_or_cleaned(void)
{
	ts_client_t *c = offline_client();
	REQUIRE(c, "no client");
	ts_trace_t *t = ts_trace_begin(c, "bad \xff name");
	REQUIRE(t, "no trace");
	ts_span_t *root = ts_trace_root(t);
	CHECK(ts_span_set_input_json(root, "{\"a\":1}") == TS_OK, "valid");
	CHECK(ts_span_set_input_json(root, "{\"a\":1,}") == TS_ERR_INVALID, "trailing comma");
	CHECK(ts_span_set_input_json(root, "\"\xc3\x28\"") == TS_ERR_INVALID, "bad utf-8 in json");
	CHECK(ts_span_set_output_json(root, "") == TS_ERR_INVALID, "empty json");
	CHECK(ts_span_set_metadata_json(root, "k", "nope") == TS_ERR_INVALID, "bare word");
	CHECK(ts_span_set_usage(root, -1, 0) == TS_ERR_INVALID_ARG, "negative usage");
	CHECK(ts_trace_set_id(t, "XYZ") == TS_ERR_INVALID_ARG, "bad id");
	CHECK(ts_trace_set_id(t, "00000000000000000000000000000000") == TS_ERR_INVALID_ARG, "zero id");
	CHECK(ts_span_set_error(root, "Timeout", "took \xe2\x82 too long") == TS_OK, "error with bad utf-8");
	cJSON *j = render_parse(t, NULL);
	REQUIRE(j, "record does not parse");
	CHECK(!strcmp(str_at(j, "name"), "bad \xef\xbf\xbd name"), "name cleaned: %s", str_at(j, "name"));
	CHECK(num_at(cJSON_GetObjectItem(j, "input"), "a") == 1, "input kept its valid value");
	cJSON *e = cJSON_GetObjectItem(j, "error");
	CHECK(!strcmp(str_at(e, "type"), "Timeout"), "error type");
	CHECK(strstr(str_at(e, "message"), "\xef\xbf\xbd") != NULL, "error message cleaned");
	cJSON_Delete(j);
	ts_trace_abandon(t);
	ts_client_destroy(c, NULL);
}

/* ---- the one-call functions build the record the separate calls build ---- */

/* j with what differs between two builds of the same trace taken out: span
 * ids become their index ("s0", "s1", ...; parents likewise), times and total
 * latencies are removed.  Returns its text (malloc'd). */
static char *normalized(cJSON *j)
{
	cJSON *spans = cJSON_GetObjectItem(j, "spans"), *s;
	int n = cJSON_GetArraySize(spans), i = 0;
	char (*ids)[REC_SPAN_ID_LEN + 1] = calloc((size_t)n + 1, sizeof(*ids));
	cJSON_ArrayForEach(s, spans)
		snprintf(ids[i++], sizeof(*ids), "%s", str_at(s, "span_id") ? str_at(s, "span_id") : "");
	cJSON *objs[2] = { j, NULL };
	for (i = -1; i < n; i++) {
		cJSON *o = i < 0 ? objs[0] : cJSON_GetArrayItem(spans, i);
		char label[16];
		cJSON_DeleteItemFromObjectCaseSensitive(o, "start_time");
		cJSON_DeleteItemFromObjectCaseSensitive(o, "end_time");
		cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItem(o, "latency_ms"), "total");
		if (i < 0)
			continue;
		snprintf(label, sizeof(label), "s%d", i);
		cJSON_ReplaceItemInObjectCaseSensitive(o, "span_id", cJSON_CreateString(label));
		const char *parent = str_at(o, "parent_span_id");
		if (parent) {
			int k;
			for (k = 0; k < n && strcmp(ids[k], parent); k++)
				;
			snprintf(label, sizeof(label), k < n ? "s%d" : "unknown", k);
			cJSON_ReplaceItemInObjectCaseSensitive(o, "parent_span_id", cJSON_CreateString(label));
		}
	}
	free(ids);
	return cJSON_PrintUnformatted(j);
}

static const char *IN_ROOT = "{\"question\":\"what is \\\"kafka\\\"? \\u00e9\"}";
static const char *IN_STEP = "{\"queries\":[\"a\",\"b\"],\"k\":5}";
static const char *OUT_STEP = "{\"documents\":[{\"id\":\"d1\",\"text\":\"x\",\"score\":0.5}]}";
static const char *OUT_ROOT = "{\"answer\":\"a\",\"context\":[\"x\"]}";
/* IN_STEP and OUT_STEP as Python's marshal.dumps(value, 4) writes them */
static const char M_IN_STEP[] = "\xfb\xda\x07queries[\x02\x00\x00\x00\xda\x01" "a\xda\x01" "b\xda\x01k"
                                "\xe9\x05\x00\x00\x00" "0";
static const char M_OUT_STEP[] = "\xfb\xda\x09" "documents[\x01\x00\x00\x00{\xda\x02id\xda\x02" "d1\xda\x04text"
                                 "\xda\x01x\xda\x05score\xe7\x00\x00\x00\x00\x00\x00\xe0?00";
#define J(text) (text), strlen(text)        /* a JSON argument */
#define M(data) (data), sizeof(data) - 1    /* a marshal argument */

static void one_call_functions_build_the_same_record(void)
{
	ts_client_t *c = offline_client();
	REQUIRE(c, "no client");
	const char *id = "0af7651916cd43dd8448eb211c80319c";

	/* A: the separate calls */
	ts_trace_t *a = ts_trace_begin(c, "request");
	REQUIRE(a, "no trace");
	ts_trace_set_id(a, id);
	ts_span_t *root = ts_trace_root(a);
	ts_span_set_input_json(root, IN_ROOT);
	ts_span_t *s = ts_span_begin(a, NULL, "expand", TS_SPAN_TOOL);
	ts_span_set_input_json(s, IN_STEP);
	ts_span_set_output_json(s, "[\"a\",\"b\"]");
	ts_span_end(s);
	ts_span_t *ret = ts_span_begin(a, root, "retrieve", TS_SPAN_RETRIEVAL);
	ts_span_set_input_json(ret, IN_STEP);
	s = ts_span_begin(a, ret, "rerank", TS_SPAN_TOOL);
	ts_span_set_input_json(s, "null");
	ts_span_set_error(s, "KeyError", "'a' \xff");
	ts_span_end(s);
	ts_span_set_output_json(ret, OUT_STEP);
	ts_span_end(ret);
	s = ts_span_begin(a, ret, "late", TS_SPAN_GENERAL); /* under a span that ended */
	ts_span_set_output_json(s, "1");
	ts_span_end(s);
	s = ts_span_begin(a, NULL, "llm", TS_SPAN_LLM); /* left open: ends with the trace */
	ts_span_set_input_json(s, "\"prompt\"");
	ts_span_set_usage(s, 10, 2);
	ts_span_set_output_json(root, OUT_ROOT);
	ts_span_set_error(root, "Refused", NULL);

	/* B: the same, one call a span, values as JSON or as marshal data (the
	 * root's end too, but without sending it) */
	int64_t t0 = ts_now_ns();
	ts_trace_t *b = NULL;
	int rc = ts_trace_begin_with(c, "request", t0 - 50000000, 0, J(IN_ROOT), &b); /* REQUIRE evaluates twice */
	REQUIRE(rc == TS_OK && b, "begin_with: %d", rc);
	ts_trace_set_id(b, id);
	ts_span_t *bret = NULL, *bs = NULL;
	CHECK(ts_span_record(b, NULL, "expand", TS_SPAN_TOOL, t0 - 40000000, TS_INPUT_MARSHAL, M(M_IN_STEP),
	                     J("[\"a\",\"b\"]"), NULL, NULL, NULL) == TS_OK, "record expand");
	CHECK(ts_span_begin_with(b, ts_trace_root(b), "retrieve", TS_SPAN_RETRIEVAL, t0 - 30000000, 0, J(IN_STEP),
	                         &bret) == TS_OK && bret, "begin_with retrieve");
	CHECK(ts_span_record(b, bret, "rerank", TS_SPAN_TOOL, 0, 0, J("null"), NULL, 0, "KeyError", "'a' \xff",
	                     &bs) == TS_OK && bs, "record rerank");
	CHECK(ts_span_end_with(bret, TS_OUTPUT_MARSHAL, M(M_OUT_STEP), NULL, NULL) == TS_OK, "end_with retrieve");
	CHECK(ts_span_record(b, bret, "late", TS_SPAN_GENERAL, 0, TS_OUTPUT_MARSHAL, NULL, 0, M("\xe9\x01\x00\x00\x00"),
	                     NULL, NULL, NULL) == TS_OK, "record under an ended span");
	CHECK(ts_span_begin_with(b, NULL, "llm", TS_SPAN_LLM, t0 + 10000000000, 0, J("\"prompt\""), &bs) == TS_OK,
	      "begin_with llm (a start in the future is now)");
	ts_span_set_usage(bs, 10, 2);
	CHECK(ts_span_end_with(ts_trace_root(b), 0, J(OUT_ROOT), "Refused", NULL) == TS_OK, "end_with root");

	cJSON *ja = render_parse(a, NULL), *jb = render_parse(b, NULL);
	REQUIRE(ja && jb, "records do not parse");
	/* B's times are those given: the root began 50 ms ago, expand 40 ms ago */
	CHECK(num_at(cJSON_GetObjectItem(jb, "latency_ms"), "total") >= 50.0, "root began at start_ns");
	cJSON *bspans = cJSON_GetObjectItem(jb, "spans");
	double expand_ms = num_at(cJSON_GetObjectItem(cJSON_GetArrayItem(bspans, 0), "latency_ms"), "total");
	CHECK(expand_ms >= 40.0 && expand_ms < 40.0 + 10000, "expand began at start_ns: %.3f ms", expand_ms);
	double llm_ms = num_at(cJSON_GetObjectItem(cJSON_GetArrayItem(bspans, 4), "latency_ms"), "total");
	CHECK(llm_ms >= 0 && llm_ms < 10000, "a future start is now: %.3f ms", llm_ms);
	CHECK(strcmp(str_at(jb, "start_time"), str_at(cJSON_GetArrayItem(bspans, 0), "start_time")) < 0,
	      "the trace began before its first span");
	char *na = normalized(ja), *nb = normalized(jb);
	CHECK(na && nb && !strcmp(na, nb), "records differ:\n# separate calls: %s\n# one call:       %s", na, nb);
	CHECK(strstr(na, "\"parent_span_id\":\"s1\"") != NULL, "the comparison sees parents: %s", na);
	free(na);
	free(nb);
	cJSON_Delete(ja);
	cJSON_Delete(jb);
	ts_trace_abandon(a);
	ts_trace_abandon(b);
	CHECK(ts_client_destroy(c, NULL) == 0, "nothing enqueued");
}

/* Refused arguments change nothing and count nothing; the functions that
 * send are counted once. */
static void one_call_refusals_and_counts(void)
{
	char err[256];
	ts_conf_t *conf = ts_conf_new();
	ts_conf_set(conf, "bootstrap.servers", "127.0.0.1:1", err, sizeof(err));
	ts_conf_set(conf, "close.timeout.ms", "0", err, sizeof(err));
	CHECK(ts_conf_set(conf, "max.field.bytes", "64", err, sizeof(err)) == TS_OK, "max.field.bytes");
	ts_client_t *c = ts_client_new(conf, err, sizeof(err));
	REQUIRE(c, "client: %s", err);
	ts_trace_t *t = NULL;
	ts_span_t *s = NULL;
	const char long_json[] = "\"0123456789012345678901234567890123456789012345678901234567890123456789\"";
	const char set_m[] = "<\x01\x00\x00\x00\xe9\x01\x00\x00\x00";     /* {1}: not JSON */
	const char nan_m[] = "g\x00\x00\x00\x00\x00\x00\xf8\x7f";           /* nan */
	CHECK(ts_trace_begin_with(c, "x", 0, 0, J("{nope"), &t) == TS_ERR_INVALID && !t, "bad input: no trace");
	CHECK(ts_trace_begin_with(c, "x", 0, TS_INPUT_MARSHAL, M(set_m), &t) == TS_ERR_INVALID && !t,
	      "a set: no trace");
	CHECK(ts_trace_begin_with(c, "x", 0, 0, J(long_json), &t) == TS_ERR_INVALID && !t, "over max.field.bytes");
	CHECK(ts_trace_begin_with(NULL, "x", 0, 0, NULL, 0, &t) == TS_ERR_INVALID_ARG, "NULL client");
	CHECK(ts_trace_begin_with(c, "x", 0, 0, NULL, 0, NULL) == TS_ERR_INVALID_ARG, "NULL out");
	CHECK(ts_trace_record(c, "x", 0, 0, NULL, 0, J("[1,"), NULL, NULL) == TS_ERR_INVALID, "bad output: not sent");
	CHECK(ts_trace_record(c, "x", 0, TS_OUTPUT_MARSHAL, NULL, 0, M(nan_m), NULL, NULL) == TS_ERR_INVALID,
	      "NaN: not sent");
	CHECK(ts_trace_record(c, NULL, 0, 0, NULL, 0, NULL, 0, NULL, NULL) == TS_ERR_INVALID_ARG, "NULL name");

	int rc = ts_trace_begin_with(c, "x", 0, 0, NULL, 0, &t);
	REQUIRE(rc == TS_OK && t, "begin without input: %d", rc);
	CHECK(ts_span_begin_with(t, NULL, "s", TS_SPAN_TOOL, 0, 0, J("\"\xc3\x28\""), &s) == TS_ERR_INVALID && !s,
	      "bad utf-8: no span");
	CHECK(ts_span_record(t, NULL, "s", TS_SPAN_TOOL, 0, 0, J("1"), J("{"), NULL, NULL, &s) == TS_ERR_INVALID && !s,
	      "bad output: no span");
	CHECK(ts_span_record(t, NULL, "s", TS_SPAN_TOOL, 0, TS_INPUT_MARSHAL, M("\xe9\x01\x00"), NULL, 0, NULL, NULL,
	                     &s) == TS_ERR_INVALID && !s, "truncated marshal data: no span");
	ts_trace_t *other = ts_trace_begin(c, "other");
	CHECK(ts_span_record(t, ts_trace_root(other), "s", TS_SPAN_TOOL, 0, 0, NULL, 0, NULL, 0, NULL, NULL, NULL) ==
	      TS_ERR_INVALID_ARG, "a parent of another trace");
	ts_trace_abandon(other);
	CHECK(ts_span_begin_with(t, NULL, "open", TS_SPAN_TOOL, 0, 0, J("{\"a\":1}"), &s) == TS_OK && s, "begin");
	CHECK(ts_span_end_with(s, 0, J("nope"), "E", "m") == TS_ERR_INVALID, "bad output refused");
	CHECK(ts_span_end_with(ts_trace_root(t), 0, J("{\"ok\":true}"), NULL, NULL) == TS_OK, "root output");
	CHECK(ts_trace_end_with(t, 0, J("{\"a\":"), "E", NULL) == TS_ERR_INVALID, "refused: the trace stays open");
	CHECK(ts_trace_end_with(t, TS_OUTPUT_MARSHAL, M(set_m), "E", NULL) == TS_ERR_INVALID, "refused again");
	cJSON *j = render_parse(t, NULL); /* still usable */
	REQUIRE(j, "record does not parse");
	cJSON *sp = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "spans"), 0);
	CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(j, "spans")) == 1, "only the span begun");
	CHECK(cJSON_IsNull(cJSON_GetObjectItem(sp, "error")) && !cJSON_GetObjectItem(sp, "output"),
	      "the refused end set nothing");
	CHECK(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "output"), "ok")) &&
	      cJSON_IsNull(cJSON_GetObjectItem(j, "error")), "the refused trace end set nothing");
	cJSON_Delete(j);

	ts_stats_t st;
	ts_client_stats(c, &st);
	CHECK(st.enqueued + st.rejected + st.dropped == 0, "nothing counted yet");
	CHECK(ts_trace_end_with(t, 0, NULL, 0, "Timeout", "slow") == TS_OK, "end_with sends");
	CHECK(ts_trace_record(c, "one", ts_now_ns() - 1000000, TS_INPUT_MARSHAL | TS_OUTPUT_MARSHAL,
	                      M("N"), M("\xe9\x02\x00\x00\x00"), NULL, NULL) == TS_OK, "record sends");
	ts_client_stats(c, &st);
	CHECK(st.enqueued == 2 && st.rejected == 0, "two enqueued: %llu", (unsigned long long)st.enqueued);
	ts_client_destroy(c, NULL);
}

struct span_job {
	ts_trace_t *t;
	int n;
};

static void *add_spans(void *arg)
{
	struct span_job *job = arg;
	for (int i = 0; i < job->n; i++) {
		ts_span_t *s = ts_span_begin(job->t, NULL, "step", TS_SPAN_TOOL);
		ts_span_set_metadata(s, "i", "x");
		ts_span_end(s);
	}
	return NULL;
}

static void spans_from_many_threads(void)
{
	ts_client_t *c = offline_client();
	REQUIRE(c, "no client");
	ts_trace_t *t = ts_trace_begin(c, "fan_out");
	pthread_t th[4];
	struct span_job job = { t, 250 };
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, add_spans, &job);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	cJSON *j = render_parse(t, NULL);
	REQUIRE(j, "record does not parse");
	CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(j, "spans")) == 1000, "1000 spans");
	cJSON_Delete(j);
	ts_trace_abandon(t);
	ts_client_destroy(c, NULL);
}

static void conf_errors(void)
{
	char err[256] = "";
	ts_conf_t *conf = ts_conf_new();
	REQUIRE(conf, "conf");
	CHECK(ts_conf_set(conf, "no.such.property", "1", err, sizeof(err)) == TS_ERR_UNKNOWN_CONF, "unknown");
	CHECK(strstr(err, "no.such.property") != NULL, "error names the property: %s", err);
	CHECK(ts_conf_set(conf, "enqueue.timeout.ms", "-5", err, sizeof(err)) == TS_ERR_INVALID_ARG, "negative");
	CHECK(ts_conf_set(conf, "acks", "sometimes", err, sizeof(err)) == TS_ERR_INVALID_ARG, "bad kafka value");
	CHECK(ts_conf_set(conf, "topic", "", err, sizeof(err)) == TS_ERR_INVALID_ARG, "empty topic");
	CHECK(ts_conf_set(conf, "max.record.bytes", "2048", err, sizeof(err)) == TS_OK, "max bytes");
	ts_conf_destroy(conf);
	CHECK(strcmp(ts_err_str(TS_ERR_QUEUE_FULL), "unknown error") != 0, "err str");
	CHECK(ts_client_destroy(NULL, NULL) == 0, "destroy NULL");
}

static void publish_rejects(void)
{
	char err[512];
	ts_conf_t *conf = ts_conf_new();
	ts_conf_set(conf, "bootstrap.servers", "127.0.0.1:1", err, sizeof(err));
	ts_conf_set(conf, "max.record.bytes", "4096", err, sizeof(err));
	ts_conf_set(conf, "close.timeout.ms", "0", err, sizeof(err));
	ts_client_t *c = ts_client_new(conf, err, sizeof(err));
	REQUIRE(c, "client: %s", err);
	CHECK(ts_publish_json(c, "{nope", 5, err, sizeof(err)) == TS_ERR_INVALID, "not json");
	CHECK(strstr(err, "byte") != NULL, "reason says where: %s", err);
	char big[8192];
	memset(big, ' ', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK(ts_publish_json(c, big, sizeof(big) - 1, err, sizeof(err)) == TS_ERR_TOO_LARGE, "too large");
	ts_trace_t *t = ts_trace_begin(c, "big");
	ts_span_set_input(ts_trace_root(t), big + 4000); /* 4 KB of spaces: over 4096 with the rest */
	CHECK(ts_trace_end(t) == TS_ERR_TOO_LARGE, "built record over the limit");
	ts_stats_t st;
	ts_client_stats(c, &st);
	CHECK(st.rejected == 3, "rejected counted: %llu", (unsigned long long)st.rejected);
	CHECK(st.enqueued == 0, "nothing enqueued");
	ts_client_destroy(c, NULL);
}

int main(void)
{
	RUN(full_rag_trace);
	RUN(bad_input_is_refused_or_cleaned);
	RUN(one_call_functions_build_the_same_record);
	RUN(one_call_refusals_and_counts);
	RUN(spans_from_many_threads);
	RUN(conf_errors);
	RUN(publish_rejects);
	TEST_EXIT();
}
