/* reidembed's image-to-video watchlist: a query that is a crop of what the
 * track shows matches (reid-match message and a JSON "match" line), an
 * unrelated query does not; a folder and a list file give the same result;
 * with an MDKT pair the networks named by its video_model / image_model
 * metadata embed the tracklet and the queries. */
#include <json-glib/json-glib.h>

#include "gst_test_util.h"

#define W         160
#define H         120
#define DIM       512
#define THRESHOLD "0.999"

static const int box[4] = {20, 10, 40, 80};

typedef struct run_result {
  float tracklet[DIM];
  int n_tracklets;
  double score_alice, score_bob; /* -2: no match message */
} run_result;

/* 5 frames of a static track on picture `rgb`, then EOS. */
static void run(const char *model, const char *queries, const char *threshold, const char *jsonl,
                const guint8 *rgb, run_result *r) {
  GstBus *bus;
  GstElement *e = gtu_reidembed(model, &bus);
  g_object_set(e, "query-location", queries, NULL);
  gst_util_set_object_arg(G_OBJECT(e), "match-threshold", threshold);
  if (jsonl) g_object_set(e, "tracklet-location", jsonl, NULL);
  GstHarness *h = gtu_harness(e, GST_VIDEO_FORMAT_RGB, W, H);
  for (int f = 0; f < 5; f++) {
    GstBuffer *in = gtu_buffer(GST_VIDEO_FORMAT_RGB, W, H, rgb, f);
    gtu_add_box(in, "person", box[0], box[1], box[2], box[3], 4);
    CHECK(gst_harness_push(h, in) == GST_FLOW_OK, "push");
    gst_buffer_unref(gst_harness_pull(h));
  }
  gst_harness_push_event(h, gst_event_new_eos());
  GPtrArray *all = gtu_messages(bus), *t = gtu_select(all, "reid-tracklet"),
            *m = gtu_select(all, "reid-match");
  r->n_tracklets = (int)t->len;
  if (t->len) gtu_message_embedding(g_ptr_array_index(t, 0), r->tracklet, DIM);
  r->score_alice = r->score_bob = -2;
  for (guint i = 0; i < m->len; i++) {
    const GstStructure *s = g_ptr_array_index(m, i);
    const char *q = gst_structure_get_string(s, "query");
    gdouble score = -3;
    gint64 id = -1;
    gst_structure_get_double(s, "score", &score);
    gst_structure_get_int64(s, "track-id", &id);
    CHECK(id == 4, "match for track %" G_GINT64_FORMAT, id);
    if (!g_strcmp0(q, "alice.ppm"))
      r->score_alice = score;
    else if (!g_strcmp0(q, "bob.ppm"))
      r->score_bob = score;
    else
      CHECK(0, "match for an unknown query '%s'", q);
  }
  g_ptr_array_unref(t);
  g_ptr_array_unref(m);
  g_ptr_array_unref(all);
  gst_harness_teardown(h);
  gst_object_unref(e);
  gst_object_unref(bus);
}

/* The JSON lines: one tracklet line, then one "match" line for alice. */
static void check_json(const char *path, double score) {
  gchar *text = gtu_read_file(path);
  gchar **lines = text ? g_strsplit(text, "\n", -1) : NULL;
  int tracklet_lines = 0, match_lines = 0;
  for (gchar **l = lines; l && *l && **l; l++) {
    JsonParser *p = json_parser_new();
    if (!json_parser_load_from_data(p, *l, -1, NULL)) {
      CHECK(0, "%s: a line does not parse", path);
      g_object_unref(p);
      continue;
    }
    JsonObject *o = json_node_get_object(json_parser_get_root(p));
    CHECK(json_object_get_int_member(o, "track_id") == 4, "track_id");
    if (json_object_has_member(o, "match")) {
      JsonObject *m = json_object_get_object_member(o, "match");
      match_lines++;
      CHECK(!g_strcmp0(json_object_get_string_member(m, "query"), "alice.ppm"), "match.query");
      CHECK(fabs(json_object_get_double_member(m, "score") - score) < 1e-6, "match.score %g vs %g",
            json_object_get_double_member(m, "score"), score);
      CHECK(json_object_get_int_member(o, "frames") == 5, "match line frames");
    } else {
      tracklet_lines++;
      CHECK(json_object_has_member(o, "embedding"), "tracklet line has the embedding");
    }
    g_object_unref(p);
  }
  CHECK(tracklet_lines == 1 && match_lines == 1, "%d tracklet and %d match lines", tracklet_lines,
        match_lines);
  g_strfreev(lines);
  g_free(text);
}

