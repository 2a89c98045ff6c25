/* names.c — dbreg's own naming rules (connection names, schema names, slugs), kept in one table. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

enum rule_kind { R_PATTERN, R_MIN_LEN, R_MAX_LEN, R_PREFIX, R_WORDS, R_SUBSTRING };

/* One rule: what it checks, and the name a refusal gives it. */
struct rule {
	const char *name;
	enum rule_kind kind;
	const char *arg;          /* R_PATTERN: "first|middle|last" allowed sets; R_PREFIX/R_SUBSTRING: text */
	size_t n;                 /* R_MIN_LEN/R_MAX_LEN */
	const char *const *words; /* R_WORDS */
	const char *describe;
};

#define LOWER "abcdefghijklmnopqrstuvwxyz"
#define DIGIT "0123456789"

static const char *const reserved_schema_words[] = {
	"user", "table", "index", "where", "select", "insert", "update", "delete", "create", "drop",
	"alter", "grant", "revoke", "commit", "rollback", NULL,
};

static const char *const reserved_slugs[] = {
	"admin", "api", "app", "www", "mail", "ftp", "test", "dev", "staging", "prod", "production",
	"platform", "system", "root", "tenant", "organization", "org", "public", "private", "shared", NULL,
};

static const char *const information_schema[] = { "information_schema", NULL };

/* R_PATTERN sets: the first character, the ones between, the last (NULL: as between). */
struct charsets {
	const char *first, *middle, *last;
};

static const struct charsets connection_chars = { LOWER DIGIT, LOWER DIGIT "._-", NULL };
static const struct charsets schema_chars = { LOWER, LOWER DIGIT "_", NULL };
static const struct charsets slug_chars = { LOWER DIGIT, LOWER DIGIT "-", LOWER DIGIT };

static const struct rule connection_rules[] = {
	{ "length", R_MIN_LEN, NULL, 1, NULL, "must not be empty" },
	{ "length", R_MAX_LEN, NULL, 100, NULL, "must be at most 100 bytes" },
	{ "pattern", R_PATTERN, (const char *)&connection_chars, 0, NULL, "must match ^[a-z0-9][a-z0-9._-]*$" },
	{ NULL, 0, NULL, 0, NULL, NULL },
};

static const struct rule schema_rules[] = {
	{ "length", R_MIN_LEN, NULL, 1, NULL, "must not be empty" },
	{ "length", R_MAX_LEN, NULL, 63, NULL, "must be at most 63 bytes" },
	{ "pattern", R_PATTERN, (const char *)&schema_chars, 0, NULL, "must match ^[a-z][a-z0-9_]*$" },
	{ "pg-prefix", R_PREFIX, "pg_", 0, NULL, "must not start with pg_ (reserved for the system)" },
	{ "information-schema", R_WORDS, NULL, 0, information_schema, "must not be information_schema" },
	{ "reserved-word", R_WORDS, NULL, 0, reserved_schema_words, "must not be a reserved SQL word" },
	{ NULL, 0, NULL, 0, NULL, NULL },
};

static const struct rule slug_rules[] = {
	{ "length", R_MIN_LEN, NULL, 4, NULL, "must be at least 4 characters" },
	{ "length", R_MAX_LEN, NULL, 54, NULL, "must be at most 54 characters" },
	{ "pattern", R_PATTERN, (const char *)&slug_chars, 0, NULL, "must match ^[a-z0-9][a-z0-9-]*[a-z0-9]$" },
	{ "double-hyphen", R_SUBSTRING, "--", 0, NULL, "must not contain --" },
	{ "reserved-slug", R_WORDS, NULL, 0, reserved_slugs, "must not be a reserved name" },
	{ NULL, 0, NULL, 0, NULL, NULL },
};

/* What a stored row must be for dbreg to use it: the pattern alone (the platform's CHECKs),
 * the stricter rules above being dbreg's for what it writes (validate-config warns of the rest). */
static const struct rule slug_lookup_rules[] = {
	{ "length", R_MIN_LEN, NULL, 2, NULL, "must be at least 2 characters" },
	{ "length", R_MAX_LEN, NULL, 63, NULL, "must be at most 63 characters" },
	{ "pattern", R_PATTERN, (const char *)&slug_chars, 0, NULL, "must match ^[a-z0-9][a-z0-9-]*[a-z0-9]$" },
	{ NULL, 0, NULL, 0, NULL, NULL },
};

static const struct rule stored_schema_rules[] = {
	{ "length", R_MIN_LEN, NULL, 1, NULL, "must not be empty" },
	{ "length", R_MAX_LEN, NULL, 63, NULL, "must be at most 63 bytes" },
	{ "pattern", R_PATTERN, (const char *)&schema_chars, 0, NULL, "must match ^[a-z][a-z0-9_]*$" },
	{ NULL, 0, NULL, 0, NULL, NULL },
};

