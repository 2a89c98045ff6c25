/* fuzz-conninfo.c — a password in a connection string never shows in an error message.
 *
 * Input: a MODE byte, then A NUL B NUL C (missing parts are empty; C ends at a further
 * NUL).  B is the password.  The string is
 *   MODE even:  A "password=" B C
 *   MODE odd:   "postgresql://u:" B "@" A C
 * and goes to dbreg_url_parse (public), dbreg_admin_url_check and dbreg_conninfo_inspect
 * (internal).
 *
 * Property: no run of 4 or more consecutive bytes of B appears in any message they
 * produce (err.message, facts.error), unless that run also occurs
 *   - elsewhere in the string (the string with this occurrence of B taken out),
 *   - in libpq's own template text: PQconninfoParse's message on the same string with
 *     every double-quoted segment "..." deleted, or
 *   - in dbreg's own fixed message text (dbreg_text below; "(hidden)" and the like),
 * nor a run across the seams of those (dbreg's prefix before libpq's words, a quoted
 * part kept or hidden between them: see libpq_template).
 * A violation prints the message and aborts. */
#include <libpq-fe.h>

#include "dbreg.h"
#include "fuzz.h"
#include "internal.h"

#define MIN_RUN 4

/* What dbreg itself writes around (or instead of) libpq's words in these messages. */
static const char *const dbreg_text[] = {
	"cannot parse the URL: ",
	"the URL contains a password; passwords never go on the command line (use --password-stdin)",
	"a registered connection names one host and port, not a list",
	"out of memory",
	"\"(hidden)\"",
};

struct buf {
	char *s;
	size_t n, cap;
};

static void put(struct buf *b, const char *s, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		b->cap = (b->n + n + 1) * 2;
		b->s = realloc(b->s, b->cap);
		FUZZ_ASSERT(b->s != NULL, "out of memory");
	}
	if (n)
		memcpy(b->s + b->n, s, n);
	b->n += n;
	b->s[b->n] = '\0';
}

static void puts_(struct buf *b, const char *s)
{
	put(b, s, strlen(s));
}

/* One part of the input: up to the next NUL (or the end). */
static const char *part(const uint8_t **p, const uint8_t *end, size_t *len)
{
	const char *s = (const char *)*p;
	const uint8_t *nul = *p < end ? memchr(*p, '\0', (size_t)(end - *p)) : NULL;

	*len = nul ? (size_t)(nul - *p) : (size_t)(end - *p);
	*p = nul ? nul + 1 : end;
	return s;
}

/* Appends libpq's message msg: newlines as dbreg's "; ", and each quoted segment "..."
 * as keep_quoted says (0: left out, 1: as "(hidden)", 2: as is when its text occurs
 * in elsewhere or is one byte long, else as "(hidden)"), then a gap no run can span. */
static void put_libpq(struct buf *t, const char *prefix, const char *msg, int keep_quoted,
                      const struct buf *elsewhere)
{
	puts_(t, prefix);
	for (const char *p = msg; *p; p++) {
		const char *close;

		if (*p == '"' && (close = strchr(p + 1, '"'))) {
			size_t n = (size_t)(close - p - 1);

			if (keep_quoted == 2 && (n == 1 || memmem(elsewhere->s, elsewhere->n, p + 1, n)))
				put(t, p, n + 2);
			else if (keep_quoted)
				puts_(t, "\"(hidden)\"");
			else
				put(t, "\x01", 1);
			p = close;
		} else if (*p == '\n') {
			puts_(t, "; ");
		} else {
			put(t, p, 1);
		}
	}
	put(t, "\x01", 1);
}

/* libpq's template text: its message on the same string without the quoted segments,
 * which are all that can hold a part of the password.  So that a run across the seams
 * of a message (dbreg's prefix, libpq's words, a quoted part hidden or kept) is judged
 * by each side, also the message as a scrubber that hides exactly the quoted parts not
 * found elsewhere in the string would write it, and as one that hides them all. */
static void libpq_template(const char *conninfo, const struct buf *elsewhere, struct buf *t)
{
	static const char *const prefixes[] = { "", "cannot parse the URL: " };
	char *msg = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &msg);

	PQconninfoFree(opts);
	put(t, "", 0);
	if (!msg)
		return;
	put_libpq(t, "", msg, 0, elsewhere);
	for (size_t i = 0; i < ELEMENTSOF(prefixes); i++) {
		put_libpq(t, prefixes[i], msg, 1, elsewhere);
		put_libpq(t, prefixes[i], msg, 2, elsewhere);
	}
	PQfreemem(msg);
}

static int allowed(const char *run, size_t n, const struct buf *elsewhere, const struct buf *tmpl)
{
	if (memmem(elsewhere->s, elsewhere->n, run, n) || memmem(tmpl->s, tmpl->n, run, n))
		return 1;
	for (size_t i = 0; i < ELEMENTSOF(dbreg_text); i++)
		if (memmem(dbreg_text[i], strlen(dbreg_text[i]), run, n))
			return 1;
	return 0;
}

