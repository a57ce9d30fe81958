/* reidembed and pixel formats: caps negotiation for each of the 8 formats
 * (identical caps on both pads, buffers unchanged), a format it does not
 * take, and the same picture in every format giving the same embeddings
 * (cosine >= 0.999 to the RGB ones). */
#include "gst_test_util.h"

#define W       160
#define H       120
#define MAX_DIM 2048

static const GstVideoFormat formats[] = {
    GST_VIDEO_FORMAT_NV12, GST_VIDEO_FORMAT_I420, GST_VIDEO_FORMAT_RGB,  GST_VIDEO_FORMAT_BGR,
    GST_VIDEO_FORMAT_RGBA, GST_VIDEO_FORMAT_BGRA, GST_VIDEO_FORMAT_BGRx, GST_VIDEO_FORMAT_RGBx,
};
#define N_FORMATS 8

/* three people: inside, touching the right edge, small */
static const int boxes[3][4] = {{10, 10, 40, 80}, {100, 30, 60, 90}, {60, 50, 17, 33}};

static int same_bytes(GstBuffer *a, GstBuffer *b) {
  GstMapInfo ma, mb;
  gst_buffer_map(a, &ma, GST_MAP_READ);
  gst_buffer_map(b, &mb, GST_MAP_READ);
  int same = ma.size == mb.size && !memcmp(ma.data, mb.data, ma.size);
  gst_buffer_unmap(a, &ma);
  gst_buffer_unmap(b, &mb);
  return same;
}

/* Pushes one frame of `format` with the three boxes; returns embeddings [3, dim]. */
static int embed_in_format(const char *model, GstVideoFormat format, const guint8 *rgb,
                           float *out) {
  const char *name = gst_video_format_to_string(format);
  GstBus *bus;
  GstElement *e = gtu_reidembed(model, &bus);
  GstHarness *h = gtu_harness(e, format, W, H);
  GstBuffer *in = gtu_buffer(format, W, H, rgb, 0);
  for (int i = 0; i < 3; i++)
    gtu_add_box(in, "person", boxes[i][0], boxes[i][1], boxes[i][2], boxes[i][3], i);
  GstBuffer *reference = gst_buffer_copy_deep(in);
  CHECK(gst_harness_push(h, in) == GST_FLOW_OK, "%s: push", name);
  GstBuffer *outbuf = gst_harness_pull(h);
  int dim = -1;
  CHECK(outbuf != NULL, "%s: no output buffer", name);
  if (outbuf) {
    /* caps: negotiated as pushed, the same on both pads */
    GstCaps *want = gtu_caps(format, W, H);
    GstPad *sink = gst_element_get_static_pad(e, "sink"),
           *src = gst_element_get_static_pad(e, "src");
    GstCaps *in_caps = gst_pad_get_current_caps(sink), *out_caps = gst_pad_get_current_caps(src);
    CHECK(in_caps && gst_caps_is_equal(in_caps, want), "%s: sink caps %" GST_PTR_FORMAT, name,
          in_caps);
    CHECK(out_caps && in_caps && gst_caps_is_equal(in_caps, out_caps),
          "%s: src caps differ: %" GST_PTR_FORMAT, name, out_caps);
    gst_caps_unref(want);
    if (in_caps) gst_caps_unref(in_caps);
    if (out_caps) gst_caps_unref(out_caps);
    gst_object_unref(sink);
    gst_object_unref(src);
    CHECK(same_bytes(outbuf, reference), "%s: the pixels changed", name);
    CHECK(gtu_roi_count(outbuf) == 3, "%s: %d ROI metas", name, gtu_roi_count(outbuf));
    for (int i = 0; i < 3; i++) {
      int d = gtu_embedding(outbuf, i, "reid-embedding", out + (size_t)i * MAX_DIM, MAX_DIM);
      CHECK(d == 512, "%s: box %d: embedding dims %d", name, i, d);
      float pooled[MAX_DIM];
      int pd = gtu_embedding(outbuf, i, "reid-track-embedding", pooled, MAX_DIM);
      CHECK(pd == d && d > 0 && gtu_cosine(pooled, out + (size_t)i * MAX_DIM, d) > 0.99999,
            "%s: box %d: the pooled embedding of one frame is that frame's", name, i);
      dim = d;
    }
    gst_buffer_unref(outbuf);
  }
  gst_buffer_unref(reference);
  gst_harness_teardown(h);
  gst_object_unref(e);
  gst_object_unref(bus);
  return dim;
}

