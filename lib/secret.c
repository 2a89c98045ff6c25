/* secret.c — keys, the keyring and the stored password formats of SPEC §3: dbreg's
 * (libsodium) and the platform's Fernet (libcrypto: libsodium has no AES-CBC or PBKDF2). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <sodium.h>

#include "internal.h"

#define PREFIX "dbreg:v1:"
#define PREFIX_LEN (sizeof(PREFIX) - 1)
#define HEADER_LEN (PREFIX_LEN + DBREG_KEY_ID_LEN)           /* dbreg:v1:<id> */
#define NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES
#define MAX_KEYS 16
#define KEY_HINT "create one with 'dbreg generate-key'"

struct key {
	unsigned char bytes[DBREG_KEY_BYTES];
	char id[DBREG_KEY_ID_LEN + 1];
};

struct dbreg_keyring {
	struct key *keys;  /* sodium_malloc'd: guarded, locked, wiped on free */
	int n;
};

static int sodium_ready(struct dbreg_error *err)
{
	if (sodium_init() < 0)
		return dbreg_fail(err, DBREG_ERR_INTERNAL, "libsodium failed to initialise");
	return 0;
}

/* Only the variant's alphabet (and '=' where it pads): libsodium 1.0.18's
 * decoder takes any byte from 0x80 up for the last letter of the alphabet, so
 * that an altered stored text would decrypt, or a key that is no base64 parse. */
static bool base64_text(const char *s, size_t len, int variant)
{
	bool urlsafe = variant == sodium_base64_VARIANT_URLSAFE || variant == sodium_base64_VARIANT_URLSAFE_NO_PADDING;
	bool padded = variant == sodium_base64_VARIANT_ORIGINAL || variant == sodium_base64_VARIANT_URLSAFE;

	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))
			continue;
		if (urlsafe ? (ch == '-' || ch == '_') : (ch == '+' || ch == '/'))
			continue;
		if (ch == '=' && padded)
			continue;
		return false;
	}
	return true;
}

_public_ void dbreg_secret_free(char *s)
{
	if (!s)
		return;
	sodium_memzero(s, strlen(s));
	free(s);
}

_public_ void dbreg_key_id(const unsigned char key[DBREG_KEY_BYTES], char id[DBREG_KEY_ID_LEN + 1])
{
	unsigned char h[crypto_generichash_BYTES];
	char hex[2 * crypto_generichash_BYTES + 1];

	crypto_generichash(h, sizeof(h), key, DBREG_KEY_BYTES, NULL, 0);
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	memcpy(id, hex, DBREG_KEY_ID_LEN);
	id[DBREG_KEY_ID_LEN] = '\0';
}

_public_ int dbreg_key_parse(const char *text, unsigned char key[DBREG_KEY_BYTES], struct dbreg_error *err)
{
	static const int variants[] = {
		sodium_base64_VARIANT_ORIGINAL, sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
		sodium_base64_VARIANT_URLSAFE, sodium_base64_VARIANT_URLSAFE_NO_PADDING,
	};
	unsigned char buf[DBREG_KEY_BYTES];
	const char *end;
	size_t len, bin_len;

	if (sodium_ready(err) < 0)
		return -1;
	if (!text)
		return dbreg_fail(err, DBREG_ERR_CONFIG, "no key given");
	while (isspace((unsigned char)*text))
		text++;
	len = strlen(text);
	while (len > 0 && isspace((unsigned char)text[len - 1]))
		len--;
	if (len == 0)
		return dbreg_fail(err, DBREG_ERR_CONFIG, "the key is empty; " KEY_HINT);

	if (len == 2 * DBREG_KEY_BYTES &&
	    sodium_hex2bin(buf, sizeof(buf), text, len, NULL, &bin_len, &end) == 0 &&
	    bin_len == DBREG_KEY_BYTES && end == text + len)
		goto ok;
	for (size_t i = 0; i < ELEMENTSOF(variants); i++)
		if (base64_text(text, len, variants[i]) &&
		    sodium_base642bin(buf, sizeof(buf), text, len, NULL, &bin_len, &end, variants[i]) == 0 &&
		    bin_len == DBREG_KEY_BYTES && end == text + len)
			goto ok;
	sodium_memzero(buf, sizeof(buf));
	return dbreg_fail(err, DBREG_ERR_CONFIG,
	                  "the key is not 32 bytes as 64 hex digits or base64; " KEY_HINT);
ok:
	memcpy(key, buf, DBREG_KEY_BYTES);
	sodium_memzero(buf, sizeof(buf));
	return 0;
}

_public_ int dbreg_key_generate(char **ret_text, struct dbreg_error *err)
{
	unsigned char key[DBREG_KEY_BYTES];
	size_t n = sodium_base64_ENCODED_LEN(DBREG_KEY_BYTES, sodium_base64_VARIANT_ORIGINAL);
	char *text;

	if (sodium_ready(err) < 0)
		return -1;
	text = malloc(n);
	if (!text)
		return dbreg_fail_oom(err);
	randombytes_buf(key, sizeof(key));
	sodium_bin2base64(text, n, key, sizeof(key), sodium_base64_VARIANT_ORIGINAL);
	sodium_memzero(key, sizeof(key));
	*ret_text = text;
	return 0;
}

