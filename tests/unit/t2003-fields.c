/* tests/unit/t2003-fields.c - the record fields rec_validate notes for the sampler, and the helpers on them */
#include "json.h"
#include "record.h"
#include "sbuf.h"
#include "test.h"

#include <cJSON.h>
#include <dirent.h>
#include <math.h>

static enum rec_reason validate(const char *rec, struct rec_info *info)
{
	char err[512] = "";
	enum rec_reason r = rec_validate(rec, strlen(rec), NULL, info, err, sizeof(err));
	if (r != REC_OK)
		t_note("rec_validate: %s: %s", rec_reason_name(r), err);
	return r;
}

/* The slice holds exactly the JSON value want (NULL: the slice is absent). */
static int slice_is(const char *buf, size_t buflen, struct rec_slice s, const cJSON *want,
                    const char *what)
{
	if (!want) {
		if (s.len)
			t_note("%s: absent in cJSON, slice %u+%u", what, s.off, s.len);
		return s.len == 0 && s.off == 0;
	}
	if (!s.len || (size_t)s.off + s.len > buflen) {
		t_note("%s: slice %u+%u of %zu bytes", what, s.off, s.len, buflen);
		return 0;
	}
	const char *p = buf + s.off, *end = NULL;
	if (strchr(" \t\r\n", p[0]) || strchr(" \t\r\n", p[s.len - 1])) {
		t_note("%s: slice '%.*s' has whitespace at an end", what, (int)s.len, p);
		return 0;
	}
	cJSON *got = cJSON_ParseWithLengthOpts(p, s.len, &end, 0);
	int ok = got && end == p + s.len && cJSON_Compare(got, want, 1);
	if (!ok)
		t_note("%s: slice '%.*s' is not the value cJSON reads", what, (int)s.len, p);
	cJSON_Delete(got);
	return ok;
}

static double num_or(const cJSON *obj, const char *name, double dflt)
{
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(obj, name);
	return cJSON_IsNumber(n) ? n->valuedouble : dflt;
}

/* Every docs/examples record: each slice is what cJSON finds there. */
static void examples_match_cjson(void)
{
	static const char *const names[] = { "name", "model", "tags", "metadata", "error",
		"input", "output", "usage", "latency_ms" };
	DIR *d;
	char dir[1024];
	const char *top = getenv("TS_TOP");
	struct dirent *e;
	int n = 0;
	snprintf(dir, sizeof(dir), "%s/docs/examples", top && *top ? top : ".");
	d = opendir(dir);
	REQUIRE(d != NULL, "cannot open '%s'", dir);
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name), len;
		char rel[512];
		if (l < 6 || strcmp(e->d_name + l - 5, ".json"))
			continue;
		snprintf(rel, sizeof(rel), "docs/examples/%s", e->d_name);
		char *buf = t_read_top(rel, &len);
		CHECK(buf != NULL, "read %s", rel);
		if (!buf)
			continue;
		struct rec_info info;
		char err[512];
		enum rec_reason r = rec_validate(buf, len, NULL, &info, err, sizeof(err));
		CHECK(r == REC_OK, "%s: %s", rel, err);
		cJSON *j = cJSON_ParseWithLength(buf, len);
		CHECK(j != NULL, "cJSON parses %s", rel);
		if (r == REC_OK && j) {
			const struct rec_slice sl[] = { info.name, info.model, info.tags, info.metadata,
				info.error, info.input, info.output, info.usage, info.latency_ms };
			for (size_t i = 0; i < sizeof(sl) / sizeof(sl[0]); i++) {
				char what[512];
				snprintf(what, sizeof(what), "%s: %s", e->d_name, names[i]);
				CHECK(slice_is(buf, len, sl[i], cJSON_GetObjectItemCaseSensitive(j, names[i]),
				               what), "%s", what);
			}
			const cJSON *out = cJSON_GetObjectItemCaseSensitive(j, "output");
			const cJSON *ctx = cJSON_IsObject(out) ? cJSON_GetObjectItemCaseSensitive(out, "context") : NULL;
			CHECK(slice_is(buf, len, info.context, ctx, "context"), "%s: context", e->d_name);
			const cJSON *lat = cJSON_GetObjectItemCaseSensitive(j, "latency_ms");
			const cJSON *use = cJSON_GetObjectItemCaseSensitive(j, "usage");
			CHECK(info.latency_total == num_or(lat, "total", -1), "%s: latency_total %g",
			      e->d_name, info.latency_total);
			CHECK(info.ttft == num_or(lat, "time_to_first_token", -1), "%s: ttft %g",
			      e->d_name, info.ttft);
			CHECK(info.total_tokens == (int64_t)num_or(use, "total_tokens", -1),
			      "%s: total_tokens %lld", e->d_name, (long long)info.total_tokens);
			const cJSON *er = cJSON_GetObjectItemCaseSensitive(j, "error");
			CHECK(info.has_error == (er && !cJSON_IsNull(er)), "%s: has_error %d", e->d_name,
			      info.has_error);
			n++;
		}
		cJSON_Delete(j);
		free(buf);
	}
	closedir(d);
	CHECK(n >= 5, "%d examples", n);
}

