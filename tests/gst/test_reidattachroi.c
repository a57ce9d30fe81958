/* reidattachroi: rows of a MOT file become ROI metas on the buffer of their
 * frame (1-based, from the timestamp and framerate or, without timestamps,
 * by counting), with object_id / detection params, rounded and clipped boxes,
 * -1 fields, roi-type and frame-offset; and chained with reidembed. */
#include "gst_test_util.h"

#define W 160
#define H 120

static const char *mot_text =
    "# frame, id, x, y, w, h, conf, class, visibility\n"
    "1, 1, 10, 20, 30, 40, 0.9, 1, 1\n"
    "1,2,150.4,100.6,30,40,1,1,0.5\n" /* partly outside: x 150..160, y 101..120 */
    "\n"
    "2 3 -10 -5 30 40 1 1 1\n"     /* spaces: clipped to 0, 0, 20, 35 */
    "2,-1,50,50,20,20,0.3,-1,-1\n" /* a detection without identity */
    "2,4,500,10,20,20,1,1,1\n"     /* outside: skipped */
    "3,1,12,20,30,40,1,1,1,-1\n"   /* extra field */
    "1,5,60,60,10,10\n";           /* six fields, after frame 3 in the file */

typedef struct want {
  int x, y, w, h, id;
} want;

static GstVideoRegionOfInterestMeta *roi_at(GstBuffer *buf, int index) {
  gpointer state = NULL;
  GstMeta *m;
  for (int i = 0; (m = gst_buffer_iterate_meta_filtered(
                       buf, &state, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE));
       i++)
    if (i == index) return (GstVideoRegionOfInterestMeta *)m;
  return NULL;
}

static void check_frame(GstBuffer *out, int frame, const want *w, int n, const char *type) {
  CHECK(out && gtu_roi_count(out) == n, "frame %d: %d ROIs, expected %d", frame,
        out ? gtu_roi_count(out) : -1, n);
  for (int i = 0; out && i < n && i < gtu_roi_count(out); i++) {
    GstVideoRegionOfInterestMeta *r = roi_at(out, i);
    CHECK((int)r->x == w[i].x && (int)r->y == w[i].y && (int)r->w == w[i].w && (int)r->h == w[i].h,
          "frame %d ROI %d: %u,%u %ux%u, expected %d,%d %dx%d", frame, i, r->x, r->y, r->w, r->h,
          w[i].x, w[i].y, w[i].w, w[i].h);
    CHECK(!g_strcmp0(g_quark_to_string(r->roi_type), type), "frame %d ROI %d: type %s", frame, i,
          g_quark_to_string(r->roi_type));
    CHECK(r->id == w[i].id, "frame %d ROI %d: meta id %d", frame, i, r->id);
    GstStructure *oid = gst_video_region_of_interest_meta_get_param(r, "object_id");
    gint id = -7;
    if (oid) gst_structure_get_int(oid, "id", &id);
    CHECK(w[i].id >= 0 ? id == w[i].id : oid == NULL, "frame %d ROI %d: object_id %d", frame, i,
          id);
    GstStructure *det = gst_video_region_of_interest_meta_get_param(r, "detection");
    gdouble x_min = -1;
    CHECK(det && gst_structure_get_double(det, "x_min", &x_min) &&
              fabs(x_min - (double)w[i].x / W) < 1e-9,
          "frame %d ROI %d: detection x_min %g", frame, i, x_min);
  }
}

static GstHarness *attach_harness(const char *mot, const char *props[][2]) {
  GstElement *e = gst_element_factory_make("reidattachroi", NULL);
  g_object_set(e, "location", mot, NULL);
  for (int i = 0; props && props[i][0]; i++)
    gst_util_set_object_arg(G_OBJECT(e), props[i][0], props[i][1]);
  GstHarness *h = gst_harness_new_with_element(e, "sink", "src");
  gst_object_unref(e);
  gst_harness_set_src_caps(h, gtu_caps(GST_VIDEO_FORMAT_RGB, W, H));
  return h;
}

static const want frame1[] = {{10, 20, 30, 40, 1}, {150, 101, 10, 19, 2}, {60, 60, 10, 10, 5}};
static const want frame2[] = {{0, 0, 20, 35, 3}, {50, 50, 20, 20, -1}};
static const want frame3[] = {{12, 20, 30, 40, 1}};

static void test_timestamps(const char *mot, const guint8 *rgb) {
  GstHarness *h = attach_harness(mot, NULL);
  const want *frames[] = {frame1, frame2, frame3};
  const int counts[] = {3, 2, 1};
  for (int f = 0; f < 4; f++) {
    gst_harness_push(h, gtu_buffer(GST_VIDEO_FORMAT_RGB, W, H, rgb, f));
    GstBuffer *out = gst_harness_pull(h);
    check_frame(out, f + 1, f < 3 ? frames[f] : NULL, f < 3 ? counts[f] : 0, "person");
    if (out) gst_buffer_unref(out);
  }
  gst_harness_teardown(h);
}

static void test_counting_offset_and_type(const char *mot, const guint8 *rgb) {
  /* no timestamps: counted; frame-offset 1: the first buffer is MOT frame 2 */
  const char *props[][2] = {{"frame-offset", "1"}, {"roi-type", "pedestrian"}, {NULL, NULL}};
  GstHarness *h = attach_harness(mot, props);
  const want *frames[] = {frame2, frame3};
  const int counts[] = {2, 1};
  for (int f = 0; f < 2; f++) {
    GstBuffer *in = gtu_buffer(GST_VIDEO_FORMAT_RGB, W, H, rgb, f);
    GST_BUFFER_PTS(in) = GST_CLOCK_TIME_NONE;
    gst_harness_push(h, in);
    GstBuffer *out = gst_harness_pull(h);
    check_frame(out, f + 2, frames[f], counts[f], "pedestrian");
    if (out) gst_buffer_unref(out);
  }
  gst_harness_teardown(h);
}

static void test_chained(const char *mot, const guint8 *rgb) {
  gchar *model = gtu_model("resnet18", 64, 32, 1);
  gchar *desc =
      g_strdup_printf("reidattachroi location=\"%s\" ! reidembed model=\"%s\"", mot, model);
  GstHarness *h = gst_harness_new_parse(desc);
  gst_harness_set_src_caps(h, gtu_caps(GST_VIDEO_FORMAT_RGB, W, H));
  gst_harness_push(h, gtu_buffer(GST_VIDEO_FORMAT_RGB, W, H, rgb, 0));
  GstBuffer *out = gst_harness_pull(h);
  float v[512];
  for (int i = 0; out && i < 3; i++)
    CHECK(gtu_embedding(out, i, "reid-embedding", v, 512) == 512, "chained: ROI %d embedded", i);
  if (out) gst_buffer_unref(out);
  gst_harness_teardown(h);
  g_free(desc);
  g_free(model);
}

int main(int argc, char **argv) {
  gtu_init(argc, argv, "attachroi");
  gchar *mot = gtu_path("sample.mot");
  g_file_set_contents(mot, mot_text, -1, NULL);
  guint8 *rgb = gtu_picture(W, H, 1);
  test_timestamps(mot, rgb);
  test_counting_offset_and_type(mot, rgb);
  test_chained(mot, rgb);
  g_free(rgb);
  g_free(mot);
  return gtu_finish("test_reidattachroi");
}
