/* open.c — a registered database for a program: its libpq parameters, or a ready connection, by name or
 * by tenant, through the one target builder and the one decrypt (targets.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "internal.h"
#include "targets.h"

extern char **environ;

#define PARAMS_MAX 16

struct dbreg_target_params {
	const char *keys[PARAMS_MAX + 1];
	const char *vals[PARAMS_MAX + 1];
	char *copies[PARAMS_MAX];  /* what vals point at; the password's in locked memory */
	int n, password_at;
};

_public_ void dbreg_target_params_free(struct dbreg_target_params *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->n; i++) {
		if (i == p->password_at)
			sodium_free(p->copies[i]);
		else
			free(p->copies[i]);
	}
	free(p);
}

/* The registry's row for a live connection, its stored password (free() it; NULL for none)
 * and the password decrypted into j (j->secret, added to j's parameters). */
static int load_target(struct dbreg_ctx *ctx, const char *name, struct fanout_job *j, struct dbreg_conn_list **ret_row,
                       struct dbreg_error *err)
{
	struct dbreg_conn_list *l = NULL;
	const struct dbreg_conn *c;
	struct dbreg_binding b;
	struct target_spec t;
	char *stored = NULL;
	int r;

	if (dbreg_ctx_connect(ctx, NULL, err) < 0 || dbreg_show(ctx, name, &l, err) < 0)
		return -1;
	c = dbreg_conn_list_at(l, 0);
	t = target_spec_of(c);
	target_params(j, &t, "dbreg", NULL);
	dbreg_binding_of_conn(c, &b);
	r = dbreg_registry_stored_password(ctx, b.id, &stored, err);
	if (r == 0 && stored && *stored)
		r = target_password_one(j, ctx, name, stored, &b, err);
	free(stored);
	if (r < 0) {
		sodium_memzero(j->secret, sizeof(j->secret));
		dbreg_conn_list_free(l);
		return -1;
	}
	*ret_row = l;
	return 0;
}

_public_ int dbreg_target_params(struct dbreg_ctx *ctx, const char *name, struct dbreg_target_params **ret,
                                 struct dbreg_error *err)
{
	struct fanout_job j = { .nparams = 0 };
	struct dbreg_conn_list *row = NULL;
	struct dbreg_target_params *p;
	int r = 0;

	if (load_target(ctx, name, &j, &row, err) < 0)
		return -1;
	p = calloc(1, sizeof(*p));
	if (!p) {
		sodium_memzero(j.secret, sizeof(j.secret));
		dbreg_conn_list_free(row);
		return dbreg_fail_oom(err);
	}
	p->password_at = -1;
	/* The job's values point into the row and j: copied before either goes. */
	for (int i = 0; i < j.nparams && i < PARAMS_MAX && r == 0; i++) {
		bool secret = strcmp(j.keys[i], "password") == 0;
		size_t len;
		char *copy;

		if (!j.vals[i])
			continue;  /* NULL in the row: libpq's default, as for a check */
		len = strlen(j.vals[i]);
		copy = secret ? sodium_malloc(len + 1) : malloc(len + 1);

		if (!copy) {
			r = dbreg_fail_oom(err);
			break;
		}
		memcpy(copy, j.vals[i], len + 1);
		if (secret)
			p->password_at = p->n;
		p->keys[p->n] = j.keys[i];  /* static strings of target_params */
		p->copies[p->n] = copy;
		p->vals[p->n] = copy;
		p->n++;
	}
	sodium_memzero(j.secret, sizeof(j.secret));
	dbreg_conn_list_free(row);
	if (r < 0) {
		dbreg_target_params_free(p);
		return -1;
	}
	*ret = p;
	return 0;
}

_public_ const char *const *dbreg_target_params_keywords(const struct dbreg_target_params *p)
{
	return p->keys;
}

_public_ const char *const *dbreg_target_params_values(const struct dbreg_target_params *p)
{
	return p->vals;
}

_public_ const char *dbreg_target_params_get(const struct dbreg_target_params *p, const char *keyword)
{
	for (int i = 0; i < p->n; i++)
		if (strcmp(p->keys[i], keyword) == 0)
			return p->vals[i];
	return NULL;
}

_public_ int dbreg_open(struct dbreg_ctx *ctx, const char *name, int timeout_ms, struct pg_conn **ret_conn,
                        struct dbreg_error *err)
{
	struct fanout_job j = { .nparams = 0 };
	struct dbreg_conn_list *row = NULL;
	int r;

