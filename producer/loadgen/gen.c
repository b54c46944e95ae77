/* producer/loadgen/gen.c - synthetic traces of an LLM RAG service, as trace record v1
 *
 * Each trace is one request to a retrieval-augmented answering service:
 *
 *   (record: the whole request, input.question -> output.answer + output.context)
 *   ├── query_expansion   llm        a small model rewrites the question as search queries
 *   ├── retrieval         retrieval  vector search, 3-8 passages with scores
 *   │   └── embed_query   general    the query embedding
 *   ├── rerank            tool       a cross-encoder keeps the best 2-5 passages
 *   ├── format_prompt     general    the prompt: numbered passages + the question
 *   └── llm_call          llm        the streamed answer (time to first token, inter-token)
 *
 * (query_expansion only on the rag_query endpoint; a semantic-cache hit has
 * just embed_query and semantic_cache.)  docs/loadgen.md describes the traffic.
 * Text comes from per-topic phrase lists, so it reads (and compresses) like
 * English.  Passages are a pure function of their document id, so popular
 * documents recur across traces the way they do in a real knowledge base.
 * Everything about trace i is drawn from a generator seeded with (seed, i).
 */
#include "gen.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tstime.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define PUTLIT(s, lit) sbuf_put((s), (lit), sizeof(lit) - 1)

#define MAX_DOCS        8     /* passages retrieved per trace */
#define DOCS_PER_TOPIC  480   /* size of each topic's knowledge base */
#define MAX_TOKENS      1024  /* the answer model's max_tokens */
#define RECORD_BUDGET   19500 /* keep records under ~20 KB */
#define RECORD_BASE     3600  /* bytes of a record that are not passages, question or answer */

/* Sizes: log-normal lengths (median, sigma) in characters. */
#define PASSAGE_MEDIAN  55.0
#define PASSAGE_SIGMA   0.8
#define ANSWER_MEDIAN   150.0
#define ANSWER_SIGMA    1.0

/* ---- random numbers: splitmix64 seeds xoshiro256** ------------------------ */

