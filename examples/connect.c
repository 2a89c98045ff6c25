/* connect.c — open a registered connection by name and say who and where we are:
 *   cc connect.c $(pkg-config --cflags --libs libdbreg) -o connect
 *   ADMIN_DATABASE_URL=... DB_ENCRYPTION_KEY_FILE=... ./connect NAME   ->  user|database */
#include <stdio.h>

#include <libpq-fe.h>
#include <dbreg.h>

int main(int argc, char **argv)
{
	struct dbreg_error err;
	struct dbreg_ctx *ctx = NULL;
	PGconn *conn = NULL;
	PGresult *res;
	int status = 1;

	if (argc != 2) {
		fprintf(stderr, "usage: %s NAME\n", argv[0]);
		return 2;
	}
	dbreg_error_clear(&err);
	/* The admin database and the keys come from the environment. */
	if (dbreg_ctx_new(&ctx, &err) < 0 || dbreg_open(ctx, argv[1], 10000, &conn, &err) < 0) {
		fprintf(stderr, "connect: %s\n", err.message);
		dbreg_ctx_free(ctx);
		return 1;
	}
	res = PQexec(conn, "SELECT current_user AS who, current_database() AS db");
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		printf("%s|%s\n", PQgetvalue(res, 0, PQfnumber(res, "who")), PQgetvalue(res, 0, PQfnumber(res, "db")));
		status = 0;
	} else {
		fprintf(stderr, "connect: %s", PQerrorMessage(conn));
	}
	PQclear(res);
	PQfinish(conn);
	dbreg_ctx_free(ctx);
	return status;
}
