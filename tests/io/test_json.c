/* JSON reader: values, escapes, integer limits, strictness, error offsets,
 * never reading past the given length, and the escaper round trip. */
#include <locale.h>

#include "json.h"
#include "test_util.h"

/* Parses a copy in an exactly sized heap buffer, so ASan sees any overread. */
static reid_status parse(const char *s, json_value **v) {
  size_t n = strlen(s);
  char *buf = malloc(n ? n : 1);
  memcpy(buf, s, n);
  reid_status st = json_parse(buf, n, v);
  free(buf);
  return st;
}

static void test_values(void) {
  json_value *v;
  CHECK_OK(parse(" {\"a\": [1, -2.5e1, true, false, null, \"x\"], \"b\": {}, \"c\": []} ", &v));
  if (!v) return;
  CHECK(v->type == JSON_OBJECT && v->count == 3, "object of 3");
  const json_value *a = json_get(v, "a");
  CHECK(a && a->type == JSON_ARRAY && a->count == 6, "array a");
  if (a && a->count == 6) {
    int64_t i;
    CHECK(json_get_int64(&a->items[0], &i) && i == 1, "1");
    CHECK(a->items[1].type == JSON_NUMBER && !a->items[1].is_int && a->items[1].num == -25.0,
          "-2.5e1");
    CHECK(a->items[2].type == JSON_BOOL && a->items[2].boolean == 1, "true");
    CHECK(a->items[3].type == JSON_BOOL && a->items[3].boolean == 0, "false");
    CHECK(a->items[4].type == JSON_NULL, "null");
    CHECK(a->items[5].type == JSON_STRING && strcmp(a->items[5].str, "x") == 0, "x");
    CHECK(a->items[5].offset == 38, "offset of \"x\" is %zu", a->items[5].offset);
  }
  CHECK(json_get(v, "b") && json_get(v, "b")->count == 0, "empty object");
  CHECK(json_get(v, "zz") == NULL, "absent key");
  json_free(v);
}

static void test_strings(void) {
  json_value *v;
  CHECK_OK(
      parse("\"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t \\u00e9 \\u20AC \\ud83d\\ude00 \xc3\xa9\"", &v));
  if (v) {
    const char *want = "q\" b\\ s/ \b\f\n\r\t \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xc3\xa9";
    CHECK(strcmp(v->str, want) == 0 && v->str_len == strlen(want), "decoded '%s'", v->str);
    json_free(v);
  }
  CHECK_OK(parse("\"a\\u0000b\"", &v));
  if (v) {
    CHECK(v->str_len == 3 && v->str[1] == '\0' && v->str[2] == 'b', "embedded NUL kept");
    json_free(v);
  }
  static const char *bad[] = {
      "\"abc",        "\"a\\x\"", "\"\\u12\"",  "\"\\ud83d\"",          "\"\\ude00\"",
      "\"\\ud83dx\"", "\"a\nb\"", "\"\xff\"",   "\"\xc0\xaf\"",         "\"\xed\xa0\x80\"",
      "\"\xe2\x82\"", "\"\\",     "\"\\u00e\"", "\"\xf4\x90\x80\x80\"",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    reid_status st = parse(bad[i], &v);
    CHECK(st == REID_EFORMAT && v == NULL, "bad string %zu accepted", i);
  }
}