/* For each start in the password, the longest run from it that the message holds; that
 * run is allowed only if it occurs in an allowed text (a shorter one from the same
 * start is then allowed too).  The longest run not allowed is shown. */
static void check(const char *what, const char *msg, const char *pw, size_t pwlen, const char *conninfo,
                  const struct buf *elsewhere, const struct buf *tmpl)
{
	size_t m = strlen(msg), worst = 0, worst_at = 0;
	size_t *prev, *cur;

	if (pwlen < MIN_RUN || m < MIN_RUN)
		return;
	prev = calloc(m + 1, sizeof(*prev));
	cur = calloc(m + 1, sizeof(*cur));
	FUZZ_ASSERT(prev && cur, "out of memory");
	for (size_t i = pwlen; i-- > 0;) {
		size_t best = 0, at = 0, *t;

		for (size_t j = 0; j < m; j++) {
			cur[j] = pw[i] == msg[j] ? 1 + prev[j + 1] : 0;
			if (cur[j] > best) {
				best = cur[j];
				at = j;
			}
		}
		cur[m] = 0;
		if (best >= MIN_RUN && best > worst && !allowed(pw + i, best, elsewhere, tmpl)) {
			worst = best;
			worst_at = at;
		}
		t = prev;
		prev = cur;
		cur = t;
	}
	free(prev);
	free(cur);
	if (worst) {
		fprintf(stderr, "fuzz-conninfo: %s shows %zu bytes of the password:\n  message:  %s\n  run:      ",
		        what, worst, msg);
		fuzz_print_c_string(stderr, msg + worst_at, worst);
		fprintf(stderr, "\n  password: ");
		fuzz_print_c_string(stderr, pw, pwlen);
		fprintf(stderr, "\n  string:   ");
		fuzz_print_c_string(stderr, conninfo, strlen(conninfo));
		fputc('\n', stderr);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data + 1, *end = data + size;
	struct buf s = { 0 }, elsewhere = { 0 }, tmpl = { 0 };
	struct dbreg_url_parts *parts = NULL;
	struct dbreg_conninfo_facts facts;
	struct dbreg_error err;
	const char *a, *b, *c;
	size_t alen, blen, clen;

	if (size < 1)
		return 0;
	a = part(&p, end, &alen);
	b = part(&p, end, &blen);
	c = part(&p, end, &clen);
	if (data[0] % 2 == 0) {
		put(&s, a, alen);
		puts_(&s, "password=");
		put(&s, b, blen);
		put(&s, c, clen);
		/* The same without B. */
		put(&elsewhere, a, alen);
		puts_(&elsewhere, "password=");
		put(&elsewhere, c, clen);
	} else {
		puts_(&s, "postgresql://u:");
		put(&s, b, blen);
		puts_(&s, "@");
		put(&s, a, alen);
		put(&s, c, clen);
		puts_(&elsewhere, "postgresql://u:@");
		put(&elsewhere, a, alen);
		put(&elsewhere, c, clen);
	}
	libpq_template(s.s, &elsewhere, &tmpl);

	dbreg_error_clear(&err);
	if (dbreg_url_parse(s.s, &parts, &err) < 0) {
		FUZZ_ASSERT(err.kind != DBREG_OK && err.message[0], "dbreg_url_parse failed without an error");
		check("dbreg_url_parse", err.message, b, blen, s.s, &elsewhere, &tmpl);
	} else {
		dbreg_url_parts_free(parts);
	}

	/* The admin connection's checks before it connects (libpq's values).  Outside
	 * its quotes such a message is dbreg's fixed text with a libpq keyword or a
	 * variable's name in it ("ADMIN_DATABASE_URL: invalid sslmode value"); only a
	 * quoted value comes from the string, and that is what must not leak. */
	dbreg_error_clear(&err);
	if (dbreg_admin_url_check(s.s, &err) < 0) {
		struct buf words = { 0 };

		FUZZ_ASSERT(err.kind != DBREG_OK && err.message[0], "dbreg_admin_url_check failed without an error");
		put(&words, tmpl.s, tmpl.n);
		put_libpq(&words, "", err.message, 0, &elsewhere);
		check("dbreg_admin_url_check", err.message, b, blen, s.s, &elsewhere, &words);
		free(words.s);
	}

	if (dbreg_conninfo_inspect(s.s, &facts) == 0) {
		if (!facts.parsed) {
			FUZZ_ASSERT(facts.error[0], "dbreg_conninfo_inspect refused the string without an error");
			check("dbreg_conninfo_inspect", facts.error, b, blen, s.s, &elsewhere, &tmpl);
		}
		dbreg_conninfo_facts_clear(&facts);
	}

	free(s.s);
	free(elsewhere.s);
	free(tmpl.s);
	return 0;
}
