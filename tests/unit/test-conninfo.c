/* test-conninfo.c — URL parsing for register --url, through libpq's own parser. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "tap.h"

static void test_parts(void)
{
	struct dbreg_url_parts *p = NULL;
	struct dbreg_error err;

	ok(dbreg_url_parse("postgresql://app@db.example.com:6432/orders?sslmode=require", &p, &err) == 0, "URI parses");
	is_str(dbreg_url_parts_host(p), "db.example.com", "host");
	is_str(dbreg_url_parts_port(p), "6432", "port");
	is_str(dbreg_url_parts_dbname(p), "orders", "dbname");
	is_str(dbreg_url_parts_user(p), "app", "user");
	is_str(dbreg_url_parts_sslmode(p), "require", "sslmode");
	dbreg_url_parts_free(p);

	ok(dbreg_url_parse("host=/var/run/postgresql dbname=x user=y", &p, &err) == 0, "key=value parses");
	is_str(dbreg_url_parts_host(p), "/var/run/postgresql", "socket directory host");
	ok(dbreg_url_parts_port(p) == NULL, "absent port is NULL");
	dbreg_url_parts_free(p);

	ok(dbreg_url_parse("postgresql://%2Ftmp%2Fsock/db", &p, &err) == 0 &&
	   strcmp(dbreg_url_parts_host(p), "/tmp/sock") == 0, "percent-encoded socket path decoded");
	dbreg_url_parts_free(p);

	dbreg_error_clear(&err);
	ok(dbreg_url_parse("postgresql://app:hunter2@h/db", &p, &err) < 0 && err.kind == DBREG_ERR_USAGE &&
	   !strstr(err.message, "hunter2"), "password in URI refused without echoing it");
	ok(dbreg_url_parse("host=h password=hunter2", &p, &err) < 0 && err.kind == DBREG_ERR_USAGE,
	   "password in key=value refused");
	ok(dbreg_url_parse("host=h bogus=1", &p, &err) < 0 && err.kind == DBREG_ERR_USAGE, "unknown keyword refused");
	ok(dbreg_url_parse("postgresql://h1,h2/db", &p, &err) < 0, "multi-host refused for one registered connection");
	ok(dbreg_url_parse("host='unterminated", &p, &err) < 0, "bad quoting refused");

	/* libpq's parse errors quote the input: no part of a password survives. */
	dbreg_error_clear(&err);
	ok(dbreg_url_parse("host=x password=correct horse battery", &p, &err) < 0 && !strstr(err.message, "horse") &&
	   !strstr(err.message, "battery") && !strstr(err.message, "correct"), "a password split at a space: no word of it");
	dbreg_error_clear(&err);
	ok(dbreg_url_parse("postgresql://u:pw/x?secretword=1@db", &p, &err) < 0 && !strstr(err.message, "secretword"),
	   "a URI password with a '/' in it: not quoted");
	dbreg_error_clear(&err);
	ok(dbreg_url_parse("host=x bogus=1", &p, &err) < 0 && strstr(err.message, "\"bogus\""),
	   "without a password, the keyword libpq refused is named");
}

static void test_names(void)
{
	struct dbreg_error err;

	ok(dbreg_check_connection_name("shared-primary", &err) == 0, "shared-primary valid");
	ok(dbreg_check_connection_name("a.b_c-9", &err) == 0, "dots, underscores, digits valid");
	ok(dbreg_check_connection_name("0db", &err) == 0, "leading digit valid");
	ok(dbreg_check_connection_name("Shared", &err) < 0 && err.kind == DBREG_ERR_USAGE, "upper case refused");
	ok(dbreg_check_connection_name("-x", &err) < 0, "leading dash refused");
	ok(dbreg_check_connection_name("a b", &err) < 0, "space refused");
	ok(dbreg_check_connection_name("x'; DROP TABLE admin.database_connections; --", &err) < 0, "injection refused");
	ok(dbreg_check_connection_name("", &err) < 0, "empty refused");
	{
		char name[102];

		memset(name, 'a', 101);
		name[101] = '\0';
		ok(dbreg_check_connection_name(name, &err) < 0, "101 bytes refused");
		name[100] = '\0';
		ok(dbreg_check_connection_name(name, &err) == 0, "100 bytes valid");
	}
	ok(dbreg_is_canonical_uuid("123e4567-e89b-12d3-a456-426614174000"), "canonical UUID");
	ok(!dbreg_is_canonical_uuid("123e4567e89b12d3a456426614174000"), "UUID without dashes is not canonical");
}

int main(void)
{
	test_parts();
	test_names();
	return tap_done();
}
