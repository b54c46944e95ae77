/* evaluator/heuristic.c - check metric settings, and score items without a model */
#include "metric.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* ---- small text helpers --------------------------------------------------- */

static inline unsigned char lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static inline int is_alnum(unsigned char c)
{
	return (unsigned)((c | 0x20) - 'a') < 26 || (unsigned)(c - '0') < 10;
}

/* A byte of a word: ASCII letters and digits, and every byte of a multi-byte
 * UTF-8 character, so that "café" or "東京" stays one word. */
static inline int is_word_byte(unsigned char c)
{
	return c >= 0x80 || is_alnum(c);
}


static size_t utf8_chars(const char *s, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += ((unsigned char)s[i] & 0xC0) != 0x80;
	return k;
}

static void result(struct metric_result *r, double score, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void result(struct metric_result *r, double score, const char *fmt, ...)
{
	va_list ap;
	r->score = score;
	r->error = 0;
	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
	va_end(ap);
}

int metric_error(struct metric_result *r, const char *fmt, ...)
{
	va_list ap;
	r->score = NAN;
	r->error = 1;
	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- settings ------------------------------------------------------------- */

static int name_ok(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (!is_alnum((unsigned char)s[n]) && s[n] != '_' && s[n] != '.' && s[n] != '-')
			return 0;
	return n >= 1 && n <= 64;
}

/* RFC 6901 syntax: "" or "/..." with '~' only in ~0 and ~1. */
static int pointer_ok(const char *p)
{
	if (*p && *p != '/')
		return 0;
	for (; *p; p++)
		if (*p == '~' && p[1] != '0' && p[1] != '1')
			return 0;
	return 1;
}

int metric_prepare(struct metric *m, char *errstr, size_t errstr_size)
{
	if (!m->name || !name_ok(m->name)) {
		snprintf(errstr, errstr_size,
		         "metric '%.64s': a name is 1 to 64 of A-Z a-z 0-9 _ . -",
		         m->name ? m->name : "");
		return -1;
	}
	const char *name = m->name;
	if (m->kind < METRIC_JUDGE || m->kind > METRIC_GROUNDING) {
		snprintf(errstr, errstr_size, "metric '%s': unknown kind %d", name, (int)m->kind);
		return -1;
	}
	if (m->field && !pointer_ok(m->field)) {
		snprintf(errstr, errstr_size, "metric '%s': field '%.200s' is not a JSON pointer "
		         "(RFC 6901: \"/output/answer\")", name, m->field);
		return -1;
	}
	switch (m->kind) {
	case METRIC_JUDGE:
		if (m->judge < JUDGE_CUSTOM || m->judge > JUDGE_STYLE) {
			snprintf(errstr, errstr_size, "metric '%s': unknown judge %d", name, (int)m->judge);
			return -1;
		}
		if (!isfinite(m->lo) || !isfinite(m->hi) || !(m->lo < m->hi)) {
			snprintf(errstr, errstr_size, "metric '%s': score range [%g, %g] is empty "
			         "(lo must be below hi)", name, m->lo, m->hi);
			return -1;
		}
		if ((m->judge == JUDGE_CUSTOM || m->judge == JUDGE_STYLE) && (!m->rubric || !*m->rubric)) {
			snprintf(errstr, errstr_size, "metric '%s' has no rubric", name);
			return -1;
		}
		break;
	case METRIC_REGEX:
	case METRIC_CONTAINS:
		if (!m->pattern || !*m->pattern) {
			snprintf(errstr, errstr_size, "metric '%s': %s needs a pattern", name,
			         m->kind == METRIC_REGEX ? "regex" : "contains");
			return -1;
		}
		if (m->kind == METRIC_REGEX) {
			if (m->re_ready) {
				regfree(&m->re);
				m->re_ready = 0;
			}
			int flags = REG_EXTENDED | REG_NOSUB | (m->icase ? REG_ICASE : 0);
			int rc = regcomp(&m->re, m->pattern, flags);
			if (rc) {
				char why[160];
				regerror(rc, &m->re, why, sizeof(why));
				snprintf(errstr, errstr_size, "metric '%s': bad pattern '%.200s': %s",
				         name, m->pattern, why);
				return -1;
			}
			m->re_ready = 1;
		}
		break;
	case METRIC_REFUSAL:
		if (m->phrases && m->nphrases <= 0) {
			snprintf(errstr, errstr_size, "metric '%s': the list of refusal phrases is empty", name);
			return -1;
		}
		for (int i = 0; m->phrases && i < m->nphrases; i++)
			if (!m->phrases[i] || !*m->phrases[i]) {
				snprintf(errstr, errstr_size, "metric '%s': refusal phrase %d is empty", name, i + 1);
				return -1;
			}
		break;
	default:
		break;
	}
	return 0;
}

void metric_release(struct metric *m)
{
	if (!m)
		return;
	free(m->name);
	free(m->rubric);
	free(m->field);
	free(m->pattern);
	if (m->re_ready)
		regfree(&m->re);
	for (int i = 0; m->phrases && i < m->nphrases; i++)
		free(m->phrases[i]);
	free(m->phrases);
	m->name = m->rubric = m->field = m->pattern = NULL;
	m->phrases = NULL;
	m->nphrases = 0;
	m->re_ready = 0;
}

/* Where the item's field was looked up: item_fields fills it->at, an item
 * made by hand may leave it to the defaults. */
#define AT(it, f, def) ((it)->at.f ? (it)->at.f : (def))

/* ---- the text a metric looks at ----------------------------------------------- */

struct text {
	const char *s;      /* NULL: absent */
	size_t len;
	char *owned;        /* s when it had to be printed from JSON */
	const char *label;  /* "answer", or the field's pointer, for reasons */
	const char *at;     /* where it was looked up */
};

/* The metric's field (m->field, else the answer) as text.  Returns 0, or -1
 * when out of memory. */
static int field_text(const struct metric *m, const struct eval_item *it, struct text *t)
{
	memset(t, 0, sizeof(*t));
	if (!m->field) {
		t->label = "answer";
		t->at = AT(it, answer, "/output/answer");
		t->s = it->answer;
	} else {
		t->label = t->at = m->field;
		const cJSON *v = json_pointer(it->record, m->field);
		if (cJSON_IsString(v)) {
			t->s = v->valuestring;
		} else if (v && !cJSON_IsNull(v)) {
			t->owned = cJSON_PrintUnformatted(v);
			if (!t->owned)
				return -1;
			t->s = t->owned;
		}
	}
	t->len = t->s ? strlen(t->s) : 0;
	return 0;
}

static void text_missing(struct metric_result *r, const struct text *t)
{
	if (!strcmp(t->label, "answer"))
		metric_error(r, "no answer at %.200s", t->at);
	else
		metric_error(r, "no value at %.200s", t->at);
}

/* ---- EMPTY ------------------------------------------------------------------- */

/* Length of the white space character at s[0..n) (ASCII, and the Unicode
 * spaces, zero-width space and BOM that generated text carries), else 0. */
static size_t space_at(const unsigned char *s, size_t n)
{
	if (*s == ' ' || (*s >= '\t' && *s <= '\r'))
		return 1;
	if (n >= 2 && s[0] == 0xC2 && (s[1] == 0xA0 || s[1] == 0x85))
		return 2;
	if (n >= 3 && s[0] == 0xE2 && s[1] == 0x80 &&
	    ((s[2] >= 0x80 && s[2] <= 0x8B) || s[2] == 0xA8 || s[2] == 0xA9 || s[2] == 0xAF))
		return 3;
	if (n >= 3 && ((s[0] == 0xE2 && s[1] == 0x81 && s[2] == 0x9F) ||
	               (s[0] == 0xE3 && s[1] == 0x80 && s[2] == 0x80) ||
	               (s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF)))
		return 3;
	return 0;
}

static int only_space(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, k;
	while (i < n && (k = space_at(p + i, n - i)) > 0)
		i += k;
	return i == n;
}

/* ---- REFUSAL and CONTAINS ------------------------------------------------------- */

/* Built-in refusal phrases, lowercase; the apostrophe also matches a
 * typographic one (U+2018, U+2019).  They cover declining ("i cannot help",
 * "i can't help", "i can't assist", "i cannot provide", "i must decline"),
 * inability ("i am unable to", "i'm unable to", "i'm not able to",
 * "i am not able to"), the apologetic opener ("i'm sorry, but",
 * "i am sorry, but"), the model disclaimer ("as an ai"), and a RAG
 * service's "not in the documents" ("i could not find information",
 * "i couldn't find any information", "i don't have enough information",
 * "i do not have enough information", "i don't have access to"). */
static const char *const refusal_phrases[] = {
	"i cannot help", "i can't help", "i can't assist", "i cannot assist",
	"i cannot provide", "i can't provide", "i must decline",
	"i am unable to", "i'm unable to", "i'm not able to", "i am not able to",
	"i'm sorry, but", "i am sorry, but", "as an ai",
	"i could not find information", "i couldn't find any information",
	"i don't have enough information", "i do not have enough information",
	"i don't have access to",
};

/* Bytes of h[0..n) that phrase ph matches at its start (ASCII case ignored,
 * "'" also matching U+2018/U+2019), or 0. */
static size_t phrase_at(const char *h, size_t n, const char *ph)
{
	size_t i = 0;
	for (; *ph; ph++) {
		unsigned char c = (unsigned char)*ph;
		if (c == '\'' && i + 2 < n && (unsigned char)h[i] == 0xE2 &&
		    (unsigned char)h[i + 1] == 0x80 &&
		    ((unsigned char)h[i + 2] == 0x98 || (unsigned char)h[i + 2] == 0x99)) {
			i += 3;
			continue;
		}
		if (i >= n || lower((unsigned char)h[i]) != lower(c))
			return 0;
		i++;
	}
	return i;
}

/* 1 when phrase occurs in h[0..n) as whole words: it does not start or end
 * inside a word of h (so "as an ai" is not found in "as an aid"). */
static int has_phrase(const char *h, size_t n, const char *ph)
{
	size_t plen = strlen(ph);
	if (!plen)
		return 0; /* metric_prepare refuses empty phrases */
	unsigned char first = lower((unsigned char)ph[0]);
	int word_start = is_word_byte(first), word_end = is_word_byte((unsigned char)ph[plen - 1]);
	for (size_t i = 0; i < n; i++) {
		if (lower((unsigned char)h[i]) != first && first != '\'')
			continue;
		if (word_start && i > 0 && is_word_byte((unsigned char)h[i - 1]))
			continue;
		size_t k = phrase_at(h + i, n - i, ph);
		if (!k)
			continue;
		if (word_end && i + k < n && is_word_byte((unsigned char)h[i + k]))
			continue;
		return 1;
	}
	return 0;
}

static int contains_icase(const char *h, size_t n, const char *needle, size_t m)
{
	if (m > n)
		return 0;
	unsigned char f = lower((unsigned char)needle[0]);
	for (size_t i = 0; i + m <= n; i++) {
		if (lower((unsigned char)h[i]) != f)
			continue;
		size_t k = 1;
		while (k < m && lower((unsigned char)h[i + k]) == lower((unsigned char)needle[k]))
			k++;
		if (k == m)
			return 1;
	}
	return 0;
}

/* ---- GROUNDING --------------------------------------------------------------- */

/* Sorted for bsearch; lowercase.  Words under 3 letters are dropped before
 * anyone looks here, and contractions split at the apostrophe ("don't" is
 * "don" and "t"), hence "don", "isn", ... */
static const char *const stop_words[] = {
	"about", "above", "after", "again", "against", "all", "also", "although", "among", "and",
	"another", "any", "anybody", "anyone", "anything", "are", "aren", "around", "because",
	"been", "before", "being", "below", "between", "both", "but", "can", "cannot", "could",
	"couldn", "did", "didn", "does", "doesn", "doing", "don", "down", "during", "each",
	"either", "else", "even", "ever", "every", "few", "for", "from", "further", "had", "hadn",
	"has", "hasn", "have", "haven", "having", "her", "here", "hers", "herself", "him",
	"himself", "his", "how", "however", "into", "isn", "its", "itself", "just", "least",
	"less", "let", "may", "might", "mine", "more", "most", "much", "must", "mustn", "myself",
	"neither", "nor", "not", "now", "off", "once", "only", "other", "others", "our", "ours",
	"ourselves", "out", "over", "own", "per", "please", "same", "shall", "shan", "she",
	"should", "shouldn", "since", "some", "such", "than", "that", "the", "their", "theirs",
	"them", "themselves", "then", "there", "these", "they", "this", "those", "though",
	"through", "thus", "too", "under", "until", "upon", "very", "via", "was", "wasn", "were",
	"weren", "what", "whatever", "when", "where", "whether", "which", "while", "who", "whom",
	"whose", "why", "will", "with", "within", "without", "won", "would", "wouldn", "yes",
	"yet", "you", "your", "yours", "yourself", "yourselves",
};
#define STOP_MAX 10 /* the longest stop word */

static int cmp_word(const void *key, const void *elem)
{
	return strcmp(key, *(const char *const *)elem);
}

/* w[0..n) is lowercase-able ASCII or not; non-ASCII words are never stop words. */
static int is_stop_word(const char *w, size_t n)
{
	if (n > STOP_MAX)
		return 0;
	char buf[STOP_MAX + 1];
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)w[i] >= 0x80)
			return 0;
		buf[i] = (char)lower((unsigned char)w[i]);
	}
	buf[n] = '\0';
	return bsearch(buf, stop_words, sizeof(stop_words) / sizeof(stop_words[0]),
	               sizeof(stop_words[0]), cmp_word) != NULL;
}