/* What the examples say, spelled out, so a wrong cJSON reading cannot hide a bug. */
static void examples_known_values(void)
{
	size_t len;
	struct rec_info info;
	char *buf = t_read_top("docs/examples/rag.json", &len);
	REQUIRE(buf, "rag.json");
	CHECK(rec_validate(buf, len, NULL, &info, NULL, 0) == REC_OK, "rag valid");
	CHECK(info.latency_total == 1512.518 && info.ttft == 885.534, "latency %g %g",
	      info.latency_total, info.ttft);
	CHECK(info.total_tokens == 1081 && !info.has_error, "tokens %lld", (long long)info.total_tokens);
	CHECK(rec_str_equals(buf, info.name, "answer_question"), "name");
	CHECK(!rec_str_equals(buf, info.name, "answer_questio"), "name prefix");
	CHECK(!rec_str_equals(buf, info.name, "answer_question "), "name longer");
	CHECK(rec_str_equals(buf, info.model, "gpt-4o-mini-2024-07-18"), "model");
	CHECK(rec_has_tag(buf, &info, "rag") && rec_has_tag(buf, &info, "production"), "tags");
	CHECK(!rec_has_tag(buf, &info, "pro") && !rec_has_tag(buf, &info, ""), "not tags");
	CHECK(rec_meta_equals(buf, &info, "user_tier", "pro"), "user_tier");
	CHECK(!rec_meta_equals(buf, &info, "user_tier", "enterprise"), "user_tier other");
	CHECK(!rec_meta_equals(buf, &info, "tier", "pro"), "no such key");
	CHECK(info.context.len && buf[info.context.off] == '[' &&
	      buf[info.context.off + info.context.len - 1] == ']', "context is the array");
	CHECK(!strncmp(buf + info.error.off, "null", 4) && info.error.len == 4, "error null");
	free(buf);

	buf = t_read_top("docs/examples/error.json", &len);
	REQUIRE(buf, "error.json");
	CHECK(rec_validate(buf, len, NULL, &info, NULL, 0) == REC_OK, "error valid");
	CHECK(info.has_error == 1 && info.error.len > 10, "has_error");
	CHECK(info.latency_total == 30004.666 && info.ttft == -1, "null ttft: %g", info.ttft);
	CHECK(info.total_tokens == -1 && info.usage.len == 0, "no usage");
	CHECK(info.model.len == 4 && !rec_str_equals(buf, info.model, "null"), "model null");
	CHECK(info.context.len == 0 && info.output.len == 4, "output null");
	free(buf);

	buf = t_read_top("docs/examples/unicode.json", &len);
	REQUIRE(buf, "unicode.json");
	CHECK(rec_validate(buf, len, NULL, &info, NULL, 0) == REC_OK, "unicode valid");
	CHECK(rec_has_tag(buf, &info, "emoji \xf0\x9f\x8e\x8c"), "emoji tag");
	CHECK(rec_meta_equals(buf, &info, "locale", "ja-JP"), "locale");
	CHECK(!rec_meta_equals(buf, &info, "note", "tab\there, newline\nthere, nul "),
	      "a value holding U+0000 equals no C string");
	CHECK(!rec_meta_equals(buf, &info, "note", "tab\there"), "prefix");
	CHECK(info.model.len == 0 && info.error.len == 0 && !info.has_error, "absent model, error");
	CHECK(info.latency_total == -1 && info.ttft == -1 && info.total_tokens == -1,
	      "span figures are not the record's");
	free(buf);
}

#define HEAD "{\"v\":1,\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"name\":\"n\"," \
             "\"start_time\":\"2026-03-14T09:26:53.589793Z\",\"end_time\":\"2026-03-14T09:26:55.102311Z\""

