/* open-tenant.c — dbreg_open_tenant from a program, for tests/bats/library.bats:
 *   open-tenant TENANT  ->  schema|search_path|user */
#include <stdio.h>
#include <stdlib.h>

#include <libpq-fe.h>
#include "dbreg.h"

int main(int argc, char **argv)
{
	struct dbreg_error err;
	struct dbreg_ctx *ctx = NULL;
	PGconn *conn = NULL;
	PGresult *res;
	char *schema = NULL;
	int status = 1;

	if (argc != 2)
		return 2;
	dbreg_error_clear(&err);
	if (dbreg_ctx_new(&ctx, &err) < 0 || dbreg_open_tenant(ctx, argv[1], 10000, &conn, &schema, &err) < 0) {
		fprintf(stderr, "open-tenant: %s\n", err.message);
		dbreg_ctx_free(ctx);
		return 1;
	}
	res = PQexec(conn, "SELECT current_setting('search_path') AS path, current_user AS who");
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		printf("%s|%s|%s\n", schema, PQgetvalue(res, 0, PQfnumber(res, "path")), PQgetvalue(res, 0, PQfnumber(res, "who")));
		status = 0;
	}
	PQclear(res);
	PQfinish(conn);
	free(schema);
	dbreg_ctx_free(ctx);
	return status;
}
