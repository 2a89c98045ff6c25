/* validate.c — the findings of validate-config (SPEC §8): every check, and everything wrong a finding. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "internal.h"

/* The connection a tenant without its own uses (resolve-schema's default). */
#define DEFAULT_CONNECTION "shared-primary"
/* How many tenant slugs one finding names before it says "and N more". */
#define MAX_NAMED 5

/* What the caller reads, and the members of a finding about several connections (which
 * has no connection_name). */
struct finding {
	struct dbreg_finding pub;
	char **members;
	size_t n_members;
};

struct dbreg_findings {
	struct finding *items;
	size_t n, cap;
	bool oom;
};

/* One run: the findings so far and what later checks need from earlier ones. */
struct run {
	struct dbreg_ctx *ctx;
	struct dbreg_findings *f;
	const char *url;
	bool url_usable;            /* worth connecting with */
	bool key_missing;           /* decided once we know whether any row has a password */
	size_t key_missing_at;      /* where that finding goes, among the key findings */
	struct dbreg_keyring *kr;   /* NULL unless the current key loaded */
	long passwords;             /* live rows with a stored password; -1 unknown */
};

/* ---- the findings ---- */

_public_ size_t dbreg_findings_count(const struct dbreg_findings *f)
{
	return f ? f->n : 0;
}

_public_ const struct dbreg_finding *dbreg_findings_at(const struct dbreg_findings *f, size_t i)
{
	return f && i < f->n ? &f->items[i].pub : NULL;
}

_public_ size_t dbreg_findings_connection_count(const struct dbreg_findings *f, size_t i)
{
	if (!f || i >= f->n)
		return 0;
	return f->items[i].n_members ? f->items[i].n_members : f->items[i].pub.connection_name != NULL;
}

_public_ const char *dbreg_findings_connection(const struct dbreg_findings *f, size_t i, size_t j)
{
	if (j >= dbreg_findings_connection_count(f, i))
		return NULL;
	return f->items[i].n_members ? f->items[i].members[j] : f->items[i].pub.connection_name;
}

_public_ void dbreg_findings_free(struct dbreg_findings *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n; i++) {
		free((char *)f->items[i].pub.message);
		free((char *)f->items[i].pub.connection_name);
		for (size_t j = 0; j < f->items[i].n_members; j++)
			free(f->items[i].members[j]);
		free(f->items[i].members);
	}
	free(f->items);
	free(f);
}

/* The finding added, until the next one moves it; NULL once out of memory. */
static struct finding *add_at(struct run *r, size_t at, enum dbreg_severity sev, const char *code, const char *conn,
                              const char *fmt, ...) _printf_(6, 7);
static struct finding *add_at(struct run *r, size_t at, enum dbreg_severity sev, const char *code, const char *conn,
                              const char *fmt, ...)
{
	struct dbreg_findings *f = r->f;
	char *msg = NULL, *name = NULL;
	va_list ap;
	int n;

	if (f->oom)
		return NULL;
	va_start(ap, fmt);
	n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (n < 0 || (conn && !(name = strdup(conn))))
		goto oom;
	if (f->n == f->cap) {
		size_t cap = f->cap ? 2 * f->cap : 16;
		struct finding *items = realloc(f->items, cap * sizeof(*items));

		if (!items)
			goto oom;
		f->items = items;
		f->cap = cap;
	}
	if (at > f->n)
		at = f->n;
	memmove(&f->items[at + 1], &f->items[at], (f->n - at) * sizeof(f->items[0]));
	f->items[at] = (struct finding){
		.pub = { .severity = sev, .code = code, .message = msg, .connection_name = name },
	};
	f->n++;
	return &f->items[at];
oom:
	if (n >= 0)
		free(msg);
	free(name);
	f->oom = true;
	return NULL;
}

#define add(r, sev, code, conn, ...) add_at(r, (size_t)-1, sev, code, conn, __VA_ARGS__)
#define ERROR DBREG_SEV_ERROR
#define WARNING DBREG_SEV_WARNING

static const char *nonempty(const char *s)
{
	return s && *s ? s : NULL;
}

/* ---- ADMIN_DATABASE_URL ---- */

/* A setting as libpq will see it: the URL's, else the service's, else the environment's. */
struct setting {
	const char *value;
	char label[300];
};

