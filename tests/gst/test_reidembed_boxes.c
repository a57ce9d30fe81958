/* reidembed and awkward boxes: outside the frame, partly outside (clipped,
 * and then equal to the clipped box), zero-size, negative coordinates and
 * sizes; frames with 0 and with 500 boxes (batched across several network
 * calls, each embedding equal to the one of the box alone); object-class
 * filtering (unknown classes are no error) and min-size. */
#include "gst_test_util.h"

#define W   160
#define H   120
#define DIM 512

typedef struct box {
  int x, y, w, h;
  int embedded; /* expected */
} box;

/* One frame with `n` boxes through a fresh element; returns the output buffer. */
static GstBuffer *run_frame(const char *model, const guint8 *rgb, const box *b, int n,
                            const char *const *types, const char *props[][2], GstBus **bus_out) {
  GstBus *bus;
  GstElement *e = gtu_reidembed(model, &bus);
  for (int i = 0; props && props[i][0]; i++)
    gst_util_set_object_arg(G_OBJECT(e), props[i][0], props[i][1]);
  GstHarness *h = gtu_harness(e, GST_VIDEO_FORMAT_RGB, W, H);
  GstBuffer *in = gtu_buffer(GST_VIDEO_FORMAT_RGB, W, H, rgb, 0);
  for (int i = 0; i < n; i++)
    gtu_add_box(in, types ? types[i] : "person", b[i].x, b[i].y, b[i].w, b[i].h, i);
  GstFlowReturn ret = gst_harness_push(h, in);
  CHECK(ret == GST_FLOW_OK, "push of %d boxes: %s", n, gst_flow_get_name(ret));
  GstBuffer *out = gst_harness_pull(h);
  gst_harness_teardown(h);
  gst_object_unref(e);
  if (bus_out)
    *bus_out = bus;
  else
    gst_object_unref(bus);
  return out;
}

static void test_awkward_boxes(const char *model, const guint8 *rgb) {
  const box boxes[] = {
      {500, 10, 40, 40, 0},    /* right of the frame */
      {10, 300, 40, 40, 0},    /* below it */
      {-100, -100, 50, 50, 0}, /* above-left, entirely outside */
      {-10, 5, 50, 60, 1},     /* partly left: clipped to (0, 5, 40, 60) */
      {140, 90, 40, 50, 1},    /* partly right and below: (140, 90, 20, 30) */
      {-20, -30, 60, 70, 1},   /* negative x and y, partly inside: (0, 0, 40, 40) */
      {20, 20, 0, 30, 0},      /* zero width */
      {20, 20, 30, 0, 0},      /* zero height */
      {20, 20, -5, 30, 0},     /* negative width */
      {20, 20, 30, -7, 0},     /* negative height */
      {0, 0, W, H, 1},         /* the whole frame */
      {159, 119, 1, 1, 1},     /* one pixel */
  };
  const int n = sizeof boxes / sizeof boxes[0];
  GstBus *bus;
  GstBuffer *out = run_frame(model, rgb, boxes, n, NULL, NULL, &bus);
  CHECK(out && gtu_roi_count(out) == n, "ROI metas must all pass through");
  float e[DIM], clipped_e[DIM];
  for (int i = 0; out && i < n; i++) {
    int d = gtu_embedding(out, i, "reid-embedding", e, DIM);
    CHECK((d == DIM) == boxes[i].embedded, "box %d (%d, %d, %d, %d): embedded %d, expected %d", i,
          boxes[i].x, boxes[i].y, boxes[i].w, boxes[i].h, d == DIM, boxes[i].embedded);
  }
  /* no error on the bus for any of them */
  gchar *err = gtu_error_text(bus);
  CHECK(err == NULL, "unexpected error: %s", err);
  g_free(err);
  /* a partly outside box embeds as its clipped part */
  const box clipped[] = {{0, 5, 40, 60, 1}, {140, 90, 20, 30, 1}, {0, 0, 40, 40, 1}};
  GstBuffer *ref = run_frame(model, rgb, clipped, 3, NULL, NULL, NULL);
  for (int i = 0; out && ref && i < 3; i++) {
    gtu_embedding(out, 3 + i, "reid-embedding", e, DIM);
    gtu_embedding(ref, i, "reid-embedding", clipped_e, DIM);
    double c = gtu_cosine(e, clipped_e, DIM);
    CHECK(c > 0.99999, "box %d: cosine %.7f to its clipped box", 3 + i, c);
  }
  if (ref) gst_buffer_unref(ref);
  if (out) gst_buffer_unref(out);
  gst_object_unref(bus);
}

static void test_no_boxes(const char *model, const guint8 *rgb) {
  GstBus *bus;
  GstBuffer *out = run_frame(model, rgb, NULL, 0, NULL, NULL, &bus);
  CHECK(out && gtu_roi_count(out) == 0, "frame without boxes");
  GPtrArray *all = gtu_messages(bus);
  CHECK(all->len == 0, "no messages for a frame without boxes (%u)", all->len);
  g_ptr_array_unref(all);
  if (out) gst_buffer_unref(out);
  gst_object_unref(bus);
}

