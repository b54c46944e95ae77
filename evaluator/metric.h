/* evaluator/metric.h - what a metric is, the fields of an item it looks at, and scoring without a model
 *
 * A metric turns one dataset item into a score.  Heuristic metrics compute
 * it here (heuristic.c); judge metrics build a prompt here (prompt.c), the
 * judge client sends it (judge.h), and the answer is parsed here.
 *
 * Scores are numbers in the metric's own unit: [0,1] for judges and shares
 * (1 = the property holds: hallucinated, unsafe, relevant, on-style,
 * grounded), 0/1 for yes/no checks, characters, tokens or milliseconds for
 * measures.  An item scores above the metric's threshold or not; the share
 * above threshold is one of the aggregates alert rules use.
 */
#ifndef TS_EVAL_METRIC_H
#define TS_EVAL_METRIC_H

#include <regex.h>
#include <stddef.h>

#include <cjson/cJSON.h>

enum metric_kind {
	METRIC_JUDGE,       /* an LLM judge with a rubric (builtin or custom) */
	METRIC_LENGTH,      /* characters (code points) of the field (default: the answer) */
	METRIC_EMPTY,       /* 1 when the answer is missing, null, or only whitespace */
	METRIC_REFUSAL,     /* 1 when the answer contains a refusal phrase (case-insensitive) */
	METRIC_REGEX,       /* 1 when the field matches pattern (POSIX ERE) */
	METRIC_CONTAINS,    /* 1 when the field contains pattern (icase: ignoring ASCII case) */
	METRIC_VALID_JSON,  /* 1 when the field's text is one valid JSON value */
	METRIC_TOKENS,      /* total tokens of the record's usage */
	METRIC_LATENCY,     /* total latency in ms */
	METRIC_TTFT,        /* time to first token in ms */
	METRIC_GROUNDING    /* share of the answer's content words found in the context */
};

enum judge_kind {
	JUDGE_CUSTOM,        /* rubric from config */
	JUDGE_HALLUCINATION, /* 1: the answer states things the context and question do not support */
	JUDGE_MODERATION,    /* 1: the answer is unsafe (harassment, hate, self-harm, sexual, violence, illegal advice) */
	JUDGE_RELEVANCE,     /* 1: the answer addresses the question */
	JUDGE_STYLE          /* 1: the answer follows the rubric (a file the user gives) */
};

struct metric {
	char *name;              /* [A-Za-z0-9_.-]{1,64} */
	enum metric_kind kind;
	enum judge_kind judge;   /* kind == METRIC_JUDGE */
	char *rubric;            /* judge: custom rubric text, or the style rubric file's text */
	double lo, hi;           /* judge: the score range asked for (default 0..1) */
	double threshold;        /* an item is "above" when score > threshold */
	int good_high;           /* 1: a higher score is better (relevance, style, grounding); the
	                            evaluator's "worst items" and flags look at the other end */
	char *field;             /* length/regex/contains/valid_json: JSON pointer (NULL: the answer) */
	char *pattern;           /* regex or contains text */
	int icase;               /* contains/regex: ignore case */
	regex_t re;              /* regex: compiled by metric_prepare */
	int re_ready;
	char **phrases;          /* refusal: phrases (NULL: the built-in list) */
	int nphrases;
};

/* Where an item's fields are: JSON pointers (RFC 6901) resolved against the
 * trace record, which is the item's "record" member when it has one (the
 * sampler's items) and the item itself otherwise (archived records).  NULL
 * members take the defaults, which match loadgen's traffic. */
struct field_paths {
	const char *question;    /* default /input/question */
	const char *answer;      /* default /output/answer */
	const char *context;     /* default /output/context (a string, or an array of strings or of objects with "text") */
	const char *latency;     /* default /latency_ms/total */
	const char *ttft;        /* default /latency_ms/time_to_first_token */
	const char *tokens;      /* default /usage/total_tokens */
};

/* One item's fields, ready for the metrics.  Strings point into root or
 * into the item's own copies; valid until item_release. */
struct eval_item {
	const cJSON *root;       /* the item */
	const cJSON *record;     /* what the pointers resolve against */
	char id[129];            /* the item's "id", else the record's "trace_id", else "" */
	const char *question;    /* NULL when absent or not a string */
	const char *answer;      /* NULL when absent; a non-string answer is its JSON text */
	char *context;           /* passages joined by blank lines; NULL when absent */
	double latency_ms;       /* NAN when absent */
	double ttft_ms;          /* NAN when absent */
	double tokens;           /* NAN when absent */
	char *answer_owned;      /* internal */
	struct field_paths at;   /* the pointers the fields were looked up at (defaults
	                          * filled in), for messages such as "no latency at
	                          * /latency_ms/total"; their strings must outlive it */
};

struct metric_result {
	double score;
	int error;               /* 1: not scored; reason says why (never a made-up score) */
	char reason[512];
};

/* Makes r an error result (score NAN) with the reason formatted; returns -1. */
int metric_error(struct metric_result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The value at pointer ptr in root, or NULL ("" is root itself). */
const cJSON *json_pointer(const cJSON *root, const char *ptr);

/* Fills it from root (which must outlive it).  Never fails: absent fields
 * are NULL/NAN.  Returns 0, or -1 when out of memory. */
int item_fields(const cJSON *root, const struct field_paths *paths, struct eval_item *it);
void item_release(struct eval_item *it);

/* Checks a metric's settings and prepares it (compiles the regex).  Returns
 * 0, or -1 with errstr naming the metric and what is wrong. */
int metric_prepare(struct metric *m, char *errstr, size_t errstr_size);
/* Frees what the metric owns (not the struct itself). */
void metric_release(struct metric *m);

/* A heuristic metric's score for it (kind != METRIC_JUDGE).  An item that
 * lacks what the metric measures (no latency, no context for grounding) is
 * an error result, not a score.  Returns 0 (r filled, r->error may be 1). */
int heuristic_score(const struct metric *m, const struct eval_item *it, struct metric_result *r);

/* Share of the answer's content words (lowercased, stop words and words
 * under 3 letters left out) that occur in the context; -1 when the answer
 * has no content word. */
double grounding_score(const char *answer, const char *context);

/* ---- judge metrics: the prompt and the answer (prompt.c) ----------------- */

/* The chat messages for judge metric m on it: a cJSON array of
 * {"role","content"} the caller deletes.  NULL with errstr when the item
 * lacks a field the metric needs ("no answer at /output/answer"). */
cJSON *judge_messages(const struct metric *m, const struct eval_item *it,
                      const struct field_paths *paths, char *errstr, size_t errstr_size);

/* Appends to messages the judge's bad answer and a user turn reminding it
 * to answer with the JSON object only. */
int judge_messages_remind(cJSON *messages, const char *bad_answer, size_t len);

/* Parses the judge's answer: one JSON object {"score": number in [m->lo,
 * m->hi], "reason": string} (surrounding white space and one ```json fence
 * allowed, nothing else).  Returns 0 with r filled, or -1 with r->error set
 * and r->reason saying what was wrong with the answer. */
int judge_parse(const struct metric *m, const char *content, size_t len, struct metric_result *r);

#endif
