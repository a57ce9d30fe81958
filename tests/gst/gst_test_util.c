/* Helpers of the element tests; see gst_test_util.h. */
#define GTU_INTERNAL 1
#include "gst_test_util.h"

#include <dirent.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <malloc.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static gchar *reid_train_path, *workdir, *models_dir;

void gtu_fatal(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("FATAL: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static void symlink_plugin(const char *system_dir, const char *folder, const char *file) {
  gchar *target = g_build_filename(system_dir, file, NULL);
  gchar *link = g_build_filename(folder, file, NULL);
  g_unlink(link);
  if (g_file_test(target, G_FILE_TEST_EXISTS) && symlink(target, link) != 0)
    gtu_fatal("cannot link %s to %s", link, target);
  g_free(target);
  g_free(link);
}

void gtu_init(int argc, char **argv, const char *test_name) {
  const char *plugin_dir = NULL, *system_dir = NULL, *base = NULL;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--reid-train"))
      reid_train_path = g_strdup(argv[i + 1]);
    else if (!strcmp(argv[i], "--plugin-dir"))
      plugin_dir = argv[i + 1];
    else if (!strcmp(argv[i], "--system-plugins"))
      system_dir = argv[i + 1];
    else if (!strcmp(argv[i], "--workdir"))
      base = argv[i + 1];
    else
      gtu_fatal("unknown argument %s", argv[i]);
  }
  if (!reid_train_path || !plugin_dir || !system_dir || !base)
    gtu_fatal("usage: %s --reid-train PATH --plugin-dir DIR --system-plugins DIR --workdir DIR",
              argv[0]);
  workdir = g_build_filename(base, test_name, NULL);
  models_dir = g_build_filename(base, "models", NULL);
  gchar *sysplugins = g_build_filename(workdir, "system-plugins", NULL);
  if (g_mkdir_with_parents(sysplugins, 0755) != 0 || g_mkdir_with_parents(models_dir, 0755) != 0)
    gtu_fatal("cannot create %s or %s", sysplugins, models_dir);
  /* only the system plugins the tests use: fast scans, nothing foreign loaded */
  symlink_plugin(system_dir, sysplugins, "libgstcoreelements.so");
  symlink_plugin(system_dir, sysplugins, "libgstapp.so");
  gchar *registry = g_build_filename(workdir, "registry.bin", NULL);
  g_setenv("GST_PLUGIN_PATH_1_0", plugin_dir, TRUE);
  g_setenv("GST_PLUGIN_PATH", plugin_dir, TRUE);
  g_setenv("GST_PLUGIN_SYSTEM_PATH_1_0", sysplugins, TRUE);
  g_setenv("GST_REGISTRY_1_0", registry, TRUE);
  g_setenv("GST_REGISTRY", registry, TRUE);
  /* scan in this process: an ASan-built plugin cannot load into gst-plugin-scanner */
  g_setenv("GST_REGISTRY_FORK", "no", TRUE);
#if defined(__SANITIZE_ADDRESS__)
  /* LeakSanitizer (GCC 12) dies ("Tracer caught signal 11") walking the dynamic
   * TLS that the dlopen'ed plugin leaves in libgomp's worker threads, which live
   * until exit. Sanitizer runs of the element tests therefore use one OpenMP
   * thread (libgomp is loaded with the plugin, after this); the kernels' own
   * tests cover OpenMP under the sanitizers. */
  g_setenv("OMP_NUM_THREADS", "1", TRUE);
#endif
  g_free(sysplugins);
  g_free(registry);
  gst_init(NULL, NULL);
  GstPluginFeature *feature = gst_registry_lookup_feature(gst_registry_get(), "reidembed");
  if (!feature) gtu_fatal("the reidembed element was not found in %s", plugin_dir);
  gst_object_unref(feature);
}

const char *gtu_workdir(void) {
  return workdir;
}

gchar *gtu_path(const char *name) {
  return g_build_filename(workdir, name, NULL);
}

gchar *gtu_model(const char *arch, int height, int width, int seed) {
  gchar *name = g_strdup_printf("%s-%dx%d-s%d.safetensors", arch, height, width, seed);
  gchar *path = g_build_filename(models_dir, name, NULL);
  g_free(name);
  if (g_file_test(path, G_FILE_TEST_EXISTS)) return path;
  gchar *size = g_strdup_printf("%dx%d", height, width), *seed_s = g_strdup_printf("%d", seed);
  /* reid-train writes atomically: tests racing to create the same model are fine */
  gchar *args[] = {reid_train_path, "init", "--arch", (gchar *)arch,
                   "--input-size",  size,   "--seed", seed_s,
                   "--output",      path,   NULL};
  gchar *out = NULL, *err = NULL;
  gint status = 0;
  GError *error = NULL;
  if (!g_spawn_sync(NULL, args, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status, &error))
    gtu_fatal("cannot run %s: %s", reid_train_path, error->message);
  if (!g_spawn_check_wait_status(status, NULL)) gtu_fatal("reid-train init failed: %s", err);
  g_free(out);
  g_free(err);
  g_free(size);
  g_free(seed_s);
  return path;
}

