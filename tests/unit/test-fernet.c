/* test-fernet.c — the platform's Fernet format, against answers from an independent implementation. */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "internal.h"
#include "tap.h"

/*
 * The known answers come from Debian's python3-cryptography 38.0.4 (/usr/bin/python3),
 * which shares no code with ours:
 *
 *   import base64
 *   from cryptography.fernet import Fernet
 *   from cryptography.hazmat.primitives import hashes
 *   from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
 *   kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=b"NeoMultiTenant2024", iterations=100000)
 *   raw = kdf.derive(b"correct horse battery staple")          # KEY_HEX
 *   f = Fernet(base64.urlsafe_b64encode(raw))
 *   iv = bytes(range(16))
 *   for pw in [b"hunter2", b"", (b"0123456789abcdefghijklmnopqrstuvwxyz" * 4)[:127],
 *              "pässwörd-日本語-🔑".encode("utf-8")]:
 *       tok = f._encrypt_from_parts(pw, 1700000000, iv)        # encrypt_at_time, with a fixed IV
 *       assert f.decrypt(tok) == pw
 *
 * The tokens signed with the right key but wrong inside (bad padding, a NUL, version 0x81,
 * a ciphertext that is no whole number of blocks; TOK_PAD17X32 is b"fifteen bytes!!" + b"\x11" * 17)
 * were built with the same library's
 * primitives, AES-128-CBC without padding and HMAC-SHA256 with key[0..15]:
 *
 *   def token(plain_padded, version=0x80, ts=1700000000):
 *       e = Cipher(algorithms.AES(raw[16:]), modes.CBC(iv)).encryptor()
 *       ct = e.update(plain_padded) + e.finalize() if len(plain_padded) % 16 == 0 else plain_padded
 *       body = bytes([version]) + struct.pack(">Q", ts) + iv + ct
 *       h = hmac.HMAC(raw[:16], hashes.SHA256()); h.update(body)
 *       return base64.urlsafe_b64encode(body + h.finalize())
 *
 * SPEC_* is the test vector of the Fernet specification (github.com/fernet/spec, generate.json).
 */
#define PASSPHRASE "correct horse battery staple"
#define KEY_HEX "a4d054d2c88e05c470b893783c68130758619b9aee54969a36a0d06557f7109e"
#define TIME 1700000000
#define TOK_HUNTER2 "gAAAAABlU_EAAAECAwQFBgcICQoLDA0OD9KmKjCefGjv6zpkoNWvU7gqFIJWDObfgVYgwMpFNUraS8KZox_Sjz318F9Y0tjpGw=="
#define TOK_EMPTY "gAAAAABlU_EAAAECAwQFBgcICQoLDA0ODyYppyNlT7e9D8l5tCjeXN5X3cOVrZrQ2DrPB2J2QWLDlloI1Lyi4falPzu4aBfXow=="
#define TOK_127 \
	"gAAAAABlU_EAAAECAwQFBgcICQoLDA0ODx4WL8wbSgZglIbwbs0QsSTrJ8dIRzcDI1uDpYrKQvnbLdRKoqfmiR00jhxB_EMeeA4ct1IRAjChNI1A" \
	"zpI96ZRO_9X-1u29dtzvfHKnuOeSAHakFTGdFMdqOh74ORUpCPeZQg1EheVIGI4IcLFRpSxCjMNyM5y_fCpMEG6xBsUWVSStGuKhimRUXiWZn5Sz" \
	"yHDctUh5rZx37quJ0jxtThw="
#define PW_UTF8 "p\xc3\xa4ssw\xc3\xb6rd-\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e-\xf0\x9f\x94\x91"
#define TOK_UTF8 \
	"gAAAAABlU_EAAAECAwQFBgcICQoLDA0OD4GYS6iBVDmpeDxAv8pnhg4NR8PKJMJx3QSWqSfRcp80dV67jhz-4qRbTrOEc5qR6Il-gWaZHZakMdPHZhxDWi8="
