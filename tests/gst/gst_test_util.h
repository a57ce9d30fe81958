/* Shared helpers of the element tests: environment (plugin path, private
 * registry), tiny checkpoints made with `reid-train init`, a smooth test
 * picture converted to every pixel format, ROI boxes, embeddings read back
 * from the ROI metas, and bus messages.
 *
 * Every element test is run as
 *   test_X --reid-train PATH --plugin-dir DIR --system-plugins DIR --workdir DIR
 * (tests/gst/meson.build). gtu_init() points GStreamer at the freshly built
 * plugin and at a private registry and a private system-plugin folder that
 * holds only coreelements and app (symlinked), then calls gst_init(). */
#pragma once

#include <glib/gstdio.h>
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#ifndef GTU_INTERNAL /* gst_test_util.c itself has no checks */
#include "../test_util.h"
#endif

/* Parses the arguments above, sets up the environment and calls gst_init. */
void gtu_init(int argc, char **argv, const char *test_name);
/* The test's own scratch folder (created). */
const char *gtu_workdir(void);
/* A file name inside the scratch folder (g_free it). */
gchar *gtu_path(const char *name);

/* A ResNet checkpoint made with `reid-train init --arch ARCH --input-size HxW
 * --seed SEED`, created once in the shared models folder (g_free the path). */
gchar *gtu_model(const char *arch, int height, int width, int seed);

/* An MDKT pair checkpoint made of two single-model files: tensors and
 * metadata prefixed "teacher." / "student.", format=mdkt-pair, image_model
 * "student." and video_model `video` ("teacher." or "student.", which is what
 * reid-train writes). Written to the scratch folder. */
gchar *gtu_model_pair(const char *teacher, const char *student, const char *video,
                      const char *name);

/* `reid-train quantize` of a float model, calibrated on crops of gtu_picture;
 * written to the scratch folder as NAME (g_free the path). */
gchar *gtu_model_int8(const char *float_model, const char *name);
/* `reid-train export --format onnx` of a checkpoint, written to the scratch folder as `name`
 * (g_free the path). */
gchar *gtu_model_onnx(const char *checkpoint, const char *name);

/* Leak checks over state cycles: the process's open file descriptors, and
 * the heap bytes malloc has handed out and not yet taken back. */
int gtu_open_fds(void);
size_t gtu_heap_in_use(void);

/* Smooth, deterministic packed RGB24 picture [h, w, 3] (g_free it). */
guint8 *gtu_picture(int width, int height, int seed);
/* Writes a crop of a packed RGB24 picture as a binary PPM (FFmpeg reads it). */
void gtu_write_ppm(const char *path, const guint8 *rgb, int width, int x, int y, int w, int h);

/* Caps for a raw video format at 30 fps; YUV formats are BT.601 limited range. */
GstCaps *gtu_caps(GstVideoFormat format, int width, int height);
/* A buffer of `format` holding the RGB picture (BT.601 limited range YUV with
 * 2x2-averaged chroma for NV12 / I420), pts = frame * 1/30 s. */
GstBuffer *gtu_buffer(GstVideoFormat format, int width, int height, const guint8 *rgb, int frame);

/* Adds a ROI meta of `type`; track_id >= 0 adds the object_id param. x and y
 * may be negative (stored as the unsigned fields' two's complement). */
GstVideoRegionOfInterestMeta *gtu_add_box(GstBuffer *buf, const char *type, int x, int y, int w,
                                          int h, int track_id);

/* Number of ROI metas on the buffer. */
int gtu_roi_count(GstBuffer *buf);
/* The `param` ("reid-embedding" / "reid-track-embedding") of the index-th ROI
 * meta copied into out[cap]; returns its dims, or -1 when absent. */
int gtu_embedding(GstBuffer *buf, int index, const char *param, float *out, int cap);

double gtu_cosine(const float *a, const float *b, int n);

/* A reidembed element with the given model and a fresh bus of our own
 * (returned in *bus). Further properties: gst_util_set_object_arg. */
GstElement *gtu_reidembed(const char *model, GstBus **bus);
/* A harness around `element`, with caps of `format` set. */
GstHarness *gtu_harness(GstElement *element, GstVideoFormat format, int width, int height);

/* Pops every element message off the bus (copies of their structures, in order). */
GPtrArray *gtu_messages(GstBus *bus);
/* The structures of `all` named `name` (borrowed pointers; free the array only). */
GPtrArray *gtu_select(GPtrArray *all, const char *name);
/* The embedding carried by a reid-tracklet message (copied; returns dims). */
int gtu_message_embedding(const GstStructure *s, float *out, int cap);
/* Pops the first ERROR message and returns its text (g_free it), or NULL. */
gchar *gtu_error_text(GstBus *bus);

/* A GLogFunc for g_log_set_handler: adds 1 to *(int *)counter and prints the
 * message as expected (instead of GLib's handling of warnings). */
void gtu_count_warning(const gchar *domain, GLogLevelFlags level, const gchar *message,
                       gpointer counter);

/* Reads a whole text file (g_free it); NULL when it cannot be read. */
gchar *gtu_read_file(const char *path);

/* Runs gst_deinit() and returns test_finish()'s result (inline: the check
 * counters of test_util.h are per translation unit). */
#ifndef GTU_INTERNAL
static inline int gtu_finish(const char *test_name) {
  gst_deinit();
  return test_finish(test_name);
}
#endif

/* Setup failures (no reid-train, unwritable folder) end the test at once. */
void gtu_fatal(const char *fmt, ...) G_GNUC_PRINTF(1, 2) G_GNUC_NORETURN;
