/* tests/unit/t0001-json.c - json_check, json_utf8_check and string decoding, table driven */
#include "json.h"
#include "test.h"

/* S("...") keeps the length, so cases may hold NUL and any raw byte. */
#define S(lit) lit, sizeof(lit) - 1

struct jcase {
	const char *in;
	size_t      len;
	const char *want; /* NULL: valid; else a substring of errstr */
};

static int run_cases(const struct jcase *cs, size_t n, int max_depth)
{
	int bad = 0;
	for (size_t i = 0; i < n; i++) {
		char err[256] = "";
		int rc = json_check(cs[i].in, cs[i].len, max_depth, err, sizeof(err));
		if (!cs[i].want) {
			CHECK(rc == 0, "case %zu '%.*s' rejected: %s", i, (int)cs[i].len, cs[i].in, err);
			bad += rc != 0;
		} else {
			CHECK(rc == -1 && strstr(err, cs[i].want),
			      "case %zu '%.*s': rc %d, errstr '%s', want '%s'", i, (int)cs[i].len,
			      cs[i].in, rc, err, cs[i].want);
			bad += !(rc == -1 && strstr(err, cs[i].want));
		}
	}
	return bad;
}

static void valid_values(void)
{
	static const struct jcase cs[] = {
		{ S("0"), NULL }, { S("-0"), NULL }, { S("7"), NULL }, { S("-12"), NULL },
		{ S("1.5"), NULL }, { S("-0.0"), NULL }, { S("1e10"), NULL }, { S("1E+2"), NULL },
		{ S("-1.25e-300"), NULL }, { S("0e0"), NULL },
		{ S("123456789012345678901234567890.123456789e123456"), NULL },
		{ S("true"), NULL }, { S("false"), NULL }, { S("null"), NULL },
		{ S("\"\""), NULL }, { S("\"abc\""), NULL }, { S("[]"), NULL }, { S("{}"), NULL },
		{ S(" \t\r\n{ \"a\" : [ 1 , 2 , { } , [ ] ] , \"b\" :null } \n\t "), NULL },
		{ S("{\"a\":{\"b\":[{},{\"c\":[true,false,null]}]}}"), NULL },
		{ S("[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]"), NULL },
		{ S("\"\\u0000\\u001f\\u00e9\\u20AC\\uFFFF\""), NULL },
		{ S("\"\\ud83d\\ude00\""), NULL },  /* a surrogate pair */
		{ S("\"\\uD800\\uDC00\\uDBFF\\uDFFF\""), NULL },
		{ S("\"\x7f\""), NULL },             /* DEL is not a control character in JSON */
		{ S("{\"\":\"\",\"\":1}"), NULL },   /* duplicate keys are valid JSON */
		{ S("[1,-1,0.5,\"x\",{\"k\":[[]]}]"), NULL },
	};
	run_cases(cs, sizeof(cs) / sizeof(cs[0]), 64);
}

static void valid_utf8(void)
{
	static const struct jcase cs[] = {
		{ S("\"\xc2\x80\""), NULL },         /* U+0080, the first 2-byte */
		{ S("\"\xdf\xbf\""), NULL },         /* U+07FF */
		{ S("\"\xe0\xa0\x80\""), NULL },     /* U+0800, the first 3-byte */
		{ S("\"\xed\x9f\xbf\""), NULL },     /* U+D7FF, just below the surrogates */
		{ S("\"\xee\x80\x80\""), NULL },     /* U+E000, just above them */
		{ S("\"\xef\xbf\xbf\""), NULL },     /* U+FFFF */
		{ S("\"\xef\xbb\xbf\""), NULL },     /* U+FEFF inside a string is fine */
		{ S("\"\xf0\x90\x80\x80\""), NULL }, /* U+10000, the first 4-byte */
		{ S("\"\xf4\x8f\xbf\xbf\""), NULL }, /* U+10FFFF, the last */
		{ S("\"caf\xc3\xa9 \xe6\x9d\xb1\xe4\xba\xac \xf0\x9f\x97\xbc\""), NULL },
		{ S("{\"\xe5\x90\x8d\":\"\xd0\x98\xd0\xbc\xd1\x8f\"}"), NULL }, /* in a key */
	};
	run_cases(cs, sizeof(cs) / sizeof(cs[0]), 64);
}