#define TOK_PAD0 "gAAAAABlU_EAAAECAwQFBgcICQoLDA0OD00hCsx1P8llnpQDVPU_BxkevuxyH8l2udFtxFwYDRMG-yv14IFkzlO1EqcShsI28w=="
#define TOK_PAD17 "gAAAAABlU_EAAAECAwQFBgcICQoLDA0OD-5jihWzdVSPxnT0Aw3qgcNBNXE12nM5GJ8ob3ysFoP5-cwlDQ5f5E5fVYkA8e940g=="
#define TOK_PAD17X32 \
	"gAAAAABlU_EAAAECAwQFBgcICQoLDA0OD_NtFhL96ccP8Z3sk468xQ2PlDJrnNhrv8KpGcz0E3WkSTCx28OIsCaNw_tqOP2klTzoWpu5jH3tZlDnjrs9VgQ="
#define TOK_PADMIXED "gAAAAABlU_EAAAECAwQFBgcICQoLDA0OD94Fq1Oi03hlVU5rrUlotRuAMR1D4YprL6Xr7qOtfEu3HDGvi3NO0bK2PMDBe1slWw=="
#define TOK_NUL "gAAAAABlU_EAAAECAwQFBgcICQoLDA0ODxvEUcOTiJ8bxdbTC_w43DG0bz4mzhDCNPfXsfdPVZuq9iJWGiP6txX3f-EmiDuPxQ=="
#define TOK_VER81 "gQAAAABlU_EAAAECAwQFBgcICQoLDA0OD9KmKjCefGjv6zpkoNWvU7jGTe583pYz8rHYcO0WvnT9f09oJ09p88-louMPMdn6ZQ=="
#define TOK_LEN17 "gAAAAABlU_EAAAECAwQFBgcICQoLDA0OD2h1bnRlcjIJCQkJCQkJCQkJZsjtL685Fbgyr9L1pN8eZMkankxI-xEvMT4e_0ziBf0="
#define SPEC_KEY_HEX "730ff4c7af3d46923e8ed451ee813c87f790b0a226bc96a92de49b5e9c05e1ee"
#define SPEC_TIME 499162800  /* 1985-10-26T01:20:00-07:00 */
#define SPEC_TOKEN "gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA=="

static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=";

static unsigned char key[DBREG_FERNET_KEY_BYTES], spec_key[DBREG_FERNET_KEY_BYTES], iv[16];
static char pw127[128];

static void hex_key(const char *hex, unsigned char *out)
{
	size_t n;

	if (sodium_hex2bin(out, DBREG_FERNET_KEY_BYTES, hex, strlen(hex), NULL, &n, NULL) < 0 || n != 32)
		abort();
}

/* Does token decrypt with k to exactly want? */
static int decrypts_to(const unsigned char *k, const char *token, const char *want)
{
	struct dbreg_error err;
	char *pw = NULL;
	int same;

	if (dbreg_fernet_decrypt(k, token, &pw, &err) < 0)
		return 0;
	same = strcmp(pw, want) == 0;
	dbreg_secret_free(pw);
	return same;
}

/* Is token refused as DBREG_ERR_FAILED, with a message holding want (if given), ret untouched? */
static int refused(const unsigned char *k, const char *token, const char *want)
{
	struct dbreg_error err;
	char *pw = (char *)"untouched";

	dbreg_error_clear(&err);
	if (dbreg_fernet_decrypt(k, token, &pw, &err) == 0) {
		dbreg_secret_free(pw);
		return 0;
	}
	return err.kind == DBREG_ERR_FAILED && err.message[0] && strcmp(pw, "untouched") == 0 &&
	       (!want || strstr(err.message, want));
}

