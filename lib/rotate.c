/* rotate.c — dbreg rotate-key: every stored password re-encrypted into one format and the current key, in one
 * transaction under the rotation lock: all of it, or (a row that does not decrypt) none of it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "internal.h"

#define MAX_SOURCES 32

struct dbreg_rotation {
	bool dry_run;
	char format[8];
	struct {
		char label[16];  /* a key id, "fernet" */
		long n;
	} sources[MAX_SOURCES];
	size_t nsources;
	long already_current;
	char **skipped;
	size_t nskipped;
};

_public_ void dbreg_rotation_free(struct dbreg_rotation *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nskipped; i++)
		free(r->skipped[i]);
	free(r->skipped);
	free(r);
}

_public_ int dbreg_rotation_dry_run(const struct dbreg_rotation *r) { return r->dry_run; }
_public_ const char *dbreg_rotation_format(const struct dbreg_rotation *r) { return r->format; }
_public_ size_t dbreg_rotation_source_count(const struct dbreg_rotation *r) { return r->nsources; }
_public_ long dbreg_rotation_already_current(const struct dbreg_rotation *r) { return r->already_current; }
_public_ size_t dbreg_rotation_skipped_count(const struct dbreg_rotation *r) { return r->nskipped; }

_public_ const char *dbreg_rotation_source(const struct dbreg_rotation *r, size_t i, long *ret_count)
{
	if (i >= r->nsources)
		return NULL;
	if (ret_count)
		*ret_count = r->sources[i].n;
	return r->sources[i].label;
}

_public_ const char *dbreg_rotation_skipped(const struct dbreg_rotation *r, size_t i)
{
	return i < r->nskipped ? r->skipped[i] : NULL;
}

static void count_source(struct dbreg_rotation *r, const char *label)
{
	size_t i;

	for (i = 0; i < r->nsources; i++)
		if (strcmp(r->sources[i].label, label) == 0)
			break;
	if (i == r->nsources) {
		if (i == MAX_SOURCES)
			i--;  /* more old keys than a keyring holds: cannot happen */
		else
			r->nsources++;
		snprintf(r->sources[i].label, sizeof(r->sources[i].label), "%s", label);
	}
	r->sources[i].n++;
}

static int add_name(char ***v, size_t *n, const char *name)
{
	char **grown = realloc(*v, (*n + 1) * sizeof(*grown));

	if (!grown)
		return -1;
	*v = grown;
	if (!(grown[*n] = strdup(name)))
		return -1;
	(*n)++;
	return 0;
}

/* "'a', 'b' and 3 more" into buf. */
static void name_list(char **v, size_t n, char *buf, size_t size)
{
	size_t o = 0;
	char shown[128];

	buf[0] = '\0';
	for (size_t i = 0; i < n && i < 8 && o < size; i++)
		o += (size_t)snprintf(buf + o, size - o, "%s'%s'", i ? ", " : "", dbreg_printable(v[i], shown, sizeof(shown)));
	if (n > 8 && o < size)
		snprintf(buf + o, size - o, " and %zu more", n - 8);
}

/* The keys this rotation reads and writes with: the keyring when it is set (needed to write
 * dbreg's format), the Fernet key when the passphrase is (needed to write Fernet). */
static int rotation_keys(struct dbreg_ctx *ctx, const char *format, const unsigned char **ret_fkey,
                         struct dbreg_error *err)
{
	int r;

	if (strcmp(format, "dbreg") == 0 || dbreg_keys_configured()) {
		if (dbreg_ctx_load_keys(ctx, err) < 0)
			return -1;
	}
	r = dbreg_ctx_fernet_key(ctx, ret_fkey, err);
	if (r < 0)
		return -1;
	if (r == 0 && strcmp(format, "fernet") == 0)
		return dbreg_fail(err, DBREG_ERR_CONFIG,
		                  "writing Fernet tokens (the platform's format) needs its passphrase: set"
		                  " DB_FERNET_PASSPHRASE or DB_FERNET_PASSPHRASE_FILE");
	if (r == 0)
		*ret_fkey = NULL;
	return 0;
}

/* One row: its new stored text into *ret_new (NULL: already current), or -1 with why set.
 * b: the row's id and target, which a dbreg value is bound to (v2). */
static int rotate_one(struct dbreg_ctx *ctx, const unsigned char *fkey, const char *format, const char *stored,
                      const struct dbreg_binding *b, struct dbreg_rotation *rot, char **ret_new, char *why,
                      size_t size)
{
	const struct dbreg_keyring *kr = dbreg_ctx_keyring(ctx);
	const char *current = dbreg_keyring_current_id(kr);
	bool fernet = dbreg_is_fernet(stored);
	char id[DBREG_KEY_ID_LEN + 1] = "";
	struct dbreg_error e;
	int version = fernet ? 0 : dbreg_stored_version(stored, id);
	char *pw = NULL;
	int r;

	*ret_new = NULL;
	if (version < 0) {
		snprintf(why, size, "the stored password is in no known format");
		return -1;
	}
	dbreg_error_clear(&e);
	/* Current ones too: a text copied from another row is as unreadable as a lost key's. */
	if (dbreg_stored_decrypt(kr, fkey, b, stored, &pw, &e) < 0) {
		snprintf(why, size, "%s", e.message);
		return -1;
	}
	/* Rotating the platform's passphrase is not dbreg's: a Fernet row stays a Fernet row. */
	if (strcmp(format, "fernet") == 0 ? fernet : version == 2 && current && strcmp(id, current) == 0) {
		dbreg_secret_free(pw);
		rot->already_current++;
		return 0;
	}
	if (strcmp(format, "fernet") == 0)
		r = dbreg_fernet_encrypt(fkey, pw, strlen(pw), ret_new, &e);
	else
		r = dbreg_encrypt_v2(kr, b, NULL, pw, strlen(pw), ret_new, &e);
	dbreg_secret_free(pw);
	if (r < 0) {
		snprintf(why, size, "%s", e.message);
		return -1;
	}
	count_source(rot, fernet ? "fernet" : version == 1 ? "v1" : id);
	return 0;
}