static void invalid_syntax(void)
{
	static const struct jcase cs[] = {
		{ S(""), "invalid JSON at byte 0: unexpected end of input" },
		{ S("   "), "invalid JSON at byte 3: unexpected end of input" },
		{ S("{"), "at byte 1: unexpected end of input" },
		{ S("{\"a\""), "at byte 4: unexpected end of input" },
		{ S("{\"a\":"), "at byte 5: unexpected end of input" },
		{ S("[1,"), "at byte 3: unexpected end of input" },
		{ S("\"abc"), "at byte 4: unexpected end of input" },
		{ S("\"ab\\"), "unexpected end of input" },
		{ S("\"\\u12"), "unexpected end of input" },
		{ S("\"\\ud83d"), "unexpected end of input" },
		{ S("\"\\ud83d\\"), "unexpected end of input" },
		{ S("\"\xe2\x82"), "unexpected end of input" }, /* cut inside a character */
		{ S("tru"), "at byte 3: unexpected end of input" },
		{ S("-"), "unexpected end of input" },
		{ S("[1,]"), "invalid JSON at byte 3: trailing comma before ']'" },
		{ S("{\"a\":1,}"), "invalid JSON at byte 7: trailing comma before '}'" },
		{ S("[,1]"), "at byte 1: expected a value, found ','" },
		{ S("{,}"), "at byte 1: expected a string as object key" },
		{ S("{\"a\" 1}"), "at byte 5: expected ':' after object key, found '1'" },
		{ S("{a:1}"), "at byte 1: expected a string as object key, found 'a'" },
		{ S("{'a':1}"), "at byte 1: expected a string as object key" },
		{ S("{1:1}"), "at byte 1: expected a string as object key" },
		{ S("{\"a\":}"), "at byte 5: expected a value, found '}'" },
		{ S("[1 2]"), "at byte 3: expected ',' or ']' after array element, found '2'" },
		{ S("{\"a\":1 \"b\":2}"), "at byte 7: expected ',' or '}' after object member" },
		{ S("[1}"), "at byte 2: expected ',' or ']' after array element, found '}'" },
		{ S("{\"a\":1]"), "at byte 6: expected ',' or '}' after object member" },
		{ S("[1]]"), "at byte 3: unexpected data after the value" },
		{ S("1 2"), "at byte 2: unexpected data after the value" },
		{ S("{} {}"), "at byte 3: unexpected data after the value" },
		{ S("[01]"), "at byte 1: leading zero in number" },
		{ S("-01"), "at byte 1: leading zero in number" },
		{ S("00"), "at byte 0: leading zero in number" },
		{ S("[-]"), "at byte 2: expected a digit after '-'" },
		{ S("[-a]"), "at byte 2: expected a digit after '-'" },
		{ S("[1.]"), "at byte 3: expected a digit after '.'" },
		{ S("[1.e5]"), "at byte 3: expected a digit after '.'" },
		{ S("[.5]"), "at byte 1: expected a value, found '.'" },
		{ S("[1e]"), "at byte 3: expected a digit in exponent" },
		{ S("[1e+]"), "at byte 4: expected a digit in exponent" },
		{ S("[+1]"), "at byte 1: expected a value, found '+'" },
		{ S("[0x10]"), "at byte 2: expected ',' or ']' after array element, found 'x'" },
		{ S("[Infinity]"), "expected a value, found 'I'" },
		{ S("[NaN]"), "expected a value, found 'N'" },
		{ S("truex"), "at byte 4: unexpected data after the value" },
		{ S("trUe"), "at byte 0: expected 'true'" },
		{ S("nul"), "unexpected end of input" },
		{ S("[nulL]"), "at byte 1: expected 'null'" },
		{ S("[fals]"), "at byte 1: expected 'false'" },
		{ S("\"a\tb\""), "invalid JSON at byte 2: control character in string, found byte 0x09" },
		{ S("\"a\nb\""), "at byte 2: control character in string" },
		{ S("\"a\0b\""), "at byte 2: control character in string, found byte 0x00" },
		{ S("\"\x1f\""), "at byte 1: control character in string" },
		{ S("\"\\x41\""), "at byte 1: invalid escape in string" },
		{ S("\"\\U0041\""), "at byte 1: invalid escape in string" },
		{ S("\"\\'\""), "at byte 1: invalid escape in string" },
		{ S("\"\\u12g4\""), "at byte 1: expected 4 hex digits after \\u" },
		{ S("\"\\u\""), "at byte 1: expected 4 hex digits after \\u" },
		{ S("\"\\ud83d\\u12\""), "at byte 7: expected 4 hex digits after \\u" },
		{ S("\xef\xbb\xbf{}"), "at byte 0: expected a value, found byte 0xef" }, /* BOM */
		{ S("/* c */ 1"), "at byte 0: expected a value, found '/'" },
		{ S("[1]\xff"), "at byte 3: unexpected data after the value, found byte 0xff" },
		{ S("[\xc3\xa9]"), "at byte 1: expected a value, found byte 0xc3" }, /* UTF-8 outside strings */
		{ S("\x0c{}"), "at byte 0: expected a value" }, /* form feed is not JSON whitespace */
		{ S("{}\x00"), "at byte 2: unexpected data after the value, found byte 0x00" },
	};
	run_cases(cs, sizeof(cs) / sizeof(cs[0]), 64);
}