static void escapes(void)
{
	struct rec_info info;
	const char *rec = HEAD ",\"tags\":[\"a\\\"b\",\"caf\\u00e9\",\"\\ud83d\\ude00\",\"x\\\\y\","
	                  "\"t\\tab\",\"sl\\/ash\",\"plain\"],"
	                  "\"metadata\":{\"us\\u0065r_tier\":\"ent\\u0065rprise\",\"k\":\"v\"},"
	                  "\"model\":\"gpt\\u002d4o\",\"output\":{\"cont\\u0065xt\":[1],\"context\":[2]}}";
	REQUIRE(validate(rec, &info) == REC_OK, "valid");
	CHECK(rec_has_tag(rec, &info, "a\"b"), "quote");
	CHECK(rec_has_tag(rec, &info, "caf\xc3\xa9"), "\\u00e9");
	CHECK(rec_has_tag(rec, &info, "\xf0\x9f\x98\x80"), "surrogate pair");
	CHECK(rec_has_tag(rec, &info, "x\\y"), "backslash");
	CHECK(rec_has_tag(rec, &info, "t\tab"), "tab");
	CHECK(rec_has_tag(rec, &info, "sl/ash"), "slash");
	CHECK(rec_has_tag(rec, &info, "plain"), "plain");
	CHECK(!rec_has_tag(rec, &info, "a\\\"b") && !rec_has_tag(rec, &info, "caf\\u00e9"),
	      "the escaped text is not the tag");
	CHECK(!rec_has_tag(rec, &info, "caf"), "prefix of an escaped tag");
	CHECK(!rec_has_tag(rec, &info, "caf\xc3\xa9!"), "longer than an escaped tag");
	CHECK(rec_meta_equals(rec, &info, "user_tier", "enterprise"), "escaped key and value");
	CHECK(rec_meta_equals(rec, &info, "k", "v"), "plain");
	CHECK(rec_str_equals(rec, info.model, "gpt-4o"), "escaped model");
	CHECK(!strncmp(rec + info.context.off, "[1]", 3) && info.context.len == 3,
	      "escaped key, and the first context: '%.*s'", (int)info.context.len, rec + info.context.off);
}

static void metadata_values(void)
{
	struct rec_info info;
	const char *rec = HEAD ",\"metadata\":{\"n\":3,\"f\":2.50,\"e\":1e3,\"neg\":-1,\"t\":true,"
	                  "\"fa\":false,\"z\":null,\"s\":\"3\",\"o\":{\"a\":1},\"a\":[1],"
	                  "\"dup\":\"first\",\"dup\":\"second\"}}";
	/* duplicate metadata keys are not a schema violation: metadata is free-form */
	REQUIRE(validate(rec, &info) == REC_OK, "valid");
	CHECK(rec_meta_equals(rec, &info, "n", "3"), "integer");
	CHECK(!rec_meta_equals(rec, &info, "n", "3.0"), "number text, not value");
	CHECK(rec_meta_equals(rec, &info, "f", "2.50") && !rec_meta_equals(rec, &info, "f", "2.5"),
	      "fraction as written");
	CHECK(rec_meta_equals(rec, &info, "e", "1e3"), "exponent as written");
	CHECK(rec_meta_equals(rec, &info, "neg", "-1"), "negative");
	CHECK(rec_meta_equals(rec, &info, "t", "true") && !rec_meta_equals(rec, &info, "t", "1"),
	      "true");
	CHECK(rec_meta_equals(rec, &info, "fa", "false"), "false");
	CHECK(!rec_meta_equals(rec, &info, "z", "null") && !rec_meta_equals(rec, &info, "z", ""),
	      "null matches nothing");
	CHECK(rec_meta_equals(rec, &info, "s", "3"), "string 3");
	CHECK(!rec_meta_equals(rec, &info, "o", "{\"a\":1}") && !rec_meta_equals(rec, &info, "a", "[1]"),
	      "objects and arrays match nothing");
	CHECK(rec_meta_equals(rec, &info, "dup", "first") && !rec_meta_equals(rec, &info, "dup", "second"),
	      "the first of a repeated key");
	CHECK(!rec_meta_equals(rec, &info, "missing", "3"), "absent key");
}

