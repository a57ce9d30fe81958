/* ONNX export and import: every architecture written by reid_onnx_save and
 * read back by reid_onnx_load gives the embeddings of the network it came
 * from (with random batch-norm statistics, BNNeck included; instance norm,
 * channel slices and concatenation, ceil-mode max pooling), keeps its
 * metadata, and every way a file can be unusable is refused with a message
 * that names the cause (missing, truncated, unsupported op, external data,
 * opset, input size). */
#include <unistd.h>

#include "backend.h"
#include "engine.h"
#include "fileio.h"
#include "nn_fixtures.h"
#include "onnx.pb-c.h"
#include "onnx_import.h"

static char dir[256];
static reid_backend *cpu;

static const char *path_of(const char *name) {
  static char buf[4][512];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
  return buf[k];
}

static float *embed(reid_net *net, const float *x, int n) {
  reid_engine *e = NULL;
  float *out = test_alloc((size_t)n * reid_net_feature_dim(net));
  CHECK_OK(reid_engine_create(net, REID_PRECISION_FP32, n, &e));
  if (e) CHECK_OK(reid_engine_embed(e, x, n, out));
  reid_engine_destroy(e);
  return out;
}

static void round_trip(reid_arch arch, int bnneck) {
  reid_model_config cfg;
  reid_model_config_default(&cfg);
  cfg.arch = arch;
  cfg.input_height = 64;
  cfg.input_width = 32;
  cfg.bnneck = cfg.embed_after_bn = bnneck;
  cfg.mean[0] = 0.5f;
  cfg.std[2] = 0.3f;
  reid_net *net = NULL, *back = NULL;
  CHECK_OK(reid_net_create(&cfg, cpu, &net));
  if (!net) return;
  test_rng rng = test_rng_make(7 + arch);
  randomise_batchnorm(net, &rng, 0.2f);
  const reid_tensor_view *nb = reid_net_find(net, "bottleneck.bias");
  if (nb) test_fill_uniform(&rng, reid_net_tensor_data(net, nb), nb->numel, -0.1f, 0.1f);
  const char *path = path_of("model.onnx");
  CHECK_OK(reid_onnx_save(net, path, 0.625));
  reid_onnx_info info;
  CHECK_OK(reid_onnx_load(path, NULL, cpu, &back, &info));
  if (back) {
    const reid_model_config *b = reid_net_config(back);
    CHECK(b->input_height == 64 && b->input_width == 32, "%s: input %dx%d", reid_arch_name(arch),
          b->input_height, b->input_width);
    CHECK(b->mean[0] == 0.5f && b->std[2] == 0.3f, "%s: mean/std not kept", reid_arch_name(arch));
    CHECK(info.match_threshold == 0.625 && info.opset == 13, "threshold %g opset %d",
          info.match_threshold, info.opset);
    CHECK(b->embed_after_bn == bnneck, "%s: BNNeck %d", reid_arch_name(arch), b->embed_after_bn);
    int n = 3, d = reid_net_feature_dim(net);
    CHECK(reid_net_feature_dim(back) == d, "dim %d vs %d", reid_net_feature_dim(back), d);
    float *x = test_alloc((size_t)n * 3 * 64 * 32);
    test_fill_uniform(&rng, x, (size_t)n * 3 * 64 * 32, -2, 2);
    float *want = embed(net, x, n), *got = embed(back, x, n);
    double scale = 0, err = 0;
    for (int i = 0; i < n * d; i++) {
      scale = fmax(scale, fabs(want[i]));
      err = fmax(err, fabs(want[i] - got[i]));
    }
    CHECK(err <= 1e-5 * fmax(scale, 1), "%s%s: max error %g (scale %g)", reid_arch_name(arch),
          bnneck ? " + BNNeck" : "", err, scale);
    free(x);
    free(want);
    free(got);
  }
  reid_net_destroy(back);
  reid_net_destroy(net);
}

/* Loads `path` expecting `code` and a message holding every string of `needles`. */
static void expect_error(const char *path, const reid_onnx_options *o, reid_status code,
                         const char *const *needles) {
  reid_net *net = NULL;
  reid_status st = reid_onnx_load(path, o, cpu, &net, NULL);
  CHECK(st == code, "%s: status %s, want %s (%s)", path, reid_status_name(st),
        reid_status_name(code), reid_last_error());
  for (int i = 0; needles[i]; i++)
    CHECK(strstr(reid_last_error(), needles[i]) != NULL, "message '%s' lacks '%s'",
          reid_last_error(), needles[i]);
  CHECK(net == NULL, "a network came back");
  reid_net_destroy(net);
}

/* The exported model, edited, written to `name`. */
typedef void (*model_edit)(Onnx__ModelProto *m);

static const char *edited(const char *src, const char *name, model_edit edit) {
  unsigned char *bytes;
  size_t size;
  CHECK_OK(reid_read_file(src, &bytes, &size));
  Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, size, bytes);
  CHECK(m != NULL, "cannot unpack %s", src);
  edit(m);
  size_t n = onnx__model_proto__get_packed_size(m);
  uint8_t *out = (uint8_t *)test_alloc(n / sizeof(float) + 1);
  onnx__model_proto__pack(m, out);
  const void *parts[1] = {out};
  CHECK_OK(reid_write_file_atomic(path_of(name), parts, &n, 1, 0));
  free(out);
  free(bytes);
  onnx__model_proto__free_unpacked(m, NULL);
  return path_of(name);
}

