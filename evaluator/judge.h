/* evaluator/judge.h - an OpenAI-compatible chat-completions client for LLM-judge metrics
 *
 * Many requests in flight over libcurl's multi interface, connections
 * reused, per-attempt timeouts, retries with exponential backoff and full
 * jitter on 429, 5xx, timeouts and connection errors (honouring
 * Retry-After), and a budget of requests and tokens per run.  One thread:
 * judge_submit queues, judge_poll drives the transfers and reports each
 * finished request through a callback.
 *
 * The API key goes into the Authorization header and nowhere else: it is
 * never in an error message, a log line or debug output (a server's text
 * that quotes it, whole or a run of 12 of its characters, shows "***").
 *
 * The first judge_new() calls curl_global_init(), and nothing calls
 * curl_global_cleanup(): call it before starting other threads that use
 * libcurl (the evaluator has one thread).  See docs/judge.md.
 */
#ifndef TS_EVAL_JUDGE_H
#define TS_EVAL_JUDGE_H

#include <stddef.h>
#include <stdint.h>

struct judge_conf {
	const char *url;          /* base URL: requests go to URL/chat/completions (e.g. http://127.0.0.1:8000/v1) */
	const char *model;        /* required */
	const char *api_key;      /* NULL or "": no Authorization header */
	int inflight;             /* requests in flight at most (default 16) */
	int timeout_ms;           /* per attempt (default 60000) */
	int connect_timeout_ms;   /* default 10000 */
	int retries;              /* retries after the first attempt (default 4) */
	int backoff_ms;           /* first backoff (default 500); doubles per retry, full jitter */
	int backoff_max_ms;       /* cap of one backoff and of a Retry-After (default 30000) */
	double temperature;       /* default 0; below 0: not sent (the server's default) */
	int max_tokens;           /* max_tokens of one answer (default 300); 0: not sent */
	int json_mode;            /* 1: ask for response_format {"type":"json_object"} (default 0) */
	int64_t budget_requests;  /* HTTP requests (attempts) per run; <= 0: no limit */
	int64_t budget_tokens;    /* total tokens per run, from the answers' usage; <= 0: no limit */
	int debug;                /* 1: a line on stderr per attempt (URL, status, latency, sizes; never a header):
	                           * "% judge: POST URL attempt N: HTTP 200, 812.4 ms, 530 bytes sent, 412 received" */
};

/* Fills the defaults (everything but url and model). */
void judge_conf_default(struct judge_conf *c);

struct judge_answer {
	void *tag;                  /* as given to judge_submit */
	int ok;                     /* 1: content is the answer's message content */
	const char *content;        /* valid during the callback */
	size_t len;
	int64_t prompt_tokens;      /* from the answer's usage, 0 when it has none */
	int64_t completion_tokens;
	double latency_ms;          /* from the first attempt to the answer, retries included */
	int attempts;
	int budget;                 /* 1: failed because the run's budget is spent */
	int unavailable;            /* 1: failed on what retries were for (429, 5xx, timeouts,
	                               connection errors) after every retry: the judge is down
	                               or overloaded, not this request wrong */
	char error[256];            /* when !ok, one of (N attempts when more than one):
	                             *   "HTTP 401: <the server's error message or body, at most ~200 bytes>"
	                             *   "HTTP 500 after N attempts: <the same>"
	                             *   "timeout after 60000 ms (N attempts)", "connect timeout after ...",
	                             *   "empty reply from server (N attempts)", libcurl's message otherwise
	                             *   "answer is not a chat completion: ..." (a 2xx; never retried)
	                             *   "budget spent: N requests of N" / "budget spent: N tokens of N"
	                             *     (budget = 1; "; after N attempts, the last: ..." for a retry
	                             *     that the budget stopped)
	                             *   "messages: not valid JSON" / "messages: expected a JSON array" */
};

typedef void (*judge_done_fn)(void *ctx, const struct judge_answer *a);

struct judge;

/* Checks c (messages like "judge url 'x': expected http:// or https://",
 * "judge inflight 0: expected 1 to 1024", named as the [judge] config keys)
 * and copies what it needs: c and its strings may go after the call.
 * NULL with errstr (bad settings, out of memory, libcurl failure). */
struct judge *judge_new(const struct judge_conf *c, char *errstr, size_t errstr_size);

/* Fails what is queued or in flight (error "aborted", done not called) and frees; accepts NULL. */
void judge_destroy(struct judge *j);

/* Queues one request; messages is the JSON text of a chat messages array
 * (copied).  Returns 0, or -1 when the budget is spent or out of memory
 * (nothing queued; judge_budget_spent() tells which).  Messages that are not
 * a JSON array are answered through done with an error and no attempt. */
int judge_submit(struct judge *j, const char *messages, void *tag);

/* Drives the transfers for up to timeout_ms (returns sooner when every
 * request is done; 0: one pass without waiting), calling done once for each
 * request that finished.  Once the budget is spent, queued requests that
 * have not started, and retries not yet sent, finish with budget = 1; those
 * in flight complete normally (so a token budget can be passed by what they
 * bring).  done may call judge_submit, judge_pending, judge_stats and the
 * budget functions, not judge_poll or judge_destroy.  Returns the number of
 * requests still queued, waiting for a retry or in flight. */
int judge_poll(struct judge *j, int timeout_ms, judge_done_fn done, void *ctx);

/* Requests not yet finished. */
int judge_pending(const struct judge *j);

/* Starts a new run's budget. */
void judge_budget_reset(struct judge *j);
/* 1 when this run's budget is spent. */
int judge_budget_spent(const struct judge *j);

struct judge_stats {
	int64_t requests;           /* submitted */
	int64_t attempts;           /* HTTP requests sent */
	int64_t retries;
	int64_t failures;           /* finished with ok = 0 */
	int64_t prompt_tokens;
	int64_t completion_tokens;
	int64_t run_attempts;       /* since judge_budget_reset */
	int64_t run_tokens;
};
void judge_stats(const struct judge *j, struct judge_stats *s);

#endif
