/*
** json_strict.h - a strict validating scan of JSON text before cJSON builds the tree.
**
** cJSON is lenient where untrusted headers must not be: it skips any byte <= 0x20 as whitespace
** (so NUL padding passes), accepts raw control characters in strings, truncates names at an
** escaped \u0000, and turns every number into a double ("1.0", "-0", "1e3" and 2^64 all look like
** integers). This scan enforces RFC 8259 exactly, as serde_json does for safetensors, plus:
**   - only JSON whitespace (space, tab, LF, CR) around tokens;
**   - the text must be valid UTF-8, with no escaped NUL and no lone surrogate escapes;
**   - numbers, when `integers_only`, must be unsigned decimal integers without leading zeros and
**     at most 2^53 (so cJSON's double holds them exactly);
**   - nesting at most `max_depth` levels;
**   - at most `max_nodes` values (memory: cJSON allocates one 64-byte node per value, plus its key
**     and string copies, so a text of tiny values ("",0,[]) costs about 40x its size as a tree;
**     the cap bounds the tree, the byte limits of the callers only bound the text);
**   - with `unique_keys`, no object (at any depth) names a key twice, compared after unescaping
**     ("a" and "\u0061" are the same key): Python's json keeps the last, cJSON finds the first,
**     so such a file means two different things to two readers.
** On failure `check` (a static rule name) and `where` (byte offset) say what and where.
*/
#ifndef MODELQ_JSON_STRICT_H
#define MODELQ_JSON_STRICT_H

#include <stdbool.h>
#include <stddef.h>

struct json_strict_result {
    const char *check;  /* NULL when valid */
    const char *detail; /* human-readable reason */
    size_t where;       /* byte offset of the problem */
    char key[128];      /* the object key whose value holds the problem ("" at the root) */
    char top_key[128];  /* the key of the root object's member holding the problem ("" if none) */
    size_t nodes;       /* values scanned (all of them when valid) */
};

struct json_strict_rules {
    bool integers_only; /* numbers must be unsigned integers <= 2^53 */
    bool unique_keys;   /* refuse a key twice in one object ("json-duplicate-key", key in `key`) */
    int max_depth;      /* nesting levels */
    size_t max_nodes;   /* values at most ("json-nodes"); 0 = no cap */
};

/* Largest integer accepted: 2^53, the largest a double counts exactly to. */
#define JSON_STRICT_MAX_INT 9007199254740992ull

/* True when `text[0..len)` is one JSON object obeying `rules`; else false with `res` filled in.
** Allocates only for `unique_keys` (the keys of the open objects); out of memory is the check
** "json-alloc". */
bool json_strict_check(const char *text, size_t len, const struct json_strict_rules *rules,
                       struct json_strict_result *res);

/* True when `s[0..len)` is well-formed UTF-8 (no overlongs, surrogates or values > U+10FFFF). */
bool utf8_valid(const unsigned char *s, size_t len, size_t *bad_at);

#endif