_public_ int dbreg_keyring_new(struct dbreg_keyring **ret, struct dbreg_error *err)
{
	struct dbreg_keyring *kr;

	if (sodium_ready(err) < 0)
		return -1;
	kr = calloc(1, sizeof(*kr));
	if (!kr)
		return dbreg_fail_oom(err);
	kr->keys = sodium_allocarray(MAX_KEYS, sizeof(struct key));
	if (!kr->keys) {
		free(kr);
		return dbreg_fail_oom(err);
	}
	*ret = kr;
	return 0;
}

_public_ void dbreg_keyring_free(struct dbreg_keyring *kr)
{
	if (!kr)
		return;
	sodium_free(kr->keys);  /* wipes before it frees */
	free(kr);
}

const char *dbreg_keyring_current_id(const struct dbreg_keyring *kr)
{
	return kr && kr->n > 0 ? kr->keys[0].id : NULL;
}

int dbreg_keyring_count(const struct dbreg_keyring *kr)
{
	return kr ? kr->n : 0;
}

_public_ int dbreg_keyring_add(struct dbreg_keyring *kr, const unsigned char key[DBREG_KEY_BYTES],
                               struct dbreg_error *err)
{
	struct key *k;

	if (kr->n >= MAX_KEYS)
		return dbreg_fail(err, DBREG_ERR_CONFIG, "too many keys (at most %d)", MAX_KEYS);
	k = &kr->keys[kr->n];
	memcpy(k->bytes, key, DBREG_KEY_BYTES);
	dbreg_key_id(key, k->id);
	kr->n++;
	return 0;
}

_public_ int dbreg_keyring_add_text(struct dbreg_keyring *kr, const char *text, struct dbreg_error *err)
{
	unsigned char key[DBREG_KEY_BYTES];
	int r;

	if (dbreg_key_parse(text, key, err) < 0)
		return -1;
	r = dbreg_keyring_add(kr, key, err);
	sodium_memzero(key, sizeof(key));
	return r;
}

/* Opens a file of secrets (var names it in messages, shown is its printable
 * path): without blocking, and only a regular file that group and others can
 * neither read nor write, checked before a byte is read: a FIFO must not hang us. */
static int open_private_file(const char *var, const char *path, const char *shown, struct dbreg_error *err)
{
	struct stat st;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return dbreg_fail(err, DBREG_ERR_CONFIG, "%s %s: %s", var, shown, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return dbreg_fail(err, DBREG_ERR_CONFIG, "%s %s: not a regular file", var, shown);
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		close(fd);
		return dbreg_fail(err, DBREG_ERR_CONFIG,
		                  "%s %s is accessible by group or others (mode %04o); run 'chmod 600 %s'",
		                  var, shown, (unsigned)(st.st_mode & 07777), shown);
	}
	return fd;
}

/* Reads a key file that only its owner may read: its one word, without the
 * white space around it (of any length), into locked memory. */
static int read_key_file(const char *path, char **ret, struct dbreg_error *err)
{
	enum { MAX = 1024 };
	unsigned char chunk[512];
	char *buf, shown[256];
	size_t len = 0;
	size_t spaces = 0;   /* white space seen since the last word character, not yet kept */
	bool nul = false, toolong = false;
	ssize_t n;
	int fd;

	dbreg_printable(path, shown, sizeof(shown));
	fd = open_private_file("DB_ENCRYPTION_KEY_FILE", path, shown, err);
	if (fd < 0)
		return -1;
	buf = sodium_malloc(MAX + 1);
	if (!buf) {
		close(fd);
		return dbreg_fail_oom(err);
	}
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			sodium_memzero(chunk, sizeof(chunk));
			close(fd);
			sodium_free(buf);
			return dbreg_fail(err, DBREG_ERR_CONFIG, "DB_ENCRYPTION_KEY_FILE %s: %s", shown, strerror(errno));
		}
		for (ssize_t i = 0; i < n; i++) {
			unsigned char ch = chunk[i];

			if (ch == '\0') {
				nul = true;
			} else if (isspace(ch)) {
				spaces += len > 0;  /* leading white space is dropped at once */
			} else if (len + spaces + 1 > MAX) {
				toolong = true;
			} else {
				/* White space inside is kept (the key then does not parse); around it, never. */
				for (; spaces > 0; spaces--)
					buf[len++] = ' ';
				buf[len++] = (char)ch;
			}
		}
	}
	sodium_memzero(chunk, sizeof(chunk));
	close(fd);
	buf[len] = '\0';
	if (nul || toolong) {
		sodium_free(buf);
		return dbreg_fail(err, DBREG_ERR_CONFIG, "DB_ENCRYPTION_KEY_FILE %s: %s", shown,
		                  nul ? "the file holds a NUL byte; it must hold the key alone"
		                      : "the file is too long to hold one key");
	}
	*ret = buf;
	return 0;
}

#define OLD_KEYS_MAX (MAX_KEYS - 1)

