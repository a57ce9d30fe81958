/* reidembed with an ONNX model: a checkpoint and an ONNX export of it give
 * the same embeddings through the element (cosine >= 0.9999 for every box,
 * same dimension); an ONNX file with an operator the network graph lacks
 * fails the start naming the operator and the node; input-size on a graph
 * whose input size is fixed fails naming both sizes, and on the checkpoint it
 * changes the embeddings.
 *
 * Models: by default osnet_x0_25 (256x128) from `reid-train init` and its
 * `reid-train export --format onnx`. tests/python/reidembed_osnet.py runs this
 * test with
 *   --checkpoint C.safetensors --onnx O.onnx
 * (before the usual arguments): a torchreid OSNet checkpoint converted by
 * scripts/convert-checkpoint.py and PyTorch's export of it (scripts/export-onnx.py). */
#include "gst_test_util.h"

#define W       160
#define H       120
#define MAX_DIM 2048
#define N_BOXES 3

static const int boxes[N_BOXES][4] = {{10, 10, 40, 80}, {100, 30, 60, 90}, {60, 50, 17, 33}};

/* One frame with the boxes through reidembed (model, optional input-size);
 * embeddings [N_BOXES, MAX_DIM]; returns the dimension (-1: no output). */
static int embed_boxes(const char *model, const char *input_size, const guint8 *rgb, float *out) {
  GstBus *bus;
  GstElement *e = gtu_reidembed(model, &bus);
  if (input_size) gst_util_set_object_arg(G_OBJECT(e), "input-size", input_size);
  GstHarness *h = gtu_harness(e, GST_VIDEO_FORMAT_RGB, W, H);
  GstBuffer *in = gtu_buffer(GST_VIDEO_FORMAT_RGB, W, H, rgb, 0);
  for (int i = 0; i < N_BOXES; i++)
    gtu_add_box(in, "person", boxes[i][0], boxes[i][1], boxes[i][2], boxes[i][3], i);
  CHECK(gst_harness_push(h, in) == GST_FLOW_OK, "%s: push", model);
  GstBuffer *outbuf = gst_harness_pull(h);
  int dim = -1;
  CHECK(outbuf != NULL, "%s: no output buffer", model);
  if (outbuf) {
    for (int i = 0; i < N_BOXES; i++) {
      int d = gtu_embedding(outbuf, i, "reid-embedding", out + (size_t)i * MAX_DIM, MAX_DIM);
      CHECK(d > 0 && (dim < 0 || d == dim), "%s: box %d: embedding dims %d", model, i, d);
      dim = d;
    }
    gst_buffer_unref(outbuf);
  }
  gchar *err = gtu_error_text(bus);
  CHECK(err == NULL, "%s: error %s", model, err);
  g_free(err);
  gst_harness_teardown(h);
  gst_object_unref(e);
  gst_object_unref(bus);
  return dim;
}

static double min_cosine(const float *a, const float *b, int dim) {
  double m = 2;
  for (int i = 0; i < N_BOXES; i++) {
    double c = gtu_cosine(a + (size_t)i * MAX_DIM, b + (size_t)i * MAX_DIM, dim);
    if (c < m) m = c;
  }
  return m;
}

static void test_same_embeddings(const char *checkpoint, const char *onnx) {
  guint8 *rgb = gtu_picture(W, H, 3);
  float *a = g_new0(float, N_BOXES *MAX_DIM), *b = g_new0(float, N_BOXES *MAX_DIM);
  int da = embed_boxes(checkpoint, NULL, rgb, a), db = embed_boxes(onnx, NULL, rgb, b);
  CHECK(da > 0 && da == db, "dims: checkpoint %d, ONNX %d", da, db);
  if (da > 0 && da == db) {
    for (int i = 0; i < N_BOXES; i++)
      fprintf(stderr, "box %d: cosine %.8f (checkpoint vs ONNX, %d-d)\n", i,
              gtu_cosine(a + (size_t)i * MAX_DIM, b + (size_t)i * MAX_DIM, da), da);
    double m = min_cosine(a, b, da);
    CHECK(m >= 0.9999, "checkpoint and ONNX embeddings differ: min cosine %.6f", m);
    /* the comparison can fail: other boxes are other pictures */
    double other = gtu_cosine(a, b + MAX_DIM, da);
    CHECK(other < 0.9999, "box 0 and box 1 embed the same (cosine %.6f): a blind comparison",
          other);
  }
  /* input-size reaches the network: a smaller input gives other embeddings */
  int ds = embed_boxes(checkpoint, "128x64", rgb, b);
  if (ds == da && da > 0) CHECK(min_cosine(a, b, da) < 0.9999, "input-size=128x64 changed nothing");
  g_free(a);
  g_free(b);
  g_free(rgb);
}

