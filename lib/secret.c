/* secret.c — keys, the keyring and the stored password format of SPEC §3 (libsodium). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* Reads a key file that only its owner may read: its one word, without the
 * white space around it (of any length), into locked memory.  Opened without
 * blocking and checked to be a regular file before a byte is read: a FIFO
 * must not hang us. */
static int read_key_file(const char *path, char **ret, struct dbreg_error *err)
{
	enum { MAX = 1024 };
	unsigned char chunk[512];
	char *buf, shown[256];
	size_t len = 0;
	size_t spaces = 0;   /* white space seen since the last word character, not yet kept */
	bool nul = false, toolong = false;
	struct stat st;
	ssize_t n;
	int fd;

	dbreg_printable(path, shown, sizeof(shown));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return dbreg_fail(err, DBREG_ERR_CONFIG, "DB_ENCRYPTION_KEY_FILE %s: %s", shown, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return dbreg_fail(err, DBREG_ERR_CONFIG, "DB_ENCRYPTION_KEY_FILE %s: not a regular file", shown);
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		close(fd);
		return dbreg_fail(err, DBREG_ERR_CONFIG,
		                  "DB_ENCRYPTION_KEY_FILE %s is accessible by group or others (mode %04o); run 'chmod 600 %s'",
		                  shown, (unsigned)(st.st_mode & 07777), shown);
	}
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

_public_ int dbreg_keyring_from_env(struct dbreg_keyring **ret, struct dbreg_error *err)
{
	const char *key = getenv("DB_ENCRYPTION_KEY");
	const char *file = getenv("DB_ENCRYPTION_KEY_FILE");
	const char *old = getenv("DB_ENCRYPTION_OLD_KEYS");
	struct dbreg_keyring *kr = NULL;
	int r;

	if (key && !*key)
		key = NULL;
	if (file && !*file)
		file = NULL;
	if (key && file)
		return dbreg_fail(err, DBREG_ERR_CONFIG,
		                  "both DB_ENCRYPTION_KEY and DB_ENCRYPTION_KEY_FILE are set; set only one");
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
			           "DB_ENCRYPTION_KEY: the key is not 32 bytes as 64 hex digits or base64; " KEY_HINT);
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

_public_ int dbreg_encrypt(const struct dbreg_keyring *kr, const char *password, size_t len,
                           char **ret_stored, struct dbreg_error *err)
{
	unsigned char blob[NONCE_LEN + DBREG_PASSWORD_MAX + TAG_LEN];
	unsigned long long clen;
	const struct key *k;
	char header[HEADER_LEN + 1];
	size_t b64len, total;
	char *out;

	if (sodium_ready(err) < 0)
		return -1;
	if (!kr || kr->n == 0)
		return dbreg_fail(err, DBREG_ERR_CONFIG, "no encryption key loaded");
	if (len > DBREG_PASSWORD_MAX)
		return dbreg_fail(err, DBREG_ERR_USAGE,
		                  "the password is %zu bytes; at most %d fit the registry", len, DBREG_PASSWORD_MAX);
	k = &kr->keys[0];
	memcpy(header, PREFIX, PREFIX_LEN);
	memcpy(header + PREFIX_LEN, k->id, DBREG_KEY_ID_LEN + 1);

	randombytes_buf(blob, NONCE_LEN);
	crypto_aead_xchacha20poly1305_ietf_encrypt(blob + NONCE_LEN, &clen, (const unsigned char *)password, len,
	                                           (const unsigned char *)header, HEADER_LEN, NULL, blob, k->bytes);
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

_public_ int dbreg_stored_key_id(const char *stored, char id[DBREG_KEY_ID_LEN + 1])
{
	if (!stored || strncmp(stored, PREFIX, PREFIX_LEN) != 0 || strlen(stored) < HEADER_LEN + 1 ||
	    stored[HEADER_LEN] != ':')
		return -1;
	for (size_t i = 0; i < DBREG_KEY_ID_LEN; i++) {
		char c = stored[PREFIX_LEN + i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return -1;
	}
	memcpy(id, stored + PREFIX_LEN, DBREG_KEY_ID_LEN);
	id[DBREG_KEY_ID_LEN] = '\0';
	return 0;
}

_public_ int dbreg_decrypt(const struct dbreg_keyring *kr, const char *stored, char **ret_password,
                           struct dbreg_error *err)
{
	unsigned char blob[DBREG_STORED_MAX];
	unsigned long long plen;
	const struct key *k;
	char id[DBREG_KEY_ID_LEN + 1];
	const char *b64, *end;
	size_t blen;
	char *out;

	if (sodium_ready(err) < 0)
		return -1;
	if (dbreg_stored_key_id(stored, id) < 0)
		return dbreg_fail(err, DBREG_ERR_FAILED, "the stored password is not in dbreg:v1 format");
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
	if (!out)
		return dbreg_fail_oom(err);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt((unsigned char *)out, &plen, NULL, blob + NONCE_LEN,
	                                               blen - NONCE_LEN, (const unsigned char *)stored, HEADER_LEN,
	                                               blob, k->bytes) != 0) {
		free(out);
		return dbreg_fail(err, DBREG_ERR_FAILED,
		                  "the stored password does not decrypt with key %s: wrong key or altered text", id);
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

/* ---- validate-config ---- */
int dbreg_key_file_read(const char *path, char **ret_text, struct dbreg_error *err)
{
	return read_key_file(path, ret_text, err);
}

void dbreg_key_text_free(char *text)
{
	if (text)
		sodium_free(text);  /* wipes before it frees */
}