static void absent_and_null(void)
{
	struct rec_info info;
	REQUIRE(validate(HEAD "}", &info) == REC_OK, "minimal");
	CHECK(info.model.len == 0 && info.tags.len == 0 && info.metadata.len == 0 &&
	      info.error.len == 0 && info.input.len == 0 && info.output.len == 0 &&
	      info.usage.len == 0 && info.latency_ms.len == 0 && info.context.len == 0, "absent");
	CHECK(info.name.len == 3, "name \"n\"");
	CHECK(info.latency_total == -1 && info.ttft == -1 && info.total_tokens == -1 &&
	      !info.has_error, "figures absent");
	CHECK(!rec_has_tag(HEAD "}", &info, "x") && !rec_meta_equals(HEAD "}", &info, "k", "v") &&
	      !rec_str_equals(HEAD "}", info.model, ""), "helpers on absent fields");

	const char *rec = HEAD ",\"error\":null,\"model\":null,\"tags\":[],\"metadata\":{},"
	                  "\"latency_ms\":{\"total\":null,\"time_to_first_token\":null},"
	                  "\"usage\":{\"input_tokens\":1},\"output\":\"text\"}";
	REQUIRE(validate(rec, &info) == REC_OK, "nulls");
	CHECK(!info.has_error && info.error.len == 4, "null error");
	CHECK(!rec_str_equals(rec, info.model, "null") && !rec_str_equals(rec, info.model, ""),
	      "null model");
	CHECK(info.latency_total == -1 && info.ttft == -1, "null latency");
	CHECK(info.total_tokens == -1, "usage without total_tokens");
	CHECK(info.context.len == 0 && info.output.len == 6, "string output has no context");
	CHECK(!rec_has_tag(rec, &info, ""), "empty tags");

	rec = HEAD ",\"error\":{\"type\":\"t\",\"message\":\"m\"},\"usage\":{\"total_tokens\":0},"
	      "\"latency_ms\":{\"total\":0,\"time_to_first_token\":-0}}";
	REQUIRE(validate(rec, &info) == REC_OK, "zeros");
	CHECK(info.has_error == 1, "error object");
	CHECK(info.total_tokens == 0 && info.latency_total == 0 && info.ttft == 0, "zeros");
}

static int is_text(const char *rec, struct rec_slice s, const char *want)
{
	return s.len == strlen(want) && !memcmp(rec + s.off, want, s.len);
}

/* The slices cover the value and nothing else, however the record is spaced. */
static void whitespace(void)
{
	struct rec_info info;
	const char *rec = "{ \"v\" : 1 , \"trace_id\" :\"4bf92f3577b34da6a3ce929d0e0e4736\",\n"
	                  "\t\"name\"\t:\r\n \"x y\" ,\"start_time\":\"2026-03-14T09:26:53Z\","
	                  "\"end_time\":\"2026-03-14T09:26:54Z\", \"tags\" :  [ \"a\" , \"b\" ]  ,"
	                  "\"output\" : { \"context\" :  { \"k\" : [ ] } , \"answer\":1 } ,"
	                  "\"error\"  :  null }  ";
	REQUIRE(validate(rec, &info) == REC_OK, "valid");
	CHECK(is_text(rec, info.name, "\"x y\""), "name");
	CHECK(is_text(rec, info.tags, "[ \"a\" , \"b\" ]"), "tags '%.*s'",
	      (int)info.tags.len, rec + info.tags.off);
	CHECK(is_text(rec, info.context, "{ \"k\" : [ ] }"),
	      "context '%.*s'", (int)info.context.len, rec + info.context.off);
	CHECK(info.error.len == 4 && !info.has_error, "error");
	CHECK(rec_has_tag(rec, &info, "b"), "tag b");
}

/* The figures are the numbers strtod() reads, for every way JSON writes them. */
static void numbers(void)
{
	static const char *const texts[] = {
		"0", "-0", "1", "1512.518", "885.534", "0.1", "0.30000000000000004", "2000",
		"2000.0000000000002", "1e3", "1E+3", "2.5e-3", "123456789012345678901234",
		"9007199254740993", "9007199254740992.5", "1.7976931348623157e308", "5e-324",
		"0.000000000000000000000000001", "4.35", "1e22", "1e23", "123.456e-10",
		"0.00000000000000000000000000000000000000000000000000000000000000000000000001",
		"3.14159265358979323846264338327950288419716939937510582097494459230781640628",
		"1e400", "1e99999999999", "1e-99999999999", "0e99999999999", "12e-5", "1.5E2",
		"4503599627370497.5", "18446744073709551615", "1234567890123456789",
	};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		char rec[1024];
		struct rec_info info;
		snprintf(rec, sizeof(rec), HEAD ",\"latency_ms\":{\"total\":%s,\"time_to_first_token\":%s}}",
		         texts[i], texts[i]);
		REQUIRE(validate(rec, &info) == REC_OK, "%s", texts[i]);
		double want = strtod(texts[i], NULL);
		CHECK(info.latency_total == want && info.ttft == want &&
		      signbit(info.latency_total) == signbit(want), "%s: %.17g, strtod says %.17g",
		      texts[i], info.latency_total, want);
	}
	static const char *const counts[] = { "0", "-0", "7", "9007199254740991" };
	static const int64_t want[] = { 0, 0, 7, 9007199254740991LL };
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		char rec[512];
		struct rec_info info;
		snprintf(rec, sizeof(rec), HEAD ",\"usage\":{\"total_tokens\":%s}}", counts[i]);
		REQUIRE(validate(rec, &info) == REC_OK, "%s", counts[i]);
		CHECK(info.total_tokens == want[i], "%s: %lld", counts[i], (long long)info.total_tokens);
	}
}