/* A word of a text, with the hash of its lowercased bytes. */
struct word {
	const char *p;
	size_t len;
	uint32_t hash;
};

/* The next word of s[*pos..n) that has 3 characters or more.  Returns 0 at
 * the end. */
static int next_word(const char *s, size_t n, size_t *pos, struct word *w)
{
	size_t i = *pos;
	for (;;) {
		while (i < n && !is_word_byte((unsigned char)s[i]))
			i++;
		if (i >= n) {
			*pos = i;
			return 0;
		}
		size_t start = i;
		uint32_t h = 2166136261u; /* FNV-1a */
		int wide = 0;
		for (; i < n; i++) {
			unsigned char c = (unsigned char)s[i];
			if (!is_word_byte(c))
				break;
			wide |= c >= 0x80;
			h = (h ^ lower(c)) * 16777619u;
		}
		size_t len = i - start;
		if (len >= 3 && len <= UINT32_MAX && (!wide || utf8_chars(s + start, len) >= 3)) {
			w->p = s + start;
			w->len = len;
			w->hash = h;
			*pos = i;
			return 1;
		}
	}
}

/* A set of words by reference (no copies), ASCII case ignored: open
 * addressing with linear probing in a power-of-two table. */
struct wslot {
	const char *p;   /* NULL: empty */
	uint32_t len;
	uint32_t hash;
	int state;       /* grounding_count's: a stop word, or a content word missing or found */
};

