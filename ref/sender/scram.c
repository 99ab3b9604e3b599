/*
 * scram.c — server side of SCRAM-SHA-256 (see scram.h).
 *
 * Follows RFC 5802 section 3 with SHA-256 (RFC 7677):
 *   SaltedPassword  = Hi(password, salt, i)          (PBKDF2-HMAC-SHA-256)
 *   ClientKey       = HMAC(SaltedPassword, "Client Key")
 *   StoredKey       = H(ClientKey)
 *   AuthMessage     = client-first-bare "," server-first "," client-final-without-proof
 *   ClientSignature = HMAC(StoredKey, AuthMessage)
 *   ClientProof     = ClientKey XOR ClientSignature
 *   ServerSignature = HMAC(HMAC(SaltedPassword, "Server Key"), AuthMessage)
 * The server recovers ClientKey from the proof and checks H(ClientKey) ==
 * StoredKey, so it never needs the proof's inputs in the clear.
 */
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "scram.h"

#define SCRAM_NONCE_RAW_LEN 18	/* bytes of randomness in our nonce part */
#define SCRAM_SALT_RAW_LEN	16

size_t
scram_b64_encode(const uint8_t *in, size_t len, char *out, size_t outlen)
{
	size_t		need = 4 * ((len + 2) / 3) + 1;

	if (need > outlen)
		return 0;
	return (size_t) EVP_EncodeBlock((unsigned char *) out, in, (int) len);
}

bool
scram_b64_decode(const char *in, size_t len, uint8_t *out, size_t outlen,
				 size_t *decoded)
{
	uint8_t		tmp[SCRAM_MSG_MAX];
	int			n;
	size_t		pad = 0;

	if (len % 4 != 0 || len / 4 * 3 > sizeof(tmp))
		return false;
	n = EVP_DecodeBlock(tmp, (const unsigned char *) in, (int) len);
	if (n < 0)
		return false;
	/* EVP_DecodeBlock counts padding as zero bytes; take them off */
	if (len >= 1 && in[len - 1] == '=')
		pad++;
	if (len >= 2 && in[len - 2] == '=')
		pad++;
	if ((size_t) n < pad || (size_t) n - pad > outlen)
		return false;
	memcpy(out, tmp, (size_t) n - pad);
	*decoded = (size_t) n - pad;
	return true;
}

static void
hmac_sha256(const uint8_t *key, size_t keylen, const void *msg, size_t msglen,
			uint8_t out[SCRAM_KEY_LEN])
{
	unsigned int outlen = SCRAM_KEY_LEN;

	HMAC(EVP_sha256(), key, (int) keylen, msg, msglen, out, &outlen);
}

bool
scram_server_init(ScramServer *s, const char *password,
				  const uint8_t *salt, size_t salt_len,
				  int iterations, const char *server_nonce,
				  WalsimError *err)
{
	uint8_t		rnd_salt[SCRAM_SALT_RAW_LEN];

	memset(s, 0, sizeof(*s));
	if (iterations < 1)
		return walsim_error_set(err, "SCRAM: iteration count %d is not positive", iterations);
	if (salt == NULL)
	{
		if (RAND_bytes(rnd_salt, sizeof(rnd_salt)) != 1)
			return walsim_error_set(err, "SCRAM: could not generate a random salt");
		salt = rnd_salt;
		salt_len = sizeof(rnd_salt);
	}
	if (salt_len == 0 || scram_b64_encode(salt, salt_len, s->salt_b64, sizeof(s->salt_b64)) == 0)
		return walsim_error_set(err, "SCRAM: salt of %zu bytes is empty or too long", salt_len);
	if (server_nonce == NULL)
	{
		uint8_t		raw[SCRAM_NONCE_RAW_LEN];

		if (RAND_bytes(raw, sizeof(raw)) != 1)
			return walsim_error_set(err, "SCRAM: could not generate a random nonce");
		scram_b64_encode(raw, sizeof(raw), s->server_nonce, sizeof(s->server_nonce));
	}
	else
	{
		if (strlen(server_nonce) >= sizeof(s->server_nonce) || strchr(server_nonce, ',') != NULL)
			return walsim_error_set(err, "SCRAM: server nonce too long or contains ','");
		strcpy(s->server_nonce, server_nonce);
	}
	s->iterations = iterations;
	if (PKCS5_PBKDF2_HMAC(password, (int) strlen(password), salt, (int) salt_len,
						  iterations, EVP_sha256(), SCRAM_KEY_LEN,
						  s->salted_password) != 1)
		return walsim_error_set(err, "SCRAM: PBKDF2 failed");
	return true;
}