int dbreg_keyring_add_list(struct dbreg_keyring *kr, const char *list, size_t *ret_bad, size_t max_bad,
                           size_t *ret_nbad, struct dbreg_error *err)
{
	size_t nbad = 0;
	size_t len = strlen(list), count = 0, item = 0;
	const char *p = list;
	char *tok;
	int r = 0;

	/* Count first: a long list is one mistake, not key 16 being malformed. */
	for (const char *q = list; ; q++) {
		if (*q == ',' || !*q) {
			const char *start = q;

			while (start > list && start[-1] != ',')
				start--;
			while (start < q && isspace((unsigned char)*start))
				start++;
			count += start < q;
		}
		if (!*q)
			break;
	}
	if (count > OLD_KEYS_MAX)
		return dbreg_fail(err, DBREG_ERR_CONFIG, "DB_ENCRYPTION_OLD_KEYS: too many old keys (%zu; at most %d)", count,
		                  OLD_KEYS_MAX);
	/* Each item in locked memory: the list is key material. */
	tok = sodium_malloc(len + 1);
	if (!tok)
		return dbreg_fail_oom(err);
	while (r == 0) {
		size_t n = strcspn(p, ",");

		item++;  /* counted from 1, empty items too, as a person counts them */
		memcpy(tok, p, n);
		tok[n] = '\0';
		if (tok[strspn(tok, " \t\r\n\v\f")] != '\0' && dbreg_keyring_add_text(kr, tok, err) < 0) {
			if (err && err->kind == DBREG_ERR_INTERNAL) {
				r = -1;
			} else {
				dbreg_fail(err, DBREG_ERR_CONFIG,
				           "DB_ENCRYPTION_OLD_KEYS: item %zu is not 32 bytes as 64 hex digits or base64", item);
				if (ret_bad && nbad < max_bad)
					ret_bad[nbad] = item;
				nbad++;
				/* With somewhere to list them, every bad item; else the first. */
				if (!ret_bad)
					r = -1;
			}
		}
		if (!p[n])
			break;
		p += n + 1;
	}
	if (ret_nbad)
		*ret_nbad = nbad;
	if (nbad)
		r = -1;
	sodium_memzero(tok, len + 1);
	sodium_free(tok);
	return r;
}

/* A secret given as a variable or as a file named by another, never both; an
 * empty variable counts as unset.  Both NULL when neither is set. */
static int env_one_of(const char *var, const char *file_var, const char **ret_value, const char **ret_file,
                      struct dbreg_error *err)
{
	const char *value = getenv(var), *file = getenv(file_var);

	*ret_value = value && *value ? value : NULL;
	*ret_file = file && *file ? file : NULL;
	if (*ret_value && *ret_file)
		return dbreg_fail(err, DBREG_ERR_CONFIG, "both %s and %s are set; set only one", var, file_var);
	return 0;
}

_public_ int dbreg_keyring_from_env(struct dbreg_keyring **ret, struct dbreg_error *err)
{
	const char *key, *file;
	const char *old = getenv("DB_ENCRYPTION_OLD_KEYS");
	struct dbreg_keyring *kr = NULL;
	int r;

	if (env_one_of("DB_ENCRYPTION_KEY", "DB_ENCRYPTION_KEY_FILE", &key, &file, err) < 0)
		return -1;
	if (!key && !file)
		return dbreg_fail(err, DBREG_ERR_CONFIG,
		                  "no encryption key: set DB_ENCRYPTION_KEY or DB_ENCRYPTION_KEY_FILE (" KEY_HINT ")");
	if (dbreg_keyring_new(&kr, err) < 0)
		return -1;
	if (file) {
		char *text = NULL;

		r = read_key_file(file, &text, err);
		if (r == 0) {
			r = dbreg_keyring_add_text(kr, text, err);
			sodium_free(text);
			if (r < 0)
				dbreg_fail(err, DBREG_ERR_CONFIG, "DB_ENCRYPTION_KEY_FILE %s: the key is not 32 bytes as 64 hex digits or base64; " KEY_HINT, file);
		}
	} else {
		r = dbreg_keyring_add_text(kr, key, err);
		if (r < 0)
			dbreg_fail(err, DBREG_ERR_CONFIG,
			           "DB_ENCRYPTION_KEY: the key is not 32 bytes as 64 hex digits or base64; " KEY_HINT
			           " (the platform's Fernet passphrase, which it keeps under this name too, goes in"
			           " DB_FERNET_PASSPHRASE)");
	}
	if (r == 0 && old && *old)
		r = dbreg_keyring_add_list(kr, old, NULL, 0, NULL, err);
	if (r < 0) {
		dbreg_keyring_free(kr);
		return -1;
	}
	*ret = kr;
	return 0;
}

bool dbreg_keys_configured(void)
{
	static const char *const vars[] = { "DB_ENCRYPTION_KEY", "DB_ENCRYPTION_KEY_FILE", "DB_ENCRYPTION_OLD_KEYS" };

	for (size_t i = 0; i < ELEMENTSOF(vars); i++) {
		const char *v = getenv(vars[i]);

		if (v && *v)
			return true;
	}
	return false;
}

static const struct key *keyring_find(const struct dbreg_keyring *kr, const char *id)
{
	for (int i = 0; kr && i < kr->n; i++)
		if (strcmp(kr->keys[i].id, id) == 0)
			return &kr->keys[i];
	return NULL;
}

/* "dbreg:vN:" */
static void version_prefix(int version, char prefix[PREFIX_LEN + 1])
{
	snprintf(prefix, PREFIX_LEN + 1, "dbreg:v%d:", version);
}

/* v2's associated data after its header: NUL id NUL host NUL port NUL database NUL user NUL
 * ssl_mode (a NULL field is empty, no trailing NUL); malloc'd into *ret, its length returned. */
static ssize_t binding_tail(const struct dbreg_binding *b, unsigned char **ret)
{
	const char *f[6] = { b->id, b->host, b->port, b->database, b->user, b->ssl_mode };
	size_t n = 0, o = 0;
	unsigned char *t;

	for (size_t i = 0; i < ELEMENTSOF(f); i++)
		n += 1 + (f[i] ? strlen(f[i]) : 0);
	if (!(t = malloc(n)))
		return -1;
	for (size_t i = 0; i < ELEMENTSOF(f); i++) {
		size_t len = f[i] ? strlen(f[i]) : 0;

		t[o++] = '\0';
		memcpy(t + o, f[i] ? f[i] : "", len);
		o += len;
	}
	*ret = t;
	return (ssize_t)o;
}