static void test_unsupported_format(const char *model) {
  GstBus *bus;
  GstElement *e = gtu_reidembed(model, &bus);
  GstPad *sink = gst_element_get_static_pad(e, "sink");
  GstCaps *accepted = gst_pad_query_caps(sink, NULL);
  GstCaps *yuy2 = gtu_caps(GST_VIDEO_FORMAT_YUY2, W, H),
          *gray = gtu_caps(GST_VIDEO_FORMAT_GRAY8, W, H);
  CHECK(!gst_caps_can_intersect(accepted, yuy2), "YUY2 must not be accepted");
  CHECK(!gst_caps_can_intersect(accepted, gray), "GRAY8 must not be accepted");
  for (int i = 0; i < N_FORMATS; i++) {
    GstCaps *c = gtu_caps(formats[i], W, H);
    CHECK(gst_caps_can_intersect(accepted, c), "%s must be accepted",
          gst_video_format_to_string(formats[i]));
    gst_caps_unref(c);
  }
  /* memory:NVMM or other non-system memory is not taken (nvvideoconvert first) */
  GstCaps *nvmm = gst_caps_from_string("video/x-raw(memory:NVMM),format=NV12,width=64,height=64");
  CHECK(!gst_caps_can_intersect(accepted, nvmm), "NVMM memory must not be accepted");
  gst_caps_unref(nvmm);
  gst_caps_unref(yuy2);
  gst_caps_unref(gray);
  gst_caps_unref(accepted);
  gst_object_unref(sink);
  gst_object_unref(e);
  gst_object_unref(bus);
}

int main(int argc, char **argv) {
  gtu_init(argc, argv, "formats");
  gchar *model = gtu_model("resnet18", 64, 32, 1);
  guint8 *rgb = gtu_picture(W, H, 3);
  float *emb = test_alloc((size_t)N_FORMATS * 3 * MAX_DIM);
  int dims[N_FORMATS];
  for (int f = 0; f < N_FORMATS; f++)
    dims[f] = embed_in_format(model, formats[f], rgb, emb + (size_t)f * 3 * MAX_DIM);
  /* formats[2] is RGB: the reference */
  for (int f = 0; f < N_FORMATS; f++) {
    if (dims[f] != dims[2] || dims[f] <= 0) continue;
    double worst = 1;
    for (int i = 0; i < 3; i++) {
      double c = gtu_cosine(emb + ((size_t)f * 3 + i) * MAX_DIM,
                            emb + ((size_t)2 * 3 + i) * MAX_DIM, dims[f]);
      if (c < worst) worst = c;
    }
    fprintf(stderr, "%-5s vs RGB: min cosine %.6f\n", gst_video_format_to_string(formats[f]),
            worst);
    CHECK(worst >= 0.999, "%s: cosine %.6f < 0.999 to RGB", gst_video_format_to_string(formats[f]),
          worst);
    /* packed formats hold the same bytes: identical embeddings */
    if (f >= 2)
      CHECK(worst > 0.999999, "%s: packed RGB variants must agree exactly (%.7f)",
            gst_video_format_to_string(formats[f]), worst);
  }
  test_unsupported_format(model);
  free(emb);
  g_free(rgb);
  g_free(model);
  return gtu_finish("test_reidembed_formats");
}