/* Copy [p, p+len) to a NUL-terminated buffer; false when it does not fit. */
static bool
copy_text(char *dst, size_t dstlen, const char *p, size_t len)
{
	if (len >= dstlen)
		return false;
	memcpy(dst, p, len);
	dst[len] = '\0';
	return true;
}

bool
scram_server_first(ScramServer *s, const char *client_first, size_t len,
				   char *out, size_t outlen, WalsimError *err)
{
	char		msg[SCRAM_MSG_MAX];
	const char *p;
	const char *bare;
	const char *nonce;
	size_t		nonce_len;

	if (!copy_text(msg, sizeof(msg), client_first, len) || strlen(msg) != len)
		return walsim_error_set(err, "SCRAM client-first-message: longer than %d bytes or contains NUL",
								SCRAM_MSG_MAX - 1);
	/* GS2 header: cbind-flag "," [authzid] "," */
	if (msg[0] == 'p')
		return walsim_error_set(err, "SCRAM client-first-message: client requires channel binding, which this server does not offer");
	if ((msg[0] != 'n' && msg[0] != 'y') || msg[1] != ',')
		return walsim_error_set(err, "SCRAM client-first-message: malformed GS2 header at offset 0");
	p = strchr(msg + 2, ',');
	if (p == NULL)
		return walsim_error_set(err, "SCRAM client-first-message: GS2 header not terminated");
	if (p != msg + 2)
		return walsim_error_set(err, "SCRAM client-first-message: authorization identity is not supported");
	memcpy(s->gs2_header, msg, 3);
	s->gs2_header[3] = '\0';
	bare = p + 1;
	if (strncmp(bare, "m=", 2) == 0)
		return walsim_error_set(err, "SCRAM client-first-message: mandatory extension not supported");
	if (strncmp(bare, "n=", 2) != 0)
		return walsim_error_set(err, "SCRAM client-first-message: expected \"n=\" at offset %zu",
								(size_t) (bare - msg));
	/* PostgreSQL ignores the SCRAM user name (the startup packet's wins); so do we. */
	nonce = strstr(bare, ",r=");
	if (nonce == NULL)
		return walsim_error_set(err, "SCRAM client-first-message: no client nonce");
	nonce += 3;
	nonce_len = strcspn(nonce, ",");
	if (nonce_len == 0)
		return walsim_error_set(err, "SCRAM client-first-message: empty client nonce");
	for (size_t i = 0; i < nonce_len; i++)
		if (nonce[i] < 0x21 || nonce[i] > 0x7e)
			return walsim_error_set(err, "SCRAM client-first-message: non-printable character in nonce at offset %zu",
									(size_t) (nonce - msg) + i);
	strcpy(s->client_first_bare, bare);
	memcpy(s->combined_nonce, nonce, nonce_len);
	strcpy(s->combined_nonce + nonce_len, s->server_nonce);

	if (snprintf(s->server_first, sizeof(s->server_first), "r=%s,s=%s,i=%d",
				 s->combined_nonce, s->salt_b64, s->iterations) >= (int) sizeof(s->server_first))
		return walsim_error_set(err, "SCRAM server-first-message: client nonce too long");
	if (!copy_text(out, outlen, s->server_first, strlen(s->server_first)))
		return walsim_error_set(err, "SCRAM server-first-message: output buffer too small");
	s->first_done = true;
	return true;
}