/* The stored text "dbreg:vN:<id>:<base64url(nonce || ciphertext || tag)>" of password under
 * key k, the associated data being the header and then tail; nonce NULL: a random one. */
static int seal(const struct key *k, int version, const unsigned char *tail, size_t tail_len,
                const unsigned char *nonce, const char *password, size_t len, char **ret_stored, struct dbreg_error *err)
{
	unsigned char blob[NONCE_LEN + DBREG_PASSWORD_MAX + TAG_LEN], *ad;
	unsigned long long clen;
	char header[HEADER_LEN + 1];
	size_t b64len, total;
	char *out;

	if (len > DBREG_PASSWORD_MAX)
		return dbreg_fail(err, DBREG_ERR_USAGE,
		                  "the password is %zu bytes; at most %d fit the registry", len, DBREG_PASSWORD_MAX);
	version_prefix(version, header);
	memcpy(header + PREFIX_LEN, k->id, DBREG_KEY_ID_LEN + 1);
	if (!(ad = malloc(HEADER_LEN + tail_len)))
		return dbreg_fail_oom(err);
	memcpy(ad, header, HEADER_LEN);
	if (tail_len)
		memcpy(ad + HEADER_LEN, tail, tail_len);
	if (nonce)
		memcpy(blob, nonce, NONCE_LEN);
	else
		randombytes_buf(blob, NONCE_LEN);
	crypto_aead_xchacha20poly1305_ietf_encrypt(blob + NONCE_LEN, &clen, (const unsigned char *)password, len, ad,
	                                           HEADER_LEN + tail_len, NULL, blob, k->bytes);
	free(ad);
	b64len = sodium_base64_ENCODED_LEN(NONCE_LEN + clen, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	total = HEADER_LEN + 1 + b64len;  /* b64len counts the NUL */
	out = malloc(total);
	if (!out)
		return dbreg_fail_oom(err);
	memcpy(out, header, HEADER_LEN);
	out[HEADER_LEN] = ':';
	sodium_bin2base64(out + HEADER_LEN + 1, b64len, blob, NONCE_LEN + clen,
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	*ret_stored = out;
	return 0;
}

_public_ int dbreg_encrypt(const struct dbreg_keyring *kr, const char *password, size_t len,
                           char **ret_stored, struct dbreg_error *err)
{
	if (sodium_ready(err) < 0)
		return -1;
	if (!kr || kr->n == 0)
		return dbreg_fail(err, DBREG_ERR_CONFIG, "no encryption key loaded");
	return seal(&kr->keys[0], 1, NULL, 0, NULL, password, len, ret_stored, err);
}

int dbreg_encrypt_v2(const struct dbreg_keyring *kr, const struct dbreg_binding *b, const unsigned char *nonce,
                     const char *password, size_t len, char **ret_stored, struct dbreg_error *err)
{
	unsigned char *tail;
	ssize_t n;
	int r;

	if (sodium_ready(err) < 0)
		return -1;
	if (!kr || kr->n == 0)
		return dbreg_fail(err, DBREG_ERR_CONFIG, "no encryption key loaded");
	if ((n = binding_tail(b, &tail)) < 0)
		return dbreg_fail_oom(err);
	r = seal(&kr->keys[0], 2, tail, (size_t)n, nonce, password, len, ret_stored, err);
	free(tail);
	return r;
}

/* The version (1, 2) and key id of dbreg's stored text; -1 when it is not dbreg's. */
static int stored_header(const char *stored, char id[DBREG_KEY_ID_LEN + 1])
{
	int version;

	if (!stored || strncmp(stored, "dbreg:v", 7) != 0 || (stored[7] != '1' && stored[7] != '2') ||
	    stored[8] != ':' || strlen(stored) < HEADER_LEN + 1 || stored[HEADER_LEN] != ':')
		return -1;
	version = stored[7] - '0';
	for (size_t i = 0; i < DBREG_KEY_ID_LEN; i++) {
		char c = stored[PREFIX_LEN + i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return -1;
	}
	memcpy(id, stored + PREFIX_LEN, DBREG_KEY_ID_LEN);
	id[DBREG_KEY_ID_LEN] = '\0';
	return version;
}

_public_ int dbreg_stored_key_id(const char *stored, char id[DBREG_KEY_ID_LEN + 1])
{
	char found[DBREG_KEY_ID_LEN + 1];

	/* dbreg:v1 alone, as documented: v2 is read through dbreg_stored_version. */
	if (stored_header(stored, found) != 1)
		return -1;
	memcpy(id, found, sizeof(found));
	return 0;
}

int dbreg_stored_version(const char *stored, char id[DBREG_KEY_ID_LEN + 1])
{
	return stored_header(stored, id);
}

int dbreg_uuid_v4(char out[37], struct dbreg_error *err)
{
	unsigned char u[16];

	if (sodium_ready(err) < 0)
		return -1;
	randombytes_buf(u, sizeof(u));
	u[6] = (u[6] & 0x0f) | 0x40;  /* version 4 */
	u[8] = (u[8] & 0x3f) | 0x80;  /* RFC 4122 variant */
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2],
	         u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
	return 0;
}

/* Opens dbreg's stored text of this version; the associated data is its header and tail.
 * mismatch: what a failed authentication means. */
static int unseal(const struct dbreg_keyring *kr, const char *stored, int version, const unsigned char *tail,
                  size_t tail_len, const char *mismatch, char **ret_password, struct dbreg_error *err)
{
	unsigned char blob[DBREG_STORED_MAX], *ad;
	unsigned long long plen;
	const struct key *k;
	char id[DBREG_KEY_ID_LEN + 1];
	const char *b64, *end;
	size_t blen;
	char *out;
	int bad;

	if (stored_header(stored, id) != version)
		return dbreg_fail(err, DBREG_ERR_FAILED, "the stored password is not in dbreg:v%d format", version);
	k = keyring_find(kr, id);
	if (!k)
		return dbreg_fail(err, DBREG_ERR_CONFIG,
		                  "the stored password was encrypted with key %s, which is neither the current key nor in DB_ENCRYPTION_OLD_KEYS",
		                  id);
	b64 = stored + HEADER_LEN + 1;
	if (!base64_text(b64, strlen(b64), sodium_base64_VARIANT_URLSAFE_NO_PADDING) ||
	    sodium_base642bin(blob, sizeof(blob), b64, strlen(b64), NULL, &blen, &end,
	                      sodium_base64_VARIANT_URLSAFE_NO_PADDING) < 0 ||
	    *end != '\0' || blen < NONCE_LEN + TAG_LEN)
		return dbreg_fail(err, DBREG_ERR_FAILED, "the stored password is damaged (bad base64 or too short)");
	out = malloc(blen - NONCE_LEN - TAG_LEN + 1);
	ad = malloc(HEADER_LEN + tail_len);
	if (!out || !ad) {
		free(out);
		free(ad);
		return dbreg_fail_oom(err);
	}
	memcpy(ad, stored, HEADER_LEN);
	if (tail_len)
		memcpy(ad + HEADER_LEN, tail, tail_len);
	bad = crypto_aead_xchacha20poly1305_ietf_decrypt((unsigned char *)out, &plen, NULL, blob + NONCE_LEN,
	                                                 blen - NONCE_LEN, ad, HEADER_LEN + tail_len, blob, k->bytes);
	free(ad);
	if (bad) {
		free(out);
		return dbreg_fail(err, DBREG_ERR_FAILED, mismatch, id);
	}
	out[plen] = '\0';
	if (memchr(out, '\0', plen)) {
		sodium_memzero(out, plen);
		free(out);
		return dbreg_fail(err, DBREG_ERR_FAILED, "the stored password contains a NUL byte");
	}
	*ret_password = out;
	return 0;
}

_public_ int dbreg_decrypt(const struct dbreg_keyring *kr, const char *stored, char **ret_password,
                           struct dbreg_error *err)
{
	if (sodium_ready(err) < 0)
		return -1;
	return unseal(kr, stored, 1, NULL, 0, "the stored password does not decrypt with key %s: wrong key or altered text",
	              ret_password, err);
}

int dbreg_decrypt_v2(const struct dbreg_keyring *kr, const struct dbreg_binding *b, const char *stored,
                     char **ret_password, struct dbreg_error *err)
{
	unsigned char *tail;
	ssize_t n;
	int r;

	if (sodium_ready(err) < 0)
		return -1;
	if ((n = binding_tail(b, &tail)) < 0)
		return dbreg_fail_oom(err);
	/* The key id matched, so the key is right: what fails is the binding (or the text). */
	r = unseal(kr, stored, 2, tail, (size_t)n,
	           "the stored password (key %s) does not belong to this connection's target"
	           " (was it copied or was the row changed without dbreg?)",
	           ret_password, err);
	free(tail);
	return r;
}

/* ---- Fernet: the platform's format (PLATFORM-REGISTRY.md) ---- */

#define FERNET_SALT "NeoMultiTenant2024"
#define FERNET_ITERATIONS 100000
#define FERNET_VERSION 0x80
#define FERNET_IV_LEN 16
#define FERNET_BLOCK 16
#define FERNET_KEY_HALF 16                          /* signing key, then encryption key */
#define FERNET_MAC_LEN 32
#define FERNET_HEAD_LEN (1 + 8 + FERNET_IV_LEN)    /* version, timestamp, IV */
#define FERNET_MIN_LEN (FERNET_HEAD_LEN + FERNET_BLOCK + FERNET_MAC_LEN)
/* The token of an n-byte password, in bytes and in characters: PKCS#7 always
 * adds 1..16 bytes, and the base64 is padded. */
#define FERNET_BIN_LEN(n) (FERNET_HEAD_LEN + ((n) / FERNET_BLOCK + 1) * FERNET_BLOCK + FERNET_MAC_LEN)
#define FERNET_TEXT_LEN(n) ((FERNET_BIN_LEN(n) + 2) / 3 * 4)
/* 0x80 and the top of a timestamp below 2^36, as the platform tells its tokens. */
#define FERNET_PREFIX "gAAAAA"
#define PASSPHRASE_MAX 1024

_Static_assert(FERNET_TEXT_LEN(DBREG_FERNET_PASSWORD_MAX) <= DBREG_STORED_MAX,
               "the longest Fernet password's token must fit varchar(256)");
_Static_assert(FERNET_TEXT_LEN(DBREG_FERNET_PASSWORD_MAX + 1) > DBREG_STORED_MAX,
               "DBREG_FERNET_PASSWORD_MAX must be the longest password that fits");

/* libcrypto's error queue is per thread and shared with libpq's TLS: leave it empty. */
static int crypto_failed(struct dbreg_error *err, const char *what)
{
	ERR_clear_error();
	return dbreg_fail(err, DBREG_ERR_INTERNAL, "libcrypto failed (%s)", what);
}

int dbreg_fernet_derive(const char *passphrase, size_t len, unsigned char key[DBREG_FERNET_KEY_BYTES],
                        struct dbreg_error *err)
{
	unsigned char out[DBREG_FERNET_KEY_BYTES];

	if (len > INT_MAX)
		return dbreg_fail(err, DBREG_ERR_USAGE, "the passphrase is too long");
	if (PKCS5_PBKDF2_HMAC(len ? passphrase : "", (int)len, (const unsigned char *)FERNET_SALT,
	                      sizeof(FERNET_SALT) - 1, FERNET_ITERATIONS, EVP_sha256(), sizeof(out), out) != 1) {
		sodium_memzero(out, sizeof(out));
		return crypto_failed(err, "PBKDF2-HMAC-SHA256");
	}
	memcpy(key, out, sizeof(out));
	sodium_memzero(out, sizeof(out));
	return 0;
}

bool dbreg_is_fernet(const char *stored)
{
	return stored && strncmp(stored, FERNET_PREFIX, sizeof(FERNET_PREFIX) - 1) == 0;
}

static int fernet_mac(const unsigned char key[DBREG_FERNET_KEY_BYTES], const unsigned char *data, size_t n,
                      unsigned char mac[FERNET_MAC_LEN], struct dbreg_error *err)
{
	size_t got = 0;

	if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, FERNET_KEY_HALF, data, n, mac, FERNET_MAC_LEN, &got) ||
	    got != FERNET_MAC_LEN)
		return crypto_failed(err, "HMAC-SHA256");
	return 0;
}

