/* test-secret.c — keys, key ids and the stored password format, with known answers. */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "internal.h"
#include "tap.h"

static const unsigned char zero_key[32];
static unsigned char seq_key[32];
static unsigned char odd_key[32];  /* base64 of it differs between the alphabets */

static void test_key_ids(void)
{
	char id[9];

	dbreg_key_id(zero_key, id);
	is_str(id, "89eb0d6a", "key id of 32 zero bytes is BLAKE2b-256's first 8 hex digits");
	dbreg_key_id(seq_key, id);
	is_str(id, "cb2f5160", "key id of bytes 0..31");
	dbreg_key_id(odd_key, id);
	is_str(id, "ad54ad4a", "key id of the +/ key");
}

static int parses_to(const char *text, const unsigned char *want)
{
	unsigned char key[32];
	struct dbreg_error err;

	if (dbreg_key_parse(text, key, &err) < 0)
		return 0;
	return memcmp(key, want, 32) == 0;
}

static int refused(const char *text)
{
	unsigned char key[32];
	struct dbreg_error err;

	dbreg_error_clear(&err);
	return dbreg_key_parse(text, key, &err) < 0 && err.kind == DBREG_ERR_CONFIG && err.message[0];
}

static void test_key_parse(void)
{
	ok(parses_to("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", seq_key), "hex, lower case");
	ok(parses_to("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F", seq_key), "hex, upper case");
	ok(parses_to("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", seq_key), "standard base64 with padding");
	ok(parses_to("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", seq_key), "standard base64 without padding");
	ok(parses_to("+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+/+//v8=", odd_key), "standard alphabet (+/)");
	ok(parses_to("-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-__v8", odd_key), "URL-safe alphabet, no padding");
	ok(parses_to("-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-__v8=", odd_key), "URL-safe alphabet with padding");
	ok(parses_to("  AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n", seq_key), "surrounding white space and newline");
	ok(parses_to("\t000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\r\n", seq_key), "hex with CRLF");
	ok(refused(""), "empty key refused");
	ok(refused("   \n"), "blank key refused");
	ok(refused("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg=="), "31 bytes refused");
	ok(refused("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gIQ=="), "34 bytes refused");
	ok(refused("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1"), "63 hex digits refused");
	ok(refused("zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"), "non-hex refused");
	ok(refused("AAECAwQFBgcICQoLDA0O DxAREhMUFRYXGBkaGxwdHh8="), "inner space refused");
	ok(refused("+/+/+/+/+/+/+/+/+/+/-_-_-_-_-_-_-_-_-_-__v8"), "mixed alphabets refused");
	ok(refused("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"
	           "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" "8="),
	   "bytes 0x80..0xff are no base64 letters (libsodium 1.0.18 takes them for '/')");
}

static struct dbreg_keyring *ring(const unsigned char *current, const unsigned char *old)
{
	struct dbreg_keyring *kr;

	if (dbreg_keyring_new(&kr, NULL) < 0)
		abort();
	dbreg_keyring_add(kr, current, NULL);
	if (old)
		dbreg_keyring_add(kr, old, NULL);
	return kr;
}

