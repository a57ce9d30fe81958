/* The embedder: single checkpoints and MDKT pairs (the networks named by the
 * file's video_model / image_model embed crops / images, each at its own
 * input size; reid-train's pairs name the student for both), batching
 * into chunks (results equal to one crop at a time), image files, and
 * checkpoint / option errors. */
#include "checkpoint.h"
#include "embedder.h"
#include "image.h"
#include "safetensors.h"
#include "test_util.h"
#include "unit_workdir.h"

#define FW 200
#define FH 150

static reid_net *make_net(reid_backend *be, reid_arch arch, int h, int w, uint64_t seed) {
  reid_model_config cfg;
  reid_model_config_default(&cfg);
  cfg.arch = arch;
  cfg.input_height = h;
  cfg.input_width = w;
  reid_net *net = NULL;
  CHECK_OK(reid_net_create(&cfg, be, &net));
  if (net) CHECK_OK(reid_net_init_weights(net, seed));
  return net;
}

/* Reference: preprocess each box alone, run the engine with batch 1, normalise. */
static void reference_boxes(reid_net *net, const reid_frame *frame, const reid_box *boxes, int n,
                            float *out) {
  const reid_model_config *c = reid_net_config(net);
  reid_preprocess_params pp = {c->input_height, c->input_width, {0}, {0}};
  memcpy(pp.mean, c->mean, sizeof pp.mean);
  memcpy(pp.std, c->std, sizeof pp.std);
  float *x = test_alloc((size_t)3 * pp.height * pp.width);
  reid_engine *e = NULL;
  CHECK_OK(reid_engine_create(net, REID_PRECISION_FP32, 1, &e));
  int d = reid_net_feature_dim(net);
  for (int i = 0; e && i < n; i++) {
    CHECK_OK(reid_preprocess_cpu(frame, &boxes[i], 1, &pp, x));
    CHECK_OK(reid_engine_embed(e, x, 1, out + (size_t)i * d));
  }
  reid_l2_normalize_rows(out, n, d);
  reid_engine_destroy(e);
  free(x);
}

static reid_image picture(int seed) {
  reid_image img = {0};
  CHECK_OK(reid_image_alloc(FW, FH, &img));
  for (int y = 0; y < FH; y++)
    for (int x = 0; x < FW; x++)
      for (int c = 0; c < 3; c++)
        img.data[(size_t)y * img.stride + 3 * x + c] =
            (uint8_t)(127 + 120 * sin(seed + c * 1.3 + x / (7.0 + c) + y / (9.0 - c)));
  return img;
}