gchar *gtu_model_int8(const char *float_model, const char *name) {
  gchar *list = gtu_path("int8-calibration.txt"), *path = gtu_path(name);
  GString *lines = g_string_new("");
  guint8 *rgb = gtu_picture(160, 120, 5);
  for (int i = 0; i < 6; i++) {
    gchar *crop = g_strdup_printf("%s/int8-crop%d.ppm", gtu_workdir(), i);
    gtu_write_ppm(crop, rgb, 160, 10 * i, 5 * i, 40, 80);
    g_string_append_printf(lines, "%s\n", crop);
    g_free(crop);
  }
  g_file_set_contents(list, lines->str, -1, NULL);
  gchar *args[] = {
      reid_train_path, "quantize", "--model", (gchar *)float_model, "--calibration", list,
      "--output",      path,       NULL};
  gchar *out = NULL, *err = NULL;
  gint status = 0;
  GError *error = NULL;
  if (!g_spawn_sync(NULL, args, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status, &error))
    gtu_fatal("cannot run %s: %s", reid_train_path, error->message);
  if (!g_spawn_check_wait_status(status, NULL)) gtu_fatal("reid-train quantize failed: %s", err);
  g_free(out);
  g_free(err);
  g_free(rgb);
  g_free(list);
  g_string_free(lines, TRUE);
  return path;
}

gchar *gtu_model_onnx(const char *checkpoint, const char *name) {
  gchar *path = gtu_path(name);
  gchar *args[] = {reid_train_path,     "export",   "--format", "onnx", "--model",
                   (gchar *)checkpoint, "--output", path,       NULL};
  gchar *out = NULL, *err = NULL;
  gint status = 0;
  GError *error = NULL;
  if (!g_spawn_sync(NULL, args, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status, &error))
    gtu_fatal("cannot run %s: %s", reid_train_path, error->message);
  if (!g_spawn_check_wait_status(status, NULL))
    gtu_fatal("reid-train export --format onnx failed: %s", err);
  g_free(out);
  g_free(err);
  return path;
}

/* Splits a safetensors file into its header object and data section. */
static JsonParser *read_safetensors(const char *path, gchar **bytes, const char **data,
                                    gsize *data_size) {
  gsize size = 0;
  if (!g_file_get_contents(path, bytes, &size, NULL) || size < 8) gtu_fatal("cannot read %s", path);
  guint64 n = 0;
  for (int i = 7; i >= 0; i--) n = (n << 8) | (guint8)(*bytes)[i];
  if (n > size - 8) gtu_fatal("%s: bad header size", path);
  JsonParser *parser = json_parser_new();
  if (!json_parser_load_from_data(parser, *bytes + 8, (gssize)n, NULL))
    gtu_fatal("%s: bad header", path);
  *data = *bytes + 8 + n;
  *data_size = size - 8 - n;
  return parser;
}

static void add_prefixed(JsonBuilder *b, JsonObject *header, const char *prefix, guint64 shift) {
  GList *names = json_object_get_members(header);
  for (GList *l = names; l; l = l->next) {
    if (!strcmp(l->data, "__metadata__")) continue;
    JsonObject *t = json_object_get_object_member(header, l->data);
    gchar *name = g_strconcat(prefix, l->data, NULL);
    json_builder_set_member_name(b, name);
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "dtype");
    json_builder_add_string_value(b, json_object_get_string_member(t, "dtype"));
    json_builder_set_member_name(b, "shape");
    json_builder_add_value(b, json_node_copy(json_object_get_member(t, "shape")));
    JsonArray *off = json_object_get_array_member(t, "data_offsets");
    json_builder_set_member_name(b, "data_offsets");
    json_builder_begin_array(b);
    json_builder_add_int_value(b, json_array_get_int_element(off, 0) + (gint64)shift);
    json_builder_add_int_value(b, json_array_get_int_element(off, 1) + (gint64)shift);
    json_builder_end_array(b);
    json_builder_end_object(b);
    g_free(name);
  }
  g_list_free(names);
}