int main(int argc, char **argv) {
  gtu_init(argc, argv, "watchlist");
  gchar *model = gtu_model("resnet18", 64, 32, 1);
  guint8 *scene = gtu_picture(W, H, 3), *other = gtu_picture(W, H, 11);
  /* queries: alice is the track's crop, bob a crop of another picture */
  gchar *folder = gtu_path("queries");
  g_mkdir_with_parents(folder, 0755);
  gchar *alice = g_build_filename(folder, "alice.ppm", NULL),
        *bob = g_build_filename(folder, "bob.ppm", NULL);
  gtu_write_ppm(alice, scene, W, box[0], box[1], box[2], box[3]);
  gtu_write_ppm(bob, other, W, 90, 30, box[2], box[3]);
  gchar *notes = g_build_filename(folder, "README.txt", NULL); /* not an image: ignored */
  g_file_set_contents(notes, "queries for the test\n", -1, NULL);
  gchar *list = gtu_path("queries.txt");
  gchar *list_text = g_strdup_printf("# watchlist\nqueries/alice.ppm\n\n%s\n", bob);
  g_file_set_contents(list, list_text, -1, NULL);

  /* all scores (threshold -1), to see the margins */
  run_result all;
  run(model, folder, "-1", NULL, scene, &all);
  fprintf(stderr, "scores: alice %.6f, bob %.6f (threshold " THRESHOLD ")\n", all.score_alice,
          all.score_bob);
  CHECK(all.n_tracklets == 1, "one tracklet");
  CHECK(all.score_alice > 0.99999, "alice (the track's own crop) scores %.6f", all.score_alice);
  CHECK(all.score_bob > -1.5 && all.score_bob < atof(THRESHOLD), "bob scores %.6f", all.score_bob);

  /* at the threshold: alice matches, bob does not; the list file gives the same */
  gchar *jsonl = gtu_path("watchlist.jsonl");
  g_unlink(jsonl);
  run_result r;
  run(model, folder, THRESHOLD, jsonl, scene, &r);
  CHECK(r.score_alice > 0.99999 && r.score_bob == -2, "folder: alice %.6f, bob %.6f", r.score_alice,
        r.score_bob);
  check_json(jsonl, r.score_alice);
  run(model, list, THRESHOLD, NULL, scene, &r);
  CHECK(r.score_alice > 0.99999 && r.score_bob == -2, "list: alice %.6f, bob %.6f", r.score_alice,
        r.score_bob);

  /* MDKT pairs (teacher seed 1 = `model`, student seed 2): the networks named by the file */
  gchar *student = gtu_model("resnet18", 64, 32, 2);
  run_result student_only;
  run(student, folder, "-1", NULL, scene, &student_only);
  CHECK(student_only.score_alice > 0.99999, "student alone matches its own crop");
  /* video_model = teacher.: the teacher embeds the track, the student the queries */
  gchar *pair = gtu_model_pair(model, student, "teacher.", "pair-teacher-video.safetensors");
  run_result pr;
  run(pair, folder, "-1", NULL, scene, &pr);
  double c_track = gtu_cosine(pr.tracklet, all.tracklet, DIM);
  double expected = gtu_cosine(all.tracklet, student_only.tracklet, DIM);
  fprintf(stderr, "pair (teacher video): tracklet vs teacher %.7f; alice %.6f (expected %.6f)\n",
          c_track, pr.score_alice, expected);
  CHECK(pr.n_tracklets == 1 && c_track > 0.99999, "tracklets come from the teacher (%.7f)",
        c_track);
  CHECK(fabs(pr.score_alice - expected) < 1e-4, "alice is embedded by the student (%.6f vs %.6f)",
        pr.score_alice, expected);
  g_free(pair);
  /* video_model = student. (what reid-train writes): the student does both */
  pair = gtu_model_pair(model, student, "student.", "pair-student.safetensors");
  run(pair, folder, "-1", NULL, scene, &pr);
  c_track = gtu_cosine(pr.tracklet, student_only.tracklet, DIM);
  CHECK(pr.n_tracklets == 1 && c_track > 0.99999, "tracklets come from the student (%.7f)",
        c_track);
  CHECK(pr.score_alice > 0.99999, "the student's query matches its own tracklet (%.6f)",
        pr.score_alice);

  g_free(pair);
  g_free(student);
  g_free(jsonl);
  g_free(list_text);
  g_free(list);
  g_free(notes);
  g_free(alice);
  g_free(bob);
  g_free(folder);
  g_free(scene);
  g_free(other);
  g_free(model);
  return gtu_finish("test_reidembed_watchlist");
}