static void invalid_utf8(void)
{
	static const struct jcase cs[] = {
		{ S("\"\x80\""), "invalid UTF-8 at byte 1: unexpected continuation byte" },
		{ S("\"a\xbf\""), "invalid UTF-8 at byte 2: unexpected continuation byte" },
		{ S("\"\xc0\x80\""), "invalid UTF-8 at byte 1: overlong encoding" },  /* NUL, overlong */
		{ S("\"\xc1\xbf\""), "invalid UTF-8 at byte 1: overlong encoding" },
		{ S("\"\xe0\x80\x80\""), "invalid UTF-8 at byte 1: overlong encoding" },
		{ S("\"\xe0\x9f\xbf\""), "invalid UTF-8 at byte 1: overlong encoding" }, /* U+07FF in 3 */
		{ S("\"\xf0\x80\x80\x80\""), "invalid UTF-8 at byte 1: overlong encoding" },
		{ S("\"\xf0\x8f\xbf\xbf\""), "invalid UTF-8 at byte 1: overlong encoding" }, /* U+FFFF in 4 */
		{ S("\"\xed\xa0\x80\""), "invalid UTF-8 at byte 1: surrogate code point" }, /* U+D800 */
		{ S("\"\xed\xbf\xbf\""), "invalid UTF-8 at byte 1: surrogate code point" }, /* U+DFFF */
		{ S("\"\xed\xa0\xbd\xed\xb8\x80\""), "invalid UTF-8 at byte 1: surrogate" }, /* CESU-8 */
		{ S("\"\xf4\x90\x80\x80\""), "invalid UTF-8 at byte 1: code point above U+10FFFF" },
		{ S("\"\xf5\x80\x80\x80\""), "invalid UTF-8 at byte 1: code point above U+10FFFF" },
		{ S("\"\xf7\xbf\xbf\xbf\""), "invalid UTF-8 at byte 1: code point above U+10FFFF" },
		{ S("\"\xf8\x88\x80\x80\x80\""), "invalid UTF-8 at byte 1: invalid byte" },
		{ S("\"\xfe\""), "invalid UTF-8 at byte 1: invalid byte" },
		{ S("\"\xff\""), "invalid UTF-8 at byte 1: invalid byte" },
		{ S("\"\xc2\""), "invalid UTF-8 at byte 1: truncated sequence" },
		{ S("\"\xc2\x41\""), "invalid UTF-8 at byte 1: truncated sequence" },
		{ S("\"\xe2\x82\""), "invalid UTF-8 at byte 1: truncated sequence" },
		{ S("\"\xe2\x28\xa1\""), "invalid UTF-8 at byte 1: truncated sequence" },
		{ S("\"\xf0\x9f\x98\""), "invalid UTF-8 at byte 1: truncated sequence" },
		{ S("\"\xf0\x9f\x98 \""), "invalid UTF-8 at byte 1: truncated sequence" },
		{ S("{\"k\xff\":1}"), "invalid UTF-8 at byte 3" }, /* in a key */
		{ S("\"\\ud800\""), "invalid UTF-8 at byte 1: lone surrogate in \\u escape" },
		{ S("\"\\udc00\""), "invalid UTF-8 at byte 1: lone surrogate in \\u escape" },
		{ S("\"\\uDFFF\""), "invalid UTF-8 at byte 1: lone surrogate" },
		{ S("\"\\ud800x\""), "invalid UTF-8 at byte 1: lone surrogate" },
		{ S("\"ab\\ud800\\u0041\""), "invalid UTF-8 at byte 3: lone surrogate" },
		{ S("\"\\ud800\\ud800\""), "invalid UTF-8 at byte 1: lone surrogate" },
		{ S("\"\\ud800\\n\""), "invalid UTF-8 at byte 1: lone surrogate" },
		{ S("\"\\ude00\\ud83d\""), "invalid UTF-8 at byte 1: lone surrogate" }, /* reversed pair */
	};
	run_cases(cs, sizeof(cs) / sizeof(cs[0]), 64);
}

