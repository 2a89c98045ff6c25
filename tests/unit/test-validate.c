/* test-validate.c — validate-config's offline checks: the URL, service files and keys, no database. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "tap.h"

static char dir[] = "/tmp/dbreg-test-validate-XXXXXX";

static void write_file(const char *name, const char *text, mode_t mode)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

static struct dbreg_findings *run_offline(const char *url)
{
	struct dbreg_findings *f = NULL;
	struct dbreg_ctx *ctx = NULL;

	if (url)
		setenv("ADMIN_DATABASE_URL", url, 1);
	else
		unsetenv("ADMIN_DATABASE_URL");
	if (dbreg_ctx_new(&ctx, NULL) < 0 || dbreg_validate(ctx, 1, &f, NULL) < 0)
		f = NULL;
	dbreg_ctx_free(ctx);
	return f;
}

/* How many findings have code (with severity sev, when sev >= 0). */
static int count(const struct dbreg_findings *f, const char *code, int sev)
{
	int n = 0;

	for (size_t i = 0; i < dbreg_findings_count(f); i++) {
		const struct dbreg_finding *x = dbreg_findings_at(f, i);

		if (strcmp(x->code, code) == 0 && (sev < 0 || (int)x->severity == sev))
			n++;
	}
	return n;
}

static bool mentions(const struct dbreg_findings *f, const char *text)
{
	for (size_t i = 0; i < dbreg_findings_count(f); i++)
		if (strstr(dbreg_findings_at(f, i)->message, text))
			return true;
	return false;
}

/* Runs url offline and checks that it gives code with severity sev, or no
 * finding at all when code is NULL (a valid key is set). */
static void expect(const char *url, const char *code, int sev, const char *what)
{
	struct dbreg_findings *f = run_offline(url);

	if (code)
		ok(f && count(f, code, sev) >= 1, "%s: %s", what, code);
	else
		ok(f && dbreg_findings_count(f) == 0, "%s: no finding (got %zu)", what, f ? dbreg_findings_count(f) : 99);
	dbreg_findings_free(f);
}

static void test_sslmode_rank(void)
{
	ok(dbreg_sslmode_rank("disable") == 0, "disable is the weakest");
	ok(dbreg_sslmode_rank("prefer") < DBREG_SSLMODE_ENCRYPTED, "prefer may go unencrypted");
	ok(dbreg_sslmode_rank("require") == DBREG_SSLMODE_ENCRYPTED, "require encrypts");
	ok(dbreg_sslmode_rank("verify-full") == 5, "verify-full is the strongest");
	ok(dbreg_sslmode_rank("sometimes") == -1, "an unknown sslmode");
	ok(dbreg_sslmode_rank(NULL) == -1, "no sslmode");
}

static void test_inspect(void)
{
	struct dbreg_conninfo_facts f;

	ok(dbreg_conninfo_inspect("postgresql://u:pw@h1,h2:5433/db?sslmode=require&service=s", &f) == 0 && f.parsed,
	   "URI inspected");
	ok(f.has_password, "password seen");
	is_str(f.host, "h1,h2", "host list");
	is_str(f.sslmode, "require", "sslmode");
	is_str(f.service, "s", "service");
	dbreg_conninfo_facts_clear(&f);

	ok(dbreg_conninfo_inspect("host=h nosuch=1", &f) == 0 && !f.parsed && f.unknown_keyword, "unknown keyword");
	ok(strstr(f.error, "nosuch") != NULL, "the keyword is named: %s", f.error);
	dbreg_conninfo_facts_clear(&f);

	ok(dbreg_conninfo_inspect("postgresql://u:top%zzsecret@h/db", &f) == 0 && !f.parsed && !f.unknown_keyword,
	   "bad percent-encoding refused");
	ok(strstr(f.error, "secret") == NULL && strstr(f.error, "(hidden)") != NULL, "the password is hidden: %s",
	   f.error);
	dbreg_conninfo_facts_clear(&f);

	ok(dbreg_conninfo_inspect("postgresql://u:topsecret@[::1/db", &f) == 0 && !f.parsed, "bad IPv6 refused");
	ok(strstr(f.error, "topsecret") == NULL, "the URI is hidden: %s", f.error);
	dbreg_conninfo_facts_clear(&f);
}