static void pick(struct setting *out, const char *from_url, const char *from_service,
                 const char *service_label, const char *env)
{
	const char *e = dbreg_pgenv_get(env);

	out->value = NULL;
	out->label[0] = '\0';
	if (nonempty(from_url)) {
		out->value = from_url;
		snprintf(out->label, sizeof(out->label), "ADMIN_DATABASE_URL");
	} else if (nonempty(from_service)) {
		out->value = from_service;
		snprintf(out->label, sizeof(out->label), "%s", service_label);
	} else if (e) {
		out->value = e;
		snprintf(out->label, sizeof(out->label), "%s", env);
	}
}

/* A host that a connection reaches without crossing the network. */
static bool host_is_local(const char *h)
{
	while (*h == ' ')
		h++;
	return !*h || h[0] == '/' || h[0] == '@' || strcmp(h, "localhost") == 0 || strncmp(h, "127.", 4) == 0 ||
	       strcmp(h, "::1") == 0;
}

static void check_ports(struct run *r, const struct setting *port, size_t hosts)
{
	char buf[128], s1[80];
	size_t n = dbreg_list_len(port->value);

	for (size_t i = 0; i < n; i++)
		if (!dbreg_port_ok(dbreg_list_item(port->value, i, buf, sizeof(buf))))
			add(r, ERROR, "url-port", NULL, "%s: port \"%s\" is not 1..65535", port->label,
			    dbreg_printable(buf, s1, sizeof(s1)));
	if (n > 1 && n != hosts)
		add(r, ERROR, "url-port", NULL, "%s: %zu ports for %zu hosts; give one port, or one per host",
		    port->label, n, hosts);
}

static void check_url(struct run *r)
{
	struct dbreg_conninfo_facts f;
	struct dbreg_service svc;
	struct setting host, hostaddr, port, sslmode;
	const char *service, *service_from;
	char service_label[256] = "", s1[128], s2[128], mode[160];
	size_t before = r->f->n, hosts;
	int rank;

	memset(&svc, 0, sizeof(svc));
	if (!nonempty(r->url)) {
		add(r, ERROR, "url-missing", NULL,
		    "ADMIN_DATABASE_URL is not set; set it to the admin database's connection string");
		return;
	}
	if (dbreg_conninfo_inspect(r->url, &f) < 0) {
		r->f->oom = true;
		return;
	}
	if (!f.parsed) {
		add(r, ERROR, f.unknown_keyword ? "url-keyword" : "url-syntax", NULL, "ADMIN_DATABASE_URL: %s", f.error);
		return;
	}
	if (f.has_password)
		add(r, WARNING, "url-password", NULL,
		    "ADMIN_DATABASE_URL contains a password; keep it out of the URL (a password file, PGPASSFILE)");

	service_from = f.service ? "ADMIN_DATABASE_URL" : "PGSERVICE";
	service = f.service ? f.service : dbreg_pgenv_get("PGSERVICE");
	if (service) {
		if (dbreg_service_find(service, &svc) < 0) {
			r->f->oom = true;
			goto out;
		}
		if (svc.error[0])
			add(r, ERROR, "url-service", NULL, "%s: service \"%s\": %s", service_from,
			    dbreg_printable(service, s1, sizeof(s1)), svc.error);
		else if (!svc.found)
			add(r, ERROR, "url-service", NULL, "%s: service \"%s\" is defined in no service file (looked in %s)",
			    service_from, dbreg_printable(service, s1, sizeof(s1)), svc.searched);
		else
			snprintf(service_label, sizeof(service_label), "service \"%s\" in %s", dbreg_printable(service, s1, sizeof(s1)),
			         svc.file);
	}

	pick(&host, f.host, svc.host, service_label, "PGHOST");
	pick(&hostaddr, f.hostaddr, svc.hostaddr, service_label, "PGHOSTADDR");
	pick(&port, f.port, svc.port, service_label, "PGPORT");
	pick(&sslmode, f.sslmode, svc.sslmode, service_label, "PGSSLMODE");
	hosts = dbreg_list_len(host.value) > dbreg_list_len(hostaddr.value) ? dbreg_list_len(host.value) : dbreg_list_len(hostaddr.value);
	if (hosts == 0)
		hosts = 1;
	if (port.value)
		check_ports(r, &port, hosts);

	if (sslmode.value) {
		snprintf(mode, sizeof(mode), "sslmode \"%s\"", dbreg_printable(sslmode.value, s1, sizeof(s1)));
	} else {
		const char *req = nonempty(f.requiressl) ? f.requiressl : svc.requiressl;

		sslmode.value = req && req[0] == '1' ? "require" : "prefer";
		snprintf(sslmode.label, sizeof(sslmode.label), "ADMIN_DATABASE_URL");
		snprintf(mode, sizeof(mode), "sslmode unset (so \"%s\")", sslmode.value);
	}
	rank = dbreg_sslmode_rank(sslmode.value);
	if (rank < 0) {
		add(r, ERROR, "url-sslmode", NULL,
		    "%s: %s is not a libpq sslmode (disable, allow, prefer, require, verify-ca, verify-full)",
		    sslmode.label, mode);
	} else if (rank < DBREG_SSLMODE_ENCRYPTED) {
		for (size_t i = 0; i < hosts; i++) {
			char h[256];

			dbreg_list_item(hostaddr.value, i, h, sizeof(h));
			if (!h[0])
				dbreg_list_item(host.value, i, h, sizeof(h));
			if (host_is_local(h))
				continue;
			add(r, WARNING, "url-weak-ssl", NULL,
			    "%s: %s lets the connection to %s go unencrypted; use require, verify-ca or verify-full",
			    sslmode.label, mode, dbreg_printable(h, s2, sizeof(s2)));
			break;
		}
	}
	if (r->f->n == before) {
		struct dbreg_error e;

		dbreg_error_clear(&e);
		if (dbreg_admin_url_check(r->url, &e) < 0)
			add(r, ERROR, "url-value", NULL, "%s", e.message);
	}
out:
	/* Connecting with a URL already found wrong only repeats what it said. */
	r->url_usable = true;
	for (size_t i = before; i < r->f->n; i++)
		if (r->f->items[i].pub.severity == ERROR)
			r->url_usable = false;
	dbreg_service_clear(&svc);
	dbreg_conninfo_facts_clear(&f);
}