/* AES-128-CBC over whole blocks with OpenSSL's padding off: PKCS#7 is added
 * and checked here, where it can be seen to be strict.  out has room for n
 * bytes and a block more (what EVP_CipherUpdate may write, by its manual). */
static int fernet_cbc(int enc, const unsigned char key[DBREG_FERNET_KEY_BYTES], const unsigned char iv[FERNET_IV_LEN],
                      const unsigned char *in, size_t n, unsigned char *out, struct dbreg_error *err)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n1 = 0, n2 = 0;
	bool ok;

	if (!c)
		return crypto_failed(err, "AES-128-CBC");
	ok = n <= INT_MAX && n % FERNET_BLOCK == 0 &&
	     EVP_CipherInit_ex(c, EVP_aes_128_cbc(), NULL, key + FERNET_KEY_HALF, iv, enc) == 1 &&
	     EVP_CIPHER_CTX_set_padding(c, 0) == 1 &&
	     EVP_CipherUpdate(c, out, &n1, in, (int)n) == 1 &&
	     EVP_CipherFinal_ex(c, out + n1, &n2) == 1 &&
	     (size_t)n1 + (size_t)n2 == n;
	EVP_CIPHER_CTX_free(c);  /* cleanses the key schedule */
	return ok ? 0 : crypto_failed(err, "AES-128-CBC");
}