bool
scram_server_final(ScramServer *s, const char *client_final, size_t len,
				   char *out, size_t outlen, WalsimError *err)
{
	char		msg[SCRAM_MSG_MAX];
	char		cbind[16];
	char		auth_message[3 * SCRAM_MSG_MAX];
	const char *proof_attr;
	const char *nonce;
	size_t		nonce_len;
	size_t		without_proof_len;
	uint8_t		proof[SCRAM_MSG_MAX];
	size_t		proof_len;
	uint8_t		client_key[SCRAM_KEY_LEN];
	uint8_t		stored_key[SCRAM_KEY_LEN];
	uint8_t		client_sig[SCRAM_KEY_LEN];
	uint8_t		recovered[SCRAM_KEY_LEN];
	uint8_t		check[SCRAM_KEY_LEN];
	uint8_t		server_key[SCRAM_KEY_LEN];
	uint8_t		server_sig[SCRAM_KEY_LEN];
	char		sig_b64[64];

	if (!s->first_done)
		return walsim_error_set(err, "SCRAM client-final-message before client-first-message");
	if (!copy_text(msg, sizeof(msg), client_final, len) || strlen(msg) != len)
		return walsim_error_set(err, "SCRAM client-final-message: longer than %d bytes or contains NUL",
								SCRAM_MSG_MAX - 1);
	/* c= must carry exactly the GS2 header of the first message */
	if (strncmp(msg, "c=", 2) != 0)
		return walsim_error_set(err, "SCRAM client-final-message: expected \"c=\" at offset 0");
	scram_b64_encode((const uint8_t *) s->gs2_header, strlen(s->gs2_header), cbind, sizeof(cbind));
	if (strncmp(msg + 2, cbind, strlen(cbind)) != 0 || msg[2 + strlen(cbind)] != ',')
		return walsim_error_set(err, "SCRAM client-final-message: channel binding data does not match the GS2 header");
	nonce = msg + 2 + strlen(cbind) + 1;
	if (strncmp(nonce, "r=", 2) != 0)
		return walsim_error_set(err, "SCRAM client-final-message: expected \"r=\" at offset %zu",
								(size_t) (nonce - msg));
	nonce += 2;
	nonce_len = strcspn(nonce, ",");
	if (nonce_len != strlen(s->combined_nonce) || strncmp(nonce, s->combined_nonce, nonce_len) != 0)
		return walsim_error_set(err, "SCRAM client-final-message: nonce does not match");
	proof_attr = strstr(nonce, ",p=");
	if (proof_attr == NULL)
		return walsim_error_set(err, "SCRAM client-final-message: no proof");
	without_proof_len = (size_t) (proof_attr - msg);
	proof_attr += 3;
	if (strchr(proof_attr, ',') != NULL)
		return walsim_error_set(err, "SCRAM client-final-message: attributes after the proof");
	if (!scram_b64_decode(proof_attr, strlen(proof_attr), proof, sizeof(proof), &proof_len) ||
		proof_len != SCRAM_KEY_LEN)
		return walsim_error_set(err, "SCRAM client-final-message: malformed proof");

	if (snprintf(auth_message, sizeof(auth_message), "%s,%s,%.*s", s->client_first_bare,
				 s->server_first, (int) without_proof_len, msg) >= (int) sizeof(auth_message))
		return walsim_error_set(err, "SCRAM: AuthMessage too long");

	hmac_sha256(s->salted_password, SCRAM_KEY_LEN, "Client Key", 10, client_key);
	SHA256(client_key, SCRAM_KEY_LEN, stored_key);
	hmac_sha256(stored_key, SCRAM_KEY_LEN, auth_message, strlen(auth_message), client_sig);
	for (int i = 0; i < SCRAM_KEY_LEN; i++)
		recovered[i] = proof[i] ^ client_sig[i];
	SHA256(recovered, SCRAM_KEY_LEN, check);
	if (CRYPTO_memcmp(check, stored_key, SCRAM_KEY_LEN) != 0)
		return walsim_error_set(err, "SCRAM: client proof does not match (wrong password)");

	hmac_sha256(s->salted_password, SCRAM_KEY_LEN, "Server Key", 10, server_key);
	hmac_sha256(server_key, SCRAM_KEY_LEN, auth_message, strlen(auth_message), server_sig);
	scram_b64_encode(server_sig, SCRAM_KEY_LEN, sig_b64, sizeof(sig_b64));
	if (snprintf(out, outlen, "v=%s", sig_b64) >= (int) outlen)
		return walsim_error_set(err, "SCRAM server-final-message: output buffer too small");
	return true;
}