/* ---- the password file ---- */

/* A line whose host is "*" hands its password to every target that has none
 * of its own: libpq matches the file for target connections too. */
static void check_passfile(struct run *r)
{
	const char *env = nonempty(getenv("PGPASSFILE"));
	char path[4096], lines[128] = "", s1[160];
	size_t o = 0, lineno = 0, hits = 0;
	char *line = NULL;
	size_t cap = 0;
	FILE *fp;

	if (!*dbreg_user_file(env, ".pgpass", path, sizeof(path)))
		return;
	fp = fopen(path, "re");
	if (!fp)
		return;
	while (getline(&line, &cap, fp) >= 0) {
		lineno++;
		if (line[0] == '*' && line[1] == ':') {
			if (hits++ < 5)
				o += (size_t)snprintf(lines + o, sizeof(lines) - o, "%s%zu", o ? ", " : "", lineno);
		}
	}
	free(line);
	fclose(fp);
	if (hits)
		add(r, WARNING, "passfile-wildcard", NULL,
		    "password file %s: line%s %s%s give%s a password for any host (\"*\"); libpq hands it to every registered"
		    " connection without a password of its own: name the hosts",
		    dbreg_printable(path, s1, sizeof(s1)), hits == 1 ? "" : "s", lines, hits > 5 ? ", ..." : "",
		    hits == 1 ? "s" : "");
}

/* ---- keys ---- */