static void test_500_boxes(const char *model, const guint8 *rgb) {
  enum { N = 500 };
  box *boxes = calloc(N, sizeof *boxes);
  test_rng rng = test_rng_make(42);
  for (int i = 0; i < N; i++) {
    boxes[i].w = test_rng_int(&rng, 8, 60);
    boxes[i].h = test_rng_int(&rng, 8, 100);
    boxes[i].x = test_rng_int(&rng, -10, W - 5);
    boxes[i].y = test_rng_int(&rng, -10, H - 5);
    boxes[i].embedded = 1;
  }
  gint64 t0 = g_get_monotonic_time();
  const char *props[][2] = {{"batch-size", "16"}, {NULL, NULL}};
  GstBuffer *out = run_frame(model, rgb, boxes, N, NULL, props, NULL);
  fprintf(stderr, "500 boxes: %.2f s\n", (g_get_monotonic_time() - t0) / 1e6);
  float *e = test_alloc((size_t)N * DIM);
  int embedded = 0;
  for (int i = 0; out && i < N; i++) {
    if (gtu_embedding(out, i, "reid-embedding", e + (size_t)i * DIM, DIM) != DIM) continue;
    embedded++;
    double ss = 0;
    for (int j = 0; j < DIM; j++) ss += (double)e[(size_t)i * DIM + j] * e[(size_t)i * DIM + j];
    CHECK(fabs(ss - 1) < 1e-4, "box %d: |e|^2 = %.6f", i, ss);
  }
  CHECK(embedded == N, "%d of %d boxes embedded", embedded, N);
  /* batching does not change results: boxes 0, 17 (second batch), 499 (a remainder of 4) alone */
  const int probe[] = {0, 17, 499};
  for (int k = 0; k < 3; k++) {
    GstBuffer *one = run_frame(model, rgb, &boxes[probe[k]], 1, NULL, NULL, NULL);
    float alone[DIM];
    if (one && gtu_embedding(one, 0, "reid-embedding", alone, DIM) == DIM) {
      double c = gtu_cosine(alone, e + (size_t)probe[k] * DIM, DIM);
      CHECK(c > 0.99999, "box %d: cosine %.7f between batch and alone", probe[k], c);
    } else {
      CHECK(0, "box %d alone: no embedding", probe[k]);
    }
    if (one) gst_buffer_unref(one);
  }
  free(e);
  free(boxes);
  if (out) gst_buffer_unref(out);
}

static void test_classes_and_min_size(const char *model, const guint8 *rgb) {
  const box boxes[] = {
      {10, 10, 40, 80, 0}, {60, 10, 40, 80, 0}, {100, 10, 40, 80, 0}, {10, 10, 17, 33, 0}};
  const char *types[] = {"person", "car", "bike", "person"};
  /* spaces around names, an unknown class */
  const char *props[][2] = {
      {"object-class", " car ,person, dragon"}, {"min-size", "20"}, {NULL, NULL}};
  const int want[] = {1, 1, 0, 0};
  GstBus *bus;
  GstBuffer *out = run_frame(model, rgb, boxes, 4, types, props, &bus);
  float e[DIM];
  for (int i = 0; out && i < 4; i++) {
    int got = gtu_embedding(out, i, "reid-embedding", e, DIM) == DIM;
    CHECK(got == want[i], "%s box %d (%dx%d): embedded %d, expected %d", types[i], i, boxes[i].w,
          boxes[i].h, got, want[i]);
  }
  gchar *err = gtu_error_text(bus);
  CHECK(err == NULL, "unknown object-class values are no error: %s", err);
  g_free(err);
  if (out) gst_buffer_unref(out);
  gst_object_unref(bus);
  /* only unknown classes: nothing embedded, nothing fails */
  const char *props2[][2] = {{"object-class", "dragon"}, {NULL, NULL}};
  out = run_frame(model, rgb, boxes, 4, types, props2, NULL);
  for (int i = 0; out && i < 4; i++)
    CHECK(gtu_embedding(out, i, "reid-embedding", e, DIM) < 0,
          "object-class=dragon: box %d embedded", i);
  if (out) gst_buffer_unref(out);
}

int main(int argc, char **argv) {
  gtu_init(argc, argv, "boxes");
  gchar *model = gtu_model("resnet18", 64, 32, 1);
  guint8 *rgb = gtu_picture(W, H, 5);
  test_awkward_boxes(model, rgb);
  test_no_boxes(model, rgb);
  test_500_boxes(model, rgb);
  test_classes_and_min_size(model, rgb);
  g_free(rgb);
  g_free(model);
  return gtu_finish("test_reidembed_boxes");
}
