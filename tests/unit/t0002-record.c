/* tests/unit/t0002-record.c - rec_validate against the examples, the invalid records, limits; tstime */
#include "json.h"
#include "record.h"
#include "sbuf.h"
#include "tstime.h"
#include "test.h"

#include <cJSON.h>
#include <dirent.h>

/* The *.json files of a source directory, sorted; returns how many. */
static int list_json(const char *rel, char names[][128], int max)
{
	char path[1024];
	const char *top = getenv("TS_TOP");
	snprintf(path, sizeof(path), "%s/%s", top && *top ? top : ".", rel);
	DIR *d = opendir(path);
	int n = 0;
	if (!d)
		return -1;
	struct dirent *e;
	while ((e = readdir(d)) && n < max) {
		size_t l = strlen(e->d_name);
		if (l > 5 && l < 128 && !strcmp(e->d_name + l - 5, ".json"))
			memcpy(names[n++], e->d_name, l + 1);
	}
	closedir(d);
	qsort(names, (size_t)n, 128, (int (*)(const void *, const void *))strcmp);
	return n;
}

static enum rec_reason validate(const char *s, char *err, size_t errsz)
{
	return rec_validate(s, strlen(s), NULL, NULL, err, errsz);
}

static void reason_names(void)
{
	static const char *const want[] = { "ok", "too_large", "not_json", "bad_utf8",
		"too_deep", "no_trace_id", "schema" };
	for (int r = 0; r < REC_REASON_COUNT; r++)
		CHECK(!strcmp(rec_reason_name((enum rec_reason)r), want[r]), "%d: %s", r,
		      rec_reason_name((enum rec_reason)r));
	CHECK(!strcmp(rec_reason_name(REC_REASON_COUNT), "unknown"), "out of range");
	struct rec_limits lim;
	rec_limits_default(&lim);
	CHECK(lim.max_bytes == 1048576 && lim.max_depth == 64 && lim.max_spans == 10000, "defaults");
}

static void examples_accepted(void)
{
	static char names[64][128];
	int n = list_json("docs/examples", names, 64);
	REQUIRE(n >= 4, "docs/examples has %d *.json files", n);
	for (int i = 0; i < n; i++) {
		char rel[256], err[512] = "";
		size_t len;
		snprintf(rel, sizeof(rel), "docs/examples/%.127s", names[i]);
		char *buf = t_read_top(rel, &len);
		REQUIRE(buf, "cannot read %s", rel);
		struct rec_info info;
		enum rec_reason r = rec_validate(buf, len, NULL, &info, err, sizeof(err));
		CHECK(r == REC_OK, "%s: %s: %s", names[i], rec_reason_name(r), err);
		/* what the validator reports agrees with a real parser */
		cJSON *j = cJSON_ParseWithLength(buf, len);
		CHECK(j != NULL, "%s: cJSON cannot parse it", names[i]);
		if (j && r == REC_OK) {
			cJSON *tid = cJSON_GetObjectItemCaseSensitive(j, "trace_id");
			cJSON *spans = cJSON_GetObjectItemCaseSensitive(j, "spans");
			CHECK(cJSON_IsString(tid) && !strcmp(tid->valuestring, info.trace_id),
			      "%s: trace_id '%s'", names[i], info.trace_id);
			CHECK(info.nspans == (spans ? cJSON_GetArraySize(spans) : 0), "%s: nspans %d",
			      names[i], info.nspans);
		}
		cJSON_Delete(j);
		CHECK(json_check(buf, len, 64, err, sizeof(err)) == 0, "%s: json_check: %s", names[i], err);
		free(buf);
	}
	t_note("%d examples", n);
}