static void check_keys(struct run *r)
{
	const char *key = nonempty(getenv("DB_ENCRYPTION_KEY"));
	const char *file = nonempty(getenv("DB_ENCRYPTION_KEY_FILE"));
	const char *old = nonempty(getenv("DB_ENCRYPTION_OLD_KEYS"));
	struct dbreg_keyring *kr = NULL;
	struct dbreg_error e;
	struct stat st;
	char s1[256];
	bool current = false;

	dbreg_error_clear(&e);
	if (dbreg_keyring_new(&kr, &e) < 0) {
		r->f->oom = true;
		return;
	}
	if (key && file) {
		add(r, ERROR, "key-both", NULL, "both DB_ENCRYPTION_KEY and DB_ENCRYPTION_KEY_FILE are set; set only one");
	} else if (!key && !file) {
		r->key_missing = true;
		r->key_missing_at = r->f->n;
	} else if (file) {
		dbreg_printable(file, s1, sizeof(s1));
		if (stat(file, &st) < 0) {
			add(r, ERROR, "key-file", NULL, "DB_ENCRYPTION_KEY_FILE %s: %s", s1, strerror(errno));
		} else if (!S_ISREG(st.st_mode)) {
			add(r, ERROR, "key-file", NULL, "DB_ENCRYPTION_KEY_FILE %s: not a regular file", s1);
		} else if (st.st_mode & (S_IRWXG | S_IRWXO)) {
			add(r, ERROR, "key-file-mode", NULL,
			    "DB_ENCRYPTION_KEY_FILE %s is accessible by group or others (mode %04o); run 'chmod 600 %s'", s1,
			    (unsigned)(st.st_mode & 07777), s1);
		} else {
			char *text = NULL;

			if (dbreg_key_file_read(file, &text, &e) < 0) {
				add(r, ERROR, "key-file", NULL, "%s", e.message);
			} else if (dbreg_keyring_add_text(kr, text, &e) < 0) {
				if (e.kind == DBREG_ERR_INTERNAL)
					r->f->oom = true;
				else
					add(r, ERROR, "key-invalid", NULL,
					    "DB_ENCRYPTION_KEY_FILE %s: the key is not 32 bytes as 64 hex digits or base64", s1);
			} else {
				current = true;
			}
			dbreg_key_text_free(text);
		}
	} else if (dbreg_keyring_add_text(kr, key, &e) < 0) {
		if (e.kind == DBREG_ERR_INTERNAL)
			r->f->oom = true;
		else
			add(r, ERROR, "key-invalid", NULL, "DB_ENCRYPTION_KEY: the key is not 32 bytes as 64 hex digits or base64");
	} else {
		current = true;
	}

	if (old) {
		size_t bad[16], nbad = 0;

		dbreg_error_clear(&e);
		if (dbreg_keyring_add_list(kr, old, bad, ELEMENTSOF(bad), &nbad, &e) < 0) {
			if (e.kind == DBREG_ERR_INTERNAL)
				r->f->oom = true;
			else if (nbad == 0)
				add(r, ERROR, "old-key-invalid", NULL, "%s", e.message);
			for (size_t i = 0; i < nbad && i < ELEMENTSOF(bad); i++)
				add(r, ERROR, "old-key-invalid", NULL,
				    "DB_ENCRYPTION_OLD_KEYS: item %zu is not 32 bytes as 64 hex digits or base64", bad[i]);
		}
	}
	/* Without the current key, every password would look undecryptable: check none. */
	if (current)
		r->kr = kr;
	else
		dbreg_keyring_free(kr);
}

static void decide_key_missing(struct run *r, bool offline)
{
	if (!r->key_missing)
		return;
	if (r->passwords > 0)
		add_at(r, r->key_missing_at, ERROR, "key-missing", NULL,
		       "no encryption key: set DB_ENCRYPTION_KEY or DB_ENCRYPTION_KEY_FILE; %ld connection%s a stored password",
		       r->passwords, r->passwords == 1 ? " has" : "s have");
	else if (r->passwords < 0)
		add_at(r, r->key_missing_at, ERROR, "key-missing", NULL,
		       "no encryption key: set DB_ENCRYPTION_KEY or DB_ENCRYPTION_KEY_FILE (%s)",
		       offline ? "offline, so whether any connection has a password is not known"
		               : "the registry could not be read to tell whether any connection has a password");
}

/* ---- the registry ---- */

static void read_failed(struct run *r, const struct dbreg_error *e)
{
	if (e->kind == DBREG_ERR_INTERNAL && strcmp(e->message, "out of memory") == 0)
		r->f->oom = true;
	else
		add(r, ERROR, "registry-read", NULL, "%s", e->message);
}

static long int_or(const char *text, long fallback)
{
	return text && *text ? strtol(text, NULL, 10) : fallback;
}

/* A cell of a result by the column's index from PQfnumber, found once per
 * result ("" for NULL or a missing column, as libpq gives NULL). */
static const char *cell(const PGresult *res, int row, int col)
{
	return col < 0 ? "" : PQgetvalue(res, row, col);
}

static bool cell_null(const PGresult *res, int row, int col)
{
	return col < 0 || PQgetisnull(res, row, col);
}

/* A row of a group of duplicates, found by its group's first row and its own place. */
struct member {
	const char *lead;
	int row;
};

static int member_cmp(const void *a, const void *b)
{
	const struct member *x = a, *y = b;
	int c = strcmp(x->lead, y->lead);

	return c ? c : (x->row > y->row) - (x->row < y->row);
}