/* "[[[...]]]" n deep, or objects and arrays alternating: {"a":[{"a":[...]}]}. */
static char *nest(int n, int mixed, size_t *len)
{
	char *b = malloc((size_t)n * 10 + 16), *p = b;
	for (int i = 0; i < n; i++) {
		if (mixed && i % 2 == 0) {
			memcpy(p, "{\"a\":", 5);
			p += 5;
		} else {
			*p++ = '[';
		}
	}
	*p++ = '0';
	for (int i = n - 1; i >= 0; i--)
		*p++ = mixed && i % 2 == 0 ? '}' : ']';
	*len = (size_t)(p - b);
	return b;
}

static void depth_limit(void)
{
	static const struct { int depth, max, mixed; const char *want; } cs[] = {
		{ 64, 64, 0, NULL },
		{ 65, 64, 0, "nesting deeper than 64 at byte 64" },
		{ 64, 64, 1, NULL },
		{ 65, 64, 1, "nesting deeper than 64 at byte " },
		{ 1, 1, 0, NULL },
		{ 2, 1, 0, "nesting deeper than 1 at byte 1" },
		{ 1, 0, 0, "nesting deeper than 0 at byte 0" },
		{ 200, 200, 1, NULL }, /* past one 64-bit word of the container stack */
		{ 201, 200, 1, "nesting deeper than 200" },
		{ 4096, 100000, 1, NULL }, /* max_depth is clamped to JSON_DEPTH_MAX */
		{ 4097, 100000, 1, "nesting deeper than 4096 at byte " },
		{ 100000, 100000, 0, "nesting deeper than 4096 at byte 4096" },
	};
	for (size_t i = 0; i < sizeof(cs) / sizeof(cs[0]); i++) {
		size_t len;
		char *b = nest(cs[i].depth, cs[i].mixed, &len), err[128] = "";
		int rc = json_check(b, len, cs[i].max, err, sizeof(err));
		if (!cs[i].want)
			CHECK(rc == 0, "depth %d max %d: %s", cs[i].depth, cs[i].max, err);
		else
			CHECK(rc == -1 && strstr(err, cs[i].want), "depth %d max %d: rc %d '%s'",
			      cs[i].depth, cs[i].max, rc, err);
		free(b);
	}
	/* scalars need no depth at all; a negative limit counts as 0 */
	CHECK(json_check("1", 1, 0, NULL, 0) == 0, "scalar at max_depth 0");
	CHECK(json_check("[]", 2, -5, NULL, 0) == -1, "array at max_depth -5");
	/* the depth error names the byte of the container that goes too deep */
	char err[128];
	CHECK(json_check(S("{\"a\":[1,{\"b\":[]}]}"), 2, err, sizeof(err)) == -1 &&
	      !strcmp(err, "nesting deeper than 2 at byte 8"), "got '%s'", err);
}

/* Strings of every length around the 8- and 16-byte scanning steps, with a
 * special byte at every position: the fast paths must not skip over it. */