static void test_derive(void)
{
	unsigned char got[DBREG_FERNET_KEY_BYTES], other[DBREG_FERNET_KEY_BYTES];
	struct dbreg_error err;

	ok(dbreg_fernet_derive(PASSPHRASE, strlen(PASSPHRASE), got, &err) == 0 && memcmp(got, key, 32) == 0,
	   "PBKDF2-HMAC-SHA256 of the passphrase is cryptography's key");
	ok(dbreg_fernet_derive("correct horse battery staplf", strlen(PASSPHRASE), other, &err) == 0 &&
	   memcmp(other, key, 32) != 0, "another passphrase, another key");
	ok(dbreg_fernet_derive(PASSPHRASE, strlen(PASSPHRASE) - 1, other, &err) == 0 && memcmp(other, key, 32) != 0,
	   "the length given is the passphrase (no strlen)");
	ok(dbreg_fernet_derive("", 0, other, &err) == 0, "an empty passphrase derives (its refusal is the reader's)");
	sodium_memzero(got, sizeof(got));
	sodium_memzero(other, sizeof(other));
}

static void test_known_answers(void)
{
	static const struct { const char *name, *pw, *token; } kat[] = {
		{ "hunter2", "hunter2", TOK_HUNTER2 },
		{ "the empty password", "", TOK_EMPTY },
		{ "a 127-byte password", pw127, TOK_127 },
		{ "a UTF-8 password", PW_UTF8, TOK_UTF8 },
	};
	struct dbreg_error err;

	for (size_t i = 0; i < ELEMENTSOF(kat); i++) {
		char *tok = NULL;

		ok(decrypts_to(key, kat[i].token, kat[i].pw), "decrypts cryptography's token of %s", kat[i].name);
		ok(dbreg_fernet_encrypt_at(key, kat[i].pw, strlen(kat[i].pw), TIME, iv, &tok, &err) == 0 &&
		   strcmp(tok, kat[i].token) == 0, "encrypts %s to cryptography's token, byte for byte", kat[i].name);
		free(tok);
	}
	ok(strlen(TOK_127) == 248, "a 127-byte password's token is 248 characters");
	ok(decrypts_to(spec_key, SPEC_TOKEN, "hello"), "decrypts the Fernet specification's test vector");
	{
		char *tok = NULL;

		ok(dbreg_fernet_encrypt_at(spec_key, "hello", 5, SPEC_TIME, iv, &tok, &err) == 0 &&
		   strcmp(tok, SPEC_TOKEN) == 0, "encrypts to the specification's test vector");
		free(tok);
	}
}

static void test_encrypt(void)
{
	struct dbreg_error err;
	char pw[DBREG_FERNET_PASSWORD_MAX + 2], *tok = NULL, *again = NULL;

	ok(dbreg_fernet_encrypt(key, "s3cret pa55", 11, &tok, &err) == 0, "encrypt");
	ok(tok && dbreg_is_fernet(tok) && strncmp(tok, "gAAAAA", 6) == 0, "the token starts gAAAAA");
	ok(tok && strlen(tok) <= DBREG_STORED_MAX, "and fits varchar(256)");
	ok(tok && decrypts_to(key, tok, "s3cret pa55"), "our encrypt, our decrypt: round trip");
	ok(dbreg_fernet_encrypt(key, "s3cret pa55", 11, &again, &err) == 0 && strcmp(tok, again) != 0,
	   "a fresh IV each time: same password, another token");
	free(tok);
	free(again);
	tok = NULL;

	memset(pw, 'x', sizeof(pw));
	pw[DBREG_FERNET_PASSWORD_MAX] = '\0';
	ok(dbreg_fernet_encrypt(key, pw, DBREG_FERNET_PASSWORD_MAX, &tok, &err) == 0 && strlen(tok) <= 256 &&
	   decrypts_to(key, tok, pw), "a %d-byte password fits varchar(256) (%zu)", DBREG_FERNET_PASSWORD_MAX,
	   tok ? strlen(tok) : 0);
	free(tok);
	tok = (char *)"untouched";
	ok(dbreg_fernet_encrypt(key, pw, DBREG_FERNET_PASSWORD_MAX + 1, &tok, &err) < 0 &&
	   err.kind == DBREG_ERR_USAGE && strcmp(tok, "untouched") == 0,
	   "a %d-byte password is refused (its token would be 268 characters)", DBREG_FERNET_PASSWORD_MAX + 1);
	ok(!strstr(err.message, "xxxx"), "the refusal does not show the password");
	ok(dbreg_fernet_encrypt(key, "a\0b", 3, &tok, &err) < 0 && err.kind == DBREG_ERR_USAGE,
	   "a password with a NUL inside is refused: it would not decrypt");
	ok(dbreg_fernet_encrypt(key, NULL, 0, &tok, &err) == 0 && decrypts_to(key, tok, ""),
	   "the empty password round-trips");
	free(tok);
}