static void test_numbers(void) {
  json_value *v;
  int64_t i;
  CHECK_OK(parse("[9223372036854775807, -9223372036854775808, 9223372036854775808, -0, 0.5, "
                 "1E3, 1e-400, 123456789012345678901234567890]",
                 &v));
  if (v && v->count == 8) {
    CHECK(json_get_int64(&v->items[0], &i) && i == INT64_MAX, "INT64_MAX");
    CHECK(json_get_int64(&v->items[1], &i) && i == INT64_MIN, "INT64_MIN");
    CHECK(!json_get_int64(&v->items[2], &i) && v->items[2].num == 9223372036854775808.0,
          "INT64_MAX + 1 is not an int64");
    CHECK(json_get_int64(&v->items[3], &i) && i == 0, "-0");
    CHECK(v->items[4].num == 0.5 && !v->items[4].is_int, "0.5");
    CHECK(v->items[5].num == 1000 && !v->items[5].is_int, "1E3 is not an integer literal");
    CHECK(v->items[6].num == 0, "underflow to 0");
    CHECK(!v->items[7].is_int && v->items[7].num > 1e29, "huge integer");
  }
  json_free(v);
  /* the decimal point must not depend on the locale */
  if (setlocale(LC_NUMERIC, "de_DE.UTF-8")) {
    CHECK_OK(parse("2.25", &v));
    CHECK(v && v->num == 2.25, "locale-independent");
    json_free(v);
    setlocale(LC_NUMERIC, "C");
  }
  static const char *bad[] = {"01", "-",     "1.",   ".5", "1e",  "1e+",
                              "+1", "1e999", "0x10", "-a", "NaN", "Infinity"};
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    CHECK(parse(bad[k], &v) == REID_EFORMAT, "bad number '%s' accepted", bad[k]);
  }
}

static void test_strictness(void) {
  json_value *v;
  static const char *bad[] = {
      "",    "   ",   "{",     "[1,]",    "{\"a\":1,}", "{a:1}",   "[1 2]", "{\"a\" 1}",      "tru",
      "nul", "[1] x", "{} {}", "// c\n1", "[\"a\":1]",  "{\"a\"}", "'a'",   "\xef\xbb\xbf{}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    reid_status st = parse(bad[i], &v);
    CHECK(st == REID_EFORMAT && v == NULL, "bad JSON %zu '%s' accepted", i, bad[i]);
    CHECK(strstr(reid_last_error(), "offset") != NULL, "message lacks offset: %s",
          reid_last_error());
  }
  CHECK(parse("[1, 2, x]", &v) == REID_EFORMAT, "x");
  CHECK(strstr(reid_last_error(), "offset 7") != NULL, "offset of x: %s", reid_last_error());

  /* duplicate keys are kept for the caller to judge */
  CHECK_OK(parse("{\"a\":1,\"a\":2}", &v));
  CHECK(v && v->count == 2 && json_get(v, "a")->i == 1, "duplicate keys kept, first wins");
  json_free(v);

  /* nesting limit */
  char deep[2 * JSON_MAX_DEPTH + 8];
  for (int d = JSON_MAX_DEPTH - 1; d <= JSON_MAX_DEPTH + 1; d++) {
    int n = 0;
    for (int k = 0; k < d; k++) deep[n++] = '[';
    for (int k = 0; k < d; k++) deep[n++] = ']';
    deep[n] = '\0';
    reid_status st = parse(deep, &v);
    CHECK((st == REID_OK) == (d <= JSON_MAX_DEPTH), "depth %d -> %s", d, reid_status_name(st));
    json_free(v);
  }
  /* prefix of a valid document: never valid, never crashes */
  const char *doc = "{\"k\": [1, 2.5, \"s\\u00e9\", {\"n\": null}], \"t\": true}";
  size_t len = strlen(doc);
  for (size_t cut = 0; cut < len; cut++) {
    char *buf = malloc(cut ? cut : 1);
    memcpy(buf, doc, cut);
    CHECK(json_parse(buf, cut, &v) == REID_EFORMAT, "prefix %zu accepted", cut);
    free(buf);
  }
}

static void test_escape(void) {
  const char raw[] = "a\"b\\c\n\x01\xc3\xa9/";
  size_t rl = sizeof raw - 1;
  size_t need = json_escape(NULL, 0, raw, rl);
  char out[64];
  CHECK(json_escape(out, sizeof out, raw, rl) == need, "same length");
  CHECK(strcmp(out, "\"a\\\"b\\\\c\\n\\u0001\xc3\xa9/\"") == 0, "escaped: %s", out);
  json_value *v;
  CHECK_OK(json_parse(out, need, &v));
  CHECK(v && v->str_len == rl && memcmp(v->str, raw, rl) == 0, "escape round trip");
  json_free(v);
  char small[5];
  CHECK(json_escape(small, sizeof small, raw, rl) == need && strlen(small) == 4, "truncates");
}

int main(void) {
  test_values();
  test_strings();
  test_numbers();
  test_strictness();
  test_escape();
  return test_finish("test_json");
}