/* Every row of rows (registry rows, or pending rotations: pending) through rotate_one;
 * refused ones into *refused (or rot->skipped), the first reason into first_why. */
static int rotate_rows(struct dbreg_ctx *ctx, PGresult *rows, bool pending, const unsigned char *fkey,
                       const char *format, unsigned flags, struct dbreg_rotation *rot, char ***refused,
                       size_t *nrefused, char *first_why, size_t size, struct dbreg_error *err)
{
	char why[512] = "", label[400];

	for (int i = 0; i < PQntuples(rows); i++) {
		const char *id = dbreg_result_value(rows, i, "id"), *name = dbreg_result_value(rows, i, "connection_name");
		const char *stored = dbreg_result_value(rows, i, "encrypted_password");
		struct dbreg_binding b;
		char *fresh = NULL;
		int r;

		if (!id || !name || !stored || dbreg_binding_of_row(rows, i, &b) < 0)
			return dbreg_fail(err, DBREG_ERR_INTERNAL, "the registry's answer lacks id, name, target or password");
		snprintf(label, sizeof(label), "%s%s", name, pending ? " (pending rotation)" : "");
		if (rotate_one(ctx, fkey, format, stored, &b, rot, &fresh, why, sizeof(why)) < 0) {
			if (!first_why[0])
				snprintf(first_why, size, "%s", why);
			if ((flags & DBREG_ROTATE_SKIP_UNDECRYPTABLE) ? add_name(&rot->skipped, &rot->nskipped, label) < 0
			                                              : add_name(refused, nrefused, label) < 0)
				return dbreg_fail_oom(err);
			continue;
		}
		r = fresh && !rot->dry_run && !*nrefused
		  ? (pending ? dbreg_registry_set_pending(ctx, id, fresh, err) : dbreg_registry_set_stored(ctx, id, fresh, err))
		  : 0;
		if (r == 0 && fresh && !rot->dry_run)
			dbreg_test_crash_point("rotate-key-row");
		free(fresh);
		if (r < 0)
			return -1;
	}
	return 0;
}

/* The stored texts leave with the result. */
static void clear_rows(PGresult *rows)
{
	int col = rows ? PQfnumber(rows, "encrypted_password") : -1;

	for (int i = 0; col >= 0 && i < PQntuples(rows); i++)
		if (!PQgetisnull(rows, i, col))
			sodium_memzero(PQgetvalue(rows, i, col), strlen(PQgetvalue(rows, i, col)));
	PQclear(rows);
}

_public_ int dbreg_rotate_key(struct dbreg_ctx *ctx, const char *to, unsigned flags, struct dbreg_rotation **ret,
                              struct dbreg_error *err)
{
	const unsigned char *fkey = NULL;
	struct dbreg_rotation *rot;
	char **refused = NULL, first_why[512] = "", list[1200];
	size_t nrefused = 0;
	const char *format;
	PGresult *rows = NULL, *pending = NULL;
	int r = -1;

	if (to && strcmp(to, "dbreg") != 0 && strcmp(to, "fernet") != 0)
		return dbreg_fail(err, DBREG_ERR_USAGE, "unknown password format '%s' (known: dbreg, fernet)", to);
	if (dbreg_ctx_connect(ctx, NULL, err) < 0 || dbreg_ctx_check_writable(ctx, err) < 0)
		return -1;
	format = to ? to : dbreg_ctx_profile(ctx)->password_format;
	if (!(rot = calloc(1, sizeof(*rot))))
		return dbreg_fail_oom(err);
	rot->dry_run = (flags & DBREG_ROTATE_DRY_RUN) != 0;
	snprintf(rot->format, sizeof(rot->format), "%s", format);
	if (rotation_keys(ctx, format, &fkey, err) < 0 || dbreg_registry_begin(ctx, err) < 0)
		goto out;
	rows = dbreg_registry_rotation_rows(ctx, err);
	if (!rows || rotate_rows(ctx, rows, false, fkey, format, flags, rot, &refused, &nrefused, first_why,
	                         sizeof(first_why), err) < 0)
		goto rollback;
	/* What a crashed rotate-password left: it is completed from this, so it follows the key. */
	pending = dbreg_registry_pending_rows(ctx, err);
	if (!pending || rotate_rows(ctx, pending, true, fkey, format, flags, rot, &refused, &nrefused, first_why,
	                            sizeof(first_why), err) < 0)
		goto rollback;
	if (nrefused) {
		name_list(refused, nrefused, list, sizeof(list));
		dbreg_fail(err, DBREG_ERR_FAILED,
		           "%zu stored password%s cannot be re-encrypted (%s): %s; nothing was written"
		           " (--skip-undecryptable leaves them as they are)",
		           nrefused, nrefused == 1 ? "" : "s", list, first_why);
		goto rollback;
	}
	if (to && !rot->dry_run && dbreg_registry_write_format(ctx, to, err) < 0)
		goto rollback;
	if (dbreg_registry_end(ctx, !rot->dry_run, err) < 0)
		goto out;
	if (to)
		dbreg_ctx_forget_profile(ctx);
	*ret = rot;
	rot = NULL;
	r = 0;
	goto out;
rollback:
	dbreg_registry_end(ctx, false, NULL);
out:
	clear_rows(rows);
	clear_rows(pending);
	for (size_t i = 0; i < nrefused; i++)
		free(refused[i]);
	free(refused);
	dbreg_rotation_free(rot);
	return r;
}