static void add_prefixed_meta(JsonBuilder *b, JsonObject *header, const char *prefix) {
  if (!json_object_has_member(header, "__metadata__")) return;
  JsonObject *meta = json_object_get_object_member(header, "__metadata__");
  GList *keys = json_object_get_members(meta);
  for (GList *l = keys; l; l = l->next) {
    gchar *key = g_strconcat(prefix, l->data, NULL);
    json_builder_set_member_name(b, key);
    json_builder_add_string_value(b, json_object_get_string_member(meta, l->data));
    g_free(key);
  }
  g_list_free(keys);
}

gchar *gtu_model_pair(const char *teacher, const char *student, const char *video,
                      const char *name) {
  gchar *tb, *sb;
  const char *td, *sd;
  gsize tn, sn;
  JsonParser *tp = read_safetensors(teacher, &tb, &td, &tn),
             *sp = read_safetensors(student, &sb, &sd, &sn);
  JsonObject *th = json_node_get_object(json_parser_get_root(tp)),
             *sh = json_node_get_object(json_parser_get_root(sp));
  JsonBuilder *b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "__metadata__");
  json_builder_begin_object(b);
  const char *fixed[][2] = {
      {"format", "mdkt-pair"}, {"image_model", "student."}, {"video_model", video}};
  for (int i = 0; i < 3; i++) {
    json_builder_set_member_name(b, fixed[i][0]);
    json_builder_add_string_value(b, fixed[i][1]);
  }
  add_prefixed_meta(b, th, "teacher.");
  add_prefixed_meta(b, sh, "student.");
  json_builder_end_object(b);
  add_prefixed(b, th, "teacher.", 0);
  add_prefixed(b, sh, "student.", tn);
  json_builder_end_object(b);
  JsonGenerator *g = json_generator_new();
  JsonNode *root = json_builder_get_root(b);
  json_generator_set_root(g, root);
  gsize hn = 0;
  gchar *header = json_generator_to_data(g, &hn);
  gsize padded = (hn + 7) / 8 * 8;
  gchar *path = gtu_path(name);
  FILE *f = fopen(path, "wb");
  if (!f) gtu_fatal("cannot write %s", path);
  guint8 len[8];
  for (int i = 0; i < 8; i++) len[i] = (guint8)((guint64)padded >> (8 * i));
  fwrite(len, 1, 8, f);
  fwrite(header, 1, hn, f);
  for (gsize i = hn; i < padded; i++) fputc(' ', f);
  fwrite(td, 1, tn, f);
  fwrite(sd, 1, sn, f);
  if (fclose(f) != 0) gtu_fatal("cannot write %s", path);
  g_free(header);
  json_node_unref(root);
  g_object_unref(g);
  g_object_unref(b);
  g_object_unref(tp);
  g_object_unref(sp);
  g_free(tb);
  g_free(sb);
  return path;
}

guint8 *gtu_picture(int width, int height, int seed) {
  guint8 *rgb = g_malloc((gsize)width * height * 3);
  double a = 1.7 * seed, b = 2.3 * seed + 1.0, c = 0.9 * seed + 2.0;
  for (int y = 0; y < height; y++)
    for (int x = 0; x < width; x++) {
      guint8 *p = rgb + ((gsize)y * width + x) * 3;
      p[0] = (guint8)lround(127 + 120 * sin(a + x / 7.0));
      p[1] = (guint8)lround(127 + 120 * sin(b + y / 9.0));
      p[2] = (guint8)lround(127 + 120 * sin(c + (x + y) / 11.0));
    }
  return rgb;
}

void gtu_write_ppm(const char *path, const guint8 *rgb, int width, int x, int y, int w, int h) {
  FILE *f = fopen(path, "wb");
  if (!f) gtu_fatal("cannot write %s", path);
  fprintf(f, "P6\n%d %d\n255\n", w, h);
  for (int r = 0; r < h; r++) fwrite(rgb + ((gsize)(y + r) * width + x) * 3, 1, (size_t)w * 3, f);
  if (fclose(f) != 0) gtu_fatal("cannot write %s", path);
}

static void info_for(GstVideoInfo *info, GstVideoFormat format, int width, int height) {
  gst_video_info_set_format(info, format, width, height);
  GST_VIDEO_INFO_FPS_N(info) = 30;
  GST_VIDEO_INFO_FPS_D(info) = 1;
  if (GST_VIDEO_INFO_IS_YUV(info))
    gst_video_colorimetry_from_string(&GST_VIDEO_INFO_COLORIMETRY(info),
                                      GST_VIDEO_COLORIMETRY_BT601);
}

GstCaps *gtu_caps(GstVideoFormat format, int width, int height) {
  GstVideoInfo info;
  info_for(&info, format, width, height);
  return gst_video_info_to_caps(&info);
}