/* Spans' fields never leak into the record's; a schema error keeps the
 * fields, a JSON error zeroes them. */
static void spans_and_failures(void)
{
	struct rec_info info;
	char err[256];
	const char *rec = HEAD ",\"spans\":[{\"span_id\":\"00f067aa0ba902b7\",\"name\":\"s\",\"type\":\"llm\","
	                  "\"start_time\":\"2026-03-14T09:26:53.589793Z\",\"end_time\":\"2026-03-14T09:26:54Z\","
	                  "\"model\":\"m\",\"tags\":[\"t\"],\"error\":{\"type\":\"a\",\"message\":\"b\"},"
	                  "\"usage\":{\"total_tokens\":5},\"latency_ms\":{\"total\":9},\"output\":{\"context\":1}}]}";
	REQUIRE(validate(rec, &info) == REC_OK, "valid");
	CHECK(info.nspans == 1 && info.name.len == 3, "one span");
	CHECK(!info.model.len && !info.tags.len && !info.error.len && !info.has_error &&
	      !info.usage.len && !info.context.len && info.total_tokens == -1 &&
	      info.latency_total == -1, "span fields are not the record's");

	rec = HEAD ",\"model\":\"m\",\"tags\":[1,null,\"x\"],\"latency_ms\":{\"total\":5}}";
	CHECK(rec_validate(rec, strlen(rec), NULL, &info, err, sizeof(err)) == REC_SCHEMA, "schema");
	CHECK(rec_str_equals(rec, info.model, "m") && info.latency_total == 5, "kept on a schema error");
	CHECK(rec_has_tag(rec, &info, "x") && !rec_has_tag(rec, &info, "1") &&
	      !rec_has_tag(rec, &info, "null"), "only string tags count");

	rec = HEAD ",\"model\":\"m\",\"tags\":[1,]}";
	CHECK(rec_validate(rec, strlen(rec), NULL, &info, err, sizeof(err)) == REC_NOT_JSON, "not json");
	CHECK(info.model.len == 0 && info.latency_total == 0, "zeroed on a JSON error");
}

/* Every field in one pass over a realistic record, and the helpers that
 * sconf_classify() calls, under the sanitizers. */
static void big_record(void)
{
	struct sbuf b;
	struct rec_info info;
	sbuf_init(&b);
	sbuf_puts(&b, HEAD ",\"tags\":[");
	for (int i = 0; i < 200; i++)
		sbuf_printf(&b, "%s\"tag%d\"", i ? "," : "", i);
	sbuf_puts(&b, "],\"metadata\":{");
	for (int i = 0; i < 200; i++)
		sbuf_printf(&b, "%s\"k%d\":%d", i ? "," : "", i, i);
	sbuf_puts(&b, "}}");
	size_t len;
	char *rec = sbuf_detach(&b, &len);
	REQUIRE(rec, "built");
	CHECK(rec_validate(rec, len, NULL, &info, NULL, 0) == REC_OK, "valid");
	CHECK(rec_has_tag(rec, &info, "tag199") && !rec_has_tag(rec, &info, "tag200"), "last tag");
	CHECK(rec_meta_equals(rec, &info, "k199", "199") && !rec_meta_equals(rec, &info, "k199", "19"),
	      "last key");
	free(rec);
}

int main(void)
{
	RUN(examples_match_cjson);
	RUN(examples_known_values);
	RUN(escapes);
	RUN(metadata_values);
	RUN(absent_and_null);
	RUN(whitespace);
	RUN(numbers);
	RUN(spans_and_failures);
	RUN(big_record);
	TEST_EXIT();
}