struct wset {
	struct wslot *slot;
	size_t mask;
};

static int same_word(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
			return 0;
	return 1;
}

/* The slot that holds w, or the empty slot where it would go. */
static struct wslot *wset_find(const struct wset *s, const struct word *w)
{
	size_t i = w->hash & s->mask;
	for (;;) {
		struct wslot *e = &s->slot[i];
		if (!e->p || (e->hash == w->hash && e->len == w->len && same_word(e->p, w->p, w->len)))
			return e;
		i = (i + 1) & s->mask;
	}
}

static void wslot_set(struct wslot *e, const struct word *w)
{
	e->p = w->p;
	e->len = (uint32_t)w->len;
	e->hash = w->hash;
}

/* A table for the words of a text of n bytes, filled at most one half: a
 * word of 3 bytes or more and the byte after it take 4 bytes at least. */
static size_t table_size(size_t n)
{
	size_t k = n / 4 + 1, sz = 16;
	while (sz < 2 * k)
		sz <<= 1;
	return sz;
}

/* Counts the answer's distinct content words (*total) and how many of them
 * occur in the context (*found).  The answer's words go into a small table
 * (answers are short); the context is scanned once against it, without a
 * table of its own, and the scan stops once every word is found.  Returns
 * 0, or -1 when out of memory. */