static bool pattern_ok(const struct charsets *c, const char *s, size_t n)
{
	const char *last = c->last ? c->last : c->middle;

	if (n == 0 || !strchr(c->first, s[0]))
		return false;
	if (n == 1)
		return !c->last;  /* a set last character needs a second one */
	return strspn(s + 1, c->middle) >= n - 2 && strchr(last, s[n - 1]) && s[n - 1] != '\0';
}

static bool rule_ok(const struct rule *r, const char *s)
{
	size_t n = strlen(s);

	switch (r->kind) {
	case R_MIN_LEN: return n >= r->n;
	case R_MAX_LEN: return n <= r->n;
	case R_PATTERN: return pattern_ok((const struct charsets *)r->arg, s, n);
	case R_PREFIX: return strncmp(s, r->arg, strlen(r->arg)) != 0;
	case R_SUBSTRING: return strstr(s, r->arg) == NULL;
	case R_WORDS:
		for (const char *const *w = r->words; *w; w++)
			if (strcmp(s, *w) == 0)
				return false;
		return true;
	}
	return false;
}

static int check_rules(const struct rule *rules, const char *what, const char *s, enum dbreg_errkind kind,
                       struct dbreg_error *err)
{
	char shown[160];

	if (!s)
		s = "";
	for (const struct rule *r = rules; r->name; r++)
		if (!rule_ok(r, s)) {
			dbreg_printable(s, shown, sizeof(shown));
			return dbreg_fail(err, kind, "invalid %s '%s': rule %s: it %s", what, shown, r->name, r->describe);
		}
	return 0;
}

_public_ int dbreg_check_connection_name(const char *name, struct dbreg_error *err)
{
	return check_rules(connection_rules, "connection name", name, DBREG_ERR_USAGE, err);
}

_public_ int dbreg_check_schema_name(const char *name, struct dbreg_error *err)
{
	return check_rules(schema_rules, "schema name", name, DBREG_ERR_USAGE, err);
}

_public_ int dbreg_check_slug(const char *slug, struct dbreg_error *err)
{
	return check_rules(slug_rules, "tenant slug", slug, DBREG_ERR_USAGE, err);
}

_public_ int dbreg_check_slug_lookup(const char *slug, struct dbreg_error *err)
{
	return check_rules(slug_lookup_rules, "tenant slug", slug, DBREG_ERR_USAGE, err);
}

int dbreg_check_stored_schema(const char *name, struct dbreg_error *err)
{
	return check_rules(stored_schema_rules, "schema name", name, DBREG_ERR_USAGE, err);
}

_public_ int dbreg_schema_for_slug(const char *slug, char *buf, size_t size)
{
	int n = snprintf(buf, size, "tenant_%s", slug);

	if (n < 0 || (size_t)n >= size)
		return -1;
	for (char *p = buf; *p; p++)
		if (*p == '-')
			*p = '_';
	return 0;
}

_public_ int dbreg_is_canonical_uuid(const char *s)
{
	static const char hex[] = "0123456789abcdefABCDEF";

	if (strlen(s) != 36)
		return 0;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!strchr(hex, s[i])) {
			return 0;
		}
	}
	return 1;
}

_public_ size_t dbreg_name_distance(const char *a, const char *b)
{
	/* Optimal string alignment: insertions, deletions, substitutions and transpositions
	 * of neighbours each count one ("lsit" is one from "list", two from "init"). */
	size_t la = strlen(a), lb = strlen(b), d[3][DBREG_DISTANCE_MAX + 2];

	if (la > DBREG_DISTANCE_MAX || lb > DBREG_DISTANCE_MAX)
		return (size_t)-1;
	for (size_t i = 0; i <= la; i++) {
		size_t *row = d[i % 3], *up = d[(i + 2) % 3], *up2 = d[(i + 1) % 3];

		for (size_t j = 0; j <= lb; j++) {
			size_t best;

			if (i == 0 || j == 0) {
				row[j] = i + j;
				continue;
			}
			best = up[j - 1] + (a[i - 1] != b[j - 1]);
			if (up[j] + 1 < best)
				best = up[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && up2[j - 2] + 1 < best)
				best = up2[j - 2] + 1;
			row[j] = best;
		}
	}
	return d[la % 3][lb];
}

_public_ const char *dbreg_name_closest(const char *name, const char *const *candidates, size_t n)
{
	/* Close enough to be a slip: one edit in a short word, two in a longer one; a prefix
	 * of two or more characters as good as one edit. */
	size_t limit = strlen(name) <= 4 ? 2 : 3, best_d = limit;
	const char *best = NULL;

	for (size_t i = 0; i < n; i++) {
		size_t d = dbreg_name_distance(name, candidates[i]);

		if (strlen(name) >= 2 && strncmp(name, candidates[i], strlen(name)) == 0 && d > 1)
			d = 1;
		if (d < best_d) {
			best_d = d;
			best = candidates[i];
		}
	}
	return best;
}