int dbreg_fernet_encrypt_at(const unsigned char key[DBREG_FERNET_KEY_BYTES], const char *password, size_t len,
                            uint64_t timestamp, const unsigned char iv[FERNET_IV_LEN], char **ret_token,
                            struct dbreg_error *err)
{
	unsigned char plain[(DBREG_FERNET_PASSWORD_MAX / FERNET_BLOCK + 1) * FERNET_BLOCK];
	unsigned char blob[FERNET_BIN_LEN(DBREG_FERNET_PASSWORD_MAX) + FERNET_BLOCK];
	size_t padded, n, tlen;
	unsigned char pad;
	char *out;
	int r = -1;

	if (sodium_ready(err) < 0)
		return -1;
	if (len > DBREG_FERNET_PASSWORD_MAX)
		return dbreg_fail(err, DBREG_ERR_USAGE, "the password is %zu bytes; at most %d fit the registry as a Fernet token",
		                  len, DBREG_FERNET_PASSWORD_MAX);
	if (len && memchr(password, '\0', len))
		return dbreg_fail(err, DBREG_ERR_USAGE, "the password contains a NUL byte");
	pad = (unsigned char)(FERNET_BLOCK - len % FERNET_BLOCK);
	padded = len + pad;
	if (len)
		memcpy(plain, password, len);
	memset(plain + len, pad, pad);
	blob[0] = FERNET_VERSION;
	for (int i = 0; i < 8; i++)
		blob[1 + i] = (unsigned char)(timestamp >> (56 - 8 * i));
	memcpy(blob + 9, iv, FERNET_IV_LEN);
	n = FERNET_HEAD_LEN + padded + FERNET_MAC_LEN;
	if (fernet_cbc(1, key, iv, plain, padded, blob + FERNET_HEAD_LEN, err) == 0 &&
	    fernet_mac(key, blob, FERNET_HEAD_LEN + padded, blob + FERNET_HEAD_LEN + padded, err) == 0) {
		tlen = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE);
		out = malloc(tlen);
		if (!out) {
			dbreg_fail_oom(err);
		} else {
			sodium_bin2base64(out, tlen, blob, n, sodium_base64_VARIANT_URLSAFE);
			*ret_token = out;
			r = 0;
		}
	}
	sodium_memzero(plain, sizeof(plain));
	sodium_memzero(blob, sizeof(blob));
	return r;
}