static int grounding_count(const char *answer, const char *context, size_t *found, size_t *total)
{
	enum { STOP = 1, MISSING = 2, FOUND = 3 };
	*found = *total = 0;
	if (!answer)
		return 0;
	size_t an = strlen(answer), cn = context ? strlen(context) : 0;
	size_t asz = table_size(an);
	struct wslot *slots = calloc(asz, sizeof(*slots));
	if (!slots)
		return -1;
	struct wset aset = { slots, asz - 1 };
	struct word w;
	size_t pos = 0;
	while (next_word(answer, an, &pos, &w)) {
		struct wslot *e = wset_find(&aset, &w);
		if (e->p)
			continue; /* seen: counted already, or a stop word */
		wslot_set(e, &w);
		e->state = is_stop_word(w.p, w.len) ? STOP : MISSING;
		*total += e->state == MISSING;
	}
	pos = 0;
	while (*found < *total && pos < cn && next_word(context, cn, &pos, &w)) {
		struct wslot *e = wset_find(&aset, &w);
		if (e->p && e->state == MISSING) {
			e->state = FOUND;
			++*found;
		}
	}
	free(slots);
	return 0;
}

double grounding_score(const char *answer, const char *context)
{
	size_t found, total;
	if (grounding_count(answer, context, &found, &total))
		return NAN; /* out of memory */
	return total ? (double)found / (double)total : -1;
}

