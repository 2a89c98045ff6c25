/* names.c — dbreg's own naming rules (connection names), kept in one table. */
#include <string.h>

#include "internal.h"

struct name_rule {
	const char *what;
	size_t max;
	const char *first;   /* characters allowed first */
	const char *rest;    /* characters allowed after */
	const char *pattern; /* for messages */
};

static const struct name_rule connection_name_rule = {
	"connection name", 100,
	"abcdefghijklmnopqrstuvwxyz0123456789",
	"abcdefghijklmnopqrstuvwxyz0123456789._-",
	"^[a-z0-9][a-z0-9._-]*$",
};

static int check_rule(const struct name_rule *rule, const char *s, struct dbreg_error *err)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0)
		return dbreg_fail(err, DBREG_ERR_USAGE, "the %s is empty", rule->what);
	if (n > rule->max)
		return dbreg_fail(err, DBREG_ERR_USAGE, "the %s is %zu bytes; at most %zu", rule->what, n, rule->max);
	if (!strchr(rule->first, s[0]) || strspn(s + 1, rule->rest) != n - 1)
		return dbreg_fail(err, DBREG_ERR_USAGE, "invalid %s '%s': it must match %s", rule->what, s,
		                  rule->pattern);
	return 0;
}

_public_ int dbreg_check_connection_name(const char *name, struct dbreg_error *err)
{
	return check_rule(&connection_name_rule, name, err);
}

bool dbreg_is_uuid(const char *s)
{
	static const char hex[] = "0123456789abcdefABCDEF";

	if (strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!strchr(hex, s[i])) {
			return false;
		}
	}
	return true;
}
