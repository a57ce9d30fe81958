/* Strict recursive-descent JSON reader (see json.h). Every read of the input
 * goes through peek()/the bounds in the scanners, so nothing past `len` is
 * touched; errors carry the byte offset where the problem was seen. */
#include "json.h"

#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct parser {
  const unsigned char *s;
  size_t len;
  size_t pos;
} parser;

static reid_status fail_at(const parser *p, size_t at, const char *what) {
  if (at >= p->len) return reid_fail(REID_EFORMAT, "offset %zu: %s (at end of input)", at, what);
  unsigned char c = p->s[at];
  if (c >= 0x20 && c < 0x7f)
    return reid_fail(REID_EFORMAT, "offset %zu: %s (at '%c')", at, what, c);
  return reid_fail(REID_EFORMAT, "offset %zu: %s (at byte 0x%02x)", at, what, c);
}

static int peek(const parser *p) {
  return p->pos < p->len ? p->s[p->pos] : -1;
}

static void skip_ws(parser *p) {
  while (p->pos < p->len) {
    unsigned char c = p->s[p->pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    p->pos++;
  }
}

/* Consumes the exact literal `word` (true, false, null). */
static int match_word(parser *p, const char *word) {
  size_t n = strlen(word);
  if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0) return 0;
  p->pos += n;
  return 1;
}

/* ---- numbers ---------------------------------------------------------- */

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static void c_locale_init(void) {
  c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

static int is_digit(int c) {
  return c >= '0' && c <= '9';
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static reid_status parse_number(parser *p, json_value *v) {
  size_t start = p->pos;
  int negative = 0, integral = 1, overflow = 0;
  uint64_t mag = 0;
  if (peek(p) == '-') {
    negative = 1;
    p->pos++;
  }
  if (peek(p) == '0') {
    p->pos++;
    if (is_digit(peek(p))) return fail_at(p, p->pos, "leading zero in number");
  } else if (is_digit(peek(p))) {
    while (is_digit(peek(p))) {
      uint64_t d = (uint64_t)(peek(p) - '0');
      if (mag > (UINT64_MAX - d) / 10)
        overflow = 1;
      else
        mag = mag * 10 + d;
      p->pos++;
    }
  } else {
    return fail_at(p, p->pos, "expected a digit");
  }
  if (peek(p) == '.') {
    integral = 0;
    p->pos++;
    if (!is_digit(peek(p))) return fail_at(p, p->pos, "expected a digit after '.'");
    while (is_digit(peek(p))) p->pos++;
  }
  if (peek(p) == 'e' || peek(p) == 'E') {
    integral = 0;
    p->pos++;
    if (peek(p) == '+' || peek(p) == '-') p->pos++;
    if (!is_digit(peek(p))) return fail_at(p, p->pos, "expected a digit in exponent");
    while (is_digit(peek(p))) p->pos++;
  }

  v->type = JSON_NUMBER;
  if (integral && !overflow) {
    if (negative && mag <= (uint64_t)INT64_MAX + 1) {
      v->is_int = 1;
      v->i = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    } else if (!negative && mag <= (uint64_t)INT64_MAX) {
      v->is_int = 1;
      v->i = (int64_t)mag;
    }
  }

  /* the input need not be NUL-terminated: convert a copy */
  size_t n = p->pos - start;
  char small[64];
  char *buf = n < sizeof small ? small : malloc(n + 1);
  if (!buf) return reid_fail(REID_ENOMEM, "out of memory parsing a %zu-byte number", n);
  memcpy(buf, p->s + start, n);
  buf[n] = '\0';
  pthread_once(&c_locale_once, c_locale_init);
  if (c_locale) {
    v->num = strtod_l(buf, NULL, c_locale);
  } else { /* no C locale object: integers are still exact, others approximate */
    v->num = v->is_int ? (double)v->i : strtod(buf, NULL);
  }
  if (buf != small) free(buf);
  if (isinf(v->num)) return fail_at(p, start, "number out of double range");
  return REID_OK;
}

/* ---- strings ---------------------------------------------------------- */

static int hex4(const unsigned char *s, uint32_t *out) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    unsigned char c = s[i];
    uint32_t d;
    if (c >= '0' && c <= '9')
      d = (uint32_t)(c - '0');
    else if (c >= 'a' && c <= 'f')
      d = (uint32_t)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
      d = (uint32_t)(c - 'A' + 10);
    else
      return 0;
    v = v * 16 + d;
  }
  *out = v;
  return 1;
}