	if (load_target(ctx, name, &j, &row, err) < 0)
		return -1;
	r = target_connect(&j, name, timeout_ms, ret_conn, err);
	dbreg_conn_list_free(row);
	return r;
}

/* A tenant's connection (by name, in *ret_res) and schema: a copy, and quoted for SQL. */
static int resolve_tenant(struct dbreg_ctx *ctx, const char *tenant, struct dbreg_resolution **ret_res,
                          char **ret_schema, char **ret_ident, struct dbreg_error *err)
{
	struct dbreg_resolution *res = NULL;
	char *ident = NULL, *schema;

	if (dbreg_ctx_connect(ctx, NULL, err) < 0 ||
	    dbreg_resolve_schema(ctx, DBREG_CONTEXT_TENANT, tenant, &res, err) < 0)
		return -1;
	if (dbreg_resolution_find_connection(ctx, res, NULL, err) < 0 ||
	    dbreg_resolution_sql_identifier(ctx, res, &ident, err) < 0) {
		dbreg_resolution_free(res);
		return -1;
	}
	if (!(schema = strdup(dbreg_resolution_schema(res)))) {
		free(ident);
		dbreg_resolution_free(res);
		return dbreg_fail_oom(err);
	}
	*ret_res = res;
	*ret_schema = schema;
	*ret_ident = ident;
	return 0;
}

_public_ int dbreg_open_tenant(struct dbreg_ctx *ctx, const char *tenant, int timeout_ms, struct pg_conn **ret_conn,
                               char **ret_schema, struct dbreg_error *err)
{
	struct dbreg_resolution *res = NULL;
	char *schema = NULL, *ident = NULL;
	PGconn *conn = NULL;
	PGresult *set;
	int r = -1;

	if (resolve_tenant(ctx, tenant, &res, &schema, &ident, err) < 0)
		return -1;
	if (dbreg_open(ctx, dbreg_conn_get(dbreg_resolution_connection(res), DBREG_F_CONNECTION_NAME), timeout_ms,
	               &conn, err) < 0)
		goto out;
	{
		/* The identifier was quoted by the registry's server; set_config takes it as a value. */
		char value[200];
		const char *params[1] = { value };

		snprintf(value, sizeof(value), "%s, public", ident);
		set = PQexecParams(conn, "SELECT set_config('search_path', $1, false)", 1, NULL, params, NULL, NULL, 0);
	}
	if (PQresultStatus(set) != PGRES_TUPLES_OK) {
		dbreg_fail_result(err, set, "cannot set the tenant's search_path");
		if (err)
			err->kind = DBREG_ERR_FAILED;
		PQclear(set);
		PQfinish(conn);
		goto out;
	}
	PQclear(set);
	*ret_conn = conn;
	if (ret_schema) {
		*ret_schema = schema;
		schema = NULL;
	}
	r = 0;
out:
	free(schema);
	free(ident);
	dbreg_resolution_free(res);
	return r;
}

/* ---- a program run on a registered database (dbreg psql, dbreg exec) ---- */

struct dbreg_child {
	char **env;        /* NULL-terminated */
	size_t nenv;
	char *passfile;    /* NULL when the row has no password */
	char *schema;      /* the tenant's, or NULL */
};

_public_ void dbreg_child_free(struct dbreg_child *c)
{
	if (!c)
		return;
	if (c->passfile) {
		unlink(c->passfile);
		free(c->passfile);
	}
	for (size_t i = 0; i < c->nenv; i++)
		free(c->env[i]);
	free(c->env);
	free(c->schema);
	free(c);
}

_public_ char *const *dbreg_child_environ(const struct dbreg_child *c)
{
	return c->env;
}

_public_ const char *dbreg_child_passfile(const struct dbreg_child *c)
{
	return c->passfile;
}

_public_ const char *dbreg_child_schema(const struct dbreg_child *c)
{
	return c->schema;
}

/* What of dbreg's environment a child keeps: not the keys, the passphrase, the admin URL,
 * nor anything libpq reads but the TLS client files. */
