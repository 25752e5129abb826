/* json_strict.c - RFC 8259 scan with the stricter rules listed in json_strict.h. */
#include "json_strict.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

bool utf8_valid(const unsigned char *s, size_t len, size_t *bad_at)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else {
            goto bad;
        }
        if (len - i <= n) goto bad;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80) goto bad;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            goto bad;
        i += n + 1;
    }
    return true;
bad:
    if (bad_at) *bad_at = i;
    return false;
}

struct scan {
    const char *p;
    size_t len, pos;
    const struct json_strict_rules *rules;
    struct json_strict_result *res;
    size_t key_at, key_len; /* the innermost key being scanned (raw, unescaped) */
    size_t top_at, top_len; /* the root object's current key */
    size_t nodes;           /* values seen */
    /* unique_keys: offsets of the keys (first byte after the quote) of every open object, the
    ** innermost object's last; each object sorts and compares its own range when it closes */
    size_t *keys;
    size_t n_keys, cap_keys;
};

static bool fail(struct scan *s, const char *check, const char *detail)
{
    if (!s->res->check) {
        s->res->check = check;
        s->res->detail = detail;
        s->res->where = s->pos;
        size_t n = s->key_len < sizeof s->res->key - 1 ? s->key_len : sizeof s->res->key - 1;
        memcpy(s->res->key, s->p + s->key_at, n);
        s->res->key[n] = '\0';
        n = s->top_len < sizeof s->res->top_key - 1 ? s->top_len : sizeof s->res->top_key - 1;
        memcpy(s->res->top_key, s->p + s->top_at, n);
        s->res->top_key[n] = '\0';
    }
    return false;
}