static void scan_boundaries(void)
{
	static const struct { const char *bytes; size_t n; const char *want; } specials[] = {
		{ "\"", 1, "unexpected data after the value" }, /* ends the string early */
		{ "\\n", 2, NULL },
		{ "\\u00e9", 6, NULL },
		{ "\t", 1, "control character in string" },
		{ "\x01", 1, "control character in string" },
		{ "\x7f", 1, NULL },
		{ "\xc3\xa9", 2, NULL },
		{ "\xff", 1, "invalid UTF-8 at byte" },
		{ "\xc3", 1, "invalid UTF-8 at byte" },
		{ "\xed\xa0\x80", 3, "invalid UTF-8 at byte" },
	};
	char buf[128], err[160];
	int bad = 0;
	for (size_t s = 0; s < sizeof(specials) / sizeof(specials[0]); s++) {
		for (size_t len = 0; len <= 40; len++) {
			for (size_t at = 0; at <= len; at++) {
				size_t n = 0;
				buf[n++] = '"';
				memset(buf + n, 'a', at);
				n += at;
				memcpy(buf + n, specials[s].bytes, specials[s].n);
				n += specials[s].n;
				memset(buf + n, 'b', len - at);
				n += len - at;
				buf[n++] = '"';
				int rc = json_check(buf, n, 8, err, sizeof(err));
				int ok = specials[s].want ? rc == -1 && strstr(err, specials[s].want) : rc == 0;
				if (ok && specials[s].want && specials[s].bytes[0] != '"') {
					char want_at[64];
					snprintf(want_at, sizeof(want_at), "at byte %zu", at + 1);
					ok = strstr(err, want_at) != NULL;
				}
				if (!ok && bad++ < 5)
					CHECK(ok, "special %zu len %zu at %zu: rc %d '%s'", s, len, at, rc, err);
				t_case_failed |= !ok;
			}
		}
	}
	CHECK(bad == 0, "%d failures", bad);
}

static void utf8_check(void)
{
	static const struct { const char *in; size_t len; int rc; size_t bad_at; } cs[] = {
		{ S(""), 0, 0 },
		{ S("plain ascii"), 0, 0 },
		{ S("\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf"), 0, 0 },
		{ S("\xf0\x90\x80\x80\xf4\x8f\xbf\xbf"), 0, 0 },
		{ S("\x00\x7f"), 0, 0 }, /* NUL and DEL are valid UTF-8 */
		{ S("abc\x80"), -1, 3 },
		{ S("\xc0\x80"), -1, 0 },
		{ S("ab\xe0\x80\x80"), -1, 2 },
		{ S("\xed\xa0\x80"), -1, 0 },
		{ S("x\xf4\x90\x80\x80"), -1, 1 },
		{ S("\xf5"), -1, 0 },
		{ S("\xff"), -1, 0 },
		{ S("ok \xe2\x82"), -1, 3 },        /* truncated at the end */
		{ S("ok \xe2\x82z"), -1, 3 },
		{ S("0123456789abcdef0123456789\xc3"), -1, 26 },
		{ S("0123456789abcdef0123456789\xc3\xa9\xe6\x9d\xb1 0123456789abcdef\x80"), -1, 48 },
	};
	for (size_t i = 0; i < sizeof(cs) / sizeof(cs[0]); i++) {
		size_t at = 12345;
		int rc = json_utf8_check(cs[i].in, cs[i].len, &at);
		CHECK(rc == cs[i].rc && (rc == 0 || at == cs[i].bad_at),
		      "case %zu: rc %d at %zu, want rc %d at %zu", i, rc, at, cs[i].rc, cs[i].bad_at);
	}
	CHECK(json_utf8_check(S("\xff"), NULL) == -1, "bad_at may be NULL");
	CHECK(json_utf8_check(NULL, 0, NULL) == 0, "NULL, 0 is empty");
	/* every position of a long buffer */
	char buf[100];
	memset(buf, 'x', sizeof(buf));
	CHECK(json_utf8_check(buf, sizeof(buf), NULL) == 0, "all ascii");
	for (size_t i = 0; i < sizeof(buf); i++) {
		size_t at = 0;
		buf[i] = (char)0x80;
		int rc = json_utf8_check(buf, sizeof(buf), &at);
		buf[i] = 'x';
		if (rc != -1 || at != i) {
			CHECK(0, "0x80 at %zu: rc %d at %zu", i, rc, at);
			break;
		}
	}
}