static void invalid_rejected(void)
{
	static char names[256][128];
	static int listed[256];
	int n = list_json("tests/data/records/invalid", names, 256), rows = 0;
	size_t len;
	char *tsv = t_read_top("tests/data/records/invalid/EXPECTED.tsv", &len);
	REQUIRE(n > 0 && tsv, "no invalid records or no EXPECTED.tsv");
	memset(listed, 0, sizeof(listed));
	for (char *line = strtok(tsv, "\n"); line; line = strtok(NULL, "\n")) {
		if (line[0] == '#' || !line[0])
			continue;
		char *file = line, *reason = strchr(file, '\t');
		char *want = reason ? strchr(reason + 1, '\t') : NULL;
		CHECK(reason && want, "bad EXPECTED.tsv line '%s'", line);
		if (!reason || !want)
			continue;
		*reason++ = '\0';
		*want++ = '\0';
		rows++;
		int k;
		for (k = 0; k < n && strcmp(names[k], file); k++)
			;
		CHECK(k < n, "EXPECTED.tsv names '%s', which is not there", file);
		if (k < n)
			listed[k]++;
		char rel[256], err[512] = "";
		size_t blen;
		snprintf(rel, sizeof(rel), "tests/data/records/invalid/%s", file);
		char *buf = t_read_top(rel, &blen);
		if (!buf)
			continue;
		struct rec_info info;
		enum rec_reason r = rec_validate(buf, blen, NULL, &info, err, sizeof(err));
		CHECK(!strcmp(rec_reason_name(r), reason) && strstr(err, want),
		      "%s: got %s '%s', want %s '%s'", file, rec_reason_name(r), err, reason, want);
		/* syntax-level reasons agree with json_check, word for word */
		char jerr[512] = "";
		int jrc = json_check(buf, blen, 64, jerr, sizeof(jerr));
		if (r == REC_NOT_JSON || r == REC_BAD_UTF8 || r == REC_TOO_DEEP)
			CHECK(jrc == -1 && !strcmp(err, jerr), "%s: json_check says '%s'", file, jerr);
		else
			CHECK(jrc == 0, "%s: json_check rejects a syntactically valid record: %s", file, jerr);
		/* the key survives a schema failure, so a dead-letter copy can keep it */
		if (r == REC_SCHEMA && buf[0] == '{' && strstr(buf, "\"trace_id\": \"4bf92f3577b34da6a3ce929d0e0e4736\""))
			CHECK(!strcmp(info.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736"), "%s: info.trace_id '%s'",
			      file, info.trace_id);
		if (r != REC_SCHEMA && r != REC_OK)
			CHECK(info.trace_id[0] == '\0' && info.nspans == 0, "%s: info not zeroed", file);
		free(buf);
	}
	for (int k = 0; k < n; k++)
		CHECK(listed[k] == 1, "%s is listed %d times in EXPECTED.tsv", names[k], listed[k]);
	free(tsv);
	t_note("%d invalid records", rows);
}

/* A valid record whose input is a string of n 'x' (so the record is n + small). */
static char *big_record(size_t n, size_t *len)
{
	struct sbuf s;
	sbuf_init(&s);
	sbuf_puts(&s, "{\"v\":1,\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"name\":\"big\","
	              "\"start_time\":\"2026-03-14T09:26:53.589793Z\","
	              "\"end_time\":\"2026-03-14T09:26:53.589793Z\",\"input\":\"");
	sbuf_reserve(&s, n);
	memset(s.buf + s.len, 'x', n);
	s.len += n;
	sbuf_puts(&s, "\"}");
	return sbuf_detach(&s, len);
}

static void size_limit(void)
{
	size_t len;
	char err[256];
	/* exactly 5 MiB, so the message is the documented one */
	char *b = big_record(0, &len);
	REQUIRE(b, "out of memory");
	free(b);
	b = big_record(5 * 1024 * 1024 - len, &len);
	REQUIRE(b && len == 5242880, "len %zu", len);
	CHECK(rec_validate(b, len, NULL, NULL, err, sizeof(err)) == REC_TOO_LARGE &&
	      !strcmp(err, "record is 5242880 bytes, over the limit of 1048576"), "got '%s'", err);
	/* checked before reading anything: garbage of that size is too large, not bad JSON */
	memset(b, 0xff, len);
	CHECK(rec_validate(b, len, NULL, NULL, err, sizeof(err)) == REC_TOO_LARGE, "garbage: %s", err);
	CHECK(rec_validate(NULL, len, NULL, NULL, err, sizeof(err)) == REC_TOO_LARGE, "NULL: %s", err);
	free(b);

	/* a configured limit is honoured, to the byte */
	struct rec_limits lim;
	rec_limits_default(&lim);
	b = big_record(5 * 1024 * 1024, &len);
	lim.max_bytes = 8 * 1024 * 1024;
	CHECK(rec_validate(b, len, &lim, NULL, err, sizeof(err)) == REC_OK, "8 MiB limit: %s", err);
	lim.max_bytes = len;
	CHECK(rec_validate(b, len, &lim, NULL, err, sizeof(err)) == REC_OK, "limit = len: %s", err);
	lim.max_bytes = len - 1;
	CHECK(rec_validate(b, len, &lim, NULL, err, sizeof(err)) == REC_TOO_LARGE, "limit = len-1");
	free(b);
	b = big_record(100, &len);
	lim.max_bytes = 64;
	char want[128];
	snprintf(want, sizeof(want), "record is %zu bytes, over the limit of 64", len);
	CHECK(rec_validate(b, len, &lim, NULL, err, sizeof(err)) == REC_TOO_LARGE && !strcmp(err, want),
	      "got '%s'", err);
	free(b);
}

static void depth_limit(void)
{
	/* the record is depth 1, metadata 2, and each '[' one more */
	struct sbuf s;
	struct rec_limits lim;
	char err[256];
	size_t len;
	sbuf_init(&s);
	sbuf_puts(&s, "{\"v\":1,\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"name\":\"deep\","
	              "\"start_time\":\"2026-03-14T09:26:53Z\",\"end_time\":\"2026-03-14T09:26:54Z\","
	              "\"metadata\":{\"a\":");
	for (int i = 0; i < 8; i++)
		sbuf_putc(&s, '[');
	for (int i = 0; i < 8; i++)
		sbuf_putc(&s, ']');
	sbuf_puts(&s, "}}");
	char *b = sbuf_detach(&s, &len);
	rec_limits_default(&lim);
	lim.max_depth = 10;
	CHECK(rec_validate(b, len, &lim, NULL, err, sizeof(err)) == REC_OK, "depth 10: %s", err);
	lim.max_depth = 9;
	CHECK(rec_validate(b, len, &lim, NULL, err, sizeof(err)) == REC_TOO_DEEP &&
	      strstr(err, "nesting deeper than 9 at byte "), "depth 9: %s", err);
	lim.max_depth = 1;
	CHECK(rec_validate(b, len, &lim, NULL, err, sizeof(err)) == REC_TOO_DEEP, "depth 1: %s", err);
	free(b);
	/* known containers count too: usage inside a span is depth 4 */
	const char *rec = "{\"v\":1,\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"name\":\"n\","
	                  "\"start_time\":\"2026-03-14T09:26:53Z\",\"end_time\":\"2026-03-14T09:26:54Z\","
	                  "\"spans\":[{\"span_id\":\"00f067aa0ba902b7\",\"name\":\"s\",\"type\":\"llm\","
	                  "\"start_time\":\"2026-03-14T09:26:53Z\",\"end_time\":\"2026-03-14T09:26:54Z\","
	                  "\"usage\":{\"input_tokens\":1}}]}";
	lim.max_depth = 4;
	CHECK(rec_validate(rec, strlen(rec), &lim, NULL, err, sizeof(err)) == REC_OK, "4: %s", err);
	lim.max_depth = 3;
	CHECK(rec_validate(rec, strlen(rec), &lim, NULL, err, sizeof(err)) == REC_TOO_DEEP, "3: %s", err);
}

static unsigned long long span_id_of(int i)
{
	/* ids in an order that is not sorted, so the table gets sorted for real */
	return 0x9e3779b97f4a7c15ull * (unsigned long long)(i + 1);
}

/* A record of n spans.  Span i > 0 has as parent span i-1 (chain) or span
 * (i-1)/2 (a tree); span dup_at (if >= 0) reuses the id of span dup_of; with
 * loop, span 0 has the last span as parent. */
static char *spans_record(int n, int chain, int dup_at, int dup_of, int loop, size_t *len)
{
	struct sbuf s;
	sbuf_init(&s);
	sbuf_puts(&s, "{\"v\":1,\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"name\":\"many\","
	              "\"start_time\":\"2026-03-14T09:26:53Z\",\"end_time\":\"2026-03-14T09:26:54Z\","
	              "\"spans\":[");
	for (int i = 0; i < n; i++) {
		sbuf_printf(&s, "%s{\"span_id\":\"%016llx\",", i ? "," : "",
		            span_id_of(i == dup_at ? dup_of : i));
		if (i > 0 || loop)
			sbuf_printf(&s, "\"parent_span_id\":\"%016llx\",",
			            span_id_of(i == 0 ? n - 1 : chain ? i - 1 : (i - 1) / 2));
		sbuf_printf(&s, "\"name\":\"s%d\",\"type\":\"tool\",\"start_time\":\"2026-03-14T09:26:53Z\","
		                "\"end_time\":\"2026-03-14T09:26:53.5Z\"}", i);
	}
	sbuf_puts(&s, "]}");
	return sbuf_detach(&s, len);
}

static void span_limits(void)
{
	struct rec_limits lim;
	struct rec_info info;
	char err[256];
	size_t len;
	rec_limits_default(&lim);
	lim.max_bytes = 64 * 1024 * 1024;
	/* on the stack (<= 64), on the heap, and at the default limit */
	static const int counts[] = { 1, 64, 65, 3000, 10000 };
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		for (int chain = 0; chain < 2; chain++) {
			char *b = spans_record(counts[i], chain, -1, -1, 0, &len);
			enum rec_reason r = rec_validate(b, len, &lim, &info, err, sizeof(err));
			CHECK(r == REC_OK && info.nspans == counts[i], "%d spans (chain %d): %s %s",
			      counts[i], chain, rec_reason_name(r), err);
			free(b);
		}
	}
	char *b = spans_record(10001, 0, -1, -1, 0, &len);
	CHECK(rec_validate(b, len, &lim, NULL, err, sizeof(err)) == REC_SCHEMA &&
	      !strcmp(err, "field 'spans': more than 10000 spans"), "10001: %s", err);
	free(b);
	b = spans_record(5, 0, -1, -1, 0, &len);
	lim.max_spans = 5;
	CHECK(rec_validate(b, len, &lim, NULL, err, sizeof(err)) == REC_OK, "5 of 5: %s", err);
	lim.max_spans = 4;
	CHECK(rec_validate(b, len, &lim, NULL, err, sizeof(err)) == REC_SCHEMA &&
	      !strcmp(err, "field 'spans': more than 4 spans"), "5 of 4: %s", err);
	free(b);
	/* ids A B B A: the earliest repeat in the record is spans[2] */
	const char *abba = "{\"v\":1,\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"name\":\"n\","
		"\"start_time\":\"2026-03-14T09:26:53Z\",\"end_time\":\"2026-03-14T09:26:54Z\",\"spans\":["
		"{\"span_id\":\"aaaaaaaaaaaaaaaa\",\"name\":\"a\",\"type\":\"tool\",\"start_time\":\"2026-03-14T09:26:53Z\",\"end_time\":\"2026-03-14T09:26:54Z\"},"
		"{\"span_id\":\"bbbbbbbbbbbbbbbb\",\"name\":\"b\",\"type\":\"tool\",\"start_time\":\"2026-03-14T09:26:53Z\",\"end_time\":\"2026-03-14T09:26:54Z\"},"
		"{\"span_id\":\"bbbbbbbbbbbbbbbb\",\"name\":\"b\",\"type\":\"tool\",\"start_time\":\"2026-03-14T09:26:53Z\",\"end_time\":\"2026-03-14T09:26:54Z\"},"
		"{\"span_id\":\"aaaaaaaaaaaaaaaa\",\"name\":\"a\",\"type\":\"tool\",\"start_time\":\"2026-03-14T09:26:53Z\",\"end_time\":\"2026-03-14T09:26:54Z\"}]}";
	CHECK(rec_validate(abba, strlen(abba), NULL, NULL, err, sizeof(err)) == REC_SCHEMA &&
	      !strcmp(err, "field 'spans[2].span_id': same as spans[1].span_id"), "abba: %s", err);
	/* a duplicate and a loop far into a big table are still found */
	rec_limits_default(&lim);
	b = spans_record(500, 1, 400, 7, 0, &len);
	CHECK(rec_validate(b, len, &lim, NULL, err, sizeof(err)) == REC_SCHEMA &&
	      !strcmp(err, "field 'spans[400].span_id': same as spans[7].span_id"), "dup: %s", err);
	free(b);
	b = spans_record(500, 1, -1, -1, 1, &len);
	CHECK(rec_validate(b, len, &lim, NULL, err, sizeof(err)) == REC_SCHEMA &&
	      !strcmp(err, "field 'spans[0].parent_span_id': the chain of parents loops"), "loop: %s", err);
	free(b);
	b = spans_record(500, 0, -1, -1, 1, &len); /* span 0 under span 499, which is under 249, ... 0 */
	CHECK(rec_validate(b, len, &lim, NULL, err, sizeof(err)) == REC_SCHEMA &&
	      strstr(err, "the chain of parents loops"), "tree loop: %s", err);
	free(b);
}