static void test_service_files(void)
{
	struct dbreg_service s;
	char path[256], sys[256];

	snprintf(path, sizeof(path), "%s/user.conf", dir);
	snprintf(sys, sizeof(sys), "%s/sys", dir);
	mkdir(sys, 0700);
	write_file("user.conf",
	           "# comment\n\n[first]\nhost=one.example.com\n  [prod]  \nhost=db.example.com\nport=6543\n"
	           "sslmode=disable\n[prodx]\nhost=wrong\n",
	           0600);
	write_file("sys/pg_service.conf", "[system]\nhost=sys.example.com\n[prod]\nhost=shadowed\n", 0644);
	setenv("PGSERVICEFILE", path, 1);
	setenv("PGSYSCONFDIR", sys, 1);

	ok(dbreg_service_find("prod", &s) == 0 && s.found, "service in the user's file");
	is_str(s.file, path, "found in the user's file");
	is_str(s.host, "db.example.com", "its host (the user's file wins)");
	is_str(s.port, "6543", "its port");
	is_str(s.sslmode, "disable", "its sslmode");
	dbreg_service_clear(&s);

	ok(dbreg_service_find("system", &s) == 0 && s.found, "service only in the system file");
	is_str(s.host, "sys.example.com", "its host");
	dbreg_service_clear(&s);

	ok(dbreg_service_find("pro", &s) == 0 && !s.found, "a prefix of a section is not a match");
	ok(strstr(s.searched, "user.conf") && strstr(s.searched, "pg_service.conf"), "both files searched: %s",
	   s.searched);
	dbreg_service_clear(&s);

	/* Without PGSERVICEFILE, ~/.pg_service.conf. */
	unsetenv("PGSERVICEFILE");
	setenv("HOME", dir, 1);
	write_file(".pg_service.conf", "[home]\nport=1\n", 0600);
	ok(dbreg_service_find("home", &s) == 0 && s.found, "service in ~/.pg_service.conf");
	dbreg_service_clear(&s);
	ok(dbreg_service_find("nowhere", &s) == 0 && !s.found, "a service defined nowhere");
	dbreg_service_clear(&s);
	setenv("PGSERVICEFILE", path, 1);
}

static void test_url(void)
{
	char url[512];

	expect(NULL, "url-missing", DBREG_SEV_ERROR, "no URL");
	expect("", "url-missing", DBREG_SEV_ERROR, "empty URL");
	expect("postgresql://[::1/db", "url-syntax", DBREG_SEV_ERROR, "bad URI");
	expect("host=127.0.0.1 bogus=1", "url-keyword", DBREG_SEV_ERROR, "unknown keyword");
	expect("postgresql://127.0.0.1/db?bogus=1", "url-keyword", DBREG_SEV_ERROR, "unknown URI parameter");
	expect("postgresql://127.0.0.1:99999/db", "url-port", DBREG_SEV_ERROR, "port 99999");
	expect("host=127.0.0.1,127.0.0.2 port=5432,65536", "url-port", DBREG_SEV_ERROR, "second port out of range");
	expect("host=127.0.0.1,127.0.0.2 port=5432,x", "url-port", DBREG_SEV_ERROR, "port not a number");
	expect("host=127.0.0.1,127.0.0.2,127.0.0.3 port=1,2", "url-port", DBREG_SEV_ERROR, "2 ports for 3 hosts");
	expect("host=127.0.0.1,127.0.0.2 port=5432,5433", NULL, 0, "one port per host");
	expect("host=127.0.0.1,127.0.0.2 port=5432", NULL, 0, "one port for all hosts");
	expect("host=127.0.0.1,127.0.0.2 port=5432,", NULL, 0, "an empty port is the default");
	expect("service=nowhere", "url-service", DBREG_SEV_ERROR, "undefined service");
	expect("service=system sslmode=require", NULL, 0, "a service in the system file");
	expect("service=system", "url-weak-ssl", DBREG_SEV_WARNING, "the system file's service host is checked");
	expect("service=prod", "url-weak-ssl", DBREG_SEV_WARNING, "the service's sslmode=disable toward its host");
	expect("service=prod sslmode=verify-full", NULL, 0, "the URL's sslmode wins over the service's");
	expect("postgresql://u:pw@127.0.0.1/db", "url-password", DBREG_SEV_WARNING, "password in the URI");
	expect("host=db.example.com", "url-weak-ssl", DBREG_SEV_WARNING, "sslmode unset toward a remote host");
	expect("host=db.example.com sslmode=allow", "url-weak-ssl", DBREG_SEV_WARNING, "allow toward a remote host");
	expect("host=localhost,db.example.com sslmode=prefer", "url-weak-ssl", DBREG_SEV_WARNING,
	       "one remote host of two");
	expect("host=db.example.com hostaddr=127.0.0.1", NULL, 0, "hostaddr decides where it goes");
	expect("host=db.example.com sslmode=require", NULL, 0, "require toward a remote host");
	expect("host=db.example.com requiressl=1", NULL, 0, "requiressl=1 means require");
	expect("host=localhost sslmode=disable", NULL, 0, "localhost");
	expect("host=127.0.0.42 sslmode=disable", NULL, 0, "127.x");
	expect("host=::1 sslmode=disable", NULL, 0, "::1");
	expect("postgresql://%2Fvar%2Frun%2Fpostgresql/db", NULL, 0, "socket directory");
	expect("dbname=x", NULL, 0, "no host: the default socket");
	expect("host=db.example.com sslmode=often", "url-sslmode", DBREG_SEV_ERROR, "unknown sslmode");

	setenv("PGPORT", "0", 1);
	expect("host=127.0.0.1", "url-port", DBREG_SEV_ERROR, "PGPORT out of range");
	expect("host=127.0.0.1 port=5432", NULL, 0, "the URL's port wins over PGPORT");
	/* dbreg took PGPORT out of the environment; set empty, the next context takes that. */
	setenv("PGPORT", "", 1);

	snprintf(url, sizeof(url), "postgresql://u:hunter2secret@db.example.com:70000/db?sslmode=disable");
	{
		struct dbreg_findings *f = run_offline(url);

		ok(f && count(f, "url-password", -1) == 1 && count(f, "url-port", -1) == 1 &&
		   count(f, "url-weak-ssl", -1) == 1, "several findings from one URL");
		ok(f && !mentions(f, "hunter2"), "no finding shows the password");
		dbreg_findings_free(f);
	}
}

