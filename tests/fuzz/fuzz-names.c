/* fuzz-names.c — the naming rules of SPEC §6 against a model written from SPEC alone.
 *
 * The input up to its first NUL goes to every public naming check: connection names,
 * schema names, tenant slugs (and the schema a slug implies), canonical UUIDs.
 * Properties: each check accepts exactly what SPEC's rules (as restated in dbreg.h)
 * accept; an accepted schema name matches ^[a-z][a-z0-9_]*$ and is at most 63 bytes; a
 * refusal is DBREG_ERR_USAGE and names the rule it broke; an accepted slug's expected
 * schema is tenant_ + slug with - turned into _, and is itself a valid schema name. */
#include "dbreg.h"
#include "fuzz.h"

static const char *const reserved_schema[] = {
	"user", "table", "index", "where", "select", "insert", "update", "delete",
	"create", "drop", "alter", "grant", "revoke", "commit", "rollback",
};

static const char *const reserved_slug[] = {
	"admin", "api", "app", "www", "mail", "ftp", "test", "dev", "staging", "prod",
	"production", "platform", "system", "root", "tenant", "organization", "org",
	"public", "private", "shared",
};

static int lower(char c) { return c >= 'a' && c <= 'z'; }
static int digit(char c) { return c >= '0' && c <= '9'; }
static int hex(char c) { return digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

static int in(const char *s, const char *const *words, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, words[i]) == 0)
			return 1;
	return 0;
}

/* ^[a-z0-9][a-z0-9._-]*$, at most 100 bytes */
static int model_connection(const char *s, size_t n)
{
	if (n < 1 || n > 100 || !(lower(s[0]) || digit(s[0])))
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!(lower(s[i]) || digit(s[i]) || s[i] == '.' || s[i] == '_' || s[i] == '-'))
			return 0;
	return 1;
}

/* ^[a-z][a-z0-9_]*$ */
static int schema_pattern(const char *s, size_t n)
{
	if (n < 1 || !lower(s[0]))
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!(lower(s[i]) || digit(s[i]) || s[i] == '_'))
			return 0;
	return 1;
}

/* the pattern, at most 63 bytes, not pg_*, not information_schema, not reserved */
static int model_schema(const char *s, size_t n)
{
	return schema_pattern(s, n) && n <= 63 && strncmp(s, "pg_", 3) != 0 && strcmp(s, "information_schema") != 0 &&
	       !in(s, reserved_schema, sizeof(reserved_schema) / sizeof(reserved_schema[0]));
}

/* ^[a-z0-9][a-z0-9-]*[a-z0-9]$, 4-54 characters, no --, not reserved */
static int model_slug(const char *s, size_t n)
{
	if (n < 4 || n > 54)
		return 0;
	for (size_t i = 0; i < n; i++) {
		int edge = i == 0 || i == n - 1;

		if (!(lower(s[i]) || digit(s[i]) || (!edge && s[i] == '-')))
			return 0;
	}
	return strstr(s, "--") == NULL && !in(s, reserved_slug, sizeof(reserved_slug) / sizeof(reserved_slug[0]));
}

/* 8-4-4-4-12 hex digits */
static int model_uuid(const char *s, size_t n)
{
	if (n != 36)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((i == 8 || i == 13 || i == 18 || i == 23) ? s[i] != '-' : !hex(s[i]))
			return 0;
	return 1;
}

static void refusal(const char *what, const char *s, const struct dbreg_error *err)
{
	FUZZ_ASSERT(err->kind == DBREG_ERR_USAGE, "%s \"%s\" refused as kind %d", what, s, (int)err->kind);
	FUZZ_ASSERT(strstr(err->message, "rule ") != NULL, "%s refusal names no rule: %s", what, err->message);
	FUZZ_ASSERT(strlen(err->message) < sizeof(err->message), "unterminated message");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dbreg_error err;
	char *s = fuzz_string(data, size);
	size_t n;
	int ok, want;

	if (!s)
		return 0;
	n = strlen(s);

	dbreg_error_clear(&err);
	ok = dbreg_check_connection_name(s, &err) == 0;
	want = model_connection(s, n);
	FUZZ_ASSERT(ok == want, "connection name \"%s\": dbreg says %d, SPEC %d (%s)", s, ok, want, err.message);
	if (!ok)
		refusal("connection name", s, &err);

	dbreg_error_clear(&err);
	ok = dbreg_check_schema_name(s, &err) == 0;
	want = model_schema(s, n);
	FUZZ_ASSERT(ok == want, "schema name \"%s\": dbreg says %d, SPEC %d (%s)", s, ok, want, err.message);
	if (ok)
		FUZZ_ASSERT(schema_pattern(s, n) && n <= 63, "accepted schema name \"%s\" breaks ^[a-z][a-z0-9_]*$ or 63 bytes", s);
	else
		refusal("schema name", s, &err);

	dbreg_error_clear(&err);
	ok = dbreg_check_slug(s, &err) == 0;
	want = model_slug(s, n);
	FUZZ_ASSERT(ok == want, "slug \"%s\": dbreg says %d, SPEC %d (%s)", s, ok, want, err.message);
	if (!ok) {
		refusal("tenant slug", s, &err);
	} else {
		char schema[80], tiny[8];

		FUZZ_ASSERT(dbreg_schema_for_slug(s, schema, sizeof(schema)) == 0, "no schema for slug \"%s\"", s);
		FUZZ_ASSERT(strncmp(schema, "tenant_", 7) == 0 && strlen(schema) == n + 7, "slug \"%s\" -> \"%s\"", s, schema);
		for (size_t i = 0; i < n; i++)
			FUZZ_ASSERT(schema[7 + i] == (s[i] == '-' ? '_' : s[i]), "slug \"%s\" -> \"%s\"", s, schema);
		dbreg_error_clear(&err);
		FUZZ_ASSERT(dbreg_check_schema_name(schema, &err) == 0, "slug \"%s\" implies schema \"%s\": %s", s, schema,
		            err.message);
		/* Too small a buffer is refused, not overrun (ASan watches). */
		FUZZ_ASSERT(dbreg_schema_for_slug(s, tiny, sizeof(tiny)) == -1, "slug \"%s\" fit 8 bytes", s);
	}

	ok = dbreg_is_canonical_uuid(s) != 0;
	want = model_uuid(s, n);
	FUZZ_ASSERT(ok == want, "UUID \"%s\": dbreg says %d, 8-4-4-4-12 hex %d", s, ok, want);

	free(s);
	return 0;
}