/* edits allocate with malloc: free_unpacked frees them with the model */
static void replace(char **field, const char *text) {
  free(*field);
  *field = strdup(text);
}
static void to_softmax(Onnx__ModelProto *m) {
  replace(&m->graph->node[3]->op_type, "Softmax");
}
static void to_external(Onnx__ModelProto *m) {
  Onnx__StringStringEntryProto *e = malloc(sizeof *e);
  onnx__string_string_entry_proto__init(e);
  e->key = strdup("location");
  e->value = strdup("weights.bin");
  Onnx__TensorProto *t = m->graph->initializer[0];
  t->has_data_location = 1;
  t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
  t->n_external_data = 1;
  t->external_data = malloc(sizeof *t->external_data);
  t->external_data[0] = e;
}
static void to_opset9(Onnx__ModelProto *m) {
  m->opset_import[0]->version = 9;
}
static void to_dynamic_hw(Onnx__ModelProto *m) {
  Onnx__TensorShapeProto *s = m->graph->input[0]->type->tensor_type->shape;
  s->dim[2]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
  s->dim[2]->dim_param = strdup("height");
}
static void to_dynamic_no_meta(Onnx__ModelProto *m) {
  to_dynamic_hw(m);
  for (size_t i = 0; i < m->n_metadata_props; i++) replace(&m->metadata_props[i]->key, "unused");
}
static void to_short_weight(Onnx__ModelProto *m) {
  m->graph->initializer[0]->raw_data.len -= 4;
}

static void errors(void) {
  reid_model_config cfg;
  reid_model_config_default(&cfg);
  cfg.arch = REID_ARCH_RESNET18;
  cfg.input_height = 64;
  cfg.input_width = 32;
  reid_net *net = NULL;
  CHECK_OK(reid_net_create(&cfg, cpu, &net));
  char good[512];
  snprintf(good, sizeof good, "%s", path_of("good.onnx"));
  CHECK_OK(reid_onnx_save(net, good, NAN));
  reid_net_destroy(net);

  expect_error(path_of("missing.onnx"), NULL, REID_EIO, (const char *[]){"missing.onnx", NULL});
  unsigned char *bytes;
  size_t size;
  CHECK_OK(reid_read_file(good, &bytes, &size));
  size_t cut = size / 2;
  const void *parts[1] = {bytes};
  CHECK_OK(reid_write_file_atomic(path_of("cut.onnx"), parts, &cut, 1, 0));
  expect_error(path_of("cut.onnx"), NULL, REID_EFORMAT, (const char *[]){"cut.onnx", NULL});
  size_t tiny = 7;
  CHECK_OK(reid_write_file_atomic(path_of("tiny.onnx"), parts, &tiny, 1, 0));
  expect_error(path_of("tiny.onnx"), NULL, REID_EFORMAT, (const char *[]){"tiny.onnx", NULL});
  free(bytes);

  expect_error(edited(good, "softmax.onnx", to_softmax), NULL, REID_EUNSUPPORTED,
               (const char *[]){"Softmax", "#3", "node 'MaxPool_3'", NULL});
  expect_error(edited(good, "external.onnx", to_external), NULL, REID_EUNSUPPORTED,
               (const char *[]){"external", "weights.bin", "conv1.weight", NULL});
  expect_error(edited(good, "opset9.onnx", to_opset9), NULL, REID_EUNSUPPORTED,
               (const char *[]){"opset 9", NULL});
  expect_error(edited(good, "short.onnx", to_short_weight), NULL, REID_EFORMAT,
               (const char *[]){"conv1.weight", "truncated", NULL});

  /* a dynamic height: metadata's size, else 256x128, else the options' */
  reid_net *dyn = NULL;
  CHECK_OK(reid_onnx_load(edited(good, "dyn.onnx", to_dynamic_hw), NULL, cpu, &dyn, NULL));
  if (dyn) CHECK(reid_net_config(dyn)->input_height == 64, "metadata height not used");
  reid_net_destroy(dyn);
  dyn = NULL;
  char bare[512];
  snprintf(bare, sizeof bare, "%s", edited(good, "bare.onnx", to_dynamic_no_meta));
  CHECK_OK(reid_onnx_load(bare, NULL, cpu, &dyn, NULL));
  if (dyn) CHECK(reid_net_config(dyn)->input_height == 256, "default height not used");
  reid_net_destroy(dyn);
  dyn = NULL;
  reid_onnx_options o;
  CHECK_OK(reid_onnx_options_parse(&o, "96x32", "0.5,0.5,0.5", NULL));
  CHECK_OK(reid_onnx_load(bare, &o, cpu, &dyn, NULL));
  if (dyn)
    CHECK(reid_net_config(dyn)->input_height == 96 && reid_net_config(dyn)->mean[1] == 0.5f,
          "options not used");
  reid_net_destroy(dyn);
  expect_error(good, &o, REID_EINVAL, (const char *[]){"fixed at 64x32", NULL});
  CHECK(reid_onnx_options_parse(&o, "96", NULL, NULL) == REID_EINVAL, "bad size accepted");
  CHECK(reid_onnx_options_parse(&o, NULL, NULL, "1,0,1") == REID_EINVAL, "std 0 accepted");
}

int main(void) {
  snprintf(dir, sizeof dir, "%s/reid-onnx-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(dir)) return 1;
  CHECK_OK(reid_backend_create("cpu", 0, &cpu));
  round_trip(REID_ARCH_RESNET18, 1);
  round_trip(REID_ARCH_MOBILENET_V2, 0);
  round_trip(REID_ARCH_OSNET_X0_25, 0);
  /* instance norm, ceil-mode max pooling, channel slices and concatenation */
  round_trip(REID_ARCH_OSNET_IBN_X1_0, 0);
  round_trip(REID_ARCH_OSNET_AIN_X1_0, 0);
  round_trip(REID_ARCH_FASTREID_RESNET50_IBN_A, 1);
  errors();
  reid_backend_destroy(cpu);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
  return test_finish("test_onnx");
}