/* Every row in a group of duplicates, sorted so that each group is a run in name order:
 * one sort instead of a scan of the result per group. */
static struct member *duplicate_rows(struct run *r, const PGresult *res, int c_size, int c_lead, size_t *ret_n)
{
	struct member *m;
	size_t n = 0;

	*ret_n = 0;
	m = calloc((size_t)PQntuples(res) + 1, sizeof(*m));
	if (!m) {
		r->f->oom = true;
		return NULL;
	}
	for (int i = 0; i < PQntuples(res); i++)
		if (int_or(cell(res, i, c_size), 1) > 1)
			m[n++] = (struct member){ cell(res, i, c_lead), i };
	qsort(m, n, sizeof(*m), member_cmp);
	*ret_n = n;
	return m;
}

/* One finding for the group that row i (its first by name) leads, naming every member. */
static void add_duplicate(struct run *r, const PGresult *res, int i, const struct member *m, size_t n,
                          int c_id, int c_connection_name, int c_host, int c_port, int c_database_name,
                          int c_username)
{
	struct member key = { cell(res, i, c_id), i };
	const struct member *p = n ? bsearch(&key, m, n, sizeof(*m), member_cmp) : NULL;
	size_t size = 0;
	struct finding *x;
	char s1[160], s2[160], s3[160];

	if (!p)
		return;
	while (p + size < m + n && strcmp(p[size].lead, key.lead) == 0)
		size++;
	x = add(r, WARNING, "conn-duplicate", NULL, "same host, port, database and user (%s:%s/%s, user %s)",
	        dbreg_printable(cell(res, i, c_host), s1, sizeof(s1)), cell(res, i, c_port),
	        dbreg_printable(cell(res, i, c_database_name), s2, sizeof(s2)),
	        dbreg_printable(cell(res, i, c_username), s3, sizeof(s3)));
	if (!x)
		return;
	x->members = calloc(size, sizeof(*x->members));
	if (!x->members) {
		r->f->oom = true;
		return;
	}
	for (; x->n_members < size; x->n_members++)
		if (!(x->members[x->n_members] = strdup(cell(res, p[x->n_members].row, c_connection_name)))) {
			r->f->oom = true;
			return;
		}
}