struct rng {
	uint64_t s[4];
};

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void rng_seed(struct rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rng_u64(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

/* Uniform in [0, 1). */
static double rng_unit(struct rng *r)
{
	return (double)(rng_u64(r) >> 11) * 0x1.0p-53;
}

/* Uniform in [0, n). */
static uint32_t rng_below(struct rng *r, uint32_t n)
{
	return (uint32_t)(((rng_u64(r) >> 32) * n) >> 32);
}

/* Uniform in [lo, hi]. */
static int64_t rng_range(struct rng *r, int64_t lo, int64_t hi)
{
	return lo + (int64_t)rng_below(r, (uint32_t)(hi - lo + 1));
}

static int rng_chance(struct rng *r, double p)
{
	return rng_unit(r) < p;
}

static double rng_normal(struct rng *r)
{
	double u1 = 1.0 - rng_unit(r), u2 = rng_unit(r);
	return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static double rng_lognormal(struct rng *r, double median, double sigma)
{
	return median * exp(sigma * rng_normal(r));
}

static int64_t clamp64(double v, int64_t lo, int64_t hi)
{
	if (!(v >= (double)lo))
		return lo;
	if (v >= (double)hi)
		return hi;
	return (int64_t)v;
}

#define PICK(r, list) ((list)[rng_below((r), NELEM(list))])

/* ---- what the service knows about --------------------------------------- */

/* A topic's facts are subjects[i] + predicates[i]; a task is answered by the
 * fact task_fact[task].  Mixing a subject with another predicate makes a
 * sentence that reads fine but says something else: noise for the judges. */
#define NFACTS 12
struct topic {
	const char *name;
	const char *const *tasks;      /* "reset my password": questions and queries */
	const char *const *subjects;   /* "the password reset link" */
	const char *const *predicates; /* "expires thirty minutes after it is sent" */
	unsigned char task_fact[NFACTS];
};

static const char *const billing_tasks[] = {
	"request a refund for a duplicate charge", "change the credit card on file",
	"download last month's invoice", "switch from monthly to annual billing",
	"add a VAT number to my invoices", "cancel my subscription before the renewal date",
	"understand the overage charges on my bill", "move my workspace to the Pro plan",
	"get a receipt for a past payment", "update the billing contact for my organization",
	"pay an invoice by bank transfer", "apply a promotional credit to my account",
};
static const char *const billing_subjects[] = {
	"each invoice", "a receipt", "a refund request", "the annual plan",
	"your payment method", "the usage report", "a failed payment", "the Pro plan",
	"overage pricing", "the billing contact", "a prorated credit", "a promotional code",
};
static const char *const billing_predicates[] = {
	"is generated on the first business day of every month",
	"can be downloaded as a PDF from the Billing page",
	"is reviewed by the finance team within five business days",
	"renews automatically unless it is cancelled before the renewal date",
	"must be updated by an account owner or a billing administrator",
	"lists compute, storage and egress charges separately",
	"is retried three times over seven days before the account is suspended",
	"includes priority support and a 99.9% uptime commitment",
	"applies only to usage above the included monthly quota",
	"receives a copy of every invoice and payment receipt",
	"is applied to the next invoice rather than refunded to the card",
	"cannot be combined with other discounts or enterprise agreements",
};

static const char *const security_tasks[] = {
	"reset my password", "enable two-factor authentication",
	"rotate the API keys for a service account", "set up single sign-on with Okta",
	"remove a former employee from the workspace", "recover my account after losing my phone",
	"restrict API access to specific IP ranges", "see who accessed our project last week",
	"change the owner of the organization", "configure SCIM provisioning",
	"revoke all active sessions", "create a read-only role for auditors",
};
static const char *const security_subjects[] = {
	"the password reset link", "two-factor authentication", "an API key", "single sign-on",
	"the audit log", "a service account key", "the owner role", "an IP allowlist",
	"SCIM provisioning", "a recovery code", "a custom role", "an active session",
};
static const char *const security_predicates[] = {
	"expires thirty minutes after it is sent",
	"can be enforced for every member of the organization",
	"is shown only once, so store it in a secrets manager",
	"requires a SAML 2.0 or OpenID Connect identity provider",
	"records every sign-in, permission change and key rotation for 400 days",
	"should be rotated at least every ninety days",
	"can only be transferred by the current owner or by support after identity verification",
	"blocks requests from addresses outside the listed CIDR ranges",
	"creates and deactivates users automatically when they change in the identity provider",
	"can be used once in place of a one-time password",
	"limits members to the permissions you select",
	"is signed out immediately when its credentials are revoked",
};

static const char *const deploy_tasks[] = {
	"roll back a failed deployment", "scale my service to zero at night",
	"set environment variables for a container", "configure health checks for my app",
	"deploy from a private container registry", "increase the memory limit of a pod",
	"run a one-off database migration job", "set up a custom domain for my service",
	"view logs from a crashed container", "enable autoscaling based on CPU usage",
	"pin a deployment to a specific region", "debug a CrashLoopBackOff error",
};
static const char *const deploy_subjects[] = {
	"a deployment", "the horizontal autoscaler", "a readiness probe", "the container registry",
	"each pod", "a migration job", "the service manifest", "the log viewer", "a custom domain",
	"the scheduler", "an environment variable", "the pod events page",
};
static const char *const deploy_predicates[] = {
	"keeps the last ten revisions so you can roll back with one command",
	"adds replicas when average CPU stays above the target for two minutes",
	"marks a pod ready only after the health endpoint returns 200",
	"needs an image pull secret when the registry is private",
	"is restarted automatically when it exceeds its memory limit",
	"runs to completion once and is not restarted after it succeeds",
	"can be applied with kubectl or from the web console",
	"keeps the logs of terminated containers for seven days",
	"needs a CNAME record that points to your service hostname",
	"places workloads in the region selected for the project",
	"is injected into the container at start-up and is not visible in the image",
	"reports the exit code and the last lines of output of a crashed container",
};

static const char *const db_tasks[] = {
	"restore a database from a backup", "create a read replica in another region",
	"upgrade PostgreSQL to a new major version", "find slow queries",
	"increase the storage of my database", "connect to the database from my laptop",
	"schedule automatic backups", "enable point-in-time recovery",
	"rotate the database password", "export a table to CSV",
	"reduce connection errors under load", "set up a connection pooler",
};
static const char *const db_subjects[] = {
	"an automatic backup", "point-in-time recovery", "a read replica",
	"the major version upgrade", "the query insights page", "database storage",
	"the connection pooler", "a database user", "the maintenance window", "the CSV export",
	"the connection limit", "replication lag",
};
static const char *const db_predicates[] = {
	"is taken every night and kept for fourteen days",
	"lets you restore to any second within the retention period",
	"serves read-only traffic and lags the primary by a few seconds at most",
	"requires a short downtime that is scheduled in the maintenance window",
	"lists the queries with the highest total execution time",
	"can be increased at any time but never reduced",
	"keeps a small number of server connections open and shares them between clients",
	"should have only the privileges its application needs",
	"is the weekly period when patches are applied",
	"runs in the background and sends a download link when it is ready",
	"depends on the instance size and is shown on the overview page",
	"is measured in seconds and raises an alert when it exceeds the threshold",
};

static const char *const policy_tasks[] = {
	"submit an expense report for a client dinner", "book travel for a conference abroad",
	"request parental leave", "carry over unused vacation days",
	"get reimbursed for a home office chair", "change my direct deposit details",
	"report a lost company laptop", "enroll in the dental plan", "request a standing desk",
	"expense my mobile phone plan", "work remotely from another country for a month",
	"claim mileage for a customer visit",
};
static const char *const policy_subjects[] = {
	"an expense report", "business travel", "parental leave", "unused vacation",
	"the home office allowance", "the payroll team", "a lost device", "the benefits portal",
	"a standing desk request", "the remote work policy", "mileage", "a corporate card",
};
static const char *const policy_predicates[] = {
	"must be submitted within thirty days with itemized receipts",
	"has to be booked through the travel portal at least fourteen days ahead",
	"is sixteen weeks at full pay for all new parents",
	"can be carried over up to five days into the next calendar year",
	"covers up to 500 dollars of equipment every two years",
	"processes changes submitted before the fifteenth in the same month",
	"must be reported to IT security within 24 hours",
	"opens for enrollment during the first two weeks of November",
	"is approved by your manager and then by the facilities team",
	"allows up to four weeks a year from another country with prior approval",
	"is reimbursed at the standard rate per mile or kilometre",
	"should be used only for business expenses and never for personal purchases",
};

#define TOPIC(n, p, ...) { n, p##_tasks, p##_subjects, p##_predicates, { __VA_ARGS__ } }
#define CHECK_TOPIC(p) _Static_assert(NELEM(p##_tasks) == NFACTS && \
	NELEM(p##_subjects) == NFACTS && NELEM(p##_predicates) == NFACTS, #p " facts")
CHECK_TOPIC(billing);
CHECK_TOPIC(security);
CHECK_TOPIC(deploy);
CHECK_TOPIC(db);
CHECK_TOPIC(policy);
enum { T_BILLING, T_SECURITY, T_DEPLOY, T_DB, T_POLICY, T_COUNT };
static const struct topic topics[T_COUNT] = {
	TOPIC("billing", billing, 2, 4, 1, 3, 0, 3, 8, 7, 1, 9, 6, 11),
	TOPIC("security", security, 0, 1, 5, 3, 8, 9, 7, 4, 6, 8, 11, 10),
	TOPIC("deployments", deploy, 0, 1, 10, 2, 3, 4, 5, 8, 7, 1, 9, 11),
	TOPIC("databases", db, 0, 2, 3, 4, 5, 10, 0, 1, 7, 9, 6, 6),
	TOPIC("policy", policy, 0, 1, 2, 3, 4, 5, 6, 7, 8, 11, 9, 10),
};

/* Sentence openers (the empty ones make plain sentences more common) and tails. */
static const char *const openers[] = {
	"In most cases, ", "By default, ", "Note that ", "For enterprise accounts, ",
	"According to the documentation, ", "As of the latest release, ", "In general, ",
	"For security reasons, ", "Keep in mind that ", "On the Pro and Enterprise plans, ",
	"If you are an administrator, ", "", "", "", "", "", "", "",
};
static const char *const clauses[] = {
	"unless your administrator has changed the default", "as described in the admin guide",
	"which usually takes a few minutes", "and the change is recorded in the audit log",
	"so plan the change outside business hours", "and you receive an email confirmation",
	"even if the account is on a free plan",
	"although some older accounts may behave differently",
	"and the setting applies to every project in the organization",
	"which you can check on the status page", "but the exact limits depend on your plan",
	"so contact support if you need an exception",
};
static const char *const steps[] = { "First, ", "Then, ", "Next, ", "After that, ", "Finally, " };

static const char *const question_forms[][2] = {
	{ "How do I ", "?" }, { "How can I ", "?" }, { "What is the fastest way to ", "?" },
	{ "Can I ", " without contacting support?" },
	{ "Is it possible to ", " from the command line?" },
	{ "I need to ", ". Where do I start?" },
	{ "Why can't I ", "? The option seems to be missing." },
	{ "What are the steps to ", "?" }, { "Quick question: how do we ", " for our team?" },
	{ "Could you explain how to ", "?" }, { "hey, how to ", "" },
};
static const char *const answer_forms[][2] = {
	{ "To ", ", follow these steps." }, { "Here is how to ", "." },
	{ "You can ", " in a few steps." },
	{ "Based on the documentation, here is how to ", "." },
	{ "Sure! To ", ", do the following." },
};
static const char *const closings[] = {
	"Let me know if you need anything else.",
	"If the problem persists, contact support and include your request ID.",
	"You can find more details in the documentation linked above.",
	"", "",
};
static const char idk_answer[] =
	"I could not find information about this in the provided documents. Please contact "
	"support or check the documentation for your plan.";

/* Rare questions that are not ASCII, each about (topic, task). */
static const struct {
	int topic, task;
	const char *text;
} unicode_questions[] = {
	{ T_BILLING, 0, "¿Cómo puedo solicitar un reembolso por un cargo duplicado? 🙏" },
	{ T_SECURITY, 1, "Wie kann ich die Zwei-Faktor-Authentifizierung für alle Mitglieder erzwingen?" },
	{ T_SECURITY, 2, "Wie rotiere ich die API-Schlüssel für ein Dienstkonto? Danke schön 😊" },
	{ T_DEPLOY, 0, "Comment revenir à la version précédente d'un déploiement ? Ça ne démarre plus 😕" },
	{ T_DB, 0, "如何从备份恢复数据库？我们昨天误删了一张表。" },
	{ T_SECURITY, 0, "パスワードをリセットする方法を教えてください。" },
	{ T_POLICY, 0, "출장 경비 보고서는 언제까지 제출해야 하나요?" },
	{ T_POLICY, 3, "Posso trasferire i giorni di ferie non utilizzati all'anno prossimo? 🏖️" },
	{ T_DEPLOY, 11, "Почему мой под постоянно перезапускается (CrashLoopBackOff)?" },
	{ T_DB, 3, "Cómo encuentro las consultas lentas — ¿hay un panel de rendimiento? 🐢" },
};

/* ---- who asks, where, how ------------------------------------------------ */

enum { EP_ASK, EP_SUPPORT, EP_POLICY };
static const struct {
	const char *name, *path;
	int weight;
	int topics[4], ntopics;
} endpoints[] = {
	{ "rag_query", "/v1/ask", 60, { T_BILLING, T_SECURITY, T_DEPLOY, T_DB }, 4 },
	{ "support_answer", "/v1/support/chat", 25, { T_BILLING, T_SECURITY }, 2 },
	{ "policy_qa", "/internal/policy/ask", 15, { T_POLICY }, 1 },
};

static const struct {
	const char *name, *provider;
	int weight;
	double ttft_ms, itm_ms; /* medians */
} answer_models[] = {
	{ "gpt-4o-mini", "openai", 50, 380.0, 12.0 },
	{ "llama-3.1-8b-instruct", "vllm", 30, 210.0, 17.0 },
	{ "mistral-small", "mistral", 20, 300.0, 14.0 },
};
#define QE_MODEL     "llama-3.2-3b-instruct"
#define EMBED_MODEL  "text-embedding-3-small"
#define RERANK_MODEL "bge-reranker-v2-m3"

static const char *const regions[] = {
	"us-east-1", "us-east-1", "us-east-1", "us-east-1", "eu-west-1", "eu-west-1",
	"eu-west-1", "us-west-2", "us-west-2", "ap-southeast-1",
};

static const char qe_system[] =
	"Rewrite the question as three short search queries. Reply with JSON: {\"queries\": [...]}";
static const char *const answer_system[2] = {
	/* rag_answer_v3 (prod) */
	"You are Acme Cloud's assistant. Answer using only the numbered context passages and "
	"cite them like [1]. If they do not hold the answer, say you don't know.",
	/* rag_answer_v4 (canary) */
	"You are Acme Cloud's assistant. Use only the context passages, cite them as [n], give "
	"short numbered steps, and reply in the language of the question.",
};

static const char *const first_names[] = {
	"jane", "john", "maria", "wei", "priya", "carlos", "fatima", "liam", "olivia", "noah",
	"aisha", "kenji", "sofia", "lucas", "emma", "mateo", "zara", "oliver", "chloe", "ivan",
};
static const char *const last_names[] = {
	"doe", "smith", "garcia", "chen", "patel", "rossi", "nguyen", "kim", "muller", "johnson",
	"silva", "kowalski", "haddad", "tanaka", "okafor", "brown", "dubois", "larsen",
};
static const char *const email_domains[] = {
	"example.com", "example.org", "example.net", "mail.example.com", "corp.example.com",
};
static const int us_area_codes[] = { 415, 212, 646, 312, 206, 617, 512, 303 };

/* ---- the generator --------------------------------------------------------- */

struct doc {
	char id[32];
	uint32_t docno;  /* its first sentence states fact docno % NFACTS */
	int score;  /* retrieval score, thousandths */
	int rscore; /* rerank score, thousandths */
	struct sbuf text;
};

struct gen {
	uint64_t seed;   /* mixed; trace i draws from a generator seeded with seed ^ i*K */
	uint64_t index;
	char *project;
	double error_rate, pii_rate, rate;
	int64_t start_us, next_start_us;
	/* scratch text, reused from trace to trace */
	struct sbuf question, answer, prompt, task_you, errmsg, queries[3];
	struct doc docs[MAX_DOCS];
};

void gen_opts_default(struct gen_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->project = "rag-demo";
	o->error_rate = 0.02;
	o->pii_rate = 0.10;
	o->start_us = tstime_now_us();
	o->rate = 0;
}

struct gen *gen_new(uint64_t seed, const struct gen_opts *opts)
{
	struct gen *g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	g->project = strdup(opts->project ? opts->project : "rag-demo");
	if (!g->project) {
		free(g);
		return NULL;
	}
	g->seed = splitmix64(&seed); /* nearby seeds give unrelated traffic */
	g->error_rate = opts->error_rate;
	g->pii_rate = opts->pii_rate;
	g->rate = opts->rate;
	g->start_us = g->next_start_us = opts->start_us;
	return g;
}

void gen_destroy(struct gen *g)
{
	if (!g)
		return;
	sbuf_release(&g->question);
	sbuf_release(&g->answer);
	sbuf_release(&g->prompt);
	sbuf_release(&g->task_you);
	sbuf_release(&g->errmsg);
	for (size_t i = 0; i < NELEM(g->queries); i++)
		sbuf_release(&g->queries[i]);
	for (int i = 0; i < MAX_DOCS; i++)
		sbuf_release(&g->docs[i].text);
	free(g->project);
	free(g);
}

/* ---- text ------------------------------------------------------------------ */

static void put_cap(struct sbuf *s, const char *str)
{
	size_t n = strlen(str);
	if (n && str[0] >= 'a' && str[0] <= 'z') {
		sbuf_putc(s, (char)(str[0] - 'a' + 'A'));
		sbuf_put(s, str + 1, n - 1);
	} else {
		sbuf_put(s, str, n);
	}
}

/* One sentence about topic t: fact (or a random one when fact < 0), its
 * subject sometimes swapped; step replaces the opener; cite > 0 adds
 * " [cite]" before the full stop. */
static void put_sentence(struct sbuf *s, struct rng *r, const struct topic *t, int fact,
                         const char *step, int cite)
{
	const char *opener = step ? step : PICK(r, openers);
	int exact = fact >= 0;
	if (!exact)
		fact = (int)rng_below(r, NFACTS);
	int sub = exact || rng_chance(r, 0.7) ? fact : (int)rng_below(r, NFACTS);
	const char *subject = t->subjects[sub];
	if (*opener) {
		sbuf_puts(s, opener);
		sbuf_puts(s, subject);
	} else {
		put_cap(s, subject);
	}
	sbuf_putc(s, ' ');
	sbuf_puts(s, t->predicates[fact]);
	if (rng_chance(r, 0.35)) {
		PUTLIT(s, ", ");
		sbuf_puts(s, PICK(r, clauses));
	}
	if (cite > 0) {
		char c[8] = { ' ', '[', (char)('0' + cite), ']' };
		sbuf_put(s, c, 4);
	}
	sbuf_putc(s, '.');
}

/* The passage of document (topic, docno): the document's first sentences,
 * about its own length times scale (the index's chunking), at least one. */
static void put_passage(struct sbuf *s, int topic, uint32_t docno, double scale)
{
	struct rng r;
	rng_seed(&r, 0xd0c5d0c5ULL + (uint64_t)topic * 1000003ULL + docno);
	int64_t target = clamp64(rng_lognormal(&r, PASSAGE_MEDIAN, PASSAGE_SIGMA) * scale, 50, 2400);
	size_t start = s->len;
	put_sentence(s, &r, &topics[topic], (int)(docno % NFACTS), NULL, 0);
	while ((int64_t)(s->len - start) < target) {
		sbuf_putc(s, ' ');
		put_sentence(s, &r, &topics[topic], -1, NULL, 0);
	}
}

/* task with "my" turned into "your", for answers. */
static void put_task_you(struct sbuf *s, const char *task)
{
	const char *p = task;
	while (*p) {
		if (!strncmp(p, "my ", 3) && (p == task || p[-1] == ' ')) {
			PUTLIT(s, "your ");
			p += 3;
		} else {
			sbuf_putc(s, *p++);
		}
	}
}

static void put_email(struct sbuf *s, struct rng *r)
{
	const char *first = PICK(r, first_names), *last = PICK(r, last_names);
	switch (rng_below(r, 3)) {
	case 0:
		sbuf_printf(s, "%s.%s@%s", first, last, PICK(r, email_domains));
		break;
	case 1:
		sbuf_printf(s, "%s_%s%02u@%s", first, last, rng_below(r, 100), PICK(r, email_domains));
		break;
	default:
		sbuf_printf(s, "%c%s@%s", first[0], last, PICK(r, email_domains));
	}
}

/* Fictional numbers: 555-01xx in North America, Ofcom's drama range in London. */
static void put_phone(struct sbuf *s, struct rng *r)
{
	int area = PICK(r, us_area_codes);
	unsigned line = rng_below(r, 100);
	switch (rng_below(r, 4)) {
	case 0:
		sbuf_printf(s, "+1 %d-555-01%02u", area, line);
		break;
	case 1:
		sbuf_printf(s, "(%d) 555-01%02u", area, line);
		break;
	case 2:
		sbuf_printf(s, "+44 20 7946 0%03u", rng_below(r, 1000));
		break;
	default:
		sbuf_printf(s, "%d.555.01%02u", area, line);
	}
}

/* Wraps the question q (in g->question) in a sentence with personal data. */
static void add_pii(struct gen *g, struct rng *r)
{
	struct sbuf *q = &g->question;
	char *orig = strdup(q->buf ? q->buf : "");
	if (!orig) {
		q->oom = 1;
		return;
	}
	q->len = 0;
	switch (rng_below(r, 5)) {
	case 0: {
		const char *first = PICK(r, first_names), *last = PICK(r, last_names);
		PUTLIT(q, "Hi, I'm ");
		put_cap(q, first);
		sbuf_putc(q, ' ');
		put_cap(q, last);
		PUTLIT(q, " (");
		sbuf_printf(q, "%s.%s@%s", first, last, PICK(r, email_domains));
		PUTLIT(q, "). ");
		sbuf_puts(q, orig);
		break;
	}
	case 1:
		sbuf_puts(q, orig);
		PUTLIT(q, " My email is ");
		put_email(q, r);
		sbuf_putc(q, '.');
		break;
	case 2:
		sbuf_puts(q, orig);
		PUTLIT(q, " Please call me back at ");
		put_phone(q, r);
		sbuf_putc(q, '.');
		break;
	case 3:
		PUTLIT(q, "My account is registered to ");
		put_email(q, r);
		PUTLIT(q, " and my phone number is ");
		put_phone(q, r);
		PUTLIT(q, ". ");
		sbuf_puts(q, orig);
		break;
	default:
		sbuf_puts(q, orig);
		PUTLIT(q, " You can reach me at ");
		put_phone(q, r);
		PUTLIT(q, " or ");
		put_email(q, r);
		sbuf_putc(q, '.');
	}
	free(orig);
}

/* ---- JSON -------------------------------------------------------------------- */

static void put_u64(struct sbuf *s, uint64_t v)
{
	char tmp[24], *p = tmp + sizeof(tmp);
	do
		*--p = (char)('0' + v % 10);
	while ((v /= 10) > 0);
	sbuf_put(s, p, (size_t)(tmp + sizeof(tmp) - p));
}

/* Microseconds as milliseconds with three decimals. */
static void put_ms(struct sbuf *s, int64_t us)
{
	if (us < 0)
		us = 0;
	put_u64(s, (uint64_t)(us / 1000));
	char f[4] = { '.', (char)('0' + us / 100 % 10), (char)('0' + us / 10 % 10),
	              (char)('0' + us % 10) };
	sbuf_put(s, f, 4);
}

/* Thousandths as "0.873". */
static void put_score(struct sbuf *s, int milli)
{
	char f[5] = { '0', '.', (char)('0' + milli / 100 % 10), (char)('0' + milli / 10 % 10),
	              (char)('0' + milli % 10) };
	sbuf_put(s, f, 5);
}

static void put_time(struct sbuf *s, int64_t us)
{
	char ts[TSTIME_LEN + 2];
	ts[0] = '"';
	size_t n = tstime_format(us, ts + 1);
	ts[n + 1] = '"';
	sbuf_put(s, ts, n + 2);
}

static void put_hex(struct sbuf *s, uint64_t v, int digits)
{
	static const char hex[] = "0123456789abcdef";
	char tmp[16];
	for (int i = digits - 1; i >= 0; i--, v >>= 4)
		tmp[i] = hex[v & 15];
	sbuf_put(s, tmp, (size_t)digits);
}

static void put_jbuf(struct sbuf *s, const struct sbuf *text)
{
	sbuf_put_jstr(s, text->buf ? text->buf : "", text->len);
}

static void put_jstr(struct sbuf *s, const char *str)
{
	sbuf_put_jstr(s, str, strlen(str));
}

static void put_usage(struct sbuf *s, int64_t in, int64_t out)
{
	PUTLIT(s, ",\"usage\":{\"input_tokens\":");
	put_u64(s, (uint64_t)in);
	PUTLIT(s, ",\"output_tokens\":");
	put_u64(s, (uint64_t)out);
	PUTLIT(s, ",\"total_tokens\":");
	put_u64(s, (uint64_t)(in + out));
	sbuf_putc(s, '}');
}

static int64_t tokens(size_t chars)
{
	return (int64_t)(chars + 3) / 4;
}

/* A span's opening, up to and including its times; first is 1 for the first span. */
static void span_open(struct sbuf *s, int first, uint64_t id, uint64_t parent,
                      const char *name, const char *type, int64_t start, int64_t end)
{
	if (!first)
		sbuf_putc(s, ',');
	PUTLIT(s, "{\"span_id\":\"");
	put_hex(s, id, 16);
	PUTLIT(s, "\",\"parent_span_id\":");
	if (parent) {
		sbuf_putc(s, '"');
		put_hex(s, parent, 16);
		sbuf_putc(s, '"');
	} else {
		PUTLIT(s, "null");
	}
	PUTLIT(s, ",\"name\":");
	put_jstr(s, name);
	PUTLIT(s, ",\"type\":\"");
	sbuf_puts(s, type);
	PUTLIT(s, "\",\"start_time\":");
	put_time(s, start);
	PUTLIT(s, ",\"end_time\":");
	put_time(s, end);
}

/* A span's latency, error and closing brace. */
static void span_close(struct sbuf *s, int64_t start, int64_t end, int64_t ttft_us,
                       int64_t itm_us, const char *err_type, const struct sbuf *err_msg)
{
	PUTLIT(s, ",\"latency_ms\":{\"total\":");
	put_ms(s, end - start);
	if (ttft_us >= 0) {
		PUTLIT(s, ",\"time_to_first_token\":");
		put_ms(s, ttft_us);
	}
	if (itm_us >= 0) {
		PUTLIT(s, ",\"inter_token_mean\":");
		put_ms(s, itm_us);
	}
	PUTLIT(s, "},\"error\":");
	if (err_type) {
		PUTLIT(s, "{\"type\":\"");
		sbuf_puts(s, err_type);
		PUTLIT(s, "\",\"message\":");
		put_jbuf(s, err_msg);
		sbuf_putc(s, '}');
	} else {
		PUTLIT(s, "null");
	}
	sbuf_putc(s, '}');
}

static uint64_t span_id(struct rng *r)
{
	uint64_t id;
	do
		id = rng_u64(r);
	while (!id);
	return id;
}

/* ---- one trace ------------------------------------------------------------- */

struct span {
	uint64_t id;
	int64_t start, end; /* Unix microseconds */
};

/* Everything about one trace, drawn before any of it is written. */
struct plan {
	uint64_t id_hi, id_lo;
	int ep, topic, mi;
	const struct topic *tp;
	uint32_t task, user;
	int canary, beta, unicode, pii, err, cache_hit, has_qe, idk, answer_missing;
	const char *tier, *region, *err_type, *finish, *system, *prompt_version;
	int ndocs, keep, cache_sim;
	int fact;     /* the fact that answers the question */
	int fact_at;  /* its passage's place in the prompt (0-based), -1: not retrieved */
	struct doc *ranked[MAX_DOCS];
	int64_t t0, t1;
	struct span qe, rt, em, rr, fp, llm, cache;
	int64_t qe_in, qe_out, llm_in, answer_tokens, max_tokens;
	int64_t ttft, itm; /* microseconds; -1: no token came */
};

static int by_rerank(const void *a, const void *b)
{
	const struct doc *x = *(const struct doc *const *)a, *y = *(const struct doc *const *)b;
	if (x->rscore != y->rscore)
		return y->rscore - x->rscore;
	return strcmp(x->id, y->id);
}

static int pick_weighted(struct rng *r, const int *weights, int n)
{
	int w = (int)rng_below(r, 100), i = 0;
	for (; i < n - 1 && w >= weights[i]; i++)
		w -= weights[i];
	return i;
}

/* Who asks what, where, and how it goes. */
static void plan_request(struct gen *g, struct rng *r, struct plan *pl)
{
	pl->id_hi = rng_u64(r);
	pl->id_lo = rng_u64(r);
	if (!pl->id_hi && !pl->id_lo)
		pl->id_lo = 1; /* never all zeros */
	int ew[NELEM(endpoints)], mw[NELEM(answer_models)];
	for (size_t i = 0; i < NELEM(endpoints); i++)
		ew[i] = endpoints[i].weight;
	for (size_t i = 0; i < NELEM(answer_models); i++)
		mw[i] = answer_models[i].weight;
	pl->ep = pick_weighted(r, ew, NELEM(ew));
	pl->mi = pick_weighted(r, mw, NELEM(mw));
	pl->topic = endpoints[pl->ep].topics[rng_below(r, (uint32_t)endpoints[pl->ep].ntopics)];
	pl->tp = &topics[pl->topic];
	pl->task = rng_below(r, NFACTS);
	pl->canary = rng_chance(r, 0.1);
	pl->beta = rng_chance(r, 0.05);
	pl->system = answer_system[pl->canary];
	pl->prompt_version = pl->canary ? "rag_answer_v4" : "rag_answer_v3";
	double u = rng_unit(r);
	pl->tier = u < 0.6 ? "free" : u < 0.9 ? "pro" : "enterprise";
	pl->region = PICK(r, regions);
	pl->user = (uint32_t)(20000.0 * pow(rng_unit(r), 2.5)); /* a few users ask a lot */
	pl->unicode = rng_chance(r, 0.01);
	pl->pii = rng_chance(r, g->pii_rate);
	pl->err = rng_chance(r, g->error_rate);
	pl->cache_hit = !pl->err && rng_chance(r, 0.06);
	pl->has_qe = !pl->cache_hit && pl->ep == EP_ASK;
	if (pl->err) {
		uint32_t e = rng_below(r, 10);
		pl->err_type = e < 5 ? "RateLimitError" : e < 8 ? "Timeout" : "ContextLengthExceeded";
		pl->answer_missing = rng_chance(r, 0.5);
	}
}

/* The question, and the search queries made of it. */
static void plan_question(struct gen *g, struct rng *r, struct plan *pl)
{
	struct sbuf *q = &g->question;
	q->len = 0;
	if (pl->unicode) {
		uint32_t k = rng_below(r, NELEM(unicode_questions));
		pl->topic = unicode_questions[k].topic;
		pl->tp = &topics[pl->topic];
		pl->task = (uint32_t)unicode_questions[k].task;
		sbuf_puts(q, unicode_questions[k].text);
	} else {
		uint32_t f = rng_below(r, NELEM(question_forms));
		sbuf_puts(q, question_forms[f][0]);
		sbuf_puts(q, pl->tp->tasks[pl->task]);
		sbuf_puts(q, question_forms[f][1]);
	}
	if (pl->pii)
		add_pii(g, r);

	const struct topic *tp = pl->tp;
	pl->fact = tp->task_fact[pl->task];
	for (int i = 0; i < 3; i++)
		g->queries[i].len = 0;
	sbuf_puts(&g->queries[0], tp->tasks[pl->task]);
	sbuf_puts(&g->queries[1], tp->name);
	sbuf_putc(&g->queries[1], ' ');
	sbuf_puts(&g->queries[1], tp->subjects[tp->task_fact[pl->task]]);
	PUTLIT(&g->queries[2], "how to ");
	put_task_you(&g->queries[2],
	             tp->tasks[(pl->task + 1 + rng_below(r, NFACTS - 1)) % NFACTS]);
}

/* Retrieval of ndocs distinct passages (popular documents more often), the
 * rerank order, and how many passages the prompt keeps. */
static size_t plan_docs(struct gen *g, struct rng *r, struct plan *pl)
{
	pl->ndocs = (int)clamp64(rng_lognormal(r, 4.0, 0.35) + 0.5, 3, MAX_DOCS);
	uint32_t docno[MAX_DOCS];
	int score = (int)rng_range(r, 780, 930);
	for (int i = 0; i < pl->ndocs; i++) {
		int dup;
		do {
			docno[i] = (uint32_t)(DOCS_PER_TOPIC * pow(rng_unit(r), 2.0));
			/* Retrieval mostly finds a document that answers the question. */
			if (i == 0 && rng_chance(r, 0.85))
				docno[i] += (uint32_t)(pl->fact + NFACTS - (int)(docno[i] % NFACTS)) % NFACTS;
			dup = 0;
			for (int j = 0; j < i; j++)
				dup |= docno[j] == docno[i];
		} while (dup);
		struct doc *d = &g->docs[i];
		d->docno = docno[i];
		snprintf(d->id, sizeof(d->id), "kb-%s-%04u#c%u", pl->tp->name, docno[i], docno[i] % 7);
		d->score = score;
		score -= (int)rng_range(r, 5, 60);
		if (score < 300)
			score = 300;
		/* the cross-encoder sees better what answers the question */
		int boost = (int)(docno[i] % NFACTS) == pl->fact ? 120 : 0;
		d->rscore = (int)clamp64(d->score + boost + 90.0 * rng_normal(r), 5, 995);
		pl->ranked[i] = d;
	}
	qsort(pl->ranked, (size_t)pl->ndocs, sizeof(pl->ranked[0]), by_rerank);
	static const int keep_weights[] = { 45, 40, 10, 5 }; /* 2, 3, 4, 5 passages */
	pl->keep = 2 + pick_weighted(r, keep_weights, NELEM(keep_weights));
	if (pl->keep > pl->ndocs)
		pl->keep = pl->ndocs;
	pl->fact_at = -1;
	for (int i = pl->keep - 1; i >= 0; i--)
		if ((int)(pl->ranked[i]->docno % NFACTS) == pl->fact)
			pl->fact_at = i;
	/* Without the right passage the model mostly says it does not know. */
	pl->idk = !pl->err && !pl->cache_hit && rng_chance(r, pl->fact_at < 0 ? 0.5 : 0.01);

	/* Some requests hit long chunks: the tail of record sizes.  The record
	 * holds every passage once and the kept ones three more times (prompt,
	 * llm_call input, context); shorter chunks keep it within the budget. */
	double scale = rng_chance(r, 0.15) ? 1.0 + rng_lognormal(r, 3.0, 0.6) : 1.0;
	size_t all_chars, kept_chars;
	for (;;) {
		all_chars = kept_chars = 0;
		for (int i = 0; i < pl->ndocs; i++) {
			g->docs[i].text.len = 0;
			put_passage(&g->docs[i].text, pl->topic, docno[i], scale);
			all_chars += g->docs[i].text.len;
		}
		for (int i = 0; i < pl->keep; i++)
			kept_chars += pl->ranked[i]->text.len;
		if (RECORD_BASE + all_chars + 3 * kept_chars + 6 * g->question.len +
		    2 * ANSWER_MEDIAN <= RECORD_BUDGET || scale < 0.2)
			break;
		scale *= 0.7;
	}
	return all_chars;
}

/* The prompt (kept passages and the question) and the answer. */
static void plan_texts(struct gen *g, struct rng *r, struct plan *pl, size_t all_chars)
{
	struct sbuf *q = &g->question, *p = &g->prompt, *a = &g->answer;
	int64_t target = clamp64(rng_lognormal(r, ANSWER_MEDIAN, ANSWER_SIGMA), 50, 4800);

	/* Keep the record under the budget: it holds the kept passages three
	 * times (prompt, llm_call input, context) and the answer twice. */
	for (;;) {
		size_t kept = 0;
		for (int i = 0; i < pl->keep; i++)
			kept += pl->ranked[i]->text.len;
		int64_t est = RECORD_BASE + (int64_t)q->len * 6 + (int64_t)(all_chars + 3 * kept) +
		              2 * target;
		if (est <= RECORD_BUDGET)
			break;
		if (target > 400)
			target = target * 3 / 4;
		else if (pl->keep > 2)
			pl->keep--;
		else
			break;
	}

	p->len = 0;
	PUTLIT(p, "Context:\n");
	for (int i = 0; i < pl->keep; i++) {
		char n[8] = { '[', (char)('1' + i), ']', ' ' };
		sbuf_put(p, n, 4);
		sbuf_put(p, pl->ranked[i]->text.buf, pl->ranked[i]->text.len);
		sbuf_putc(p, '\n');
	}
	PUTLIT(p, "\nQuestion: ");
	sbuf_put(p, q->buf, q->len);
	PUTLIT(p, "\n\nAnswer the question using the context above.");

	a->len = 0;
	pl->finish = "stop";
	if (pl->idk) {
		PUTLIT(a, idk_answer);
	} else if (!pl->err) {
		g->task_you.len = 0;
		put_task_you(&g->task_you, pl->tp->tasks[pl->task]);
		uint32_t f = rng_below(r, NELEM(answer_forms));
		sbuf_puts(a, answer_forms[f][0]);
		sbuf_put(a, g->task_you.buf, g->task_you.len);
		sbuf_puts(a, answer_forms[f][1]);
		int numbered = rng_chance(r, 0.6), step = 0, first = 1;
		while ((int64_t)a->len < target || first) {
			const char *prefix = NULL;
			if (numbered && step > 0 && (int64_t)a->len + 120 >= target) {
				prefix = steps[NELEM(steps) - 1]; /* "Finally, " */
				numbered = 0;
			} else if (numbered && step < (int)NELEM(steps) - 1) {
				prefix = steps[step++];
			}
			int cite = rng_chance(r, 0.6) ? (int)rng_range(r, 1, pl->keep) : 0;
			int fact = -1;
			if (first) { /* the answer, cited when it was retrieved */
				fact = pl->fact;
				cite = pl->fact_at + 1;
				first = 0;
			}
			sbuf_putc(a, ' ');
			put_sentence(a, r, pl->tp, fact, prefix, cite);
		}
		const char *closing = PICK(r, closings);
		if (*closing) {
			sbuf_putc(a, ' ');
			sbuf_puts(a, closing);
		}
		if (tokens(a->len) > MAX_TOKENS) {
			a->len = (size_t)MAX_TOKENS * 4; /* answers are ASCII */
			a->buf[a->len] = '\0';
			pl->finish = "length";
		}
	}
	pl->answer_tokens = pl->err || pl->cache_hit ? 0 : tokens(a->len);
}

/* Span times and token counts; every step starts after the one before it. */
static void plan_times(struct gen *g, struct rng *r, struct plan *pl)
{
	const char *model = answer_models[pl->mi].name;
	int64_t prompt_tokens = tokens(strlen(pl->system) + g->prompt.len) + 8;
	int64_t t = pl->t0;
	pl->ttft = pl->itm = -1;
	g->errmsg.len = 0;

	if (pl->cache_hit) {
		pl->em.start = t + rng_range(r, 100, 600);
		pl->em.end = pl->em.start + clamp64(rng_lognormal(r, 30e3, 0.4), 8000, 800000);
		pl->cache.start = pl->em.end + rng_range(r, 50, 300);
		pl->cache.end = pl->cache.start + clamp64(rng_lognormal(r, 3e3, 0.5), 500, 50000);
		pl->cache_sim = (int)rng_range(r, 950, 995);
		pl->t1 = pl->cache.end + rng_range(r, 200, 1000);
		pl->ttft = pl->cache.end - pl->t0;
		return;
	}
	if (pl->has_qe) {
		pl->qe.start = t + rng_range(r, 200, 1500);
		pl->qe.end = pl->qe.start + clamp64(rng_lognormal(r, 320e3, 0.35), 80000, 3000000);
		pl->qe_in = tokens(strlen(qe_system) + g->question.len) + 8;
		pl->qe_out = tokens(g->queries[0].len + g->queries[1].len + g->queries[2].len) + 9;
		t = pl->qe.end;
	}
	pl->rt.start = t + rng_range(r, 100, 800);
	pl->em.start = pl->rt.start + rng_range(r, 50, 300);
	pl->em.end = pl->em.start + clamp64(rng_lognormal(r, 35e3, 0.4), 8000, 800000);
	double search = rng_lognormal(r, 25e3, 0.5) * (rng_chance(r, 0.01) ? 10.0 : 1.0);
	pl->rt.end = pl->em.end + clamp64(search, 5000, 3000000);
	pl->rr.start = pl->rt.end + rng_range(r, 100, 500);
	pl->rr.end = pl->rr.start + clamp64(rng_lognormal(r, 12e3, 0.4) * pl->ndocs, 10000, 2000000);
	pl->fp.start = pl->rr.end + rng_range(r, 50, 200);
	pl->fp.end = pl->fp.start + rng_range(r, 40, 400);
	pl->llm.start = pl->fp.end + rng_range(r, 100, 600);
	pl->llm_in = prompt_tokens;
	pl->max_tokens = MAX_TOKENS;
	if (!pl->err) {
		double slow = rng_chance(r, 0.04) ? 4.0 + 21.0 * rng_unit(r) : 1.0;
		pl->ttft = clamp64(rng_lognormal(r, answer_models[pl->mi].ttft_ms * 1e3, 0.45) * slow,
		                   60000, 30000000);
		pl->itm = clamp64(rng_lognormal(r, answer_models[pl->mi].itm_ms * 1e3, 0.2),
		                  4000, 200000);
		int64_t more = pl->answer_tokens > 1 ? pl->answer_tokens - 1 : 0;
		pl->llm.end = pl->llm.start + pl->ttft + pl->itm * more + rng_range(r, 100, 2000);
	} else if (!strcmp(pl->err_type, "RateLimitError")) {
		pl->llm.end = pl->llm.start + rng_range(r, 40000, 250000);
		pl->llm_in = 0;
		sbuf_printf(&g->errmsg, "Rate limit reached for %s in organization org-acme on "
		            "tokens per min (TPM): Limit 200000, Used %u, Requested %u. Please try "
		            "again in %u.%03us.", model, 200000 - rng_below(r, 900),
		            (unsigned)prompt_tokens + MAX_TOKENS, rng_below(r, 20), rng_below(r, 1000));
	} else if (!strcmp(pl->err_type, "Timeout")) {
		unsigned limit = rng_chance(r, 0.5) ? 30000 : 60000;
		pl->llm.end = pl->llm.start + (int64_t)limit * 1000 + rng_range(r, 100, 5000);
		sbuf_printf(&g->errmsg, "Request timed out after %u ms waiting for the first token "
		            "from %s", limit, model);
	} else {
		pl->llm.end = pl->llm.start + rng_range(r, 20000, 120000);
		pl->llm_in = 0;
		pl->max_tokens = 8192 - prompt_tokens + rng_range(r, 1, 600);
		sbuf_printf(&g->errmsg, "This model's maximum context length is 8192 tokens. "
		            "However, you requested %u tokens (%u in the messages, %u in the "
		            "completion). Please reduce the length of the messages or completion.",
		            (unsigned)(prompt_tokens + pl->max_tokens), (unsigned)prompt_tokens,
		            (unsigned)pl->max_tokens);
	}
	pl->t1 = pl->llm.end + rng_range(r, 300, 3000);
}

/* ---- writing it -------------------------------------------------------------- */

static void put_kept_texts(struct sbuf *o, const struct plan *pl)
{
	for (int i = 0; i < pl->keep; i++) {
		if (i)
			sbuf_putc(o, ',');
		put_jbuf(o, &pl->ranked[i]->text);
	}
}

static void write_top(const struct gen *g, const struct plan *pl, struct sbuf *o)
{
	PUTLIT(o, "{\"v\":1,\"trace_id\":\"");
	put_hex(o, pl->id_hi, 16);
	put_hex(o, pl->id_lo, 16);
	PUTLIT(o, "\",\"name\":");
	put_jstr(o, endpoints[pl->ep].name);
	PUTLIT(o, ",\"project\":");
	put_jstr(o, g->project);
	PUTLIT(o, ",\"start_time\":");
	put_time(o, pl->t0);
	PUTLIT(o, ",\"end_time\":");
	put_time(o, pl->t1);
	PUTLIT(o, ",\"input\":{\"question\":");
	put_jbuf(o, &g->question);
	PUTLIT(o, "},\"output\":{");
	if (!pl->answer_missing) {
		PUTLIT(o, "\"answer\":");
		put_jbuf(o, &g->answer);
		sbuf_putc(o, ',');
	}
	PUTLIT(o, "\"context\":[");
	put_kept_texts(o, pl);
	PUTLIT(o, "]},\"tags\":[\"rag\",");
	sbuf_puts(o, pl->canary ? "\"canary\"" : "\"prod\"");
	if (pl->beta)
		PUTLIT(o, ",\"beta\"");
	if (pl->cache_hit)
		PUTLIT(o, ",\"cache_hit\"");
	PUTLIT(o, ",\"");
	sbuf_puts(o, pl->tp->name);
	PUTLIT(o, "\"],\"metadata\":{\"endpoint\":");
	put_jstr(o, endpoints[pl->ep].path);
	PUTLIT(o, ",\"user_tier\":\"");
	sbuf_puts(o, pl->tier);
	PUTLIT(o, "\",\"region\":\"");
	sbuf_puts(o, pl->region);
	PUTLIT(o, "\",\"prompt_version\":\"");
	sbuf_puts(o, pl->prompt_version);
	PUTLIT(o, "\",\"user_id\":\"usr_");
	put_hex(o, (pl->user * 0x9e3779b1u) & 0xffffffu, 6);
	PUTLIT(o, "\"},\"model\":");
	put_jstr(o, answer_models[pl->mi].name);
	put_usage(o, pl->qe_in + pl->llm_in, pl->qe_out + pl->answer_tokens);
	PUTLIT(o, ",\"latency_ms\":{\"total\":");
	put_ms(o, pl->t1 - pl->t0);
	if (pl->cache_hit) {
		PUTLIT(o, ",\"time_to_first_token\":");
		put_ms(o, pl->ttft);
	} else if (pl->ttft >= 0) {
		PUTLIT(o, ",\"time_to_first_token\":");
		put_ms(o, pl->llm.start + pl->ttft - pl->t0);
		PUTLIT(o, ",\"inter_token_mean\":");
		put_ms(o, pl->itm);
	}
	PUTLIT(o, "},\"error\":");
	if (pl->err) {
		PUTLIT(o, "{\"type\":\"");
		sbuf_puts(o, pl->err_type);
		PUTLIT(o, "\",\"message\":");
		put_jbuf(o, &g->errmsg);
		sbuf_putc(o, '}');
	} else {
		PUTLIT(o, "null");
	}
	PUTLIT(o, ",\"spans\":[");
}

static void write_embed(const struct gen *g, const struct plan *pl, struct sbuf *o,
                        int first, uint64_t parent)
{
	span_open(o, first, pl->em.id, parent, "embed_query", "general", pl->em.start, pl->em.end);
	PUTLIT(o, ",\"input\":");
	put_jbuf(o, pl->cache_hit ? &g->question : &g->queries[0]);
	PUTLIT(o, ",\"output\":{\"dimensions\":1536},\"metadata\":{\"provider\":\"openai\"},"
	          "\"model\":\"" EMBED_MODEL "\"");
	span_close(o, pl->em.start, pl->em.end, -1, -1, NULL, NULL);
}

static void write_cache(const struct gen *g, const struct plan *pl, struct sbuf *o)
{
	write_embed(g, pl, o, 1, 0);
	span_open(o, 0, pl->cache.id, 0, "semantic_cache", "tool", pl->cache.start, pl->cache.end);
	PUTLIT(o, ",\"input\":{\"query\":");
	put_jbuf(o, &g->question);
	PUTLIT(o, "},\"output\":{\"hit\":true,\"entry_id\":\"cache-");
	put_hex(o, pl->id_hi >> 32, 8);
	PUTLIT(o, "\",\"similarity\":");
	put_score(o, pl->cache_sim);
	PUTLIT(o, "},\"metadata\":{\"store\":\"redis\",\"threshold\":0.95}");
	span_close(o, pl->cache.start, pl->cache.end, -1, -1, NULL, NULL);
}

static void write_qe(const struct gen *g, const struct plan *pl, struct sbuf *o)
{
	span_open(o, 1, pl->qe.id, 0, "query_expansion", "llm", pl->qe.start, pl->qe.end);
	PUTLIT(o, ",\"input\":{\"messages\":[{\"role\":\"system\",\"content\":");
	put_jstr(o, qe_system);
	PUTLIT(o, "},{\"role\":\"user\",\"content\":");
	put_jbuf(o, &g->question);
	PUTLIT(o, "}]},\"output\":{\"queries\":[");
	for (int i = 0; i < 3; i++) {
		if (i)
			sbuf_putc(o, ',');
		put_jbuf(o, &g->queries[i]);
	}
	PUTLIT(o, "]},\"metadata\":{\"provider\":\"vllm\",\"temperature\":0,\"max_tokens\":128,"
	          "\"stream\":false},\"model\":\"" QE_MODEL "\"");
	put_usage(o, pl->qe_in, pl->qe_out);
	span_close(o, pl->qe.start, pl->qe.end, -1, -1, NULL, NULL);
}

static void write_retrieval(const struct gen *g, const struct plan *pl, struct sbuf *o)
{
	span_open(o, !pl->has_qe, pl->rt.id, 0, "retrieval", "retrieval", pl->rt.start, pl->rt.end);
	PUTLIT(o, ",\"input\":{\"query\":");
	put_jbuf(o, &g->queries[0]);
	PUTLIT(o, ",\"top_k\":");
	put_u64(o, (uint64_t)pl->ndocs);
	PUTLIT(o, "},\"output\":{\"documents\":[");
	for (int i = 0; i < pl->ndocs; i++) {
		if (i)
			sbuf_putc(o, ',');
		PUTLIT(o, "{\"id\":\"");
		sbuf_puts(o, g->docs[i].id);
		PUTLIT(o, "\",\"text\":");
		put_jbuf(o, &g->docs[i].text);
		PUTLIT(o, ",\"score\":");
		put_score(o, g->docs[i].score);
		sbuf_putc(o, '}');
	}
	PUTLIT(o, "]},\"metadata\":{\"index\":\"kb-");
	sbuf_puts(o, pl->tp->name);
	PUTLIT(o, "-v2\",\"vector_store\":\"pgvector\"}");
	span_close(o, pl->rt.start, pl->rt.end, -1, -1, NULL, NULL);
	write_embed(g, pl, o, 0, pl->rt.id);
}

static void write_rerank(const struct gen *g, const struct plan *pl, struct sbuf *o)
{
	span_open(o, 0, pl->rr.id, 0, "rerank", "tool", pl->rr.start, pl->rr.end);
	PUTLIT(o, ",\"input\":{\"query\":");
	put_jbuf(o, &g->queries[0]);
	PUTLIT(o, ",\"documents\":");
	put_u64(o, (uint64_t)pl->ndocs);
	PUTLIT(o, "},\"output\":{\"ranking\":[");
	for (int i = 0; i < pl->keep; i++) {
		if (i)
			sbuf_putc(o, ',');
		PUTLIT(o, "{\"id\":\"");
		sbuf_puts(o, pl->ranked[i]->id);
		PUTLIT(o, "\",\"score\":");
		put_score(o, pl->ranked[i]->rscore);
		sbuf_putc(o, '}');
	}
	PUTLIT(o, "]},\"metadata\":{\"top_n\":");
	put_u64(o, (uint64_t)pl->keep);
	PUTLIT(o, "},\"model\":\"" RERANK_MODEL "\"");
	span_close(o, pl->rr.start, pl->rr.end, -1, -1, NULL, NULL);
}

static void write_prompt(const struct gen *g, const struct plan *pl, struct sbuf *o)
{
	span_open(o, 0, pl->fp.id, 0, "format_prompt", "general", pl->fp.start, pl->fp.end);
	PUTLIT(o, ",\"input\":{\"template\":\"");
	sbuf_puts(o, pl->prompt_version);
	PUTLIT(o, "\",\"passages\":");
	put_u64(o, (uint64_t)pl->keep);
	PUTLIT(o, "},\"output\":");
	put_jbuf(o, &g->prompt);
	PUTLIT(o, ",\"metadata\":{}");
	span_close(o, pl->fp.start, pl->fp.end, -1, -1, NULL, NULL);
}

static void write_llm(const struct gen *g, const struct plan *pl, struct sbuf *o)
{
	span_open(o, 0, pl->llm.id, 0, "llm_call", "llm", pl->llm.start, pl->llm.end);
	PUTLIT(o, ",\"input\":{\"messages\":[{\"role\":\"system\",\"content\":");
	put_jstr(o, pl->system);
	PUTLIT(o, "},{\"role\":\"user\",\"content\":");
	put_jbuf(o, &g->prompt);
	PUTLIT(o, "}]},\"output\":");
	if (pl->err) {
		PUTLIT(o, "null");
	} else {
		PUTLIT(o, "{\"role\":\"assistant\",\"content\":");
		put_jbuf(o, &g->answer);
		sbuf_putc(o, '}');
	}
	PUTLIT(o, ",\"metadata\":{\"provider\":\"");
	sbuf_puts(o, answer_models[pl->mi].provider);
	PUTLIT(o, "\",\"temperature\":0.2,\"max_tokens\":");
	put_u64(o, (uint64_t)pl->max_tokens);
	PUTLIT(o, ",\"stream\":true");
	if (!pl->err) {
		PUTLIT(o, ",\"finish_reason\":\"");
		sbuf_puts(o, pl->finish);
		sbuf_putc(o, '"');
	}
	PUTLIT(o, "},\"model\":");
	put_jstr(o, answer_models[pl->mi].name);
	if (pl->llm_in || pl->answer_tokens)
		put_usage(o, pl->llm_in, pl->answer_tokens);
	span_close(o, pl->llm.start, pl->llm.end, pl->ttft, pl->itm, pl->err_type, &g->errmsg);
}

int gen_next(struct gen *g, struct sbuf *o, struct gen_info *info)
{
	struct rng rr, *r = &rr;
	struct plan pl;
	memset(&pl, 0, sizeof(pl));
	rng_seed(r, g->seed ^ (g->index * 0xd1b54a32d192ed03ULL));

	/* When: the gap is always drawn, so the content does not depend on --rate. */
	int64_t gap = rng_range(r, 10000, 200000);
	pl.t0 = g->rate > 0 ? g->start_us + (int64_t)((double)g->index * 1e6 / g->rate)
	                    : g->next_start_us;
	g->next_start_us = pl.t0 + gap;
	g->index++;

	plan_request(g, r, &pl);
	plan_question(g, r, &pl);
	size_t all_chars = plan_docs(g, r, &pl);
	plan_texts(g, r, &pl, all_chars);
	plan_times(g, r, &pl);
	struct span *spans[] = { &pl.qe, &pl.rt, &pl.em, &pl.rr, &pl.fp, &pl.llm, &pl.cache };
	for (size_t i = 0; i < NELEM(spans); i++)
		spans[i]->id = span_id(r);

	int nspans;
	write_top(g, &pl, o);
	if (pl.cache_hit) {
		write_cache(g, &pl, o);
		nspans = 2;
	} else {
		if (pl.has_qe)
			write_qe(g, &pl, o);
		write_retrieval(g, &pl, o);
		write_rerank(g, &pl, o);
		write_prompt(g, &pl, o);
		write_llm(g, &pl, o);
		nspans = 5 + pl.has_qe;
	}
	PUTLIT(o, "]}");

	if (info) {
		info->error = pl.err;
		info->pii = pl.pii;
		info->unicode = pl.unicode;
		info->nspans = nspans;
		info->start_us = pl.t0;
		info->end_us = pl.t1;
	}
	if (o->oom || g->question.oom || g->answer.oom || g->prompt.oom || g->errmsg.oom ||
	    g->task_you.oom)
		return -1;
	return 0;
}