static void decode(void)
{
	static const struct { const char *json; const char *want; size_t wlen; } cs[] = {
		{ "\"plain\"", S("plain") },
		{ "\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"", S("a\"b\\c/d\b\f\n\r\t") },
		{ "\"\\u0041\\u00e9\\u20ac\\uffff\"", S("A\xc3\xa9\xe2\x82\xac\xef\xbf\xbf") },
		{ "\"\\ud83d\\ude00!\"", S("\xf0\x9f\x98\x80!") },
		{ "\"\\udbff\\udfff\"", S("\xf4\x8f\xbf\xbf") },
		{ "\"nul\\u0000in\"", S("nul\0in") },
		{ "\"\xe6\x9d\xb1\\n\"", S("\xe6\x9d\xb1\n") },
	};
	for (size_t i = 0; i < sizeof(cs) / sizeof(cs[0]); i++) {
		struct json_cur c;
		struct json_str s;
		char out[64];
		size_t len = 0;
		json_cur_init(&c, cs[i].json, strlen(cs[i].json), 4);
		REQUIRE(json_cur_peek(&c) == JSON_STRING, "case %zu: not a string", i);
		REQUIRE(json_cur_string(&c, &s) == 0 && json_cur_finish(&c) == 0, "case %zu", i);
		CHECK(json_str_decode(&s, out, sizeof(out), &len) == 0 && len == cs[i].wlen &&
		      !memcmp(out, cs[i].want, len) && out[len] == '\0', "case %zu: got %zu bytes", i, len);
		/* exactly enough room (len + NUL) works; one byte less does not */
		CHECK(json_str_decode(&s, out, cs[i].wlen + 1, NULL) == 0, "case %zu: exact fit", i);
		CHECK(json_str_decode(&s, out, cs[i].wlen, NULL) == -1, "case %zu: one short", i);
	}
}

static void cursor(void)
{
	const char *doc = " {\"a\": [1, \"x\", {}], \"b\": -2.5e3 , \"c\":null} ";
	struct json_cur c;
	struct json_str key, str;
	const char *num;
	size_t nlen;
	int n = 0, m = 0;
	json_cur_init(&c, doc, strlen(doc), 2);
	REQUIRE(json_cur_peek(&c) == JSON_OBJECT && json_cur_enter(&c) == 0, "object");
	REQUIRE(json_cur_member(&c, &n, &key) == 1 && key.len == 1 && key.s[0] == 'a', "a");
	REQUIRE(json_cur_peek(&c) == JSON_ARRAY && json_cur_enter(&c) == 0, "array");
	REQUIRE(json_cur_element(&c, &m) == 1 && json_cur_peek(&c) == JSON_NUMBER, "1");
	REQUIRE(json_cur_number(&c, &num, &nlen) == 0 && nlen == 1 && *num == '1', "1 text");
	REQUIRE(json_cur_element(&c, &m) == 1 && json_cur_peek(&c) == JSON_STRING, "x");
	REQUIRE(json_cur_string(&c, &str) == 0 && str.len == 1 && str.s[0] == 'x', "x text");
	REQUIRE(json_cur_element(&c, &m) == 1 && json_cur_peek(&c) == JSON_OBJECT, "{}");
	/* entering {} would be depth 3 > 2, but skipping it is checked the same way */
	REQUIRE(json_cur_skip(&c) == -1 && c.err == JSON_ERR_DEPTH, "depth 3 rejected by skip");
	char err[128];
	json_cur_errstr(&c, err, sizeof(err));
	CHECK(!strcmp(err, "nesting deeper than 2 at byte 17"), "got '%s'", err);
	CHECK(json_cur_element(&c, &m) == -1 && json_cur_peek(&c) == JSON_NONE, "sticky error");

	json_cur_init(&c, doc, strlen(doc), 3);
	n = m = 0;
	REQUIRE(json_cur_enter(&c) == 0 && json_cur_member(&c, &n, &key) == 1, "again");
	REQUIRE(json_cur_skip(&c) == 0, "skip the array");
	REQUIRE(json_cur_member(&c, &n, &key) == 1 && key.s[0] == 'b', "b");
	REQUIRE(json_cur_number(&c, &num, &nlen) == 0 && nlen == 6 && !memcmp(num, "-2.5e3", 6), "b");
	REQUIRE(json_cur_member(&c, &n, &key) == 1 && key.s[0] == 'c', "c");
	REQUIRE(json_cur_peek(&c) == JSON_NULL && json_cur_skip(&c) == 0, "null");
	REQUIRE(json_cur_member(&c, &n, &key) == 0 && c.depth == 0, "end of object");
	CHECK(json_cur_finish(&c) == 0, "finish");
}

int main(void)
{
	RUN(valid_values);
	RUN(valid_utf8);
	RUN(invalid_syntax);
	RUN(invalid_utf8);
	RUN(depth_limit);
	RUN(scan_boundaries);
	RUN(utf8_check);
	RUN(decode);
	RUN(cursor);
	TEST_EXIT();
}