static bool child_keeps(const char *entry)
{
	size_t n = strcspn(entry, "=");
	char var[128];
	bool tls;

	if (entry[n] != '=' || n >= sizeof(var))
		return false;
	memcpy(var, entry, n);
	var[n] = '\0';
	if (strncmp(var, "DB_ENCRYPTION_", 14) == 0 || strncmp(var, "DB_FERNET_", 10) == 0 ||
	    strcmp(var, "ADMIN_DATABASE_URL") == 0)
		return false;
	return !dbreg_libpq_var(var, &tls) || tls;
}

_public_ char **dbreg_environ_safe(void)
{
	size_t n = 0, k = 0;
	char **env;

	while (environ[n])
		n++;
	if (!(env = calloc(n + 1, sizeof(*env))))
		return NULL;
	for (char **e = environ; *e; e++)
		if (child_keeps(*e) && !(env[k++] = strdup(*e))) {
			dbreg_environ_free(env);
			return NULL;
		}
	return env;
}

_public_ void dbreg_environ_free(char **env)
{
	for (size_t i = 0; env && env[i]; i++)
		free(env[i]);
	free(env);
}

/* Adds "VAR=value" (owned: freed on failure) to the child's environment. */
static int child_addenv(struct dbreg_child *c, char *entry)
{
	char **grown;

	if (!entry)
		return -1;
	grown = realloc(c->env, (c->nenv + 2) * sizeof(*grown));
	if (!grown) {
		free(entry);
		return -1;
	}
	c->env = grown;
	c->env[c->nenv++] = entry;
	c->env[c->nenv] = NULL;
	return 0;
}

static int child_setenv(struct dbreg_child *c, const char *var, const char *value)
{
	char *e;

	if (!value || !*value)
		return 0;
	if (asprintf(&e, "%s=%s", var, value) < 0)
		return -1;
	return child_addenv(c, e);
}

/* One .pgpass field: ':' and '\' escaped as libpq reads them. */
static size_t pgpass_field(char *out, const char *v)
{
	size_t o = 0;

	for (; *v; v++) {
		if (*v == ':' || *v == '\\')
			out[o++] = '\\';
		out[o++] = *v;
	}
	return o;
}

