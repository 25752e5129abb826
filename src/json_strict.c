/* json_strict.c - RFC 8259 scan with the stricter rules listed in json_strict.h. */
#include "json_strict.h"

#include <stdint.h>
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
    bool integers_only;
    int max_depth;
    struct json_strict_result *res;
    size_t key_at, key_len; /* the innermost key being scanned (raw, unescaped) */
    size_t top_at, top_len; /* the root object's current key */
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
    if (s->integers_only) {
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

static bool scan_value(struct scan *s, int depth);

static bool scan_container(struct scan *s, int depth, char close)
{
    if (depth > s->max_depth) return fail(s, "json-depth", "nested too deeply");
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
            skip_ws(s);
            if (s->pos >= s->len || s->p[s->pos] != ':') return fail(s, "json-syntax", "expected ':'");
            s->pos++;
        }
        if (!scan_value(s, depth)) return false;
        skip_ws(s);
        if (s->pos >= s->len) return fail(s, "json-syntax", "unexpected end of text");
        char c = s->p[s->pos++];
        if (c == close) return true;
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

bool json_strict_check(const char *text, size_t len, bool integers_only, int max_depth,
                       struct json_strict_result *res)
{
    struct scan s = {text, len, 0, integers_only, max_depth, res, 0, 0, 0, 0};
    res->key[0] = '\0';
    res->top_key[0] = '\0';
    res->check = NULL;
    res->detail = NULL;
    res->where = 0;
    size_t bad;
    if (!utf8_valid((const unsigned char *)text, len, &bad)) {
        s.pos = bad;
        return fail(&s, "header-utf8", "invalid UTF-8");
    }
    skip_ws(&s);
    if (s.pos >= len || text[s.pos] != '{') return fail(&s, "header-not-object", "the JSON root is not an object");
    if (!scan_value(&s, 0)) return false;
    skip_ws(&s);
    if (s.pos != len) return fail(&s, "header-trailing", "bytes other than whitespace after the JSON object");
    return true;
}
