/* Writes the seed corpora of the fuzz harnesses with the project's own code
 * (scripts/fuzz.sh seeds runs it; the output is committed under
 * tests/fuzz/corpus/NAME). Seeds are small valid inputs of each parser:
 *
 *   checkpoint  a ResNet-18 checkpoint as reid_checkpoint_save writes it, with
 *               every tensor cut to one element per dimension (names, dtypes,
 *               metadata real; the 45 MB of weights would make a useless seed),
 *               the same as an MDKT pair, mobilenet_v2 and osnet_x0_25 (the graph
 *               architectures converted checkpoints use), and small F16/BF16/I64 containers
 *   onnx        a small graph of every node kind as reid_onnx_save writes it (all ops the
 *               exporter writes, a Linear gate, a BNNeck, metadata)
 *   npy         npy_write_f32: a scalar, a vector, a 2x3 matrix
 *   json        the header of each safetensors seed, a tracklet and a match line
 *               as reidembed writes them (gst/jsonl.c)
 *   image       a 16x8 picture as PNG and JPEG (FFmpeg's encoders, image.c) and PPM
 *   motfile     a MOT file as pipelines/demo.sh writes it, and a det-style one
 *   watchlist   list files as README shows them
 *   mars        the info/ .mat files of a `reid-train synth --layout mars` tree,
 *               each behind its selector byte (0 train, 1 test, 2 query)
 *   collected   index.jsonl lines in the layout of README "Collected tracklets"
 *   gallery     edits of a gallery's stored values ([op][length][bytes] records,
 *               see fuzz_gallery.c): none, a valid embedding, f16, other dims
 *
 *   make_seeds OUT_DIR */
#include <stdarg.h>
#include <sys/stat.h>

#include "backend.h"
#include "checkpoint.h"
#include "fuzz.h"
#include "image.h"
#include "jsonl.h"
#include "net_graph.h"
#include "npy.h"
#include "onnx_import.h"
#include "safetensors.h"
#include "synth.h"

static const char *out_root;