/* The password in a new private file, one line "host:port:*:user:password". */
static int write_passfile(struct dbreg_child *c, const struct dbreg_target_params *p, struct dbreg_error *err)
{
	const char *dir = getenv("XDG_RUNTIME_DIR"), *host = dbreg_pgpass_host(dbreg_target_params_get(p, "host"));
	const char *pw = dbreg_target_params_get(p, "password");
	const char *port = dbreg_target_params_get(p, "port"), *user = dbreg_target_params_get(p, "user");
	size_t size, o = 0;
	char *line;
	int fd, r = 0;

	if (!port || !user)
		return dbreg_fail(err, DBREG_ERR_FAILED, "the connection has no port or user to match a password to");
	/* A line break would end the password early and start another line. */
	for (const char *s = pw; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return dbreg_fail(err, DBREG_ERR_FAILED,
			                  "the stored password holds a control character no password file can carry");
	if (!dir || dir[0] != '/' || access(dir, W_OK | X_OK) != 0)
		dir = "/tmp";
	if (asprintf(&c->passfile, "%s/dbreg-pgpass-XXXXXX", dir) < 0) {
		c->passfile = NULL;
		return dbreg_fail_oom(err);
	}
	fd = mkstemp(c->passfile);  /* 0600 */
	if (fd < 0) {
		dbreg_fail(err, DBREG_ERR_CONFIG, "cannot create a password file in %s: %s", dir, strerror(errno));
		free(c->passfile);
		c->passfile = NULL;
		return -1;
	}
	size = 2 * (strlen(host) + strlen(port) + strlen(user) + strlen(pw)) + 8;
	line = sodium_malloc(size);
	if (!line) {
		close(fd);
		return dbreg_fail_oom(err);
	}
	o += pgpass_field(line + o, host);
	line[o++] = ':';
	o += pgpass_field(line + o, port);
	memcpy(line + o, ":*:", 3);
	o += 3;
	o += pgpass_field(line + o, user);
	line[o++] = ':';
	o += pgpass_field(line + o, pw);
	line[o++] = '\n';
	/* write(2), not stdio: no copy of the password left in a buffer. */
	for (size_t done = 0; done < o && r == 0;) {
		ssize_t w = write(fd, line + done, o - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			r = dbreg_fail(err, DBREG_ERR_CONFIG, "cannot write the password file: %s", strerror(errno));
		else
			done += (size_t)w;
	}
	sodium_free(line);
	if (close(fd) < 0 && r == 0)
		r = dbreg_fail(err, DBREG_ERR_CONFIG, "cannot write the password file: %s", strerror(errno));
	return r;
}

/* A pooler's row (metadata.pooler set): PgBouncer refuses the options startup parameter. */
static bool conn_is_pooler(const struct dbreg_conn *c)
{
	const char *text = dbreg_conn_get(c, DBREG_F_METADATA);
	json_t *m = text ? json_loads(text, 0, NULL) : NULL;
	json_t *p = json_is_object(m) ? json_object_get(m, "pooler") : NULL;
	bool pooler = json_is_string(p) && *json_string_value(p);

	json_decref(m);
	return pooler;
}

/* search_path for PGOPTIONS: libpq splits options at spaces, a backslash escaping the next. */
static int child_pgoptions(struct dbreg_child *c, const char *ident)
{
	char value[400];
	size_t o = 0;

	o += (size_t)snprintf(value, sizeof(value), "-c search_path=");
	for (const char *s = ident; *s && o + 4 < sizeof(value); s++) {
		if (*s == ' ' || *s == '\\')
			value[o++] = '\\';
		value[o++] = *s;
	}
	value[o] = '\0';
	snprintf(value + o, sizeof(value) - o, ",\\ public");
	return child_setenv(c, "PGOPTIONS", value);
}

_public_ int dbreg_child_prepare(struct dbreg_ctx *ctx, const char *name, const char *tenant, struct dbreg_child **ret,
                                 struct dbreg_error *err)
{
	static const struct { const char *var, *keyword; } from_row[] = {
		{ "PGHOST", "host" }, { "PGPORT", "port" }, { "PGDATABASE", "dbname" }, { "PGUSER", "user" },
		{ "PGSSLMODE", "sslmode" },
	};
	struct dbreg_resolution *res = NULL;
	struct dbreg_target_params *p = NULL;
	struct dbreg_child *c;
	char *ident = NULL;
	int r = -1;

	if (!(c = calloc(1, sizeof(*c))) || !(c->env = calloc(1, sizeof(*c->env)))) {
		free(c);
		return dbreg_fail_oom(err);
	}
	if (tenant) {
		if (resolve_tenant(ctx, tenant, &res, &c->schema, &ident, err) < 0)
			goto out;
		name = dbreg_conn_get(dbreg_resolution_connection(res), DBREG_F_CONNECTION_NAME);
		/* The child's search_path goes in PGOPTIONS, which a PgBouncer refuses at login:
		 * better no session than one on the wrong schema. */
		if (conn_is_pooler(dbreg_resolution_connection(res))) {
			char shown[128];

			dbreg_fail(err, DBREG_ERR_FAILED,
			           "the tenant's connection '%s' is a PgBouncer, which refuses the startup option that sets"
			           " search_path; connect with its name and run SET search_path, or use dbreg_open_tenant(3)",
			           dbreg_printable(name, shown, sizeof(shown)));
			goto out;
		}
	}
	if (dbreg_target_params(ctx, name, &p, err) < 0)
		goto out;
	for (char **e = environ; *e; e++)
		if (child_keeps(*e) && child_addenv(c, strdup(*e)) < 0) {
			dbreg_fail_oom(err);
			goto out;
		}
	for (size_t i = 0; i < ELEMENTSOF(from_row); i++)
		if (child_setenv(c, from_row[i].var, dbreg_target_params_get(p, from_row[i].keyword)) < 0) {
			dbreg_fail_oom(err);
			goto out;
		}
	if (dbreg_target_params_get(p, "password")) {
		if (write_passfile(c, p, err) < 0 || child_setenv(c, "PGPASSFILE", c->passfile) < 0)
			goto out;
	} else if (child_setenv(c, "PGPASSFILE", getenv("PGPASSFILE")) < 0) {
		/* No password of its own: the operator's password file, as for health. */
		dbreg_fail_oom(err);
		goto out;
	}
	if (ident && child_pgoptions(c, ident) < 0) {
		dbreg_fail_oom(err);
		goto out;
	}
	*ret = c;
	c = NULL;
	r = 0;
out:
	dbreg_target_params_free(p);
	dbreg_resolution_free(res);
	free(ident);
	dbreg_child_free(c);
	return r;
}