static void unknown_fields_kept(void)
{
	char err[256];
	const char *rec =
		"{\"v\":1,\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"name\":\"n\","
		"\"start_time\":\"2026-03-14T09:26:53Z\",\"end_time\":\"2026-03-14T09:26:54Z\","
		"\"x\":{\"deep\":[1,{\"v\":\"not a version\"}]},\"span_id\":42,\"type\":[],"
		"\"usage\":{\"cached_tokens\":\"many\",\"input_tokens\":3},"
		"\"latency_ms\":{\"queue\":\"n/a\"},\"error\":{\"type\":\"t\",\"message\":\"m\",\"code\":7},"
		"\"spans\":[{\"span_id\":\"00f067aa0ba902b7\",\"name\":\"s\",\"type\":\"llm\","
		"\"start_time\":\"2026-03-14T09:26:53Z\",\"end_time\":\"2026-03-14T09:26:54Z\","
		"\"v\":\"spans have no version\",\"trace_id\":7,\"spans\":{},\"project\":1,"
		"\"gen_ai.system\":\"openai\",\"\":null}],\"\\u00e9\":\"\xc3\xa9\"}";
	enum rec_reason r = validate(rec, err, sizeof(err));
	CHECK(r == REC_OK, "%s: %s", rec_reason_name(r), err);
	/* unknown keys may repeat; known ones may not */
	const char *dup = "{\"v\":1,\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"name\":\"n\","
	                  "\"start_time\":\"2026-03-14T09:26:53Z\",\"end_time\":\"2026-03-14T09:26:54Z\","
	                  "\"x\":1,\"x\":2}";
	CHECK(validate(dup, err, sizeof(err)) == REC_OK, "unknown key twice: %s", err);
}