#define OK(x)                                                                                      \
  do {                                                                                             \
    if ((x) != REID_OK) {                                                                          \
      fprintf(stderr, "make_seeds: %s: %s\n", #x, reid_last_error());                              \
      exit(1);                                                                                     \
    }                                                                                              \
  } while (0)

static const char *seed_path(const char *harness, const char *fmt, ...) {
  static char path[1024];
  char name[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(name, sizeof name, fmt, ap);
  va_end(ap);
  snprintf(path, sizeof path, "%s/%s", out_root, harness);
  mkdir(path, 0755);
  snprintf(path, sizeof path, "%s/%s/%s", out_root, harness, name);
  return path;
}

static void put(const char *harness, const char *name, const void *data, size_t size) {
  fuzz_write(seed_path(harness, "%s", name), data, size);
}

static void put_text(const char *harness, const char *name, const char *text) {
  put(harness, name, text, strlen(text));
}

/* The safetensors header (JSON) of a seed, as a JSON seed too. */
static void header_as_json(const char *st_path, const char *name) {
  size_t n;
  unsigned char *b = fuzz_slurp(st_path, &n);
  uint64_t hl = 0;
  for (int k = 7; k >= 0; k--) hl = hl << 8 | b[k];
  if (8 + hl <= n) put("json", name, b + 8, hl);
  free(b);
}

/* Re-writes checkpoint `full` with every tensor cut to one element per dimension. */
static void shrink_checkpoint(const char *full, const char *name) {
  st_file *f;
  OK(st_open(full, &f));
  st_writer *w = st_writer_new();
  for (size_t i = 0; i < st_meta_count(f); i++) {
    const char *k, *v;
    st_meta_at(f, i, &k, &v);
    OK(st_writer_add_meta(w, k, v));
  }
  static const unsigned char one[8] = {0, 0, 0x80, 0x3f, 0, 0, 0, 0}; /* 1.0f / small ints */
  for (size_t i = 0; i < st_count(f); i++) {
    const st_tensor *t = st_tensor_at(f, i);
    int64_t shape[ST_MAX_DIMS];
    for (int d = 0; d < t->ndim; d++) shape[d] = 1;
    OK(st_writer_add_raw(w, t->name, t->dtype, t->ndim, shape, one));
  }
  const char *path = seed_path("checkpoint", "%s", name);
  OK(st_writer_save(w, path));
  st_writer_free(w);
  st_close(f);
  char json_name[256];
  snprintf(json_name, sizeof json_name, "%s-header.json", name);
  header_as_json(path, json_name);
}

static void checkpoint_seeds(const char *tmp) {
  reid_backend *be;
  OK(reid_backend_create("cpu", 0, &be));
  reid_model_config cfg;
  reid_model_config_default(&cfg);
  cfg.input_height = 64, cfg.input_width = 32;
  reid_net *a, *b;
  OK(reid_net_create(&cfg, be, &a));
  char full[512];
  snprintf(full, sizeof full, "%s/full.safetensors", tmp);
  OK(reid_checkpoint_save(a, full, ST_F16));
  shrink_checkpoint(full, "resnet18-shrunk.safetensors");
  cfg.bnneck = 1, cfg.num_classes = 3;
  OK(reid_net_create(&cfg, be, &b));
  OK(reid_checkpoint_save_pair(a, b, full, ST_F32));
  shrink_checkpoint(full, "mdkt-pair-shrunk.safetensors");
  /* the graph architectures (a converted torchvision / torchreid checkpoint's layout) */
  const reid_arch graphs[2] = {REID_ARCH_MOBILENET_V2, REID_ARCH_OSNET_X0_25};
  for (int i = 0; i < 2; i++) {
    reid_model_config g;
    reid_model_config_default(&g);
    g.arch = graphs[i], g.input_height = 64, g.input_width = 32;
    reid_net *n;
    OK(reid_net_create_empty(&g, be, &n));
    OK(reid_checkpoint_save(n, full, ST_F16));
    char name[64];
    snprintf(name, sizeof name, "%s-shrunk.safetensors", reid_arch_name(graphs[i]));
    shrink_checkpoint(full, name);
    reid_net_destroy(n);
  }
  remove(full);
  reid_net_destroy(a);
  reid_net_destroy(b);
  reid_backend_destroy(be);

  st_writer *w = st_writer_new();
  float v[6] = {1, -2, 3.5f, 0, 1e-3f, 65504};
  int64_t s23[2] = {2, 3}, s6[1] = {6}, s1[1] = {1};
  int64_t iv[1] = {42};
  OK(st_writer_add_meta(w, "arch", "resnet18"));
  OK(st_writer_add_f32(w, "conv1.weight", ST_F16, 2, s23, v));
  OK(st_writer_add_f32(w, "bn1.weight", ST_BF16, 1, s6, v));
  OK(st_writer_add_f32(w, "fc.bias", ST_F32, 1, s6, v));
  OK(st_writer_add_raw(w, "bn1.num_batches_tracked", ST_I64, 1, s1, iv));
  const char *path = seed_path("checkpoint", "small-mixed.safetensors");
  OK(st_writer_save(w, path));
  st_writer_free(w);
  header_as_json(path, "small-mixed-header.json");
}

static void npy_seeds(void) {
  float v[6] = {1, -2, 3.5f, 0, 1e-3f, -1e30f};
  int64_t s23[2] = {2, 3}, s6[1] = {6};
  OK(npy_write_f32(seed_path("npy", "scalar.npy"), 0, NULL, v));
  OK(npy_write_f32(seed_path("npy", "vector.npy"), 1, s6, v));
  OK(npy_write_f32(seed_path("npy", "matrix.npy"), 2, s23, v));
}

static void json_seeds(void) {
  float emb[4] = {0.5f, -0.5f, 0.5f, -0.5f};
  reid_tracklet_record r = {.stream = "cam \"1\"",
                            .reason = "timeout",
                            .model = "m.safetensors",
                            .track_id = 7,
                            .first_pts = 0,
                            .last_pts = UINT64_MAX,
                            .frames = 45,
                            .embedded_frames = 15,
                            .bbox = {300, 200, 60, 120},
                            .embedding = emb,
                            .dim = 4};
  char *line = reid_json_tracklet_line(&r);
  put_text("json", "tracklet-line.json", line);
  put_text("collected", "tracklet-line.jsonl", line); /* not an index line: skipped */
  free(line);
  line = reid_json_match_line(&r, "alice.jpg", 0.8123);
  put_text("json", "match-line.json", line);
  free(line);
}

static void image_seeds(void) {
  reid_image img;
  OK(reid_image_alloc(8, 16, &img));
  for (int y = 0; y < 16; y++)
    for (int x = 0; x < 8; x++)
      for (int c = 0; c < 3; c++)
        img.data[y * img.stride + 3 * x + c] = (uint8_t)(x * 30 + y * 9 + c * 80);
  OK(reid_image_save_png(seed_path("image", "person.png"), &img));
  OK(reid_image_save_jpeg(seed_path("image", "person.jpg"), &img, 90));
  /* PPM (P6): the format is a header and the raw pixels */
  char head[32];
  int hl = snprintf(head, sizeof head, "P6\n%d %d\n255\n", img.width, img.height);
  unsigned char *ppm = malloc((size_t)hl + (size_t)img.height * img.stride);
  memcpy(ppm, head, (size_t)hl);
  memcpy(ppm + hl, img.data, (size_t)img.height * img.stride);
  put("image", "person.ppm", ppm, (size_t)hl + (size_t)img.height * img.stride);
  free(ppm);
  reid_image_free(&img);
}

static void text_seeds(void) {
  /* pipelines/demo.sh: frame, id, x, y, w, h, conf, class, visibility */
  char mot[4096] = "";
  for (int f = 1; f <= 12; f++) {
    char line[128];
    snprintf(line, sizeof line, "%d,1,%d,40,64,128,1,1,1\n", f, 20 + 5 * f);
    strcat(mot, line);
    if (f <= 6) snprintf(line, sizeof line, "%d,2,300,200,60,120,1,1,1\n", f), strcat(mot, line);
  }
  put_text("motfile", "demo.mot", mot);
  put_text("motfile", "det.txt",
           "# MOT16 det style: blanks, fractions, -1 ids and world coordinates\n"
           "1 -1 912.5 484.0 97.3 109.1 0.98 -1 -1 -1\n"
           "1, -1, -5.2, 3.1e2, 10, 20, 0.5, -1, -1, -1\n\n"
           "3\t4\t0\t0\t1\t1\n");
  put_text("watchlist", "list.txt",
           "# the watchlist\nq1.png\n\nsub/q2.jpg\n  # indented comment\n/absolute/path.png\n");
  put_text("watchlist", "one.txt", "q1.png");
  put_text(
      "collected", "index.jsonl",
      "{\"event\":\"collected\",\"dir\":\"000001\",\"track_id\":7,\"together_with\":[\"000002\"]}\n"
      "{\"event\":\"collected\",\"dir\":\"000002\",\"track_id\":8,\"together_with\":[\"000001\","
      "\"000003\"]}\n"
      "{\"event\":\"dropped\",\"track_id\":9,\"reason\":\"too-few-frames\"}\n"
      "{\"event\":\"collected\",\"dir\":\"000004\",\"together_with\":[\"000003\"]}\n"
      "{\"event\":\"collected\",\"dir\":\"0000");
}

static void mars_seeds(const char *tmp) {
  char root[512];
  snprintf(root, sizeof root, "%s/mars", tmp);
  synth_options o = {.layout = REID_LAYOUT_MARS,
                     .kind = SYNTH_PERSON,
                     .output = root,
                     .identities = 4,
                     .test_identities = 2,
                     .cameras = 2,
                     .tracklets = 2,
                     .frames = 2,
                     .height = 32,
                     .width = 16,
                     .quality = 90,
                     .threads = 1,
                     .seed = 3};
  OK(synth_generate(&o, NULL));
  const char *files[3] = {"tracks_train_info.mat", "tracks_test_info.mat", "query_IDX.mat"};
  for (int i = 0; i < 3; i++) {
    char p[600];
    snprintf(p, sizeof p, "%s/info/%s", root, files[i]);
    size_t n;
    unsigned char *b = fuzz_slurp(p, &n);
    unsigned char *s = malloc(n + 1);
    s[0] = (unsigned char)i;
    memcpy(s + 1, b, n);
    put("mars", files[i], s, n + 1);
    free(s);
    free(b);
  }
}

static void gallery_seeds(void) {
  put("gallery", "none", "", 0);
  /* op 6 (BLOB into row 1's embedding): 4 floats */
  float e[4] = {0, 1, 0, 0};
  unsigned char rec[2 + sizeof e] = {6, sizeof e};
  memcpy(rec + 2, e, sizeof e);
  put("gallery", "embedding", rec, sizeof rec);
  /* op 1 + 18 (TEXT into dtype): "f16"; op 0 + 18 (TEXT into dims): "8" */
  static const unsigned char f16[] = {1 + 18, 3, 'f', '1', '6', 0 + 18, 1, '8'};
  put("gallery", "f16-dims8", f16, sizeof f16);
}

/* A small graph of every node kind the exporter writes: conv + BN + ReLU6, max pool,
 * depthwise conv with bias + ReLU, a Linear channel gate (sigmoid), residual add, average
 * pool, global pool, Linear + BN + ReLU, and a BNNeck. */
static reid_status tiny_graph(reid_net *net, void *ctx) {
  (void)ctx;
  int x = net_input(net, 3, 32, 32);
  x = net_conv_bn(net, "stem", "stem_bn", x, 4, 3, 2, 1, 1, NODE_RELU6);
  int p = net_maxpool_ceil(net, x, 3, 2, 0);
  /* IBN-a: instance norm on half the channels, concatenated with the other half */
  p = net_concat(net, net_instance_norm(net, "in", net_slice(net, p, 0, 2)),
                 net_slice(net, p, 2, 2));
  int d = net_unary(net, NODE_RELU, net_conv(net, "dw", p, 4, 3, 1, 1, 4, 1));
  int g = net_unary(net, NODE_SIGMOID,
                    net_linear(net, "gate", net_unary(net, NODE_GAP, d), 4, 1, INIT_LINEAR));
  x = net_binary(net, NODE_ADD, net_binary(net, NODE_MUL, d, g), p);
  x = net_unary(net, NODE_GAP, net_pool(net, NODE_AVGPOOL, x, 2, 2, 0));
  x = net_linear(net, "fc", x, 8, 1, INIT_LINEAR);
  x = net_unary(net, NODE_RELU, net_bn(net, "fc_bn", x));
  return net_finish(net, x);
}

static void onnx_seeds(const char *tmp) {
  reid_backend *be;
  OK(reid_backend_create("cpu", 0, &be));
  reid_model_config cfg;
  reid_model_config_default(&cfg);
  cfg.arch = REID_ARCH_ONNX, cfg.input_height = cfg.input_width = 32;
  cfg.bnneck = cfg.embed_after_bn = 1;
  reid_net *net;
  OK(net_create_built(&cfg, be, tiny_graph, NULL, &net));
  OK(reid_net_init_weights(net, 1));
  char path[512];
  snprintf(path, sizeof path, "%s/tiny.onnx", tmp);
  OK(reid_onnx_save(net, path, 0.5));
  size_t n;
  unsigned char *b = fuzz_slurp(path, &n);
  put("onnx", "tiny-graph.onnx", b, n);
  free(b);
  remove(path);
  reid_net_destroy(net);
  reid_backend_destroy(be);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: make_seeds OUT_DIR\n");
    return 2;
  }
  out_root = argv[1];
  mkdir(out_root, 0755);
  const char *tmp = fuzz_dir();
  checkpoint_seeds(tmp);
  onnx_seeds(tmp);
  npy_seeds();
  json_seeds();
  image_seeds();
  text_seeds();
  mars_seeds(tmp);
  gallery_seeds();
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
  return system(cmd) == 0 ? 0 : 1;
}