static void test_keys(void)
{
	static const char key[] = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=";  /* 32 bytes */
	static const char hex[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
	const char *url = "host=127.0.0.1";
	struct dbreg_findings *f;
	char path[256];

	unsetenv("DB_ENCRYPTION_KEY");
	unsetenv("DB_ENCRYPTION_KEY_FILE");
	unsetenv("DB_ENCRYPTION_OLD_KEYS");
	expect(url, "key-missing", DBREG_SEV_ERROR, "no key, offline");

	setenv("DB_ENCRYPTION_KEY", "c2hvcnQ=", 1);
	f = run_offline(url);
	ok(f && count(f, "key-invalid", DBREG_SEV_ERROR) == 1, "short key: key-invalid");
	ok(f && !mentions(f, "c2hvcnQ"), "the key is not shown");
	dbreg_findings_free(f);

	setenv("DB_ENCRYPTION_KEY", key, 1);
	snprintf(path, sizeof(path), "%s/key", dir);
	write_file("key", hex, 0600);
	setenv("DB_ENCRYPTION_KEY_FILE", path, 1);
	expect(url, "key-both", DBREG_SEV_ERROR, "both set");
	unsetenv("DB_ENCRYPTION_KEY");
	expect(url, NULL, 0, "a private key file");
	chmod(path, 0604);
	expect(url, "key-file-mode", DBREG_SEV_ERROR, "a key file others can read");
	chmod(path, 0600);
	write_file("key", "not a key\n", 0600);
	expect(url, "key-invalid", DBREG_SEV_ERROR, "a key file without a key");
	snprintf(path, sizeof(path), "%s/no-such-key", dir);
	setenv("DB_ENCRYPTION_KEY_FILE", path, 1);
	expect(url, "key-file", DBREG_SEV_ERROR, "a missing key file");
	setenv("DB_ENCRYPTION_KEY_FILE", dir, 1);
	expect(url, "key-file", DBREG_SEV_ERROR, "a directory as the key file");
	unsetenv("DB_ENCRYPTION_KEY_FILE");

	setenv("DB_ENCRYPTION_KEY", key, 1);
	setenv("DB_ENCRYPTION_OLD_KEYS", hex, 1);
	expect(url, NULL, 0, "a good old key");
	setenv("DB_ENCRYPTION_OLD_KEYS", " , bad-one ,", 1);
	f = run_offline(url);
	ok(f && count(f, "old-key-invalid", DBREG_SEV_ERROR) == 1 && mentions(f, "item 2 "),
	   "one bad old key, named by position");
	ok(f && !mentions(f, "bad-one"), "the old key is not shown");
	dbreg_findings_free(f);
	unsetenv("DB_ENCRYPTION_OLD_KEYS");
}

int main(void)
{
	char cmd[300];

	if (!mkdtemp(dir))
		return 1;
	/* No stray settings from the caller's environment. */
	unsetenv("PGSERVICE");
	unsetenv("PGHOST");
	unsetenv("PGHOSTADDR");
	unsetenv("PGPORT");
	unsetenv("PGSSLMODE");
	unsetenv("DB_ENCRYPTION_OLD_KEYS");
	unsetenv("DB_ENCRYPTION_KEY_FILE");
	setenv("DB_ENCRYPTION_KEY", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", 1);

	test_sslmode_rank();
	test_inspect();
	test_service_files();
	test_url();
	test_keys();

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		return 1;
	return tap_done();
}