static void escaped_keys_and_values(void)
{
	char err[256];
	/* "n\u0061me" is the key "name"; "\u006c\u006cm" is "llm"; hex ids may be escaped too */
	const char *rec =
		"{\"\\u0076\":1,\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e473\\u0036\",\"n\\u0061me\":\"n\","
		"\"start_time\":\"2026-03-14T09:26:53\\u005a\",\"end_time\":\"2026-03-14T09:26:54Z\","
		"\"spans\":[{\"span_id\":\"00f067aa0ba902b7\",\"name\":\"s\",\"type\":\"\\u006c\\u006cm\","
		"\"start_time\":\"2026-03-14T09:26:53Z\",\"end_time\":\"2026-03-14T09:26:54Z\"}]}";
	struct rec_info info;
	enum rec_reason r = rec_validate(rec, strlen(rec), NULL, &info, err, sizeof(err));
	CHECK(r == REC_OK && !strcmp(info.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736"), "%s: %s",
	      rec_reason_name(r), err);
	const char *twice = "{\"v\":1,\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"name\":\"n\","
	                    "\"start_time\":\"2026-03-14T09:26:53Z\",\"end_time\":\"2026-03-14T09:26:54Z\","
	                    "\"n\\u0061me\":\"again\"}";
	CHECK(validate(twice, err, sizeof(err)) == REC_SCHEMA && !strcmp(err, "field 'name': appears twice"),
	      "got '%s'", err);
}

/* One record, one field changed: what the validator says. */
static enum rec_reason with_field(const char *field_json, char *err, size_t errsz)
{
	char rec[1024];
	snprintf(rec, sizeof(rec),
	         "{\"v\":1,\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"name\":\"n\","
	         "\"start_time\":\"2026-03-14T09:26:53Z\",\"end_time\":\"2026-03-14T09:26:54Z\",%s}",
	         field_json);
	return validate(rec, err, errsz);
}

static void field_values(void)
{
	static const struct { const char *field; enum rec_reason want; const char *msg; } cs[] = {
		{ "\"x\":0", REC_OK, NULL },
		{ "\"v\":1.0", REC_SCHEMA, "field 'v': appears twice" }, /* v is already there */
		{ "\"usage\":{\"input_tokens\":0,\"output_tokens\":-0,\"total_tokens\":9007199254740991}", REC_OK, NULL },
		{ "\"usage\":{\"total_tokens\":9007199254740992}", REC_SCHEMA, "no larger than 2^53-1" },
		{ "\"usage\":{\"total_tokens\":123456789012345678901234567890}", REC_SCHEMA, "no larger than" },
		{ "\"usage\":{\"total_tokens\":1e3}", REC_SCHEMA, "expected a non-negative integer" },
		{ "\"usage\":{\"total_tokens\":-1}", REC_SCHEMA, "field 'usage.total_tokens': expected a non-negative integer" },
		{ "\"usage\":{\"total_tokens\":null}", REC_SCHEMA, "expected a non-negative integer, found null" },
		{ "\"usage\":{}", REC_OK, NULL },
		{ "\"latency_ms\":{\"total\":0,\"time_to_first_token\":-0.0,\"inter_token_mean\":1e400}", REC_OK, NULL },
		{ "\"latency_ms\":{\"total\":null,\"time_to_first_token\":null,\"inter_token_mean\":null}", REC_OK, NULL },
		{ "\"latency_ms\":{\"total\":-0.0001}", REC_SCHEMA, "field 'latency_ms.total': expected a non-negative number or null" },
		{ "\"latency_ms\":{\"total\":-0e5,\"inter_token_mean\":-1e-9}", REC_SCHEMA, "'latency_ms.inter_token_mean'" },
		{ "\"latency_ms\":{\"total\":true}", REC_SCHEMA, "found a boolean" },
		{ "\"model\":null", REC_OK, NULL },
		{ "\"model\":\"\"", REC_OK, NULL },
		{ "\"model\":false", REC_SCHEMA, "field 'model': expected a string or null, found a boolean" },
		{ "\"error\":null", REC_OK, NULL },
		{ "\"error\":{\"type\":\"\",\"message\":\"\"}", REC_OK, NULL },
		{ "\"error\":{}", REC_SCHEMA, "field 'error.type': missing" },
		{ "\"error\":{\"type\":\"a\",\"type\":\"b\",\"message\":\"\"}", REC_SCHEMA, "field 'error.type': appears twice" },
		{ "\"error\":[]", REC_SCHEMA, "field 'error': expected null or an object, found an array" },
		{ "\"tags\":[]", REC_OK, NULL },
		{ "\"tags\":[\"a\",\"\",\"\\u00e9\"]", REC_OK, NULL },
		{ "\"tags\":[\"a\",[\"b\"]]", REC_SCHEMA, "field 'tags[1]': expected a string, found an array" },
		{ "\"tags\":null", REC_SCHEMA, "field 'tags': expected an array of strings, found null" },
		{ "\"metadata\":{}", REC_OK, NULL },
		{ "\"metadata\":null", REC_SCHEMA, "field 'metadata': expected an object, found null" },
		{ "\"project\":\"\"", REC_OK, NULL },
		{ "\"input\":null,\"output\":[1,\"two\",{\"3\":4}]", REC_OK, NULL },
		{ "\"spans\":[]", REC_OK, NULL },
		{ "\"spans\":[1]", REC_SCHEMA, "field 'spans[0]': expected a span object, found a number" },
		{ "\"name\":\"again\"", REC_SCHEMA, "field 'name': appears twice" },
		{ "\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\"", REC_NO_TRACE_ID, "field 'trace_id': appears twice" },
		/* the first schema problem in the record is the one reported */
		{ "\"tags\":[1],\"model\":1", REC_SCHEMA, "field 'tags[0]'" },
		{ "\"model\":1,\"tags\":[1]", REC_SCHEMA, "field 'model'" },
		/* a syntax error anywhere outranks a schema problem before it */
		{ "\"model\":1,\"tags\":[1,]", REC_NOT_JSON, "trailing comma before ']'" },
		{ "\"model\":1,\"x\":\"\xc0\xaf\"", REC_BAD_UTF8, "overlong encoding" },
		{ "\"model\":1,\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
		  "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", REC_TOO_DEEP, "nesting deeper than 64" },
	};
	for (size_t i = 0; i < sizeof(cs) / sizeof(cs[0]); i++) {
		char err[256] = "";
		enum rec_reason r = with_field(cs[i].field, err, sizeof(err));
		CHECK(r == cs[i].want && (!cs[i].msg || strstr(err, cs[i].msg)),
		      "case %zu (%s): got %s '%s', want %s '%s'", i, cs[i].field, rec_reason_name(r), err,
		      rec_reason_name(cs[i].want), cs[i].msg ? cs[i].msg : "");
	}
	char err[256];
	/* v must be written 1 */
	static const char *const versions[] = { "1.0", "1e0", "\"1\"", "true", "0", "-1", "10" };
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		char rec[512];
		snprintf(rec, sizeof(rec), "{\"v\":%s,\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\","
		         "\"name\":\"n\",\"start_time\":\"2026-03-14T09:26:53Z\",\"end_time\":"
		         "\"2026-03-14T09:26:54Z\"}", versions[i]);
		CHECK(validate(rec, err, sizeof(err)) == REC_SCHEMA && strstr(err, "field 'v': expected 1"),
		      "v=%s: %s", versions[i], err);
	}
	/* a trace_id problem outranks other schema problems, wherever it is */
	CHECK(validate("{\"v\":2,\"name\":\"\",\"trace_id\":\"xyz\"}", err, sizeof(err)) == REC_NO_TRACE_ID &&
	      !strcmp(err, "field 'trace_id': expected 32 lowercase hex characters"), "got '%s'", err);
	CHECK(validate("{}", err, sizeof(err)) == REC_NO_TRACE_ID && !strcmp(err, "field 'trace_id': missing"),
	      "got '%s'", err);
	/* but not a syntax problem */
	CHECK(validate("{\"trace_id\":\"xyz\",]", err, sizeof(err)) == REC_NOT_JSON, "got '%s'", err);
	/* not an object */
	CHECK(validate(" \"just a string\" ", err, sizeof(err)) == REC_SCHEMA &&
	      !strcmp(err, "expected a JSON object, found a string"), "got '%s'", err);
	CHECK(validate("null", err, sizeof(err)) == REC_SCHEMA, "null: %s", err);
	/* times compare as instants, across offsets */
	const char *tz = "{\"v\":1,\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"name\":\"n\","
	                 "\"start_time\":\"2026-03-14T10:00:00+02:00\",\"end_time\":\"2026-03-14T08:30:00Z\"}";
	CHECK(validate(tz, err, sizeof(err)) == REC_OK, "offsets: %s", err);
	const char *eq = "{\"v\":1,\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"name\":\"n\","
	                 "\"start_time\":\"2026-03-14T10:00:00.000001Z\",\"end_time\":\"2026-03-14T10:00:00.000001Z\"}";
	CHECK(validate(eq, err, sizeof(err)) == REC_OK, "equal times: %s", err);
	/* errstr may be NULL or tiny */
	CHECK(rec_validate("{}", 2, NULL, NULL, NULL, 0) == REC_NO_TRACE_ID, "NULL errstr");
	char tiny[8];
	CHECK(rec_validate("{}", 2, NULL, NULL, tiny, sizeof(tiny)) == REC_NO_TRACE_ID &&
	      strlen(tiny) == 7, "tiny errstr '%s'", tiny);
	CHECK(rec_validate(NULL, 0, NULL, NULL, err, sizeof(err)) == REC_NOT_JSON, "NULL, 0: %s", err);
}

