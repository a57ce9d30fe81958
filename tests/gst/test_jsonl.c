/* JSON lines: tracklet and match lines parse (strict parser) with every
 * field, escaped names, null timestamps, float32 round trip and non-finite
 * values as null; the writer appends, fails clearly on a bad path, and two
 * writers in two threads never interleave inside a line. */
#include <pthread.h>

#include "json.h"
#include "jsonl.h"
#include "test_util.h"
#include "unit_workdir.h"

#define DIM 37

static json_value *parse_line(const char *line) {
  size_t len = strlen(line);
  CHECK(len > 0 && line[len - 1] == '\n' && !memchr(line, '\n', len - 1),
        "exactly one newline, at the end");
  json_value *v = NULL;
  CHECK_OK(json_parse(line, len, &v));
  return v;
}

static void test_tracklet_line(void) {
  float e[DIM];
  test_rng r = test_rng_make(3);
  test_fill_uniform(&r, e, DIM, -1, 1);
  e[5] = 1e-30f, e[6] = -3.4e38f, e[7] = 0;
  reid_tracklet_record rec = {.stream = "cam \"1\"\n\\ é",
                              .reason = "timeout",
                              .model = "m.safetensors",
                              .track_id = -9000000000LL,
                              .first_pts = 0,
                              .last_pts = UINT64_MAX,
                              .frames = 12,
                              .embedded_frames = 4,
                              .bbox = {1.5f, 2, 300, 400},
                              .embedding = e,
                              .dim = DIM};
  char *line = reid_json_tracklet_line(&rec);
  CHECK(line != NULL, "line: %s", reid_last_error());
  json_value *v = line ? parse_line(line) : NULL;
  if (v) {
    const json_value *s = json_get(v, "stream"), *emb = json_get(v, "embedding"),
                     *bb = json_get(v, "bbox");
    int64_t i;
    CHECK(s && s->type == JSON_STRING && !strcmp(s->str, rec.stream), "stream round trip");
    CHECK(json_get_int64(json_get(v, "track_id"), &i) && i == rec.track_id, "track_id");
    CHECK(json_get_int64(json_get(v, "first_pts"), &i) && i == 0, "first_pts");
    CHECK(json_get(v, "last_pts") && json_get(v, "last_pts")->type == JSON_NULL,
          "unknown pts is null");
    CHECK(json_get_int64(json_get(v, "frames"), &i) && i == 12, "frames");
    CHECK(json_get_int64(json_get(v, "embedded_frames"), &i) && i == 4, "embedded_frames");
    CHECK(!strcmp(json_get(v, "reason")->str, "timeout") &&
              !strcmp(json_get(v, "model")->str, "m.safetensors"),
          "reason, model");
    CHECK(bb && bb->type == JSON_ARRAY && bb->count == 4 && bb->items[0].num == 1.5, "bbox");
    CHECK(emb && emb->type == JSON_ARRAY && emb->count == DIM, "embedding length");
    int exact = 1;
    for (size_t k = 0; emb && k < emb->count; k++) exact &= (float)emb->items[k].num == e[k];
    CHECK(exact, "every float reads back as the same float32");
    json_free(v);
  }
  free(line);
  /* non-finite values cannot be JSON numbers */
  e[0] = NAN, e[1] = INFINITY;
  rec.stream = NULL;
  line = reid_json_tracklet_line(&rec);
  v = line ? parse_line(line) : NULL;
  CHECK(v && json_get(v, "stream")->type == JSON_NULL &&
            json_get(v, "embedding")->items[0].type == JSON_NULL &&
            json_get(v, "embedding")->items[1].type == JSON_NULL,
        "NaN and Inf are written as null");
  json_free(v);
  free(line);
}

static void test_match_line(void) {
  reid_tracklet_record rec = {
      .stream = "s", .track_id = 5, .first_pts = 10, .last_pts = 20, .frames = 3};
  char *line = reid_json_match_line(&rec, "alice.jpg", 0.8125);
  json_value *v = line ? parse_line(line) : NULL;
  const json_value *m = v ? json_get(v, "match") : NULL;
  CHECK(m && m->type == JSON_OBJECT && !strcmp(json_get(m, "query")->str, "alice.jpg") &&
            json_get(m, "score")->num == 0.8125,
        "match object");
  int64_t i;
  CHECK(v && json_get_int64(json_get(v, "track_id"), &i) && i == 5 && !json_get(v, "embedding"),
        "match line: the track, no embedding");
  json_free(v);
  free(line);
}

typedef struct writer_job {
  const char *path;
  int id, failures;
} writer_job;

static void *write_many(void *arg) {
  writer_job *j = arg;
  reid_jsonl *w;
  if (reid_jsonl_open(j->path, &w) != REID_OK) {
    j->failures++;
    return NULL;
  }
  float e[512];
  for (int k = 0; k < 512; k++) e[k] = (float)(j->id * 1000 + k) / 7.0f;
  for (int n = 0; n < 300; n++) {
    reid_tracklet_record rec = {.stream = j->id ? "b" : "a",
                                .track_id = n,
                                .first_pts = 0,
                                .last_pts = 1,
                                .frames = 1,
                                .embedded_frames = 1,
                                .embedding = e,
                                .dim = 512};
    char *line = reid_json_tracklet_line(&rec); /* ~6 KB: more than one stdio buffer */
    if (!line || reid_jsonl_write(w, line) != REID_OK) j->failures++;
    free(line);
  }
  reid_jsonl_close(w);
  return NULL;
}

static void test_writer(const char *dir) {
  reid_jsonl *w = (reid_jsonl *)1;
  CHECK(reid_jsonl_open("/nonexistent/dir/t.jsonl", &w) == REID_EIO && w == NULL &&
            strstr(reid_last_error(), "/nonexistent/dir/t.jsonl"),
        "bad path: %s", reid_last_error());
  char path[1100];
  snprintf(path, sizeof path, "%s/two-writers.jsonl", dir);
  remove(path);
  writer_job jobs[2] = {{path, 0, 0}, {path, 1, 0}};
  pthread_t t[2];
  for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, write_many, &jobs[i]);
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  CHECK(jobs[0].failures == 0 && jobs[1].failures == 0, "writes failed");
  FILE *f = fopen(path, "r");
  char *line = NULL;
  size_t cap = 0;
  int lines = 0, good = 0, per_stream[2] = {0, 0};
  while (f && getline(&line, &cap, f) > 0) {
    lines++;
    json_value *v = NULL;
    if (json_parse(line, strlen(line), &v) == REID_OK) {
      good++;
      const json_value *s = json_get(v, "stream");
      if (s && s->type == JSON_STRING) per_stream[s->str[0] == 'b']++;
      json_free(v);
    }
  }
  free(line);
  if (f) fclose(f);
  CHECK(lines == 600 && good == 600 && per_stream[0] == 300 && per_stream[1] == 300,
        "%d lines, %d parse, %d + %d", lines, good, per_stream[0], per_stream[1]);
  /* appending: a second open adds to the file */
  CHECK_OK(reid_jsonl_open(path, &w));
  CHECK_OK(reid_jsonl_write(w, "{}\n"));
  reid_jsonl_close(w);
  f = fopen(path, "r");
  lines = 0;
  for (int c; f && (c = fgetc(f)) != EOF;) lines += c == '\n';
  if (f) fclose(f);
  CHECK(lines == 601, "appended: %d lines", lines);
}

int main(int argc, char **argv) {
  const char *dir = unit_workdir(argc, argv);
  if (!dir) return 1;
  test_tracklet_line();
  test_match_line();
  test_writer(dir);
  return test_finish("test_jsonl");
}
