/*
** sha256.h - a small SHA-256 (FIPS 180-4) for comparing test outputs with published digests.
*/
#ifndef MODELQ_TEST_SHA256_H
#define MODELQ_TEST_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct mq_sha256 {
    uint32_t h[8];
    uint64_t len;     /* bytes hashed so far */
    uint8_t buf[64];
    size_t fill;
};

void mq_sha256_init(struct mq_sha256 *s);
void mq_sha256_update(struct mq_sha256 *s, const void *data, size_t len);
void mq_sha256_final(struct mq_sha256 *s, uint8_t out[32]);
/* One shot, lower-case hex with NUL: hex must hold 65 bytes. */
void mq_sha256_hex(const void *data, size_t len, char hex[65]);

#endif /* MODELQ_TEST_SHA256_H */
