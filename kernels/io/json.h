/* A small strict JSON (RFC 8259) reader into a tree, plus a string escaper.
 *
 * Enough for safetensors headers and small config files; not a streaming
 * parser. The input is a byte range (need not be NUL-terminated) and is never
 * read past `len`. Strictness: no comments, no trailing commas, no leading
 * zeros, no control characters or invalid UTF-8 inside strings, no lone
 * surrogates, nothing but whitespace after the top-level value, nesting depth
 * at most JSON_MAX_DEPTH. Duplicate object keys are kept (in order) so the
 * caller decides whether they are an error.
 *
 * Numbers: every number has `num` (a double, parsed locale-independently).
 * A number written without fraction or exponent that fits in int64 also has
 * is_int = 1 and the exact value in `i`; one that overflows int64 has
 * is_int = 0 (use json_get_int64 to ask for "an integer in range"). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define JSON_MAX_DEPTH 64

typedef enum json_type {
  JSON_NULL,
  JSON_BOOL,
  JSON_NUMBER,
  JSON_STRING,
  JSON_ARRAY,
  JSON_OBJECT,
} json_type;

typedef struct json_value json_value;
struct json_value {
  json_type type;
  size_t offset;     /* byte offset of the value's first character in the input */
  int boolean;       /* JSON_BOOL: 0 or 1 */
  double num;        /* JSON_NUMBER */
  int is_int;        /* JSON_NUMBER: integer literal within int64 */
  int64_t i;         /* JSON_NUMBER with is_int */
  char *str;         /* JSON_STRING: UTF-8, NUL-terminated (may also contain NULs) */
  size_t str_len;    /* JSON_STRING: bytes, without the terminator */
  size_t count;      /* JSON_ARRAY / JSON_OBJECT: number of elements / members */
  json_value *items; /* JSON_ARRAY / JSON_OBJECT: elements / member values [count] */
  char **keys;       /* JSON_OBJECT: member keys [count], NUL-terminated */
  size_t *key_lens;  /* JSON_OBJECT: key lengths [count] (a key may contain NUL) */
};

/* Parses text[0, len) into a newly allocated tree (*out, freed with json_free).
 * Errors are REID_EFORMAT ("offset N: reason") or REID_ENOMEM. */
reid_status json_parse(const char *text, size_t len, json_value **out);
void json_free(json_value *v);

/* The member value for `key` (first match) or NULL; NULL too if obj is not an object. */
const json_value *json_get(const json_value *obj, const char *key);

/* 1 and *out set if v is an integer number within int64, else 0. */
int json_get_int64(const json_value *v, int64_t *out);

/* A short name of the type ("object", "string", ...) for messages. */
const char *json_type_name(json_type t);

/* Writes s[0, len) as a quoted JSON string ("..." with escapes) into
 * dst[0, cap) and NUL-terminates it when cap > 0. Returns the length the full
 * output needs (without NUL), like snprintf; call with cap = 0 to size it.
 * Bytes >= 0x80 are copied as is (the input is expected to be UTF-8). */
size_t json_escape(char *dst, size_t cap, const char *s, size_t len);