static void test_round_trip(void)
{
	struct dbreg_keyring *kr = ring(seq_key, NULL), *other = ring(zero_key, NULL), *both = ring(zero_key, seq_key);
	struct dbreg_error err;
	char pw[DBREG_PASSWORD_MAX + 2], *stored = NULL, *again = NULL, *plain = NULL, id[9];
	unsigned char blob[256];
	size_t blen;

	ok(dbreg_encrypt(kr, "s3cret pa55", 11, &stored, &err) == 0, "encrypt");
	ok(strncmp(stored, "dbreg:v1:cb2f5160:", 18) == 0, "stored text starts dbreg:v1:<key-id>:");
	ok(strchr(stored + 18, '=') == NULL && strchr(stored + 18, '+') == NULL && strchr(stored + 18, '/') == NULL,
	   "payload is base64url without padding");
	ok(sodium_base642bin(blob, sizeof(blob), stored + 18, strlen(stored + 18), NULL, &blen, NULL,
	                     sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0 && blen == 24 + 11 + 16,
	   "payload is nonce (24) || ciphertext (11) || tag (16)");
	ok(dbreg_stored_key_id(stored, id) == 0 && strcmp(id, "cb2f5160") == 0, "stored key id read back");
	ok(dbreg_decrypt(kr, stored, &plain, &err) == 0 && strcmp(plain, "s3cret pa55") == 0, "decrypt round trip");
	dbreg_secret_free(plain);
	plain = NULL;

	ok(dbreg_encrypt(kr, "s3cret pa55", 11, &again, &err) == 0 && strcmp(again, stored) != 0,
	   "a fresh nonce each time: same password, different text");

	/* The known-answer decryption of a value made by another program from the spec alone:
	 * nonce = 24 bytes 0x00..0x17, key = bytes 0..31, AD = header. */
	{
		unsigned char nonce[24], ct[64];
		unsigned long long clen;
		char b64[200], text[256];
		const char *header = "dbreg:v1:cb2f5160";

		for (int i = 0; i < 24; i++)
			nonce[i] = (unsigned char)i;
		memcpy(blob, nonce, 24);
		crypto_aead_xchacha20poly1305_ietf_encrypt(ct, &clen, (const unsigned char *)"hunter2", 7,
		                                           (const unsigned char *)header, strlen(header), NULL, nonce,
		                                           seq_key);
		memcpy(blob + 24, ct, clen);
		sodium_bin2base64(b64, sizeof(b64), blob, 24 + clen, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
		snprintf(text, sizeof(text), "%s:%s", header, b64);
		ok(dbreg_decrypt(kr, text, &plain, &err) == 0 && strcmp(plain, "hunter2") == 0,
		   "decrypts text built from SPEC section 3 independently");
		dbreg_secret_free(plain);
		plain = NULL;

		/* The same bytes under a header without AD binding must fail. */
		crypto_aead_xchacha20poly1305_ietf_encrypt(ct, &clen, (const unsigned char *)"hunter2", 7, NULL, 0, NULL,
		                                           nonce, seq_key);
		memcpy(blob + 24, ct, clen);
		sodium_bin2base64(b64, sizeof(b64), blob, 24 + clen, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
		snprintf(text, sizeof(text), "%s:%s", header, b64);
		ok(dbreg_decrypt(kr, text, &plain, &err) < 0, "text sealed without the header as AD is refused");
	}

	/* Tampering: each byte of the payload, and the header's key id. */
	{
		char *t = strdup(stored);
		size_t n = strlen(t);
		int all_refused = 1;

		for (size_t i = 18; i < n; i++) {
			char saved = t[i];

			t[i] = saved == 'A' ? 'B' : 'A';
			if (dbreg_decrypt(kr, t, &plain, &err) == 0) {
				all_refused = 0;
				dbreg_secret_free(plain);
				plain = NULL;
			}
			t[i] = saved;
		}
		ok(all_refused, "every altered payload character is refused");
		/* libsodium 1.0.18 reads a byte >= 0x80 as the alphabet's last letter ('_'). */
		all_refused = 1;
		for (size_t i = 18; i < n; i++) {
			char saved = t[i];

			t[i] = (char)0xff;
			if (dbreg_decrypt(kr, t, &plain, &err) == 0) {
				all_refused = 0;
				dbreg_secret_free(plain);
				plain = NULL;
			}
			t[i] = saved;
		}
		ok(all_refused, "a byte 0x80..0xff in the payload is refused wherever it stands");
		t[n - 1] = '\0';
		ok(dbreg_decrypt(kr, t, &plain, &err) < 0, "a truncated value is refused");
		free(t);
	}
	ok(dbreg_decrypt(other, stored, &plain, &err) < 0 && err.kind == DBREG_ERR_CONFIG &&
	   strstr(err.message, "cb2f5160"), "unknown key id refused, naming the id");
	{
		char *t = strdup(stored);

		memcpy(t + 9, "89eb0d6a", 8);  /* claims the other key */
		ok(dbreg_decrypt(other, t, &plain, &err) < 0 && err.kind == DBREG_ERR_FAILED,
		   "wrong key (altered key id) refused: tag does not verify");
		free(t);
	}
	ok(dbreg_decrypt(both, stored, &plain, &err) == 0 && strcmp(plain, "s3cret pa55") == 0,
	   "an old key in the ring decrypts");
	dbreg_secret_free(plain);
	plain = NULL;
	ok(dbreg_decrypt(kr, "plaintext", &plain, &err) < 0, "text not in dbreg:v1 format refused");
	ok(dbreg_decrypt(kr, "dbreg:v1:CB2F5160:AAAA", &plain, &err) < 0, "upper-case key id refused");

	memset(pw, 'x', sizeof(pw));
	free(stored);
	stored = NULL;
	ok(dbreg_encrypt(kr, pw, DBREG_PASSWORD_MAX, &stored, &err) == 0 && strlen(stored) <= 256,
	   "a 138-byte password fits varchar(256) (%zu)", stored ? strlen(stored) : 0);
	free(stored);
	stored = NULL;
	ok(dbreg_encrypt(kr, pw, DBREG_PASSWORD_MAX + 1, &stored, &err) < 0 && err.kind == DBREG_ERR_USAGE,
	   "a 139-byte password is refused");
	ok(dbreg_encrypt(kr, "", 0, &stored, &err) == 0, "an empty password still encrypts");
	free(stored);
	free(again);
	dbreg_keyring_free(kr);
	dbreg_keyring_free(other);
	dbreg_keyring_free(both);
}

static void test_env(void)
{
	struct dbreg_keyring *kr = NULL;
	struct dbreg_error err;

	unsetenv("DB_ENCRYPTION_KEY");
	unsetenv("DB_ENCRYPTION_KEY_FILE");
	unsetenv("DB_ENCRYPTION_OLD_KEYS");
	ok(dbreg_keyring_from_env(&kr, &err) < 0 && err.kind == DBREG_ERR_CONFIG && strstr(err.message, "generate-key"),
	   "no key: configuration error that says how to make one");
	setenv("DB_ENCRYPTION_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", 1);
	setenv("DB_ENCRYPTION_KEY_FILE", "/nonexistent", 1);
	ok(dbreg_keyring_from_env(&kr, &err) < 0 && strstr(err.message, "both"), "both variables set refused");
	unsetenv("DB_ENCRYPTION_KEY_FILE");
	setenv("DB_ENCRYPTION_OLD_KEYS", " 0000000000000000000000000000000000000000000000000000000000000000 ,", 1);
	ok(dbreg_keyring_from_env(&kr, &err) == 0 && dbreg_keyring_count(kr) == 2, "current key plus one old key");
	dbreg_keyring_free(kr);
	kr = NULL;
	setenv("DB_ENCRYPTION_OLD_KEYS", "AAAA,bogus", 1);
	ok(dbreg_keyring_from_env(&kr, &err) < 0 && strstr(err.message, "DB_ENCRYPTION_OLD_KEYS"), "bad old key refused");
	setenv("DB_ENCRYPTION_KEY", "not a key", 1);
	unsetenv("DB_ENCRYPTION_OLD_KEYS");
	ok(dbreg_keyring_from_env(&kr, &err) < 0 && !strstr(err.message, "not a key"),
	   "bad key refused without echoing it");
}

/* Format v2: the known answer (computed independently with PyNaCl), and the binding. */
static void test_v2(void)
{
	static const char kat[] = "dbreg:v2:cb2f5160:QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXt1Z3ArWDDTbnm_XNyrwH8-bOyLZqeSDuC0GRIB8nZm412pBWETVR8v8uKPQ";
	const struct dbreg_binding b = { "01234567-89ab-4cde-8f01-23456789abcd", "db.example.com", "5432", "app",
	                                 "app_user", "verify-full" };
	struct dbreg_binding moved = b;
	struct dbreg_keyring *kr = ring(seq_key, NULL), *other = ring(zero_key, NULL);
	unsigned char nonce[24];
	struct dbreg_error err;
	char *stored = NULL, *plain = NULL, id[9];

	for (int i = 0; i < 24; i++)
		nonce[i] = (unsigned char)(0x40 + i);
	ok(dbreg_encrypt_v2(kr, &b, nonce, "correct horse battery staple", 28, &stored, &err) == 0 &&
	   strcmp(stored, kat) == 0, "v2: the known answer (key 00..1f, nonce 40..57, six target fields)");
	free(stored);
	stored = NULL;
	ok(dbreg_decrypt_v2(kr, &b, kat, &plain, &err) == 0 && strcmp(plain, "correct horse battery staple") == 0,
	   "v2: the known answer decrypts for its binding");
	dbreg_secret_free(plain);
	plain = NULL;
	ok(dbreg_stored_version(kat, id) == 2 && strcmp(id, "cb2f5160") == 0, "v2: version and key id read back");
	ok(dbreg_stored_key_id(kat, id) < 0, "v2: not dbreg:v1 text for the v1 reader");
	const char **fields[] = { &moved.id, &moved.host, &moved.port, &moved.database, &moved.user, &moved.ssl_mode };
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const char *saved = *fields[i];

		*fields[i] = i == 5 ? "disable" : "elsewhere";
		dbreg_error_clear(&err);
		ok(dbreg_decrypt_v2(kr, &moved, kat, &plain, &err) < 0 && err.kind == DBREG_ERR_FAILED &&
		   strstr(err.message, "does not belong to this connection's target") && !plain,
		   "v2: a change of target field %zu refuses the text", i);
		*fields[i] = saved;
	}
	/* A NULL field is the empty string, no more. */
	moved.ssl_mode = NULL;
	ok(dbreg_encrypt_v2(kr, &moved, NULL, "pw", 2, &stored, &err) == 0, "v2: encrypt with a NULL field");
	moved.ssl_mode = "";
	ok(dbreg_decrypt_v2(kr, &moved, stored, &plain, &err) == 0 && strcmp(plain, "pw") == 0,
	   "v2: NULL and empty bind the same");
	dbreg_secret_free(plain);
	plain = NULL;
	ok(dbreg_decrypt_v2(other, &b, kat, &plain, &err) < 0 && err.kind == DBREG_ERR_CONFIG,
	   "v2: a key not in the keyring is named, as for v1");
	ok(dbreg_decrypt(kr, kat, &plain, &err) < 0, "v2: the v1 reader does not take it");
	ok(dbreg_stored_decrypt(kr, NULL, &b, kat, &plain, &err) == 0 && strcmp(plain, "correct horse battery staple") == 0,
	   "v2: read by format through dbreg_stored_decrypt with its row");
	dbreg_secret_free(plain);
	plain = NULL;
	ok(dbreg_stored_decrypt(kr, NULL, NULL, kat, &plain, &err) < 0 && plain == NULL,
	   "v2: never read without the row it belongs to");
	free(stored);
	dbreg_keyring_free(kr);
	dbreg_keyring_free(other);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	for (int i = 0; i < 32; i++)
		seq_key[i] = (unsigned char)i;
	for (int i = 0; i < 30; i += 3) {
		odd_key[i] = 0xfb;
		odd_key[i + 1] = 0xff;
		odd_key[i + 2] = 0xbf;
	}
	odd_key[30] = 0xfe;
	odd_key[31] = 0xff;
	test_key_ids();
	test_key_parse();
	test_round_trip();
	test_v2();
	test_env();
	return tap_done();
}