/* Random damage to a valid record never crashes the validator, and it blames
 * the JSON exactly when json_check does, in the same words. */
static void mutations(void)
{
	size_t len;
	char *orig = t_read_top("docs/examples/rag.json", &len);
	REQUIRE(orig, "cannot read docs/examples/rag.json");
	char *buf = malloc(len + 8);
	unsigned long long x = 0x2545f4914f6cdd1dull;
	static const char bytes[] = "{}[]\",:\\ 0-.eE\x80\xc3\xed\xf0\xff\x01tnu";
	int counts[REC_REASON_COUNT] = { 0 };
	for (int i = 0; i < 20000; i++) {
		size_t n = len;
		memcpy(buf, orig, len);
		int edits = 1 + (int)(x % 3);
		for (int e = 0; e < edits; e++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			size_t at = (size_t)(x >> 8) % n;
			switch (x % 4) {
			case 0: buf[at] = bytes[(x >> 40) % (sizeof(bytes) - 1)]; break;
			case 1: n = at ? at : 1; break; /* truncate */
			case 2:
				if (n > 1) {
					memmove(buf + at, buf + at + 1, n - at - 1);
					n--;
				}
				break;
			default: buf[at] ^= (char)(1 << ((x >> 32) % 8)); break;
			}
		}
		char err[256] = "", jerr[256] = "";
		struct rec_info info;
		enum rec_reason r = rec_validate(buf, n, NULL, &info, err, sizeof(err));
		int jrc = json_check(buf, n, 64, jerr, sizeof(jerr));
		counts[r]++;
		int syntax = r == REC_NOT_JSON || r == REC_BAD_UTF8 || r == REC_TOO_DEEP;
		if (syntax != (jrc == -1) || (syntax && strcmp(err, jerr))) {
			CHECK(0, "mutation %d: rec_validate %s '%s', json_check '%s'", i, rec_reason_name(r), err, jerr);
			break;
		}
		if (r != REC_OK && !err[0]) {
			CHECK(0, "mutation %d: %s without a message", i, rec_reason_name(r));
			break;
		}
	}
	t_note("ok %d, not_json %d, bad_utf8 %d, no_trace_id %d, schema %d", counts[REC_OK],
	       counts[REC_NOT_JSON], counts[REC_BAD_UTF8], counts[REC_NO_TRACE_ID], counts[REC_SCHEMA]);
	free(buf);
	free(orig);
}