/* ---- scoring ------------------------------------------------------------------- */

/* A figure in ms for a reason: whole ms, with a decimal below 10 ms. */
static void put_ms(struct metric_result *r, const char *what, double ms)
{
	result(r, ms, fabs(ms) < 10 ? "%s %.1f ms" : "%s %.0f ms", what, ms);
}

static void score_text(const struct metric *m, const struct text *t, struct metric_result *r)
{
	const char *lb = t->label;
	switch (m->kind) {
	case METRIC_LENGTH: {
		size_t k = utf8_chars(t->s, t->len);
		result(r, (double)k, "%s has %zu character%s", lb, k, k == 1 ? "" : "s");
		break;
	}
	case METRIC_EMPTY:
		if (t->len == 0)
			result(r, 1, "%s is empty", lb);
		else if (only_space(t->s, t->len))
			result(r, 1, "%s is only white space", lb);
		else
			result(r, 0, "%s has text", lb);
		break;
	case METRIC_REFUSAL: {
		int n = m->phrases ? m->nphrases : (int)(sizeof(refusal_phrases) / sizeof(refusal_phrases[0]));
		for (int i = 0; i < n; i++) {
			const char *ph = m->phrases ? m->phrases[i] : refusal_phrases[i];
			if (has_phrase(t->s, t->len, ph)) {
				size_t pl = strlen(ph);
				result(r, 1, "%s contains the refusal phrase \"%.*s\"", lb,
				       (int)json_utf8_cut(ph, pl, 160), ph);
				return;
			}
		}
		result(r, 0, "%s has no refusal phrase", lb);
		break;
	}
	case METRIC_REGEX: {
		int pl = (int)json_utf8_cut(m->pattern, strlen(m->pattern), 160);
		int rc = regexec(&m->re, t->s, 0, NULL, 0);
		if (rc == 0)
			result(r, 1, "%s matches '%.*s'", lb, pl, m->pattern);
		else if (rc == REG_NOMATCH)
			result(r, 0, "%s does not match '%.*s'", lb, pl, m->pattern);
		else {
			char why[128];
			regerror(rc, &m->re, why, sizeof(why));
			metric_error(r, "regex failed on %s: %s", lb, why);
		}
		break;
	}
	case METRIC_CONTAINS: {
		size_t n = strlen(m->pattern);
		int pl = (int)json_utf8_cut(m->pattern, n, 160);
		int yes = m->icase ? contains_icase(t->s, t->len, m->pattern, n)
		                   : memmem(t->s, t->len, m->pattern, n) != NULL;
		result(r, yes, "%s %s '%.*s'%s", lb, yes ? "contains" : "does not contain", pl,
		       m->pattern, m->icase ? " (ignoring case)" : "");
		break;
	}
	case METRIC_VALID_JSON: {
		if (only_space(t->s, t->len)) {
			result(r, 0, "%s is not JSON: it is empty", lb);
			break;
		}
		/* The length counts the NUL: cJSON's end check wants to see it. */
		const char *end = NULL;
		cJSON *v = cJSON_ParseWithLengthOpts(t->s, t->len + 1, &end, 1);
		if (v) {
			cJSON_Delete(v);
			result(r, 1, "%s is one valid JSON value", lb);
		} else {
			size_t at = end && end >= t->s && end <= t->s + t->len ? (size_t)(end - t->s) : 0;
			result(r, 0, "%s is not valid JSON (at byte %zu)", lb, at);
		}
		break;
	}
	default:
		break;
	}
}

