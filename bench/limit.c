// SPDX-License-Identifier: Apache-2.0
/* The machine's limit for bench/run.sh: how long one core takes to inflate the set's gzip files
 * (ISA-L or zlib, 1 MiB chunks in and out, as aem-pcr streams them) or to hash the images in one
 * bank (libcrypto EVP, as aem-pcr hashes). Prints the wall and the CPU seconds on stdout (the
 * CPU time is what an idle core would take; the wall time grows with other load).
 * usage: limit isal|zlib FILE.gz...      inflate only (output discarded)
 *        limit sha1|sha256|sha384|sha512 FILE...   hash only (the files as they are)
 * Build: cc -O2 -o limit limit.c -lisal -lz -lcrypto */
#include <isa-l/igzip_lib.h>
#include <openssl/evp.h>
#include <zlib.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (1 << 20)
static unsigned char in[CHUNK], out[CHUNK];

static void die(const char *what, const char *path) {
    fprintf(stderr, "limit: %s: %s\n", path, what);
    exit(2);
}

static size_t fill(int fd) {
    size_t n = 0;
    while (n < CHUNK) {
        ssize_t r = read(fd, in + n, CHUNK - n);
        if (r < 0) die("read failed", "input");
        if (r == 0) break;
        n += (size_t)r;
    }
    return n;
}

static void inflate_isal(int fd, const char *path) {
    static struct inflate_state s;
    isal_inflate_init(&s);
    s.crc_flag = ISAL_GZIP;
    size_t n;
    while ((n = fill(fd)) > 0) {
        s.next_in = in;
        s.avail_in = (uint32_t)n;
        do {
            s.next_out = out;
            s.avail_out = CHUNK;
            if (isal_inflate(&s) != ISAL_DECOMP_OK) die("isal_inflate failed", path);
        } while ((s.avail_in > 0 || s.avail_out == 0) && s.block_state != ISAL_BLOCK_FINISH);
    }
    if (s.block_state != ISAL_BLOCK_FINISH) die("truncated", path);
}

static void inflate_zlib(int fd, const char *path) {
    z_stream s;
    memset(&s, 0, sizeof s);
    if (inflateInit2(&s, 16 + 15) != Z_OK) die("inflateInit2 failed", path);
    int rc = Z_OK;
    size_t n;
    while (rc != Z_STREAM_END && (n = fill(fd)) > 0) {
        s.next_in = in;
        s.avail_in = (uInt)n;
        do {
            s.next_out = out;
            s.avail_out = CHUNK;
            rc = inflate(&s, Z_NO_FLUSH);
            if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) die("inflate failed", path);
        } while ((s.avail_in > 0 || s.avail_out == 0) && rc != Z_STREAM_END);
    }
    if (rc != Z_STREAM_END) die("truncated", path);
    inflateEnd(&s);
}

static void hash(int fd, const char *alg, const char *path) {
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    const EVP_MD *md = EVP_get_digestbyname(alg);
    if (!md || !EVP_DigestInit_ex(c, md, NULL)) die("unknown digest", alg);
    size_t n;
    while ((n = fill(fd)) > 0) EVP_DigestUpdate(c, in, n);
    unsigned char d[EVP_MAX_MD_SIZE];
    EVP_DigestFinal_ex(c, d, NULL);
    EVP_MD_CTX_free(c);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: limit isal|zlib|sha1|sha256|sha384|sha512 FILE...\n");
        return 2;
    }
    struct timespec t0, t1, c0, c1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    for (int i = 2; i < argc; i++) {
        int fd = open(argv[i], O_RDONLY);
        if (fd < 0) die("cannot open", argv[i]);
        if (!strcmp(argv[1], "isal")) inflate_isal(fd, argv[i]);
        else if (!strcmp(argv[1], "zlib")) inflate_zlib(fd, argv[i]);
        else hash(fd, argv[1], argv[i]);
        close(fd);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    printf("%.3f %.3f\n", (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
           (double)(c1.tv_sec - c0.tv_sec) + (c1.tv_nsec - c0.tv_nsec) / 1e9);
    return 0;
}