static void check_rows(struct run *r, PGconn *conn, const char *password_format)
{
	struct dbreg_error e;
	PGresult *res;
	struct member *dups;
	size_t n_dups;
	char s1[160];
	int c_id, c_connection_name, c_host, c_port, c_database_name, c_username, c_ssl_mode, c_encrypted_password,
		c_pool_min_size, c_pool_max_size, c_pool_timeout_seconds, c_pool_recycle_seconds, c_group_size,
		c_group_lead;

	dbreg_error_clear(&e);
	res = dbreg_registry_validate_rows(conn, &e);
	if (!res) {
		read_failed(r, &e);
		return;
	}
	r->passwords = 0;
	c_id = PQfnumber(res, "id");
	c_connection_name = PQfnumber(res, "connection_name");
	c_host = PQfnumber(res, "host");
	c_port = PQfnumber(res, "port");
	c_database_name = PQfnumber(res, "database_name");
	c_username = PQfnumber(res, "username");
	c_ssl_mode = PQfnumber(res, "ssl_mode");
	c_encrypted_password = PQfnumber(res, "encrypted_password");
	c_pool_min_size = PQfnumber(res, "pool_min_size");
	c_pool_max_size = PQfnumber(res, "pool_max_size");
	c_pool_timeout_seconds = PQfnumber(res, "pool_timeout_seconds");
	c_pool_recycle_seconds = PQfnumber(res, "pool_recycle_seconds");
	c_group_size = PQfnumber(res, "group_size");
	c_group_lead = PQfnumber(res, "group_lead");
	dups = duplicate_rows(r, res, c_group_size, c_group_lead, &n_dups);
	for (int i = 0; i < PQntuples(res); i++) {
		const char *name = cell(res, i, c_connection_name);
		const char *v;
		long min, max;

		dbreg_error_clear(&e);
		if (dbreg_check_connection_name(name, &e) < 0)
			add(r, ERROR, "conn-name", name, "%s", e.message);
		v = cell(res, i, c_port);
		if (!cell_null(res, i, c_port) && (int_or(v, 0) < 1 || int_or(v, 0) > 65535))
			add(r, ERROR, "conn-port", name, "port %s is not 1..65535", dbreg_printable(v, s1, sizeof(s1)));
		v = cell(res, i, c_ssl_mode);
		if (!cell_null(res, i, c_ssl_mode) && dbreg_sslmode_rank(v) < 0)
			add(r, ERROR, "conn-ssl-mode", name,
			    "ssl_mode \"%s\" is not a libpq sslmode (disable, allow, prefer, require, verify-ca, verify-full)",
			    dbreg_printable(v, s1, sizeof(s1)));
		min = int_or(cell(res, i, c_pool_min_size), 0);
		max = int_or(cell(res, i, c_pool_max_size), LONG_MAX);
		if (min < 0)
			add(r, ERROR, "conn-pool-bounds", name, "pool_min_size %ld is below 0", min);
		else if (min > max)
			add(r, ERROR, "conn-pool-bounds", name, "pool_min_size %ld is above pool_max_size %ld", min, max);
		if (int_or(cell(res, i, c_pool_timeout_seconds), 1) <= 0)
			add(r, ERROR, "conn-pool-timeout", name, "pool_timeout_seconds %s is not above 0",
			    cell(res, i, c_pool_timeout_seconds));
		if (int_or(cell(res, i, c_pool_recycle_seconds), 1) <= 0)
			add(r, ERROR, "conn-pool-recycle", name, "pool_recycle_seconds %s is not above 0",
			    cell(res, i, c_pool_recycle_seconds));
		if (int_or(cell(res, i, c_group_size), 1) > 1 && strcmp(cell(res, i, c_group_lead), cell(res, i, c_id)) == 0)
			add_duplicate(r, res, i, dups, n_dups, c_id, c_connection_name, c_host, c_port, c_database_name,
			              c_username);
		if (*cell(res, i, c_encrypted_password)) {
			const char *stored = cell(res, i, c_encrypted_password);
			const unsigned char *fkey = NULL;
			bool fernet = dbreg_is_fernet(stored), ours = strncmp(stored, "dbreg:", 6) == 0;
			char *password = NULL;

			/* A registry that writes dbreg's format: the platform's services read dbreg's. */
			if (fernet && password_format && strcmp(password_format, "dbreg") == 0)
				add(r, WARNING, "password-fernet", name,
				    "the stored password is a Fernet token in a registry that writes dbreg's format");
			char id[DBREG_KEY_ID_LEN + 1];
			int version = dbreg_stored_version(stored, id);
			struct dbreg_binding b;

			if (version == 1)
				add(r, WARNING, "password-v1", name,
				    "the stored password is in format v1, not bound to its target (dbreg rotate-key upgrades it to v2)");
			/* Only dbreg's own format needs DB_ENCRYPTION_KEY. */
			if (ours)
				r->passwords++;
			if (ours && !r->kr)
				continue;
			if (fernet && (!r->ctx || dbreg_ctx_fernet_key(r->ctx, &fkey, &e) <= 0)) {
				dbreg_error_clear(&e);
				continue;  /* no passphrase: nothing to check it with */
			}
			dbreg_error_clear(&e);
			if (dbreg_binding_of_row(res, i, &b) < 0)
				b = (struct dbreg_binding){ NULL, NULL, NULL, NULL, NULL, NULL };
			if (dbreg_stored_decrypt(r->kr, fkey, &b, stored, &password, &e) < 0) {
				if (e.kind == DBREG_ERR_INTERNAL)
					r->f->oom = true;
				else
					add(r, ERROR, "conn-password", name, "%s", e.message);
			} else if (ours) {
				/* Readable, but only through an old key: rotate-key moves it. */
				if (version > 0 && dbreg_keyring_current_id(r->kr) &&
				    strcmp(id, dbreg_keyring_current_id(r->kr)) != 0)
					add(r, WARNING, "key-old-in-use", name, "the stored password is under the old key %s, not the"
					    " current %s (dbreg rotate-key re-encrypts it)", id, dbreg_keyring_current_id(r->kr));
			}
			dbreg_secret_free(password);
		}
	}
	free(dups);
	/* The stored texts leave with the result. */
	for (int i = 0; i < PQntuples(res); i++)
		if (!cell_null(res, i, c_encrypted_password))
			sodium_memzero(PQgetvalue(res, i, c_encrypted_password), strlen(cell(res, i, c_encrypted_password)));
	PQclear(res);
}