int heuristic_score(const struct metric *m, const struct eval_item *it, struct metric_result *r)
{
	memset(r, 0, sizeof(*r));
	switch (m->kind) {
	case METRIC_LENGTH:
	case METRIC_EMPTY:
	case METRIC_REFUSAL:
	case METRIC_REGEX:
	case METRIC_CONTAINS:
	case METRIC_VALID_JSON: {
		if (m->kind == METRIC_REGEX && !m->re_ready) {
			metric_error(r, "metric '%s' is not prepared", m->name ? m->name : "");
			return -1;
		}
		if (m->kind == METRIC_CONTAINS && (!m->pattern || !*m->pattern)) {
			metric_error(r, "metric '%s' has no pattern", m->name ? m->name : "");
			return -1;
		}
		struct text t;
		if (field_text(m, it, &t)) {
			metric_error(r, "out of memory");
			return 0;
		}
		if (!t.s && m->kind == METRIC_EMPTY)
			result(r, 1, "%s is missing", t.label);
		else if (!t.s)
			text_missing(r, &t);
		else
			score_text(m, &t, r);
		free(t.owned);
		return 0;
	}
	case METRIC_TOKENS:
		if (isnan(it->tokens))
			metric_error(r, "no token count at %.200s", AT(it, tokens, "/usage/total_tokens"));
		else
			result(r, it->tokens, "%.0f tokens", it->tokens);
		return 0;
	case METRIC_LATENCY:
		if (isnan(it->latency_ms))
			metric_error(r, "no latency at %.200s", AT(it, latency, "/latency_ms/total"));
		else
			put_ms(r, "latency", it->latency_ms);
		return 0;
	case METRIC_TTFT:
		if (isnan(it->ttft_ms))
			metric_error(r, "no time to first token at %.200s",
			           AT(it, ttft, "/latency_ms/time_to_first_token"));
		else
			put_ms(r, "time to first token", it->ttft_ms);
		return 0;
	case METRIC_GROUNDING: {
		if (!it->answer) {
			metric_error(r, "no answer at %.200s", AT(it, answer, "/output/answer"));
			return 0;
		}
		if (!it->context) {
			metric_error(r, "no context at %.200s", AT(it, context, "/output/context"));
			return 0;
		}
		size_t found, total;
		if (grounding_count(it->answer, it->context, &found, &total))
			metric_error(r, "out of memory");
		else if (!total)
			metric_error(r, "answer has no content word");
		else
			result(r, (double)found / (double)total, "%zu of %zu content words found in the context",
			       found, total);
		return 0;
	}
	case METRIC_JUDGE:
	default:
		metric_error(r, "metric '%s' is not a heuristic", m->name ? m->name : "");
		return -1;
	}
}