static void test_refusals(void)
{
	unsigned char wrong[DBREG_FERNET_KEY_BYTES];
	char t[sizeof(TOK_HUNTER2)];
	size_t n = strlen(TOK_HUNTER2);
	int all;

	dbreg_fernet_derive("Tr0ub4dor&3", 11, wrong, NULL);
	ok(refused(wrong, TOK_HUNTER2, "does not decrypt with the passphrase: wrong passphrase or altered token"),
	   "a wrong passphrase is refused");

	/* Every character at every position, for every other letter (and '='). */
	all = 1;
	memcpy(t, TOK_HUNTER2, sizeof(t));
	for (size_t i = 0; i < n; i++) {
		char saved = t[i];

		for (const char *c = B64URL; *c; c++) {
			if (*c == saved)
				continue;
			t[i] = *c;
			if (!refused(key, t, NULL)) {
				all = 0;
				printf("# accepted with '%c' at %zu\n", *c, i);
			}
		}
		t[i] = saved;
	}
	ok(all, "every single-character alteration of a token is refused (%zu positions x 64)", n);

	/* libsodium 1.0.18 takes a byte from 0x80 up for the alphabet's last letter. */
	all = 1;
	for (size_t i = 0; i < n; i++) {
		char saved = t[i];

		for (int b = 0x80; b <= 0xff; b++) {
			t[i] = (char)b;
			all &= refused(key, t, "bad base64");
		}
		t[i] = saved;
	}
	ok(all, "a byte 0x80..0xff in a token is refused wherever it stands");

	all = 1;
	for (size_t len = 0; len < n; len++) {
		t[len] = '\0';
		all &= refused(key, t, NULL);
		memcpy(t, TOK_HUNTER2, sizeof(t));
	}
	ok(all, "every truncation of a token is refused");
	ok(refused(key, "gAAAAABlU_EAAAECAwQFBgcICQoLDA0OD9KmKjCefGjv6zpkoNWvU7gqFIJWDObfgVYgwMpFNUraS8KZox_Sjz318F9Y0tjpGw",
	           "bad base64"), "a token without its padding is refused");
	ok(refused(key, TOK_HUNTER2 "AAAA", NULL), "a token with more after it is refused");
	ok(refused(key, " " TOK_HUNTER2, "bad base64"), "white space is no part of a token");

	ok(refused(key, TOK_PAD0, "bad padding"), "signed, but padding byte 0: refused");
	ok(refused(key, TOK_PAD17, "bad padding"), "signed, but padding byte 17: refused");
	ok(refused(key, TOK_PAD17X32, "bad padding"), "signed, two blocks ending in 17 bytes of 17: refused");
	ok(refused(key, TOK_PADMIXED, "bad padding"), "signed, but padding bytes that differ: refused");
	ok(refused(key, TOK_NUL, "NUL"), "signed and well padded, but a NUL in the password: refused");
	ok(refused(key, TOK_VER81, "version 0x81"), "version 0x81 refused");
	ok(refused(key, TOK_LEN17, "whole blocks"), "a ciphertext of 17 bytes refused");
	ok(refused(key, "", "too short"), "the empty string is no token");
	ok(refused(key, "gAAAAABlU_EAAAECAwQFBgcICQoLDA0ODw==", "too short"), "a header alone is no token");
	ok(refused(key, "plaintext", "bad base64"), "a literal password is no token");
	ok(refused(key, "dbreg:v1:cb2f5160:AAAA", "bad base64"), "dbreg's format is no token");
	ok(refused(key, NULL, NULL), "NULL is no token");
	sodium_memzero(wrong, sizeof(wrong));
}