/* A stored value against the rules dbreg needs (an error) and those it writes by (a
 * warning); true when dbreg can use it. */
static bool rule_finding(struct run *r, const char *code, const char *tenant, const char *value,
                         int (*needed)(const char *, struct dbreg_error *),
                         int (*written)(const char *, struct dbreg_error *))
{
	struct dbreg_error e;

	dbreg_error_clear(&e);
	if (needed(value, &e) < 0) {
		add(r, ERROR, code, NULL, "tenant '%s': %s", tenant, e.message);
		return false;
	}
	if (written(value, &e) < 0)
		add(r, WARNING, code, NULL, "tenant '%s': %s", tenant, e.message);
	return true;
}

static void check_tenants(struct run *r, PGconn *conn)
{
	struct dbreg_error e;
	PGresult *res, *dflt;
	char s1[160], s2[160], expected[128], unowned[512] = "";
	long n_unowned = 0;
	int c_slug, c_schema_name, c_conn_state, c_connection_name, c_database_connection_id;

	dbreg_error_clear(&e);
	res = dbreg_registry_validate_tenants(conn, &e);
	if (!res) {
		read_failed(r, &e);
		return;
	}
	c_slug = PQfnumber(res, "slug");
	c_schema_name = PQfnumber(res, "schema_name");
	c_conn_state = PQfnumber(res, "conn_state");
	c_connection_name = PQfnumber(res, "connection_name");
	c_database_connection_id = PQfnumber(res, "database_connection_id");
	for (int i = 0; i < PQntuples(res); i++) {
		const char *slug = cell(res, i, c_slug), *schema = cell(res, i, c_schema_name);
		const char *state = cell(res, i, c_conn_state), *cname = cell(res, i, c_connection_name);
		bool slug_ok, schema_ok;

		dbreg_printable(slug, s1, sizeof(s1));
		/* What resolve-schema cannot use is an error; what only breaks the rules dbreg
		 * writes by (a registry dbreg did not fill) is a warning. */
		slug_ok = rule_finding(r, "tenant-slug", s1, slug, dbreg_check_slug_lookup, dbreg_check_slug);
		schema_ok = rule_finding(r, "tenant-schema-name", s1, schema, dbreg_check_stored_schema,
		                         dbreg_check_schema_name);
		if (slug_ok && schema_ok && dbreg_schema_for_slug(slug, expected, sizeof(expected)) == 0 &&
		    strcmp(schema, expected) != 0)
			add(r, WARNING, "tenant-schema-mismatch", NULL, "tenant '%s': schema_name '%s' is not the expected '%s'",
			    s1, dbreg_printable(schema, s2, sizeof(s2)), expected);

		if (cell_null(res, i, c_conn_state)) {
			size_t o = strlen(unowned);

			if (n_unowned < MAX_NAMED)
				snprintf(unowned + o, sizeof(unowned) - o, "%s'%s'", o ? ", " : "", s1);
			n_unowned++;
		} else if (strcmp(state, "missing") == 0) {
			add(r, ERROR, "tenant-connection-missing", NULL,
			    "tenant '%s' points at connection id %s, which does not exist", s1, cell(res, i, c_database_connection_id));
		} else if (strcmp(state, "deleted") == 0) {
			add(r, ERROR, "tenant-connection-deleted", cname, "tenant '%s' points at connection '%s', which is deleted",
			    s1, dbreg_printable(cname, s2, sizeof(s2)));
		} else if (strcmp(state, "inactive") == 0) {
			add(r, WARNING, "tenant-connection-inactive", cname,
			    "tenant '%s' points at connection '%s', which is inactive", s1, dbreg_printable(cname, s2, sizeof(s2)));
		}
	}
	PQclear(res);
	if (n_unowned == 0)
		return;

	dbreg_error_clear(&e);
	dflt = dbreg_registry_validate_default(conn, DEFAULT_CONNECTION, &e);
	if (!dflt) {
		read_failed(r, &e);
		return;
	}
	if (PQntuples(dflt) == 0 || strcmp(cell(dflt, 0, PQfnumber(dflt, "is_active")), "t") != 0) {
		char why[160], more[48] = "";

		if (PQntuples(dflt) == 0)
			snprintf(why, sizeof(why), "'%s' is not registered", DEFAULT_CONNECTION);
		else
			snprintf(why, sizeof(why), "'%s' is inactive", DEFAULT_CONNECTION);
		if (n_unowned > MAX_NAMED)
			snprintf(more, sizeof(more), " and %ld more", n_unowned - MAX_NAMED);
		add(r, ERROR, "tenant-no-default", PQntuples(dflt) ? DEFAULT_CONNECTION : NULL,
		    "%ld tenant%s without a connection of %s own (%s%s) need the active connection '%s', but %s",
		    n_unowned, n_unowned == 1 ? "" : "s", n_unowned == 1 ? "its" : "their", unowned, more,
		    DEFAULT_CONNECTION, why);
	}
	PQclear(dflt);
}

