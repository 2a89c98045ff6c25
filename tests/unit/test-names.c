/* test-names.c — the naming rules of SPEC §6: each refusal names the rule it broke. */
#include <string.h>

#include "internal.h"
#include "tap.h"

static int refused_by(int (*check)(const char *, struct dbreg_error *), const char *s, const char *rule)
{
	struct dbreg_error err;
	char want[64];

	dbreg_error_clear(&err);
	if (check(s, &err) == 0)
		return 0;
	snprintf(want, sizeof(want), "rule %s:", rule);
	return err.kind == DBREG_ERR_USAGE && strstr(err.message, want) != NULL;
}

static int valid(int (*check)(const char *, struct dbreg_error *), const char *s)
{
	return check(s, NULL) == 0;
}

int main(void)
{
	char buf[80], long_name[80];

	{
		static const char *const verbs[] = { "init", "list", "register", "rotate-key", "rotate-password" };
		char longer[DBREG_DISTANCE_MAX + 2];

		ok(dbreg_name_distance("list", "list") == 0, "distance: the same name is 0");
		ok(dbreg_name_distance("lsit", "list") == 1, "distance: a swap of neighbours is 1");
		ok(dbreg_name_distance("lsit", "init") == 2, "distance: lsit is 2 from init");
		ok(dbreg_name_distance("", "abc") == 3 && dbreg_name_distance("abc", "") == 3, "distance: to nothing");
		ok(dbreg_name_distance("kitten", "sitting") == 3, "distance: kitten to sitting");
		ok(dbreg_name_distance("ca", "abc") == 3, "distance: OSA, not unrestricted Damerau (ca/abc is 3)");
		memset(longer, 'x', sizeof(longer) - 1);
		longer[sizeof(longer) - 1] = '\0';
		ok(dbreg_name_distance(longer, "x") == (size_t)-1, "distance: a name over the limit");
		ok(dbreg_name_closest("lsit", verbs, 5) && strcmp(dbreg_name_closest("lsit", verbs, 5), "list") == 0,
		   "closest: lsit is list");
		ok(dbreg_name_closest("rotate-pasword", verbs, 5) &&
		   strcmp(dbreg_name_closest("rotate-pasword", verbs, 5), "rotate-password") == 0, "closest: a dropped letter");
		ok(dbreg_name_closest("reg", verbs, 5) && strcmp(dbreg_name_closest("reg", verbs, 5), "register") == 0,
		   "closest: a prefix");
		ok(dbreg_name_closest("frobnicate", verbs, 5) == NULL, "closest: nothing near");
		ok(dbreg_name_closest("x", verbs, 0) == NULL, "closest: no candidates");
	}
	ok(valid(dbreg_check_schema_name, "tenant_acme"), "schema tenant_acme valid");
	ok(valid(dbreg_check_schema_name, "a"), "schema a valid");
	ok(refused_by(dbreg_check_schema_name, "Tenant", "pattern"), "schema with upper case: pattern");
	ok(refused_by(dbreg_check_schema_name, "1abc", "pattern"), "schema starting with a digit: pattern");
	ok(refused_by(dbreg_check_schema_name, "x; DROP SCHEMA admin CASCADE", "pattern"), "schema injection: pattern");
	ok(refused_by(dbreg_check_schema_name, "x\"y", "pattern"), "schema with a quote: pattern");
	ok(refused_by(dbreg_check_schema_name, "pg_catalog", "pg-prefix"), "pg_catalog: pg-prefix");
	ok(refused_by(dbreg_check_schema_name, "information_schema", "information-schema"), "information_schema");
	ok(refused_by(dbreg_check_schema_name, "select", "reserved-word"), "select: reserved-word");
	ok(refused_by(dbreg_check_schema_name, "user", "reserved-word"), "user: reserved-word");
	ok(refused_by(dbreg_check_schema_name, "", "length"), "empty schema: length");
	memset(long_name, 'a', 64);
	long_name[64] = '\0';
	ok(refused_by(dbreg_check_schema_name, long_name, "length"), "64-byte schema: length");
	long_name[63] = '\0';
	ok(valid(dbreg_check_schema_name, long_name), "63-byte schema valid");

	ok(valid(dbreg_check_slug, "acme"), "slug acme valid");
	ok(valid(dbreg_check_slug, "acme-corp-2"), "slug acme-corp-2 valid");
	ok(refused_by(dbreg_check_slug, "abc", "length"), "3-character slug: length");
	memset(long_name, 'a', 55);
	long_name[55] = '\0';
	ok(refused_by(dbreg_check_slug, long_name, "length"), "55-character slug: length");
	long_name[54] = '\0';
	ok(valid(dbreg_check_slug, long_name), "54-character slug valid");
	ok(refused_by(dbreg_check_slug, "-acme", "pattern"), "leading hyphen: pattern");
	ok(refused_by(dbreg_check_slug, "acme-", "pattern"), "trailing hyphen: pattern");
	ok(refused_by(dbreg_check_slug, "Acme", "pattern"), "upper case: pattern");
	ok(refused_by(dbreg_check_slug, "ac_me", "pattern"), "underscore: pattern");
	ok(refused_by(dbreg_check_slug, "acme' OR '1'='1", "pattern"), "slug injection: pattern");
	ok(refused_by(dbreg_check_slug, "ac--me", "double-hyphen"), "double hyphen");
	ok(refused_by(dbreg_check_slug, "admin", "reserved-slug"), "admin: reserved-slug");
	ok(refused_by(dbreg_check_slug, "staging", "reserved-slug"), "staging: reserved-slug");

	ok(dbreg_schema_for_slug("acme-corp", buf, sizeof(buf)) == 0 && strcmp(buf, "tenant_acme_corp") == 0,
	   "expected schema of acme-corp is tenant_acme_corp");
	ok(refused_by(dbreg_check_connection_name, "Bad", "pattern"), "connection name Bad: pattern");
	ok(valid(dbreg_check_connection_name, "x"), "one-character connection name valid");
	{
		struct dbreg_error err;

		dbreg_check_schema_name("a\nb\x01", &err);
		ok(strchr(err.message, '\n') == NULL && strstr(err.message, "\\x0a"), "control characters shown escaped");
	}
	return tap_done();
}
