/* libFuzzer harness: the JSON parser (kernels/io/json.c) on arbitrary bytes,
 * not NUL-terminated; a parsed document is walked (objects, arrays, int64
 * conversion, escaping of every string). Malformed text must fail with an
 * error, never crash, read out of bounds, recurse without bound or leak. */
#include "fuzz.h"
#include "json.h"

static void walk(const json_value *v, int depth) {
  char buf[64];
  int64_t i;
  (void)json_type_name(v->type);
  (void)json_get_int64(v, &i);
  switch (v->type) {
  case JSON_STRING: (void)json_escape(buf, sizeof buf, v->str, v->str_len); break;
  case JSON_ARRAY:
    for (size_t k = 0; k < v->count; k++) walk(&v->items[k], depth + 1);
    break;
  case JSON_OBJECT:
    for (size_t k = 0; k < v->count; k++) {
      (void)json_get(v, v->keys[k]);
      walk(&v->items[k], depth + 1);
    }
    break;
  default: break;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  json_value *v = NULL;
  if (json_parse((const char *)data, size, &v) == REID_OK) {
    walk(v, 0);
    json_free(v);
  }
  return 0;
}