static void test_is_fernet(void)
{
	ok(dbreg_is_fernet(TOK_HUNTER2) && dbreg_is_fernet(SPEC_TOKEN), "tokens are Fernet");
	ok(dbreg_is_fernet("gAAAAA"), "gAAAAA is the rule, whatever follows");
	ok(!dbreg_is_fernet("dbreg:v1:cb2f5160:AAAA"), "dbreg:v1 is not Fernet");
	ok(!dbreg_is_fernet("gAAAA") && !dbreg_is_fernet("") && !dbreg_is_fernet(NULL) && !dbreg_is_fernet("GAAAAAx"),
	   "short, empty, NULL or other text is not Fernet");
}

static char dir[] = "/tmp/test-fernet-XXXXXX";

static const char *file_with(const char *name, const void *data, size_t len, mode_t mode)
{
	static char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len || fchmod(fd, mode) < 0 || close(fd) < 0)
		abort();
	return path;
}

/* The key from the environment as it is now equals the key of passphrase p (len n). */
static int env_key_is(const char *p, size_t n)
{
	unsigned char got[DBREG_FERNET_KEY_BYTES], want[DBREG_FERNET_KEY_BYTES];
	struct dbreg_error err;
	int have = -1, same;

	if (dbreg_fernet_key_from_env(got, &have, &err) < 0 || have != 1) {
		printf("# %s\n", err.message);
		return 0;
	}
	dbreg_fernet_derive(p, n, want, NULL);
	same = memcmp(got, want, sizeof(got)) == 0;
	sodium_memzero(got, sizeof(got));
	sodium_memzero(want, sizeof(want));
	return same;
}

/* Refused as a configuration error naming want, the key and *ret_have untouched, the passphrase never shown. */
static int env_refused(const char *want)
{
	unsigned char got[DBREG_FERNET_KEY_BYTES];
	struct dbreg_error err;
	int have = -1;

	memset(got, 0xaa, sizeof(got));
	dbreg_error_clear(&err);
	if (dbreg_fernet_key_from_env(got, &have, &err) == 0)
		return 0;
	if (!strstr(err.message, want) || strstr(err.message, "horse"))
		printf("# %s\n", err.message);
	for (size_t i = 0; i < sizeof(got); i++)
		if (got[i] != 0xaa)
			return 0;
	return err.kind == DBREG_ERR_CONFIG && have == -1 && strstr(err.message, want) && !strstr(err.message, "horse");
}

