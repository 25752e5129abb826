/*
** mkfixture_bpe.h - the byte-level BPE pieces shared by tools/mkfixture.c (which learns the
** merges of testdata/tiny-llama/tokenizer.json) and tests/test_fixture_tokenizer.c (which encodes
** text with that file and compares with the JavaScript tokenizers library).
**
** Byte-level BPE as GPT-2 / Llama 3 do it (Hugging Face tokenizers "ByteLevel"):
**   - every byte b is one base token whose text is the code point bytes_to_unicode(b): the
**     printable bytes 33..126, 161..172 and 174..255 stand for themselves, the other 68 bytes
**     (0..32, 127..160, 173) become U+0100.. U+0143 in byte order (so a space is "Ġ" U+0120);
**   - base token ids follow those code points in increasing order, as in GPT-2's vocabulary
**     (id 0 is "!", id 220 is "Ġ");
**   - text is first cut into pieces by the Llama 3 pre-tokenizer regex (below), merges never
**     cross pieces, and within a piece the adjacent pair with the lowest merge rank is merged
**     first (leftmost on ties) until no ranked pair is left;
**   - "ignore_merges": a piece whose whole text is already a vocabulary entry becomes that token
**     directly (Llama 3 sets this; llama.cpp's llama-bpe pre-tokenizer does the same).
**
** The pre-tokenizer is the Llama 3 pattern
**     (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
** implemented by hand for ASCII text (letters a-z A-Z, digits 0-9, \s = space \t \n \v \f \r);
** bytes >= 0x80 are treated as letters, which is only an approximation of \p{L} - callers that
** need exact agreement with the real library use ASCII text.
*/
#ifndef MODELQ_MKFIXTURE_BPE_H
#define MODELQ_MKFIXTURE_BPE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Code point that stands for byte b in byte-level BPE (GPT-2 bytes_to_unicode). */
static inline uint32_t mkf_byte_to_cp(uint8_t b)
{
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) return b;
    /* the n-th "unprintable" byte in increasing byte order maps to 256 + n */
    uint32_t n = b <= 32 ? b : b <= 160 ? 33u + (b - 127u) : 67u;
    return 256u + n;
}

/* Token id of the base token for byte b: its rank among the 256 code points above. */
static inline int32_t mkf_byte_token(uint8_t b)
{
    uint32_t cp = mkf_byte_to_cp(b);
    int32_t rank = 0;
    for (unsigned o = 0; o < 256; o++)
        if (mkf_byte_to_cp((uint8_t)o) < cp) rank++;
    return rank;
}