static void tstime_round_trip(void)
{
	static const struct { const char *in, *out; } cs[] = {
		{ "2026-03-14T09:26:53.589793Z", "2026-03-14T09:26:53.589793Z" },
		{ "1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000000Z" },
		{ "1969-12-31T23:59:59.999999Z", "1969-12-31T23:59:59.999999Z" },
		{ "2024-02-29T23:59:59.999999Z", "2024-02-29T23:59:59.999999Z" }, /* leap year */
		{ "2000-02-29T12:00:00Z", "2000-02-29T12:00:00.000000Z" },         /* divisible by 400 */
		{ "2026-03-14T18:45:07.25+09:00", "2026-03-14T09:45:07.250000Z" },
		{ "2026-01-01T00:30:00-01:00", "2026-01-01T01:30:00.000000Z" },
		{ "2024-12-31T23:00:00-01:30", "2025-01-01T00:30:00.000000Z" },   /* across a year */
		{ "2024-03-01T00:30:00+01:00", "2024-02-29T23:30:00.000000Z" },   /* back into Feb 29 */
		{ "2026-03-14T09:26:53.123456789Z", "2026-03-14T09:26:53.123456Z" }, /* ns truncated */
		{ "2026-03-14T09:26:53.1Z", "2026-03-14T09:26:53.100000Z" },
		{ "2026-03-14t09:26:53z", "2026-03-14T09:26:53.000000Z" },
		{ "9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999999Z" },
		{ "0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000000Z" },
	};
	for (size_t i = 0; i < sizeof(cs) / sizeof(cs[0]); i++) {
		int64_t us = 0;
		char out[TSTIME_LEN];
		int rc = tstime_parse(cs[i].in, strlen(cs[i].in), &us);
		CHECK(rc == 0, "cannot parse '%s'", cs[i].in);
		if (rc)
			continue;
		CHECK(tstime_format(us, out) == 27 && !strcmp(out, cs[i].out), "'%s' -> '%s', want '%s'",
		      cs[i].in, out, cs[i].out);
		int64_t back = -1;
		CHECK(tstime_parse(out, 27, &back) == 0 && back == us, "'%s' does not parse back", out);
	}
	int64_t us;
	CHECK(tstime_parse("1970-01-01T00:00:01.5Z", 22, &us) == 0 && us == 1500000, "epoch+1.5s: %lld",
	      (long long)us);
	static const char *const bad[] = {
		"2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2100-02-29T00:00:00Z",
		"2026-04-31T00:00:00Z", "2026-13-01T00:00:00Z", "2026-00-10T00:00:00Z",
		"2026-01-00T00:00:00Z", "2026-01-32T00:00:00Z", "2026-01-01T24:00:00Z",
		"2026-01-01T12:60:00Z", "2026-01-01T12:00:61Z", "2026-01-01T12:00:00",
		"2026-01-01 12:00:00Z", "2026-01-01T12:00:00.Z", "2026-01-01T12:00:00.1234567890Z",
		"2026-01-01T12:00:00+0100", "2026-01-01T12:00:00+24:00", "2026-01-01T12:00:00Zjunk",
		"2026-01-01T12:00Z", "2026-1-01T12:00:00Z", "26-01-01T12:00:00Z", "", "2026-01-01",
		"+2026-01-01T12:00:00Z", "2026-01-01T12:00:00.-1Z", "2026-01-01T1a:00:00Z",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(tstime_parse(bad[i], strlen(bad[i]), &us) == -1, "'%s' accepted", bad[i]);
	/* only len bytes are read: a valid prefix of a longer buffer */
	CHECK(tstime_parse("2026-01-01T12:00:00Zgarbage", 20, &us) == 0, "prefix");
	/* format and parse agree over a spread of instants, before and after 1970 */
	unsigned long long x = 88172645463325252ull;
	for (int i = 0; i < 10000; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		int64_t t = (int64_t)(x % 253402300800000000ull) - 62135596800000000ll; /* 0001..9999 */
		char out[TSTIME_LEN];
		int64_t back = 0;
		tstime_format(t, out);
		if (tstime_parse(out, strlen(out), &back) || back != t) {
			CHECK(0, "%lld -> '%s' -> %lld", (long long)t, out, (long long)back);
			break;
		}
	}
	int64_t now = tstime_now_us(), back = 0;
	char out[TSTIME_LEN];
	tstime_format(now, out);
	CHECK(tstime_parse(out, strlen(out), &back) == 0 && back == now, "now: '%s'", out);
}

int main(void)
{
	RUN(reason_names);
	RUN(examples_accepted);
	RUN(invalid_rejected);
	RUN(size_limit);
	RUN(depth_limit);
	RUN(span_limits);
	RUN(unknown_fields_kept);
	RUN(escaped_keys_and_values);
	RUN(field_values);
	RUN(mutations);
	RUN(tstime_round_trip);
	TEST_EXIT();
}