static guint8 clamp_u8(double v) {
  return (guint8)(v < 0 ? 0 : v > 255 ? 255 : lround(v));
}

/* BT.601 limited range (the inverse of preprocess.h's conversion). */
static void rgb_to_yuv(const guint8 *p, double *y, double *u, double *v) {
  double r = p[0], g = p[1], b = p[2];
  *y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255;
  *u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255;
  *v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255;
}

GstBuffer *gtu_buffer(GstVideoFormat format, int width, int height, const guint8 *rgb, int frame) {
  GstVideoInfo info;
  info_for(&info, format, width, height);
  GstBuffer *buf = gst_buffer_new_allocate(NULL, GST_VIDEO_INFO_SIZE(&info), NULL);
  GstMapInfo map;
  gst_buffer_map(buf, &map, GST_MAP_WRITE);
  memset(map.data, 0, map.size);
  guint8 *d = map.data;
  if (GST_VIDEO_INFO_IS_YUV(&info)) {
    guint8 *yp = d + GST_VIDEO_INFO_PLANE_OFFSET(&info, 0);
    int ys = GST_VIDEO_INFO_PLANE_STRIDE(&info, 0);
    for (int y = 0; y < height; y++)
      for (int x = 0; x < width; x++) {
        double Y, U, V;
        rgb_to_yuv(rgb + ((gsize)y * width + x) * 3, &Y, &U, &V);
        yp[(gsize)y * ys + x] = clamp_u8(Y);
      }
    for (int cy = 0; cy < (height + 1) / 2; cy++)
      for (int cx = 0; cx < (width + 1) / 2; cx++) {
        double su = 0, sv = 0;
        int n = 0;
        for (int dy = 0; dy < 2; dy++)
          for (int dx = 0; dx < 2; dx++) {
            int x = 2 * cx + dx, y = 2 * cy + dy;
            if (x >= width || y >= height) continue;
            double Y, U, V;
            rgb_to_yuv(rgb + ((gsize)y * width + x) * 3, &Y, &U, &V);
            su += U, sv += V, n++;
          }
        if (format == GST_VIDEO_FORMAT_NV12) {
          guint8 *uv = d + GST_VIDEO_INFO_PLANE_OFFSET(&info, 1) +
                       (gsize)cy * GST_VIDEO_INFO_PLANE_STRIDE(&info, 1) + 2 * cx;
          uv[0] = clamp_u8(su / n), uv[1] = clamp_u8(sv / n);
        } else {
          d[GST_VIDEO_INFO_PLANE_OFFSET(&info, 1) +
            (gsize)cy * GST_VIDEO_INFO_PLANE_STRIDE(&info, 1) + cx] = clamp_u8(su / n);
          d[GST_VIDEO_INFO_PLANE_OFFSET(&info, 2) +
            (gsize)cy * GST_VIDEO_INFO_PLANE_STRIDE(&info, 2) + cx] = clamp_u8(sv / n);
        }
      }
  } else {
    const GstVideoFormatInfo *fi = info.finfo;
    int bpp = GST_VIDEO_FORMAT_INFO_PSTRIDE(fi, 0), stride = GST_VIDEO_INFO_PLANE_STRIDE(&info, 0);
    int off[3] = {GST_VIDEO_FORMAT_INFO_POFFSET(fi, 0), GST_VIDEO_FORMAT_INFO_POFFSET(fi, 1),
                  GST_VIDEO_FORMAT_INFO_POFFSET(fi, 2)};
    for (int y = 0; y < height; y++)
      for (int x = 0; x < width; x++) {
        guint8 *px = d + (gsize)y * stride + (gsize)x * bpp;
        for (int c = 0; c < 3; c++) px[off[c]] = rgb[((gsize)y * width + x) * 3 + c];
        if (bpp == 4) { /* alpha / x byte: whatever is not a colour */
          for (int k = 0; k < 4; k++)
            if (k != off[0] && k != off[1] && k != off[2]) px[k] = 255;
        }
      }
  }
  gst_buffer_unmap(buf, &map);
  GST_BUFFER_PTS(buf) = gst_util_uint64_scale(frame, GST_SECOND, 30);
  GST_BUFFER_DURATION(buf) = gst_util_uint64_scale(1, GST_SECOND, 30);
  return buf;
}

GstVideoRegionOfInterestMeta *gtu_add_box(GstBuffer *buf, const char *type, int x, int y, int w,
                                          int h, int track_id) {
  GstVideoRegionOfInterestMeta *roi = gst_buffer_add_video_region_of_interest_meta(
      buf, type, (guint)x, (guint)y, (guint)w, (guint)h);
  if (track_id >= 0)
    gst_video_region_of_interest_meta_add_param(
        roi, gst_structure_new("object_id", "id", G_TYPE_INT, track_id, NULL));
  return roi;
}

