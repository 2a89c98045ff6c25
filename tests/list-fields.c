/* list-fields.c — dbreg_filter_set_fields from a program, for tests/bats/library.bats:
 *   list-fields stream|list [FIELD...]  ->  a line a row: each field it has, name=value
 * (value "-" for NULL), in the field table's order. */
#include <stdio.h>
#include <string.h>

#include "dbreg.h"

static void print_row(const struct dbreg_conn *c)
{
	const char *sep = "";

	for (int f = 0; f < DBREG_F__COUNT; f++) {
		const char *v;

		if (!dbreg_conn_has(c, f))
			continue;
		v = dbreg_conn_get(c, f);
		printf("%s%s=%s", sep, dbreg_field_name(f), v ? v : "-");
		sep = " ";
	}
	putchar('\n');
}

int main(int argc, char **argv)
{
	enum dbreg_field fields[DBREG_F__COUNT];
	struct dbreg_error err;
	struct dbreg_ctx *ctx = NULL;
	struct dbreg_filter *filter = NULL;
	size_t n = 0;
	int status = 1;

	if (argc < 2 || (strcmp(argv[1], "stream") != 0 && strcmp(argv[1], "list") != 0))
		return 2;
	for (int i = 2; i < argc && n < DBREG_F__COUNT; i++) {
		int f = dbreg_field_lookup(argv[i]);

		fields[n++] = f < 0 ? (enum dbreg_field)DBREG_F__COUNT : (enum dbreg_field)f;
	}
	dbreg_error_clear(&err);
	if (dbreg_ctx_new(&ctx, &err) < 0 || dbreg_ctx_connect(ctx, NULL, &err) < 0 ||
	    dbreg_filter_new(&filter, &err) < 0 || dbreg_filter_set_fields(filter, fields, n, &err) < 0)
		goto out;
	if (strcmp(argv[1], "stream") == 0) {
		struct dbreg_conn_stream *s;
		const struct dbreg_conn *c;
		int r;

		if (dbreg_list_stream(ctx, filter, &s, &err) < 0)
			goto out;
		while ((r = dbreg_conn_stream_next(s, &c, &err)) > 0)
			print_row(c);
		dbreg_conn_stream_free(s);
		if (r < 0)
			goto out;
	} else {
		struct dbreg_conn_list *l;

		if (dbreg_list(ctx, filter, &l, &err) < 0)
			goto out;
		for (size_t i = 0; i < dbreg_conn_list_count(l); i++)
			print_row(dbreg_conn_list_at(l, i));
		dbreg_conn_list_free(l);
	}
	status = 0;
out:
	if (status)
		fprintf(stderr, "list-fields: %s\n", err.message);
	dbreg_filter_free(filter);
	dbreg_ctx_free(ctx);
	return status;
}