static size_t put_utf8(char *o, uint32_t cp) {
  if (cp < 0x80) {
    o[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (char)(0xc0 | (cp >> 6));
    o[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (char)(0xe0 | (cp >> 12));
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  o[0] = (char)(0xf0 | (cp >> 18));
  o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
  o[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

/* Length (1-4) of the valid UTF-8 sequence at s[0, n), or 0 if invalid
 * (overlong forms, surrogates and code points above U+10FFFF are invalid). */
static size_t utf8_valid(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  if (c < 0x80) return 1;
  size_t need;
  unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
  if (c >= 0xc2 && c <= 0xdf)
    need = 2;
  else if (c == 0xe0)
    need = 3, lo = 0xa0;
  else if (c >= 0xe1 && c <= 0xef)
    need = 3, hi = c == 0xed ? 0x9f : 0xbf;
  else if (c == 0xf0)
    need = 4, lo = 0x90;
  else if (c >= 0xf1 && c <= 0xf3)
    need = 4;
  else if (c == 0xf4)
    need = 4, hi = 0x8f;
  else
    return 0;
  if (n < need || s[1] < lo || s[1] > hi) return 0;
  for (size_t k = 2; k < need; k++)
    if ((s[k] & 0xc0) != 0x80) return 0;
  return need;
}

/* Parses a string starting at the opening quote into a new NUL-terminated buffer. */
static reid_status parse_string(parser *p, char **out, size_t *out_len) {
  size_t open = p->pos;
  p->pos++; /* opening quote */
  /* find the closing quote to size the buffer: the decoded text is never longer */
  size_t end = p->pos;
  while (end < p->len && p->s[end] != '"') end += p->s[end] == '\\' ? 2 : 1;
  if (end >= p->len) return fail_at(p, open, "unterminated string");
  char *o = malloc(end - p->pos + 1);
  if (!o) return reid_fail(REID_ENOMEM, "out of memory for a %zu-byte string", end - p->pos);
  size_t n = 0;
  while (p->pos < end) {
    unsigned char c = p->s[p->pos];
    if (c < 0x20) {
      free(o);
      return fail_at(p, p->pos, "control character in string");
    }
    if (c >= 0x80) {
      size_t k = utf8_valid(p->s + p->pos, end - p->pos);
      if (!k) {
        free(o);
        return fail_at(p, p->pos, "invalid UTF-8 in string");
      }
      memcpy(o + n, p->s + p->pos, k);
      n += k;
      p->pos += k;
      continue;
    }
    if (c != '\\') {
      o[n++] = (char)c;
      p->pos++;
      continue;
    }
    size_t esc = p->pos;
    char e = (char)p->s[p->pos + 1]; /* exists: the scan above stepped over it */
    p->pos += 2;
    switch (e) {
    case '"': o[n++] = '"'; break;
    case '\\': o[n++] = '\\'; break;
    case '/': o[n++] = '/'; break;
    case 'b': o[n++] = '\b'; break;
    case 'f': o[n++] = '\f'; break;
    case 'n': o[n++] = '\n'; break;
    case 'r': o[n++] = '\r'; break;
    case 't': o[n++] = '\t'; break;
    case 'u': {
      uint32_t cp, lo;
      if (end - p->pos < 4 || !hex4(p->s + p->pos, &cp)) {
        free(o);
        return fail_at(p, esc, "bad \\u escape (need 4 hex digits)");
      }
      p->pos += 4;
      if (cp >= 0xdc00 && cp <= 0xdfff) {
        free(o);
        return fail_at(p, esc, "lone low surrogate in \\u escape");
      }
      if (cp >= 0xd800 && cp <= 0xdbff) {
        if (end - p->pos < 6 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u' ||
            !hex4(p->s + p->pos + 2, &lo) || lo < 0xdc00 || lo > 0xdfff) {
          free(o);
          return fail_at(p, esc, "high surrogate not followed by a low surrogate");
        }
        p->pos += 6;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
      }
      n += put_utf8(o + n, cp);
      break;
    }
    default: free(o); return fail_at(p, esc, "unknown escape in string");
    }
  }
  p->pos = end + 1; /* closing quote */
  o[n] = '\0';
  *out = o;
  *out_len = n;
  return REID_OK;
}

/* ---- values ----------------------------------------------------------- */

static void free_inner(json_value *v) {
  if (!v) return;
  free(v->str);
  for (size_t i = 0; i < v->count; i++) {
    free_inner(&v->items[i]);
    if (v->keys) free(v->keys[i]);
  }
  free(v->items);
  free(v->keys);
  free(v->key_lens);
}

void json_free(json_value *v) {
  free_inner(v);
  free(v);
}

/* Makes room for one more element (and key, for objects). */
static reid_status grow(json_value *v, size_t *cap, int with_keys) {
  if (v->count < *cap) return REID_OK;
  size_t nc = *cap ? *cap * 2 : 4;
  json_value *items = realloc(v->items, nc * sizeof *items);
  if (!items) return reid_fail(REID_ENOMEM, "out of memory growing a JSON container");
  v->items = items;
  if (with_keys) {
    char **keys = realloc(v->keys, nc * sizeof *keys);
    if (!keys) return reid_fail(REID_ENOMEM, "out of memory growing a JSON object");
    v->keys = keys;
    size_t *lens = realloc(v->key_lens, nc * sizeof *lens);
    if (!lens) return reid_fail(REID_ENOMEM, "out of memory growing a JSON object");
    v->key_lens = lens;
  }
  *cap = nc;
  return REID_OK;
}

static reid_status parse_value(parser *p, json_value *v, int depth);

static reid_status parse_array(parser *p, json_value *v, int depth) {
  size_t cap = 0;
  v->type = JSON_ARRAY;
  p->pos++; /* [ */
  skip_ws(p);
  if (peek(p) == ']') {
    p->pos++;
    return REID_OK;
  }
  for (;;) {
    REID_TRY(grow(v, &cap, 0));
    json_value *item = &v->items[v->count];
    memset(item, 0, sizeof *item);
    v->count++; /* counted before parsing so a failure frees what was built */
    REID_TRY(parse_value(p, item, depth + 1));
    skip_ws(p);
    if (peek(p) == ',') {
      p->pos++;
      continue;
    }
    if (peek(p) == ']') {
      p->pos++;
      return REID_OK;
    }
    return fail_at(p, p->pos, "expected ',' or ']' in array");
  }
}

static reid_status parse_object(parser *p, json_value *v, int depth) {
  size_t cap = 0;
  v->type = JSON_OBJECT;
  p->pos++; /* { */
  skip_ws(p);
  if (peek(p) == '}') {
    p->pos++;
    return REID_OK;
  }
  for (;;) {
    skip_ws(p);
    if (peek(p) != '"') return fail_at(p, p->pos, "expected a string key in object");
    REID_TRY(grow(v, &cap, 1));
    json_value *item = &v->items[v->count];
    memset(item, 0, sizeof *item);
    v->keys[v->count] = NULL;
    v->key_lens[v->count] = 0;
    v->count++;
    REID_TRY(parse_string(p, &v->keys[v->count - 1], &v->key_lens[v->count - 1]));
    skip_ws(p);
    if (peek(p) != ':') return fail_at(p, p->pos, "expected ':' after object key");
    p->pos++;
    REID_TRY(parse_value(p, item, depth + 1));
    skip_ws(p);
    if (peek(p) == ',') {
      p->pos++;
      continue;
    }
    if (peek(p) == '}') {
      p->pos++;
      return REID_OK;
    }
    return fail_at(p, p->pos, "expected ',' or '}' in object");
  }
}

static reid_status parse_value(parser *p, json_value *v, int depth) {
  skip_ws(p);
  v->offset = p->pos;
  if (depth > JSON_MAX_DEPTH) return fail_at(p, p->pos, "nesting deeper than JSON_MAX_DEPTH");
  int c = peek(p);
  switch (c) {
  case '{': return parse_object(p, v, depth);
  case '[': return parse_array(p, v, depth);
  case '"': v->type = JSON_STRING; return parse_string(p, &v->str, &v->str_len);
  case 't':
  case 'f':
    if (match_word(p, "true") || match_word(p, "false")) {
      v->type = JSON_BOOL;
      v->boolean = c == 't';
      return REID_OK;
    }
    break;
  case 'n':
    if (match_word(p, "null")) {
      v->type = JSON_NULL;
      return REID_OK;
    }
    break;
  default:
    if (c == '-' || is_digit(c)) return parse_number(p, v);
  }
  return fail_at(p, p->pos, "expected a JSON value");
}

reid_status json_parse(const char *text, size_t len, json_value **out) {
  *out = NULL;
  if (!text && len) return reid_fail(REID_EINVAL, "json_parse: NULL text");
  json_value *v = calloc(1, sizeof *v);
  if (!v) return reid_fail(REID_ENOMEM, "out of memory");
  parser p = {(const unsigned char *)text, len, 0};
  reid_status st = parse_value(&p, v, 1);
  if (st == REID_OK) {
    skip_ws(&p);
    if (p.pos != p.len) st = fail_at(&p, p.pos, "unexpected data after the JSON value");
  }
  if (st != REID_OK) {
    json_free(v);
    return st;
  }
  *out = v;
  return REID_OK;
}

/* ---- accessors -------------------------------------------------------- */

const json_value *json_get(const json_value *obj, const char *key) {
  if (!obj || obj->type != JSON_OBJECT) return NULL;
  size_t n = strlen(key);
  for (size_t i = 0; i < obj->count; i++)
    if (obj->key_lens[i] == n && memcmp(obj->keys[i], key, n) == 0) return &obj->items[i];
  return NULL;
}

int json_get_int64(const json_value *v, int64_t *out) {
  if (!v || v->type != JSON_NUMBER || !v->is_int) return 0;
  *out = v->i;
  return 1;
}

const char *json_type_name(json_type t) {
  switch (t) {
  case JSON_NULL: return "null";
  case JSON_BOOL: return "boolean";
  case JSON_NUMBER: return "number";
  case JSON_STRING: return "string";
  case JSON_ARRAY: return "array";
  case JSON_OBJECT: return "object";
  }
  return "?";
}

/* ---- writing ---------------------------------------------------------- */

size_t json_escape(char *dst, size_t cap, const char *s, size_t len) {
  static const char hex[] = "0123456789abcdef";
  size_t n = 0;
#define EMIT(ch)                                                                                   \
  do {                                                                                             \
    if (n + 1 < cap) dst[n] = (char)(ch);                                                          \
    n++;                                                                                           \
  } while (0)
  EMIT('"');
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    const char *short_esc = NULL;
    switch (c) {
    case '"': short_esc = "\\\""; break;
    case '\\': short_esc = "\\\\"; break;
    case '\b': short_esc = "\\b"; break;
    case '\f': short_esc = "\\f"; break;
    case '\n': short_esc = "\\n"; break;
    case '\r': short_esc = "\\r"; break;
    case '\t': short_esc = "\\t"; break;
    }
    if (short_esc) {
      EMIT(short_esc[0]);
      EMIT(short_esc[1]);
    } else if (c < 0x20) {
      EMIT('\\');
      EMIT('u');
      EMIT('0');
      EMIT('0');
      EMIT(hex[c >> 4]);
      EMIT(hex[c & 15]);
    } else {
      EMIT(c);
    }
  }
  EMIT('"');
#undef EMIT
  if (cap) dst[n < cap ? n : cap - 1] = '\0';
  return n;
}
