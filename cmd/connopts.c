/* connopts.c — the options that register and update share, parsed into a dbreg_spec. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dbreg-cmd.h"

enum {
	ARG_HOST = 0x100, ARG_DATABASE, ARG_USER, ARG_PORT, ARG_TYPE, ARG_REGION, ARG_SSL_MODE,
	ARG_POOL_MIN, ARG_POOL_MAX, ARG_POOL_TIMEOUT, ARG_POOL_RECYCLE, ARG_NO_PRE_PING, ARG_PRE_PING,
	ARG_INACTIVE, ARG_ACTIVATE, ARG_DEACTIVATE, ARG_TAG, ARG_URL, ARG_PASSWORD_STDIN,
	ARG_PASSWORD_PROMPT, ARG_NO_PASSWORD, ARG_TEST, ARG_REPLACE, ARG_DRY_RUN, ARG_POOLER, ARG_POOLER_DB,
};

const struct option conn_options[] = {
	{ "help", no_argument, NULL, 'h' },
	{ "host", required_argument, NULL, ARG_HOST },
	{ "database", required_argument, NULL, ARG_DATABASE },
	{ "user", required_argument, NULL, ARG_USER },
	{ "port", required_argument, NULL, ARG_PORT },
	{ "type", required_argument, NULL, ARG_TYPE },
	{ "region", required_argument, NULL, ARG_REGION },
	{ "ssl-mode", required_argument, NULL, ARG_SSL_MODE },
	{ "pool-min", required_argument, NULL, ARG_POOL_MIN },
	{ "pool-max", required_argument, NULL, ARG_POOL_MAX },
	{ "pool-timeout", required_argument, NULL, ARG_POOL_TIMEOUT },
	{ "pool-recycle", required_argument, NULL, ARG_POOL_RECYCLE },
	{ "no-pre-ping", no_argument, NULL, ARG_NO_PRE_PING },
	{ "pre-ping", no_argument, NULL, ARG_PRE_PING },
	{ "inactive", no_argument, NULL, ARG_INACTIVE },
	{ "activate", no_argument, NULL, ARG_ACTIVATE },
	{ "deactivate", no_argument, NULL, ARG_DEACTIVATE },
	{ "tag", required_argument, NULL, ARG_TAG },
	{ "url", required_argument, NULL, ARG_URL },
	{ "password-stdin", no_argument, NULL, ARG_PASSWORD_STDIN },
	{ "password-prompt", no_argument, NULL, ARG_PASSWORD_PROMPT },
	{ "no-password", no_argument, NULL, ARG_NO_PASSWORD },
	{ "test", no_argument, NULL, ARG_TEST },
	{ "replace", no_argument, NULL, ARG_REPLACE },
	{ "dry-run", no_argument, NULL, ARG_DRY_RUN },
	{ "pooler", required_argument, NULL, ARG_POOLER },
	{ "pooler-db", required_argument, NULL, ARG_POOLER_DB },
	{},
};

static int set(const char *verb, struct dbreg_spec *s, enum dbreg_field f, const char *v)
{
	struct dbreg_error err;

	dbreg_error_clear(&err);
	if (dbreg_spec_set(s, f, v, &err) < 0)
		return usage_error(verb, "%s", err.message);
	return 0;
}

static int set_password_source(const char *verb, struct conn_opts *o, enum pw_source src)
{
	if (o->pw != PW_NONE && o->pw != src)
		return usage_error(verb, "--password-stdin, --password-prompt and --no-password exclude each other");
	o->pw = src;
	return 0;
}

int conn_opts_parse(const char *verb, bool update, int argc, char **argv, struct conn_opts *o, const char **ret_name)
{
	struct dbreg_error err;
	int c, r = 0, active = -1;

	dbreg_error_clear(&err);
	*o = (struct conn_opts){ .pw = PW_NONE };
	if (dbreg_spec_new(&o->spec, &err) < 0)
		return fail(&err);
	opterr = 0;
	while (r == 0 && (c = getopt_long(argc, argv, ":h", conn_options, NULL)) != -1) {
		const char *opt = argv[optind - 1];

		if (!update && (c == ARG_ACTIVATE || c == ARG_DEACTIVATE || c == ARG_PASSWORD_PROMPT || c == ARG_PRE_PING))
			return usage_error(verb, "%s is an option of 'dbreg update'", opt);
		switch (c) {
		case 'h':
			return -1;
		case ARG_HOST: r = set(verb, o->spec, DBREG_F_HOST, optarg); break;
		case ARG_DATABASE: r = set(verb, o->spec, DBREG_F_DATABASE_NAME, optarg); break;
		case ARG_USER: r = set(verb, o->spec, DBREG_F_USERNAME, optarg); break;
		case ARG_PORT: r = set(verb, o->spec, DBREG_F_PORT, optarg); break;
		case ARG_TYPE: r = set(verb, o->spec, DBREG_F_CONNECTION_TYPE, optarg); break;
		case ARG_REGION: r = set(verb, o->spec, DBREG_F_REGION_ID, *optarg ? optarg : NULL); break;
		case ARG_SSL_MODE: r = set(verb, o->spec, DBREG_F_SSL_MODE, optarg); break;
		case ARG_POOL_MIN: r = set(verb, o->spec, DBREG_F_POOL_MIN_SIZE, optarg); break;
		case ARG_POOL_MAX: r = set(verb, o->spec, DBREG_F_POOL_MAX_SIZE, optarg); break;
		case ARG_POOL_TIMEOUT: r = set(verb, o->spec, DBREG_F_POOL_TIMEOUT_SECONDS, optarg); break;
		case ARG_POOL_RECYCLE: r = set(verb, o->spec, DBREG_F_POOL_RECYCLE_SECONDS, optarg); break;
		case ARG_NO_PRE_PING: r = set(verb, o->spec, DBREG_F_POOL_PRE_PING, "false"); break;
		case ARG_PRE_PING: r = set(verb, o->spec, DBREG_F_POOL_PRE_PING, "true"); break;
		case ARG_INACTIVE:
		case ARG_DEACTIVATE:
		case ARG_ACTIVATE:
			if (active >= 0 && active != (c == ARG_ACTIVATE))
				return usage_error(verb, "--activate and --deactivate exclude each other");
			active = c == ARG_ACTIVATE;
			r = set(verb, o->spec, DBREG_F_IS_ACTIVE, active ? "true" : "false");
			break;
		case ARG_TAG:
			if (dbreg_spec_add_tag(o->spec, optarg, &err) < 0)
				r = usage_error(verb, "%s", err.message);
			break;
		case ARG_URL: o->url = optarg; break;
		case ARG_PASSWORD_STDIN: r = set_password_source(verb, o, PW_STDIN); break;
		case ARG_PASSWORD_PROMPT: r = set_password_source(verb, o, PW_PROMPT); break;
		case ARG_NO_PASSWORD: r = set_password_source(verb, o, PW_CLEAR); break;
		case ARG_TEST: o->test = true; break;
		case ARG_REPLACE:
			if (update)
				return usage_error(verb, "--replace is an option of 'dbreg register'");
			o->replace = true;
			break;
		case ARG_DRY_RUN: o->dry_run = true; break;
		case ARG_POOLER:
			if (dbreg_spec_set_pooler(o->spec, optarg, &err) < 0)
				r = usage_error(verb, "%s", err.message);
			break;
		case ARG_POOLER_DB:
			if (dbreg_spec_set_pooler_db(o->spec, optarg, &err) < 0)
				r = usage_error(verb, "%s", err.message);
			break;
		default:
			return option_error(verb, c, argv);
		}
	}
	if (r)
		return r;
	r = verb_args(verb_find(verb), argc, argv);
	if (r)
		return r;
	*ret_name = argv[optind];
	if (o->url && dbreg_spec_merge_url(o->spec, o->url, &err) < 0)
		return usage_error(verb, "%s", err.message);
	if (dbreg_spec_check(o->spec, !update, &err) < 0)
		return usage_error(verb, "%s", err.message);
	if (o->pw == PW_STDIN && in_repl_script)
		return usage_error(verb, "--password-stdin cannot be used in a script read from standard input");
	if (update && o->pw == PW_NONE) {
		bool any = false;

		for (int f = 0; f < DBREG_F__COUNT && !any; f++)
			any = dbreg_spec_is_set(o->spec, f);
		if (!any)
			return usage_error(verb, "nothing to update: give at least one option to change");
	}
	if (!update && o->pw == PW_NONE) {
		if (!isatty(STDIN_FILENO) || in_repl_script)
			return usage_error(verb, "no terminal to ask for the password: use --password-stdin or --no-password");
		o->pw = PW_PROMPT;
	}
	return 0;
}

/* Reads and encrypts the password the options asked for; plaintext is wiped at once. */
int conn_opts_apply_password(const char *verb, struct dbreg_ctx *ctx, struct conn_opts *o,
                             const struct dbreg_conn *before)
{
	static const enum dbreg_field parts[] = { DBREG_F_USERNAME, DBREG_F_HOST, DBREG_F_PORT, DBREG_F_DATABASE_NAME };
	const char *v[ELEMENTSOF(parts)];
	struct dbreg_error err;
	char target[700];
	size_t len;
	char *pw;
	int r;

	dbreg_error_clear(&err);
	if (o->pw == PW_CLEAR)
		return dbreg_spec_clear_password(o->spec);
	if (o->pw == PW_NONE)
		return 0;
	/* The target the password is for: what the options set, else the row as it is. */
	for (size_t i = 0; i < ELEMENTSOF(parts); i++) {
		v[i] = dbreg_spec_get(o->spec, parts[i]);
		if (!v[i] && before)
			v[i] = dbreg_conn_get(before, parts[i]);
	}
	password_target(target, sizeof(target), v[0], v[1], v[2], v[3]);
	r = password_read(verb, target, o->pw, true, &pw, &len);
	if (r)
		return r;
	r = dbreg_spec_set_password(o->spec, ctx, pw, len, &err);
	password_free(pw);
	return r < 0 ? fail(&err) : 0;
}