/* Writes the UTF-8 encoding of the byte-level text of `len` bytes to out (3*len+1 bytes suffice:
** every code point used is below U+0800). Returns the length written (NUL-terminated). */
static inline size_t mkf_bytes_to_bytelevel(const uint8_t *bytes, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        uint32_t cp = mkf_byte_to_cp(bytes[i]);
        if (cp < 0x80) {
            out[o++] = (char)cp;
        } else {
            out[o++] = (char)(0xC0 | (cp >> 6));
            out[o++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    out[o] = '\0';
    return o;
}

static inline int mkf_is_letter(uint8_t c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80; }
static inline int mkf_is_digit(uint8_t c) { return c >= '0' && c <= '9'; }
static inline int mkf_is_space(uint8_t c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
static inline int mkf_is_nl(uint8_t c) { return c == '\n' || c == '\r'; }
static inline int mkf_is_other(uint8_t c) { return !mkf_is_space(c) && !mkf_is_letter(c) && !mkf_is_digit(c); }
static inline uint8_t mkf_lower(uint8_t c) { return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c; }

/* End of the pre-tokenizer piece that starts at s[pos] (pos < len); the alternatives are tried in
** the regex's order, each with the regex's greedy/backtracking result. */
static inline size_t mkf_pretok_next(const uint8_t *s, size_t len, size_t pos)
{
    size_t p = pos;
    /* (?i:'s|'t|'re|'ve|'m|'ll|'d) */
    if (s[p] == '\'' && p + 1 < len) {
        uint8_t a = mkf_lower(s[p + 1]), b = p + 2 < len ? mkf_lower(s[p + 2]) : 0;
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return p + 2;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return p + 3;
    }
    /* [^\r\n\p{L}\p{N}]?\p{L}+ */
    {
        size_t q = p;
        if (!mkf_is_nl(s[q]) && !mkf_is_letter(s[q]) && !mkf_is_digit(s[q]) && q + 1 < len && mkf_is_letter(s[q + 1])) q++;
        if (mkf_is_letter(s[q])) {
            while (q < len && mkf_is_letter(s[q])) q++;
            return q;
        }
    }
    /* \p{N}{1,3} */
    if (mkf_is_digit(s[p])) {
        size_t q = p;
        while (q < len && q < p + 3 && mkf_is_digit(s[q])) q++;
        return q;
    }
    /* ' ?[^\s\p{L}\p{N}]+[\r\n]*' */
    {
        size_t q = p;
        if (s[q] == ' ' && q + 1 < len && mkf_is_other(s[q + 1])) q++;
        if (mkf_is_other(s[q])) {
            while (q < len && mkf_is_other(s[q])) q++;
            while (q < len && mkf_is_nl(s[q])) q++;
            return q;
        }
    }
    if (mkf_is_space(s[p])) {
        size_t e = p;
        while (e < len && mkf_is_space(s[e])) e++;
        /* \s*[\r\n]+ : backtracking ends the match just after the run's last newline */
        size_t last_nl = e;
        for (size_t q = p; q < e; q++)
            if (mkf_is_nl(s[q])) last_nl = q;
        if (last_nl != e) return last_nl + 1;
        /* \s+(?!\S) : the whole run at the end of text, else the run minus its last character */
        if (e == len) return e;
        if (e - p >= 2) return e - 1;
        /* \s+ */
        return e;
    }
    return p + 1; /* unreachable for the classes above; keeps progress guaranteed */
}

/* One merge rule: tokens `left` and `right` become `result`; the array index is the rank. */
struct mkf_merge {
    int32_t left, right, result;
};

/* A vocabulary entry's raw bytes (not the byte-level text). */
struct mkf_token {
    const uint8_t *bytes;
    size_t len;
};

/*
** Encodes one pre-tokenizer piece: ignore_merges lookup in vocab[0..n_vocab), else byte tokens
** merged by rank. `ids` needs room for `len` entries. Returns the token count.
*/
static inline size_t mkf_bpe_piece(const struct mkf_token *vocab, int32_t n_vocab,
                                   const struct mkf_merge *merges, size_t n_merges,
                                   const uint8_t *piece, size_t len, int32_t *ids)
{
    for (int32_t t = 0; t < n_vocab; t++)
        if (vocab[t].len == len && memcmp(vocab[t].bytes, piece, len) == 0) {
            ids[0] = t;
            return 1;
        }
    size_t n = len;
    for (size_t i = 0; i < len; i++) ids[i] = mkf_byte_token(piece[i]);
    for (;;) {
        size_t best_rank = n_merges, best_pos = 0;
        for (size_t i = 0; i + 1 < n; i++)
            for (size_t r = 0; r < best_rank; r++)
                if (merges[r].left == ids[i] && merges[r].right == ids[i + 1]) {
                    best_rank = r;
                    best_pos = i;
                    break;
                }
        if (best_rank == n_merges) return n;
        ids[best_pos] = merges[best_rank].result;
        memmove(ids + best_pos + 1, ids + best_pos + 2, (n - best_pos - 2) * sizeof *ids);
        n--;
    }
}

/* Encodes text (no special tokens added); `ids` needs room for `len` entries. Returns the count. */
static inline size_t mkf_bpe_encode(const struct mkf_token *vocab, int32_t n_vocab,
                                    const struct mkf_merge *merges, size_t n_merges,
                                    const uint8_t *text, size_t len, int32_t *ids)
{
    size_t n = 0;
    for (size_t pos = 0; pos < len;) {
        size_t end = mkf_pretok_next(text, len, pos);
        n += mkf_bpe_piece(vocab, n_vocab, merges, n_merges, text + pos, end - pos, ids + n);
        pos = end;
    }
    return n;
}

#endif /* MODELQ_MKFIXTURE_BPE_H */