static void test_env(void)
{
	unsigned char got[DBREG_FERNET_KEY_BYTES];
	struct dbreg_error err;
	const char *path;
	char fifo[256];
	int have = -1;

	if (!mkdtemp(dir))
		abort();
	unsetenv("DB_FERNET_PASSPHRASE");
	unsetenv("DB_FERNET_PASSPHRASE_FILE");
	ok(dbreg_fernet_key_from_env(got, &have, &err) == 0 && have == 0, "neither variable set: no key, no error");
	setenv("DB_FERNET_PASSPHRASE", "", 1);
	setenv("DB_FERNET_PASSPHRASE_FILE", "", 1);
	have = -1;
	ok(dbreg_fernet_key_from_env(got, &have, &err) == 0 && have == 0, "both set empty: as if unset");

	setenv("DB_FERNET_PASSPHRASE", PASSPHRASE, 1);
	unsetenv("DB_FERNET_PASSPHRASE_FILE");
	ok(env_key_is(PASSPHRASE, strlen(PASSPHRASE)), "DB_FERNET_PASSPHRASE derives the key");
	{
		unsigned char k[DBREG_FERNET_KEY_BYTES];

		ok(dbreg_fernet_key_from_env(k, &have, &err) == 0 && memcmp(k, key, 32) == 0,
		   "and it is cryptography's key");
		sodium_memzero(k, sizeof(k));
	}
	path = file_with("pass", PASSPHRASE "\n", strlen(PASSPHRASE) + 1, 0600);
	setenv("DB_FERNET_PASSPHRASE_FILE", path, 1);
	ok(env_refused("both DB_FERNET_PASSPHRASE and DB_FERNET_PASSPHRASE_FILE"), "both variables set: refused");
	unsetenv("DB_FERNET_PASSPHRASE");

	ok(env_key_is(PASSPHRASE, strlen(PASSPHRASE)), "a file with the passphrase and \"\\n\"");
	path = file_with("pass", PASSPHRASE "\r\n", strlen(PASSPHRASE) + 2, 0600);
	ok(env_key_is(PASSPHRASE, strlen(PASSPHRASE)), "a trailing \"\\r\\n\" is stripped");
	path = file_with("pass", PASSPHRASE, strlen(PASSPHRASE), 0400);
	ok(env_key_is(PASSPHRASE, strlen(PASSPHRASE)), "no newline at all (mode 0400)");
	path = file_with("pass", "pass\n\n", 6, 0600);
	ok(env_key_is("pass\n", 5), "\"pass\\n\\n\": one \"\\n\" stripped, one kept");
	path = file_with("pass", "pass\r\n\r\n", 8, 0600);
	ok(env_key_is("pass\r\n", 6), "\"pass\\r\\n\\r\\n\": one \"\\r\\n\" stripped, one kept");
	path = file_with("pass", "pass\r", 5, 0600);
	ok(env_key_is("pass\r", 5), "a lone \"\\r\" is kept");
	path = file_with("pass", " pass \n", 7, 0600);
	ok(env_key_is(" pass ", 6), "white space around the passphrase is kept");

	path = file_with("pass", PASSPHRASE "\n", strlen(PASSPHRASE) + 1, 0644);
	ok(env_refused("chmod 600"), "a file others may read (0644) is refused, saying 'chmod 600'");
	path = file_with("pass", PASSPHRASE "\n", strlen(PASSPHRASE) + 1, 0620);
	ok(env_refused("accessible by group or others (mode 0620)"), "a file the group may write (0620) is refused");
	path = file_with("pass", "\n", 1, 0600);
	ok(env_refused("no passphrase"), "a file of one newline is refused");
	path = file_with("pass", "", 0, 0600);
	ok(env_refused("no passphrase"), "an empty file is refused");
	path = file_with("pass", "pa\0ss\n", 6, 0600);
	ok(env_refused("NUL"), "a NUL byte in the file is refused");
	{
		static char big[1026];

		memset(big, 'p', sizeof(big));
		path = file_with("pass", big, 1024, 0600);
		ok(env_key_is(big, 1024), "a passphrase of 1024 bytes is read");
		path = file_with("pass", big, 1025, 0600);
		ok(env_refused("too long"), "a passphrase of 1025 bytes is refused");
		big[1024] = '\r';
		big[1025] = '\n';
		path = file_with("pass", big, 1026, 0600);
		ok(env_key_is(big, 1024), "1024 bytes and \"\\r\\n\" are read");
	}
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	if (mkfifo(fifo, 0600) < 0)
		abort();
	setenv("DB_FERNET_PASSPHRASE_FILE", fifo, 1);
	alarm(10);  /* a hang is a failure, not a stuck test run */
	ok(env_refused("not a regular file"), "a FIFO is refused without hanging");
	alarm(0);
	setenv("DB_FERNET_PASSPHRASE_FILE", dir, 1);
	ok(env_refused("not a regular file"), "a directory is refused");
	snprintf(fifo, sizeof(fifo), "%s/missing", dir);
	setenv("DB_FERNET_PASSPHRASE_FILE", fifo, 1);
	ok(env_refused("No such file"), "a missing file is refused");

	unsetenv("DB_FERNET_PASSPHRASE_FILE");
	unlink(path);
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	unlink(fifo);
	rmdir(dir);
	sodium_memzero(got, sizeof(got));
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	hex_key(KEY_HEX, key);
	hex_key(SPEC_KEY_HEX, spec_key);
	for (int i = 0; i < 16; i++)
		iv[i] = (unsigned char)i;
	for (int i = 0; i < 127; i++)
		pw127[i] = "0123456789abcdefghijklmnopqrstuvwxyz"[i % 36];
	test_derive();
	test_known_answers();
	test_encrypt();
	test_refusals();
	test_is_fernet();
	test_env();
	return tap_done();
}
