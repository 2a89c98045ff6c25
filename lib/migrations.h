/* migrations.h — the ordered list of schema migrations. */
#ifndef DBREG_MIGRATIONS_H
#define DBREG_MIGRATIONS_H

struct dbreg_migration {
	int version;
	const char *description;
	const char *sql;
	int adopted_too;  /* 1: only dbreg's own objects, so adopting a registry runs it too */
};

extern const struct dbreg_migration dbreg_migrations[];
extern const int dbreg_migration_count;

#endif