int dbreg_fernet_encrypt(const unsigned char key[DBREG_FERNET_KEY_BYTES], const char *password, size_t len,
                         char **ret_token, struct dbreg_error *err)
{
	unsigned char iv[FERNET_IV_LEN];
	time_t now;

	if (sodium_ready(err) < 0)
		return -1;
	now = time(NULL);
	if (now == (time_t)-1)
		return dbreg_fail(err, DBREG_ERR_INTERNAL, "the clock cannot be read");
	randombytes_buf(iv, sizeof(iv));
	return dbreg_fernet_encrypt_at(key, password, len, (uint64_t)now, iv, ret_token, err);
}

/* Strictly PKCS#7: 1..16, and every padding byte the same.  Its answer is no
 * oracle: only a token that passed the HMAC gets here. */
static size_t pkcs7_unpadded(const unsigned char *p, size_t n)
{
	unsigned char pad = p[n - 1];

	if (pad == 0 || pad > FERNET_BLOCK)
		return SIZE_MAX;
	for (size_t i = n - pad; i < n; i++)
		if (p[i] != pad)
			return SIZE_MAX;
	return n - pad;
}

int dbreg_fernet_decrypt(const unsigned char key[DBREG_FERNET_KEY_BYTES], const char *token, char **ret_password,
                         struct dbreg_error *err)
{
	unsigned char mac[FERNET_MAC_LEN];
	unsigned char *blob;
	char *out = NULL;
	size_t tlen, cap, blen = 0, ctlen = 0, plen;
	const char *end;
	int r = -1;

	if (sodium_ready(err) < 0)
		return -1;
	tlen = token ? strlen(token) : 0;
	cap = tlen / 4 * 3 + 3;
	blob = malloc(cap);
	if (!blob)
		return dbreg_fail_oom(err);
	if (!token || !base64_text(token, tlen, sodium_base64_VARIANT_URLSAFE) ||
	    sodium_base642bin(blob, cap, token, tlen, NULL, &blen, &end, sodium_base64_VARIANT_URLSAFE) < 0 ||
	    end != token + tlen) {
		dbreg_fail(err, DBREG_ERR_FAILED, "the stored password is not a Fernet token (bad base64)");
		goto done;
	}
	if (blen < FERNET_MIN_LEN) {
		dbreg_fail(err, DBREG_ERR_FAILED, "the stored password is not a Fernet token (too short)");
		goto done;
	}
	if (blob[0] != FERNET_VERSION) {
		dbreg_fail(err, DBREG_ERR_FAILED, "the stored password is not a Fernet token (version 0x%02x, not 0x80)",
		           blob[0]);
		goto done;
	}
	ctlen = blen - FERNET_HEAD_LEN - FERNET_MAC_LEN;
	if (ctlen % FERNET_BLOCK != 0) {
		dbreg_fail(err, DBREG_ERR_FAILED,
		           "the stored password is not a Fernet token (its ciphertext is not whole blocks)");
		goto done;
	}
	if (fernet_mac(key, blob, FERNET_HEAD_LEN + ctlen, mac, err) < 0)
		goto done;
	if (CRYPTO_memcmp(mac, blob + FERNET_HEAD_LEN + ctlen, FERNET_MAC_LEN) != 0) {
		dbreg_fail(err, DBREG_ERR_FAILED,
		           "the Fernet token does not decrypt with the passphrase: wrong passphrase or altered token");
		goto done;
	}
	out = malloc(ctlen + FERNET_BLOCK);
	if (!out) {
		dbreg_fail_oom(err);
		goto done;
	}
	if (fernet_cbc(0, key, blob + 9, blob + FERNET_HEAD_LEN, ctlen, (unsigned char *)out, err) < 0)
		goto done;
	plen = pkcs7_unpadded((unsigned char *)out, ctlen);
	if (plen == SIZE_MAX) {
		dbreg_fail(err, DBREG_ERR_FAILED,
		           "the Fernet token has bad padding: signed with the passphrase, but not by Fernet");
		goto done;
	}
	if (memchr(out, '\0', plen)) {
		dbreg_fail(err, DBREG_ERR_FAILED, "the stored password contains a NUL byte");
		goto done;
	}
	/* dbreg_secret_free wipes up to the NUL: nothing of the padding is left after it. */
	sodium_memzero(out + plen, ctlen + FERNET_BLOCK - plen);
	*ret_password = out;
	out = NULL;
	r = 0;
done:
	if (out) {
		sodium_memzero(out, ctlen + FERNET_BLOCK);
		free(out);
	}
	sodium_memzero(blob, cap);
	free(blob);
	sodium_memzero(mac, sizeof(mac));
	return r;
}

/* The passphrase file, read as a key file is (private, regular, no blocking)
 * into locked memory: its bytes as they are, less exactly one trailing "\n"
 * or "\r\n" (an editor's), since white space may be part of a passphrase. */