static void test_chunks(void) {
  const int cases[][3] = {{21, 8, 8},  {5, 8, 4},    {3, 8, 2},     {1, 8, 1},
                          {12, 16, 8}, {16, 16, 16}, {100, 12, 12}, {7, 1, 1}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    CHECK(reid_embedder_next_chunk(cases[i][0], cases[i][1]) == cases[i][2],
          "next_chunk(%d, %d) = %d", cases[i][0], cases[i][1],
          reid_embedder_next_chunk(cases[i][0], cases[i][1]));
}

static void test_single(const char *dir, reid_backend *be) {
  char path[1100];
  snprintf(path, sizeof path, "%s/single.safetensors", dir);
  reid_net *net = make_net(be, REID_ARCH_RESNET18, 64, 32, 1);
  if (!net) return;
  CHECK_OK(reid_checkpoint_save(net, path, ST_F32));
  reid_embedder_options o = {
      .model_path = path, .device = "cpu", .batch_size = 8, .precision = REID_PRECISION_FP32};
  reid_embedder *e = NULL;
  CHECK_OK(reid_embedder_open(&o, &e));
  if (!e) return;
  CHECK(reid_embedder_networks(e) == 1 && reid_embedder_dim(e, REID_ROLE_VIDEO) == 512 &&
            reid_embedder_dim(e, REID_ROLE_IMAGE) == 512,
        "single model: both roles, 512 dims");
  CHECK(!strcmp(reid_embedder_model_name(e), "single.safetensors"), "model name %s",
        reid_embedder_model_name(e));
  CHECK(strstr(reid_embedder_describe(e), "resnet18 64x32"), "describe: %s",
        reid_embedder_describe(e));
  /* 21 boxes in chunks 8, 8, 4, 1 equal one box at a time */
  reid_image img = picture(1);
  reid_frame frame = reid_frame_from_image(&img);
  reid_box boxes[21];
  test_rng r = test_rng_make(9);
  for (int i = 0; i < 21; i++)
    boxes[i] = (reid_box){(float)test_rng_int(&r, 0, 120), (float)test_rng_int(&r, 0, 60),
                          (float)test_rng_int(&r, 8, 80), (float)test_rng_int(&r, 8, 90)};
  for (int i = 0; i < 21; i++) CHECK_OK(reid_box_clip(&boxes[i], FW, FH, &boxes[i]));
  float *got = test_alloc(21 * 512), *want = test_alloc(21 * 512);
  CHECK_OK(reid_embedder_embed_boxes(e, &frame, boxes, 21, got));
  reference_boxes(net, &frame, boxes, 21, want);
  CHECK_CLOSE(got, want, 21 * 512, 1e-5, 1e-3, "batched boxes vs one at a time");
  CHECK_OK(reid_embedder_embed_boxes(e, &frame, boxes, 0, got));
  /* the crops of two frames as one sequence (the shared engine's batches): 13 boxes of the
   * first frame, none of a third, 8 of the second; chunks 8, 8, 4, 1, the second one across
   * the frames, each written straight into the engine's input */
  reid_image img2 = picture(2);
  reid_frame frame2 = reid_frame_from_image(&img2);
  const reid_embedder_crops crops[3] = {
      {&frame, boxes, 13}, {&frame2, boxes, 0}, {&frame2, boxes + 13, 8}};
  CHECK_OK(reid_embedder_embed_crops(e, crops, 3, got));
  reference_boxes(net, &frame, boxes, 13, want);
  reference_boxes(net, &frame2, boxes + 13, 8, want + 13 * 512);
  CHECK_CLOSE(got, want, 21 * 512, 1e-5, 1e-3, "crops of two frames vs one box at a time");
  reid_image_free(&img2);
  /* an image file: the whole image as one box */
  snprintf(path, sizeof path, "%s/whole.png", dir);
  CHECK_OK(reid_image_save_png(path, &img));
  const char *paths[] = {path};
  reid_box whole = {0, 0, FW, FH};
  CHECK_OK(reid_embedder_embed_images(e, paths, 1, got));
  reference_boxes(net, &frame, &whole, 1, want);
  CHECK_CLOSE(got, want, 512, 1e-5, 1e-3, "image file vs the same picture as a frame");
  const char *missing[] = {"/nonexistent/q.jpg"};
  CHECK(reid_embedder_embed_images(e, missing, 1, got) != REID_OK &&
            strstr(reid_last_error(), "/nonexistent/q.jpg"),
        "missing image: %s", reid_last_error());
  free(got);
  free(want);
  reid_image_free(&img);
  reid_embedder_close(e);
  reid_net_destroy(net);
}

/* A pair file naming `video` ("teacher." / "student.") for tracklets and the student for images. */
static void save_pair(reid_net *teacher, reid_net *student, const char *video, const char *path) {
  st_writer *w = st_writer_new();
  CHECK_OK(st_writer_add_meta(w, "format", "mdkt-pair"));
  CHECK_OK(st_writer_add_meta(w, "image_model", "student."));
  CHECK_OK(st_writer_add_meta(w, "video_model", video));
  CHECK_OK(reid_checkpoint_add(w, teacher, "teacher.", ST_F32));
  CHECK_OK(reid_checkpoint_add(w, student, "student.", ST_F32));
  CHECK_OK(st_writer_save(w, path));
  st_writer_free(w);
}

/* Opens `path` and checks which network embeds crops and which images. */
static void check_roles(const char *path, reid_net *video, reid_net *image, int networks,
                        const char *dir) {
  reid_embedder_options o = {
      .model_path = path, .device = "auto", .batch_size = 4, .precision = REID_PRECISION_FP32};
  reid_embedder *e = NULL;
  CHECK_OK(reid_embedder_open(&o, &e));
  if (!e) return;
  int h, w;
  const reid_model_config *vc = reid_net_config(video), *ic = reid_net_config(image);
  CHECK(reid_embedder_networks(e) == networks, "%s: %d networks", path, reid_embedder_networks(e));
  reid_embedder_input_size(e, REID_ROLE_VIDEO, &h, &w);
  CHECK(h == vc->input_height && w == vc->input_width, "video role input %dx%d", h, w);
  reid_embedder_input_size(e, REID_ROLE_IMAGE, &h, &w);
  CHECK(h == ic->input_height && w == ic->input_width, "image role input %dx%d", h, w);
  CHECK((strstr(reid_embedder_describe(e), "images:") != NULL) == (networks == 2), "describe: %s",
        reid_embedder_describe(e));
  reid_image img = picture(2);
  reid_frame frame = reid_frame_from_image(&img);
  reid_box box = {30, 20, 60, 120};
  float got[512], want[512];
  CHECK_OK(reid_embedder_embed_boxes(e, &frame, &box, 1, got));
  reference_boxes(video, &frame, &box, 1, want);
  CHECK_CLOSE(got, want, 512, 1e-5, 1e-3, "crops by the video_model network");
  char query[1100];
  snprintf(query, sizeof query, "%s/pair-query.png", dir);
  CHECK_OK(reid_image_save_png(query, &img));
  const char *paths[] = {query};
  reid_box whole = {0, 0, FW, FH};
  CHECK_OK(reid_embedder_embed_images(e, paths, 1, got));
  reference_boxes(image, &frame, &whole, 1, want);
  CHECK_CLOSE(got, want, 512, 1e-5, 1e-3, "images by the image_model network");
  reid_image_free(&img);
  reid_embedder_close(e);
}

static void test_pair(const char *dir, reid_backend *be) {
  reid_net *teacher = make_net(be, REID_ARCH_RESNET18, 64, 32, 1);
  reid_net *student = make_net(be, REID_ARCH_RESNET18, 96, 48, 2);
  if (!teacher || !student) return;
  char path[1100];
  /* reid-train's pairs: the student serves both roles (one network) */
  snprintf(path, sizeof path, "%s/pair.safetensors", dir);
  CHECK_OK(reid_checkpoint_save_pair(teacher, student, path, ST_F32));
  check_roles(path, student, student, 1, dir);
  /* a pair naming the teacher for tracklets: two networks, each at its own size */
  snprintf(path, sizeof path, "%s/pair-teacher-video.safetensors", dir);
  save_pair(teacher, student, "teacher.", path);
  check_roles(path, teacher, student, 2, dir);
  reid_net_destroy(teacher);
  reid_net_destroy(student);
}

static void test_errors(const char *dir) {
  reid_embedder *e = (reid_embedder *)1;
  reid_embedder_options o = {
      .model_path = "/nonexistent/m.safetensors", .device = "cpu", .batch_size = 4};
  CHECK(reid_embedder_open(&o, &e) == REID_EIO && e == NULL &&
            strstr(reid_last_error(), "/nonexistent/m.safetensors"),
        "missing: %s", reid_last_error());
  char path[1100];
  snprintf(path, sizeof path, "%s/garbage.safetensors", dir);
  FILE *f = fopen(path, "wb");
  if (f) fputs("\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":", f), fclose(f);
  o.model_path = path;
  CHECK(reid_embedder_open(&o, &e) == REID_EFORMAT && strstr(reid_last_error(), path),
        "corrupt: %s", reid_last_error());
  o.model_path = NULL;
  CHECK(reid_embedder_open(&o, &e) == REID_EINVAL, "no model");
  snprintf(path, sizeof path, "%s/single.safetensors", dir);
  o.model_path = path;
  o.batch_size = 0;
  CHECK(reid_embedder_open(&o, &e) == REID_EINVAL, "batch 0");
  o.batch_size = 4;
  o.device = "tpu";
  CHECK(reid_embedder_open(&o, &e) == REID_EINVAL && strstr(reid_last_error(), "tpu"), "device: %s",
        reid_last_error());
  o.device = "cpu";
  o.precision = REID_PRECISION_FP16;
  CHECK(reid_embedder_open(&o, &e) == REID_EUNSUPPORTED && strstr(reid_last_error(), path),
        "fp16 on the CPU: %s", reid_last_error());
}

int main(int argc, char **argv) {
  const char *dir = unit_workdir(argc, argv);
  if (!dir) return 1;
  reid_backend *be = NULL;
  CHECK_OK(reid_backend_create("cpu", 0, &be));
  test_chunks();
  test_single(dir, be);
  test_pair(dir, be);
  test_errors(dir);
  reid_backend_destroy(be);
  return test_finish("test_embedder");
}