/* the element must refuse PAUSED with an error holding both needles */
static void expect_start_failure(const char *what, const char *model, const char *input_size,
                                 const char *needle1, const char *needle2) {
  GstBus *bus;
  GstElement *e = gtu_reidembed(model, &bus);
  if (input_size) gst_util_set_object_arg(G_OBJECT(e), "input-size", input_size);
  GstStateChangeReturn r = gst_element_set_state(e, GST_STATE_PAUSED);
  CHECK(r == GST_STATE_CHANGE_FAILURE, "%s: the state change must fail", what);
  gst_element_set_state(e, GST_STATE_NULL);
  gchar *text = gtu_error_text(bus);
  CHECK(text != NULL, "%s: no error message", what);
  if (text) {
    fprintf(stderr, "%s -> %s\n", what, text);
    CHECK(strstr(text, needle1), "%s: error '%s' does not name '%s'", what, text, needle1);
    CHECK(!needle2 || strstr(text, needle2), "%s: error '%s' does not name '%s'", what, text,
          needle2);
  }
  g_free(text);
  gst_object_unref(e);
  gst_object_unref(bus);
}

/* The ONNX file with every "Relu" (op types and the node names made from them)
 * turned into "Selu", an ONNX operator the network graph does not have. */
static gchar *with_selu(const char *onnx) {
  gchar *bytes;
  gsize size;
  if (!g_file_get_contents(onnx, &bytes, &size, NULL)) gtu_fatal("cannot read %s", onnx);
  int hits = 0;
  for (gchar *p = bytes; (p = memmem(p, size - (gsize)(p - bytes), "Relu", 4)); p += 4, hits++)
    p[0] = 'S', p[1] = 'e';
  if (!hits) gtu_fatal("%s has no Relu", onnx);
  gchar *path = gtu_path("selu.onnx");
  if (!g_file_set_contents(path, bytes, (gssize)size, NULL)) gtu_fatal("cannot write %s", path);
  g_free(bytes);
  return path;
}

int main(int argc, char **argv) {
  const char *checkpoint_arg = NULL, *onnx_arg = NULL;
  while (argc > 2 && (!strcmp(argv[1], "--checkpoint") || !strcmp(argv[1], "--onnx"))) {
    if (!strcmp(argv[1], "--checkpoint"))
      checkpoint_arg = argv[2];
    else
      onnx_arg = argv[2];
    argv[2] = argv[0];
    argv += 2;
    argc -= 2;
  }
  if (!checkpoint_arg != !onnx_arg) gtu_fatal("--checkpoint and --onnx go together");
  gtu_init(argc, argv, checkpoint_arg ? "reidembed_onnx_given" : "reidembed_onnx");
  gchar *checkpoint =
      checkpoint_arg ? g_strdup(checkpoint_arg) : gtu_model("osnet_x0_25", 256, 128, 4);
  gchar *onnx = onnx_arg ? g_strdup(onnx_arg) : gtu_model_onnx(checkpoint, "osnet_x0_25.onnx");
  fprintf(stderr, "checkpoint %s\nONNX %s\n", checkpoint, onnx);

  test_same_embeddings(checkpoint, onnx);

  gchar *selu = with_selu(onnx);
  expect_start_failure("unsupported operator", selu, NULL, "Selu", "node '");
  g_free(selu);
  expect_start_failure("input-size on a fixed-size graph", onnx, "128x64", "fixed at", "128x64");

  g_free(checkpoint);
  g_free(onnx);
  return gtu_finish("test_reidembed_onnx");
}
