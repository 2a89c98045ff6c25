/* register.c — dbreg register and dbreg update: write a connection, its password encrypted first. */
#include <stdlib.h>
#include <string.h>

#include "dbreg-cmd.h"

static const char register_options[] =
	"  --host HOST            host name, IP address or Unix-socket directory\n"
	"  --database DB          database name\n"
	"  --user USER            user name\n"
	"  --port N               port (default 5432)\n"
	"  --type TYPE            ADMIN, SHARED, ANALYTICS or DEDICATED (default SHARED)\n"
	"  --region CODE          region code, e.g. us-east-1\n"
	"  --ssl-mode MODE        libpq sslmode (default prefer)\n"
	"  --pool-min N           pool minimum size (default 5)\n"
	"  --pool-max N           pool maximum size (default 20)\n"
	"  --pool-timeout SECONDS pool checkout timeout (default 30)\n"
	"  --pool-recycle SECONDS connection recycle age (default 3600)\n"
	"  --no-pre-ping          do not ping connections before use\n"
	"  --inactive             register it inactive (not health-checked)\n"
	"  --tag TAG              a tag; repeat for more\n"
	"  --pooler pgbouncer     the connection is a PgBouncer (metadata.pooler)\n"
	"  --pooler-db DB         its admin console database (default pgbouncer)\n"
	"  --url URL              host, port, database, user and sslmode from a libpq URL\n"
	"  --password-stdin       read the password from the first line of standard input\n"
	"  --no-password          store no password\n"
	"  --test                 log in with these settings before writing\n"
	"  --replace              rewrite an existing connection of that name in place\n"
	"  --dry-run              check everything, write nothing\n"
	"  -h, --help             show this help\n";

static const char update_options[] =
	"  --host, --database, --user, --port, --type, --region, --ssl-mode,\n"
	"  --pool-min, --pool-max, --pool-timeout, --pool-recycle, --url\n"
	"                         as for register; only what is given changes\n"
	"  --no-pre-ping, --pre-ping  turn pre-ping off or on\n"
	"  --activate, --deactivate   (--inactive is --deactivate)\n"
	"  --tag TAG              replace the tags with these; repeat for more\n"
	"  --pooler pgbouncer|none  make it a PgBouncer's, or no longer one\n"
	"  --pooler-db DB         the PgBouncer's admin console database\n"
	"  --password-stdin       new password from the first line of standard input\n"
	"  --password-prompt      new password from the terminal\n"
	"  --no-password          remove the stored password\n"
	"  --test                 log in with the resulting settings before writing\n"
	"  --dry-run              check everything, write nothing\n"
	"  -h, --help             show this help\n";

static int write_connection(struct dbreg_ctx *ctx, int argc, char **argv, bool update)
{
	const struct verb *v = update ? &verb_update : &verb_register;
	struct dbreg_conn_list *row = NULL, *before = NULL;
	struct conn_opts o;
	struct dbreg_error err;
	const char *name = NULL;
	unsigned flags;
	int r;

	dbreg_error_clear(&err);
	r = conn_opts_parse(v->name, update, argc, argv, &o, &name);
	if (r < 0) {
		verb_help(v, update ? update_options : register_options);
		dbreg_spec_free(o.spec);
		return EXIT_OK;
	}
	if (r)
		goto out;
	/* The registry, then the key its format needs, then the prompt: fail before anyone types. */
	r = verb_begin(v, ctx, argc, argv);
	if (r)
		goto out;
	if ((o.pw == PW_PROMPT || o.pw == PW_STDIN) && dbreg_ctx_load_write_keys(ctx, &err) < 0) {
		r = fail(&err);
		goto out;
	}
	/* update: the row as it is, for the prompt's target and to say what changed. */
	if (update && dbreg_show(ctx, name, &before, &err) < 0) {
		r = fail(&err);
		goto out;
	}
	r = conn_opts_apply_password(v->name, ctx, &o, before ? dbreg_conn_list_at(before, 0) : NULL);
	if (r)
		goto out;
	flags = (o.replace ? DBREG_WRITE_REPLACE : 0) | (o.dry_run ? DBREG_WRITE_DRY_RUN : 0);
	if (o.test) {
		/* update: test what the row would become. */
		if (update) {
			if (dbreg_update_test_login(ctx, name, o.spec, 10, &err) < 0) {
				r = fail(&err);
				goto out;
			}
		} else if (dbreg_spec_test_login(o.spec, ctx, 10, &err) < 0) {
			r = fail(&err);
			goto out;
		}
		fputs("login test passed\n", stderr);
	}
	if (update)
		r = dbreg_update(ctx, name, o.spec, flags, &row, &err);
	else
		r = dbreg_register(ctx, name, o.spec, flags, &row, &err);
	if (r < 0) {
		r = fail(&err);
		goto out;
	}
	if (o.dry_run) {
		out_line("dry run: would %s %s as:", update ? "update" : "register", name);
		out_conn_list(stdout, OUT_TABLE, row, true);
	} else if (update) {
		const struct dbreg_conn *a = dbreg_conn_list_at(before, 0), *b = dbreg_conn_list_at(row, 0);
		size_t changed;

		out_line("updated %s", name);
		changed = out_conn_changes(stdout, a, b);
		if (dbreg_spec_is_set(o.spec, DBREG_F_HAS_PASSWORD)) {
			const char *h0 = dbreg_conn_get(a, DBREG_F_HAS_PASSWORD), *h1 = dbreg_conn_get(b, DBREG_F_HAS_PASSWORD);
			bool had = h0 && strcmp(h0, "true") == 0, has = h1 && strcmp(h1, "true") == 0;

			out_line("%s", has ? (had ? "password replaced" : "password set") : had ? "password removed"
			                                                                 : "no password, as before");
			changed++;
		}
		if (!changed)
			out_line("nothing changed");
	} else if (dbreg_register_revived(ctx)) {
		out_line("revived %s (id %s)", name, dbreg_conn_get(dbreg_conn_list_at(row, 0), DBREG_F_ID));
	} else {
		out_line("registered %s (id %s)", name, dbreg_conn_get(dbreg_conn_list_at(row, 0), DBREG_F_ID));
	}
	r = EXIT_OK;
out:
	dbreg_conn_list_free(row);
	dbreg_conn_list_free(before);
	dbreg_spec_free(o.spec);
	return r;
}

static int run_register(struct dbreg_ctx *ctx, int argc, char **argv)
{
	return write_connection(ctx, argc, argv, false);
}

static int run_update(struct dbreg_ctx *ctx, int argc, char **argv)
{
	return write_connection(ctx, argc, argv, true);
}

const struct verb verb_register = {
	.name = "register",
	.run = run_register,
	.summary = "add a connection, its password encrypted",
	.usage = "NAME --host HOST --database DB --user USER [OPTIONS]",
	.registry_writer = true,
	.options = conn_options,
	.takes_names = true,
	.min_args = 1, .max_args = 1, .arg_name = "a connection NAME",
	.registry = VERB_REGISTRY_CONNECT,
};

const struct verb verb_update = {
	.name = "update",
	.run = run_update,
	.summary = "change the given fields of a connection",
	.usage = "NAME [OPTIONS]",
	.registry_writer = true,
	.options = conn_options,
	.takes_names = true,
	.min_args = 1, .max_args = 1, .arg_name = "a connection NAME",
	.registry = VERB_REGISTRY_CONNECT,
};