static int read_passphrase_file(const char *path, char **ret, size_t *ret_len, struct dbreg_error *err)
{
	enum { CAP = PASSPHRASE_MAX + 3 };  /* the longest, "\r\n", and one byte to tell it is longer */
	char *buf, shown[256];
	const char *why = NULL;
	size_t len = 0;
	ssize_t n;
	int fd;

	dbreg_printable(path, shown, sizeof(shown));
	fd = open_private_file("DB_FERNET_PASSPHRASE_FILE", path, shown, err);
	if (fd < 0)
		return -1;
	buf = sodium_malloc(CAP);
	if (!buf) {
		close(fd);
		return dbreg_fail_oom(err);
	}
	while (len < CAP && (n = read(fd, buf + len, CAP - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			close(fd);
			sodium_free(buf);
			return dbreg_fail(err, DBREG_ERR_CONFIG, "DB_FERNET_PASSPHRASE_FILE %s: %s", shown, strerror(errno));
		}
		len += (size_t)n;
	}
	close(fd);
	if (len >= 2 && buf[len - 2] == '\r' && buf[len - 1] == '\n')
		len -= 2;
	else if (len >= 1 && buf[len - 1] == '\n')
		len--;
	if (len > PASSPHRASE_MAX)
		why = "the file is too long to hold one passphrase";
	else if (len == 0)
		why = "the file holds no passphrase";
	else if (memchr(buf, '\0', len))
		why = "the file holds a NUL byte; it must hold the passphrase alone";
	if (why) {
		sodium_free(buf);  /* wipes before it frees */
		return dbreg_fail(err, DBREG_ERR_CONFIG, "DB_FERNET_PASSPHRASE_FILE %s: %s", shown, why);
	}
	buf[len] = '\0';
	*ret = buf;
	*ret_len = len;
	return 0;
}

int dbreg_fernet_key_from_env(unsigned char key[DBREG_FERNET_KEY_BYTES], int *ret_have, struct dbreg_error *err)
{
	const char *pass, *file;
	char *text = NULL;
	size_t len = 0;
	int r;

	if (env_one_of("DB_FERNET_PASSPHRASE", "DB_FERNET_PASSPHRASE_FILE", &pass, &file, err) < 0)
		return -1;
	if (!pass && !file) {
		*ret_have = 0;
		return 0;
	}
	if (file) {
		if (read_passphrase_file(file, &text, &len, err) < 0)
			return -1;
		r = dbreg_fernet_derive(text, len, key, err);
		sodium_free(text);
	} else {
		r = dbreg_fernet_derive(pass, strlen(pass), key, err);
	}
	if (r == 0)
		*ret_have = 1;
	return r;
}

/* ---- validate-config ---- */
int dbreg_key_file_read(const char *path, char **ret_text, struct dbreg_error *err)
{
	return read_key_file(path, ret_text, err);
}

int dbreg_secret_file_read(const char *what, const char *path, bool private_only, enum dbreg_errkind kind,
                           size_t max, char **ret_text, size_t *ret_len, struct dbreg_error *err)
{
	char *buf = NULL, shown[256];
	size_t len = 0, cap = 4096;
	struct stat st;
	ssize_t n;
	int fd;

	if (sodium_ready(err) < 0)
		return -1;
	dbreg_printable(path, shown, sizeof(shown));
	if (private_only) {
		fd = open_private_file(what, path, shown, err);
		if (fd < 0)
			return -1;
	} else {
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (fd < 0)
			return dbreg_fail(err, kind, "%s %s: %s", what, shown, strerror(errno));
		if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
			close(fd);
			return dbreg_fail(err, kind, "%s %s: %s", what, shown, strerror(EISDIR));
		}
	}
	/* Locked memory that grows by copying: sodium_malloc has no realloc. */
	for (;;) {
		if (!buf || len == cap) {
			char *bigger;

			if (buf)
				cap *= 2;
			if (cap > max + 1)
				cap = max + 1;
			if (buf && len == cap) {
				sodium_free(buf);
				close(fd);
				return dbreg_fail(err, kind, "%s %s: longer than %zu bytes", what, shown, max);
			}
			bigger = sodium_malloc(cap + 1);
			if (!bigger) {
				sodium_free(buf);
				close(fd);
				return dbreg_fail_oom(err);
			}
			if (buf) {
				memcpy(bigger, buf, len);
				sodium_free(buf);  /* wipes */
			}
			buf = bigger;
		}
		n = read(fd, buf + len, cap - len);
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			sodium_free(buf);
			close(fd);
			return dbreg_fail(err, kind, "%s %s: %s", what, shown, strerror(errno));
		}
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	*ret_text = buf;
	if (ret_len)
		*ret_len = len;
	return 0;
}

void dbreg_key_text_free(char *text)
{
	if (text)
		sodium_free(text);  /* wipes before it frees */
}

int dbreg_stored_decrypt(const struct dbreg_keyring *kr, const unsigned char *fernet_key,
                         const struct dbreg_binding *b, const char *stored, char **ret_password,
                         struct dbreg_error *err)
{
	char id[DBREG_KEY_ID_LEN + 1];

	if (dbreg_is_fernet(stored)) {
		if (!fernet_key)
			return dbreg_fail(err, DBREG_ERR_CONFIG,
			                  "Fernet token; set DB_FERNET_PASSPHRASE (or DB_FERNET_PASSPHRASE_FILE) to read it");
		return dbreg_fernet_decrypt(fernet_key, stored, ret_password, err);
	}
	if (strncmp(stored, "dbreg:", 6) == 0) {
		if (!kr || kr->n == 0)
			return dbreg_fail(err, DBREG_ERR_CONFIG, "no encryption key: set DB_ENCRYPTION_KEY or DB_ENCRYPTION_KEY_FILE");
		if (dbreg_stored_version(stored, id) != 2)
			return dbreg_decrypt(kr, stored, ret_password, err);
		if (!b)
			return dbreg_fail(err, DBREG_ERR_INTERNAL, "a dbreg:v2 password is read only with its row");
		return dbreg_decrypt_v2(kr, b, stored, ret_password, err);
	}
	/* Never used as a password, never shown. */
	return dbreg_fail(err, DBREG_ERR_FAILED, "the stored password is in no known format");
}