/* The registry's shape: what would make every command fail later, said here instead. */
static bool check_shape(struct run *r, const struct dbreg_profile *p)
{
	char col[64];

	for (size_t i = 0; i < dbreg_list_len(p->missing_columns); i++) {
		const char *name = dbreg_list_item(p->missing_columns, i, col, sizeof(col));

		add(r, ERROR, "schema-column-missing", NULL, "admin.database_connections has no column %s",
		    name + strspn(name, " "));
	}
	for (const char *line = p->type_problems; line && *line;) {
		size_t n = strcspn(line, "\n");

		add(r, ERROR, "schema-column-type", NULL, "admin.database_connections: %.*s", (int)n, line);
		line += n + (line[n] == '\n');
	}
	return !p->missing_columns && !p->type_problems;
}

static void check_admin(struct run *r)
{
	struct dbreg_profile p;
	struct dbreg_error e;
	PGconn *conn = NULL;
	int want = dbreg_schema_version();

	dbreg_error_clear(&e);
	/* Our own connection: the context's would refuse the very schemas we report on. */
	if (dbreg_connect_admin(r->url, &conn, &e) < 0) {
		if (e.kind == DBREG_ERR_INTERNAL)
			r->f->oom = true;
		else
			add(r, ERROR, e.kind == DBREG_ERR_CONFIG ? "admin-refused" : "admin-unreachable", NULL, "%s", e.message);
		return;
	}
	if (dbreg_profile_read(conn, &p, &e) < 0) {
		read_failed(r, &e);
		PQfinish(conn);
		return;
	}
	if (!p.have_registry)
		add(r, ERROR, "schema-missing", NULL, "database \"%s\" has no dbreg registry schema; run 'dbreg init'",
		    PQdb(conn));
	else if (!p.have_log)
		/* The platform's own registry: read as it is, written once adopted. */
		add(r, WARNING, "schema-unadopted", NULL,
		    "database \"%s\" has a registry dbreg did not create: it is read as it is; run 'dbreg init' to adopt it"
		    " before writing", PQdb(conn));
	else if (p.version < want)
		add(r, ERROR, "schema-old", NULL,
		    "the registry schema is at version %d; this dbreg needs version %d: run 'dbreg init'", p.version, want);
	else if (p.version > want)
		add(r, ERROR, "schema-new", NULL,
		    "the registry schema is at version %d, newer than this dbreg knows (%d); upgrade dbreg", p.version, want);
	/* The rows are read through the columns; without them there is nothing to judge. */
	if (p.have_registry && check_shape(r, &p))
		check_rows(r, conn, p.password_format);
	if (p.have_tenants)
		check_tenants(r, conn);
	else if (p.have_log && p.version >= 2)
		add(r, ERROR, "schema-missing", NULL, "the registry schema is at version %d, but admin.tenants is missing",
		    p.version);
	dbreg_profile_clear(&p);
	PQfinish(conn);
}

_public_ int dbreg_validate(struct dbreg_ctx *ctx, int offline, struct dbreg_findings **ret, struct dbreg_error *err)
{
	struct run r = { .ctx = ctx, .passwords = -1 };

	r.f = calloc(1, sizeof(*r.f));
	if (!r.f)
		return dbreg_fail_oom(err);
	r.url = ctx ? dbreg_ctx_admin_url(ctx) : getenv("ADMIN_DATABASE_URL");
	check_url(&r);
	check_passfile(&r);
	check_keys(&r);
	if (!offline && r.url_usable)
		check_admin(&r);
	decide_key_missing(&r, offline);
	dbreg_keyring_free(r.kr);
	if (r.f->oom) {
		dbreg_findings_free(r.f);
		return dbreg_fail_oom(err);
	}
	*ret = r.f;
	return 0;
}