static GstVideoRegionOfInterestMeta *nth_roi(GstBuffer *buf, int index) {
  gpointer state = NULL;
  GstMeta *meta;
  int i = 0;
  while ((meta = gst_buffer_iterate_meta_filtered(buf, &state,
                                                  GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE)))
    if (i++ == index) return (GstVideoRegionOfInterestMeta *)meta;
  return NULL;
}

int gtu_roi_count(GstBuffer *buf) {
  int n = 0;
  while (nth_roi(buf, n)) n++;
  return n;
}

static int copy_bytes(const GstStructure *s, const char *field, float *out, int cap) {
  gint dims = -1;
  const GValue *v = gst_structure_get_value(s, field);
  if (!v || G_VALUE_TYPE(v) != G_TYPE_BYTES || !gst_structure_get_int(s, "dims", &dims)) return -1;
  GBytes *bytes = g_value_get_boxed(v);
  gsize size = 0;
  const void *data = g_bytes_get_data(bytes, &size);
  if (size != sizeof(float) * (gsize)dims || dims > cap) return -1;
  memcpy(out, data, size);
  return dims;
}

int gtu_embedding(GstBuffer *buf, int index, const char *param, float *out, int cap) {
  GstVideoRegionOfInterestMeta *roi = nth_roi(buf, index);
  GstStructure *s = roi ? gst_video_region_of_interest_meta_get_param(roi, param) : NULL;
  return s ? copy_bytes(s, "data", out, cap) : -1;
}

int gtu_message_embedding(const GstStructure *s, float *out, int cap) {
  return copy_bytes(s, "embedding", out, cap);
}

double gtu_cosine(const float *a, const float *b, int n) {
  double dot = 0, na = 0, nb = 0;
  for (int i = 0; i < n; i++)
    dot += (double)a[i] * b[i], na += (double)a[i] * a[i], nb += (double)b[i] * b[i];
  return dot / sqrt(na * nb + 1e-30);
}

GstElement *gtu_reidembed(const char *model, GstBus **bus) {
  GstElement *e = gst_element_factory_make("reidembed", NULL);
  if (!e) gtu_fatal("cannot make a reidembed element");
  if (model) g_object_set(e, "model", model, NULL);
  *bus = gst_bus_new();
  gst_element_set_bus(e, *bus);
  return e;
}

GstHarness *gtu_harness(GstElement *element, GstVideoFormat format, int width, int height) {
  GstHarness *h = gst_harness_new_with_element(element, "sink", "src");
  gst_harness_set_src_caps(h, gtu_caps(format, width, height));
  return h;
}

GPtrArray *gtu_messages(GstBus *bus) {
  GPtrArray *list = g_ptr_array_new_with_free_func((GDestroyNotify)gst_structure_free);
  GstMessage *m;
  while ((m = gst_bus_pop_filtered(bus, GST_MESSAGE_ELEMENT))) {
    const GstStructure *s = gst_message_get_structure(m);
    if (s) g_ptr_array_add(list, gst_structure_copy(s));
    gst_message_unref(m);
  }
  return list;
}

GPtrArray *gtu_select(GPtrArray *all, const char *name) {
  GPtrArray *list = g_ptr_array_new();
  for (guint i = 0; i < all->len; i++)
    if (gst_structure_has_name(g_ptr_array_index(all, i), name))
      g_ptr_array_add(list, g_ptr_array_index(all, i));
  return list;
}

void gtu_count_warning(const gchar *domain, GLogLevelFlags level, const gchar *message,
                       gpointer counter) {
  (void)domain, (void)level;
  (*(int *)counter)++;
  fprintf(stderr, "(expected warning) %s\n", message);
}

gchar *gtu_error_text(GstBus *bus) {
  GstMessage *m = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
  if (!m) return NULL;
  GError *err = NULL;
  gchar *debug = NULL;
  gst_message_parse_error(m, &err, &debug);
  gchar *text = g_strdup_printf("%s (%s)", err->message, debug ? debug : "");
  g_error_free(err);
  g_free(debug);
  gst_message_unref(m);
  return text;
}

gchar *gtu_read_file(const char *path) {
  gchar *text = NULL;
  return g_file_get_contents(path, &text, NULL, NULL) ? text : NULL;
}

int gtu_open_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  int n = 0;
  if (!d) return -1;
  while (readdir(d)) n++;
  closedir(d);
  return n;
}

size_t gtu_heap_in_use(void) {
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}