static void skip_ws(struct scan *s)
{
    while (s->pos < s->len) {
        char c = s->p[s->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        s->pos++;
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool read_u4(struct scan *s, unsigned *out)
{
    if (s->len - s->pos < 4) return fail(s, "json-syntax", "short \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(s->p[s->pos + (size_t)i]);
        if (h < 0) return fail(s, "json-syntax", "bad \\u escape");
        v = v * 16 + (unsigned)h;
    }
    s->pos += 4;
    *out = v;
    return true;
}

static bool scan_string(struct scan *s)
{
    s->pos++; /* opening quote */
    while (s->pos < s->len) {
        unsigned char c = (unsigned char)s->p[s->pos];
        if (c == '"') {
            s->pos++;
            return true;
        }
        if (c < 0x20) return fail(s, "json-syntax", "control character inside a string");
        if (c != '\\') {
            s->pos++;
            continue;
        }
        s->pos++;
        if (s->pos >= s->len) break;
        char e = s->p[s->pos++];
        if (e == 'u') {
            unsigned u;
            if (!read_u4(s, &u)) return false;
            if (u == 0) return fail(s, "json-string-nul", "escaped NUL (\\u0000) in a string");
            if (u >= 0xDC00 && u <= 0xDFFF) return fail(s, "json-syntax", "lone low surrogate escape");
            if (u >= 0xD800 && u <= 0xDBFF) {
                unsigned lo;
                if (s->len - s->pos < 2 || s->p[s->pos] != '\\' || s->p[s->pos + 1] != 'u')
                    return fail(s, "json-syntax", "lone high surrogate escape");
                s->pos += 2;
                if (!read_u4(s, &lo)) return false;
                if (lo < 0xDC00 || lo > 0xDFFF) return fail(s, "json-syntax", "lone high surrogate escape");
            }
        } else if (e != '"' && e != '\\' && e != '/' && e != 'b' && e != 'f' && e != 'n' && e != 'r' &&
                   e != 't') {
            return fail(s, "json-syntax", "invalid escape in a string");
        }
    }
    return fail(s, "json-syntax", "unterminated string");
}

static bool scan_number(struct scan *s)
{
    size_t start = s->pos;
    bool neg = false, frac = false;
    if (s->p[s->pos] == '-') {
        neg = true;
        s->pos++;
    }
    if (s->pos >= s->len || s->p[s->pos] < '0' || s->p[s->pos] > '9')
        return fail(s, "json-syntax", "bad number");
    if (s->p[s->pos] == '0' && s->pos + 1 < s->len && s->p[s->pos + 1] >= '0' && s->p[s->pos + 1] <= '9')
        return fail(s, "json-syntax", "number with a leading zero");
    uint64_t v = 0;
    bool big = false;
    while (s->pos < s->len && s->p[s->pos] >= '0' && s->p[s->pos] <= '9') {
        unsigned d = (unsigned)(s->p[s->pos] - '0');
        if (v > (UINT64_MAX - d) / 10) big = true;
        else v = v * 10 + d;
        s->pos++;
    }
    if (s->pos < s->len && s->p[s->pos] == '.') {
        frac = true;
        s->pos++;
        if (s->pos >= s->len || s->p[s->pos] < '0' || s->p[s->pos] > '9') return fail(s, "json-syntax", "bad number");
        while (s->pos < s->len && s->p[s->pos] >= '0' && s->p[s->pos] <= '9') s->pos++;
    }
    if (s->pos < s->len && (s->p[s->pos] == 'e' || s->p[s->pos] == 'E')) {
        frac = true;
        s->pos++;
        if (s->pos < s->len && (s->p[s->pos] == '+' || s->p[s->pos] == '-')) s->pos++;
        if (s->pos >= s->len || s->p[s->pos] < '0' || s->p[s->pos] > '9') return fail(s, "json-syntax", "bad number");
        while (s->pos < s->len && s->p[s->pos] >= '0' && s->p[s->pos] <= '9') s->pos++;
    }
    if (s->rules->integers_only) {
        size_t end = s->pos;
        s->pos = start;
        if (neg) return fail(s, "json-integer", "negative number where a size is expected");
        if (frac) return fail(s, "json-integer", "fraction or exponent where an integer is expected");
        if (big || v > JSON_STRICT_MAX_INT) return fail(s, "json-integer-range", "integer above 2^53");
        s->pos = end;
    }
    return true;
}

static bool scan_literal(struct scan *s, const char *lit, size_t n)
{
    if (s->len - s->pos < n) return fail(s, "json-syntax", "bad literal");
    for (size_t i = 0; i < n; i++)
        if (s->p[s->pos + i] != lit[i]) return fail(s, "json-syntax", "bad literal");
    s->pos += n;
    return true;
}

/* Next code point of the (already validated) JSON string whose text starts at p[*at], escapes
** decoded; -1 at its closing quote. */
static int32_t str_next(const char *p, size_t *at)
{
    unsigned char c = (unsigned char)p[*at];
    if (c == '"') return -1;
    if (c != '\\') {
        if (c < 0x80) {
            (*at)++;
            return c;
        }
        int n = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : 1;
        uint32_t cp = c & (0x3Fu >> n);
        for (int k = 1; k <= n; k++) cp = (cp << 6) | ((unsigned char)p[*at + (size_t)k] & 0x3F);
        *at += (size_t)n + 1;
        return (int32_t)cp;
    }
    char e = p[*at + 1];
    *at += 2;
    switch (e) {
    case 'b': return '\b';
    case 'f': return '\f';
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    case 'u': break;
    default: return e; /* '"', '\\', '/' */
    }
    uint32_t u = 0, lo = 0;
    for (int i = 0; i < 4; i++) u = u * 16 + (uint32_t)hexval(p[*at + (size_t)i]);
    *at += 4;
    if (u < 0xD800 || u > 0xDBFF) return (int32_t)u;
    for (int i = 0; i < 4; i++) lo = lo * 16 + (uint32_t)hexval(p[*at + 2 + (size_t)i]); /* "\\uDCxx" */
    *at += 6;
    return (int32_t)(0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00));
}

/* Orders two keys (offsets into the text) by their unescaped code points. */
static int key_cmp(const void *a, const void *b, void *text)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    for (;;) {
        int32_t cx = str_next(text, &x), cy = str_next(text, &y);
        if (cx != cy) return cx < cy ? -1 : 1;
        if (cx < 0) return 0;
    }
}

static bool push_key(struct scan *s, size_t at)
{
    if (s->n_keys == s->cap_keys) {
        size_t cap = s->cap_keys ? s->cap_keys * 2 : 64;
        size_t *k = cap > SIZE_MAX / sizeof *k ? NULL : realloc(s->keys, cap * sizeof *k);
        if (!k) return fail(s, "json-alloc", "out of memory checking for duplicate keys");
        s->keys = k;
        s->cap_keys = cap;
    }
    s->keys[s->n_keys++] = at;
    return true;
}

/* The object whose keys are keys[base..n_keys) just closed: a key twice is an error naming it. */
static bool check_unique(struct scan *s, size_t base, int depth)
{
    size_t n = s->n_keys - base, *k = s->keys + base;
    qsort_r(k, n, sizeof *k, key_cmp, (void *)s->p);
    for (size_t i = 1; i < n; i++) {
        if (key_cmp(&k[i - 1], &k[i], (void *)s->p) != 0) continue;
        size_t at = k[i - 1] > k[i] ? k[i - 1] : k[i], end = at;
        while (str_next(s->p, &end) >= 0) continue;
        s->key_at = at;
        s->key_len = end - at;
        if (depth == 1) {
            s->top_at = at;
            s->top_len = end - at;
        }
        s->pos = at - 1;
        return fail(s, "json-duplicate-key", "a key appears twice in one object");
    }
    s->n_keys = base;
    return true;
}

static bool scan_value(struct scan *s, int depth);

static bool scan_container(struct scan *s, int depth, char close)
{
    if (depth > s->rules->max_depth) return fail(s, "json-depth", "nested too deeply");
    size_t base = s->n_keys;
    bool unique = close == '}' && s->rules->unique_keys;
    s->pos++;
    skip_ws(s);
    if (s->pos < s->len && s->p[s->pos] == close) {
        s->pos++;
        return true;
    }
    for (;;) {
        skip_ws(s);
        if (close == '}') {
            if (s->pos >= s->len || s->p[s->pos] != '"') return fail(s, "json-syntax", "expected a string key");
            size_t key_start = s->pos + 1;
            if (!scan_string(s)) return false;
            s->key_at = key_start;
            s->key_len = s->pos - 1 - key_start;
            if (depth == 1) {
                s->top_at = s->key_at;
                s->top_len = s->key_len;
            }
            if (unique && !push_key(s, key_start)) return false;
            skip_ws(s);
            if (s->pos >= s->len || s->p[s->pos] != ':') return fail(s, "json-syntax", "expected ':'");
            s->pos++;
        }
        if (!scan_value(s, depth)) return false;
        skip_ws(s);
        if (s->pos >= s->len) return fail(s, "json-syntax", "unexpected end of text");
        char c = s->p[s->pos++];
        if (c == close) return !unique || check_unique(s, base, depth);
        if (c != ',') {
            s->pos--;
            return fail(s, "json-syntax", "expected ',' or a closing bracket");
        }
    }
}

static bool scan_value(struct scan *s, int depth)
{
    skip_ws(s);
    if (s->pos >= s->len) return fail(s, "json-syntax", "unexpected end of text");
    if (++s->nodes > s->rules->max_nodes && s->rules->max_nodes)
        return fail(s, "json-nodes", "more values than the limit for this file");
    char c = s->p[s->pos];
    switch (c) {
    case '{': return scan_container(s, depth + 1, '}');
    case '[': return scan_container(s, depth + 1, ']');
    case '"': return scan_string(s);
    case 't': return scan_literal(s, "true", 4);
    case 'f': return scan_literal(s, "false", 5);
    case 'n': return scan_literal(s, "null", 4);
    default:
        if (c == '-' || (c >= '0' && c <= '9')) return scan_number(s);
        return fail(s, "json-syntax", "unexpected character");
    }
}

static bool scan_document(struct scan *s)
{
    size_t bad;
    if (!utf8_valid((const unsigned char *)s->p, s->len, &bad)) {
        s->pos = bad;
        return fail(s, "header-utf8", "invalid UTF-8");
    }
    skip_ws(s);
    if (s->pos >= s->len || s->p[s->pos] != '{') return fail(s, "header-not-object", "the JSON root is not an object");
    if (!scan_value(s, 0)) return false;
    skip_ws(s);
    if (s->pos != s->len) return fail(s, "header-trailing", "bytes other than whitespace after the JSON object");
    return true;
}

bool json_strict_check(const char *text, size_t len, const struct json_strict_rules *rules,
                       struct json_strict_result *res)
{
    struct scan s;
    memset(&s, 0, sizeof s);
    s.p = text;
    s.len = len;
    s.rules = rules;
    s.res = res;
    memset(res, 0, sizeof *res);
    bool ok = scan_document(&s);
    res->nodes = s.nodes;
    free(s.keys);
    return ok;
}
