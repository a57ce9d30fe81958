/* ResNet checkpoints: round trip in every dtype, torchvision-style files,
 * inferred configuration, and every way a file can disagree with the model. */
#include <unistd.h>

#include "backend.h"
#include "checkpoint.h"
#include "test_util.h"

static char dir[256];

static const char *path_of(const char *name) {
  static char buf[512];
  snprintf(buf, sizeof buf, "%s/%s", dir, name);
  return buf;
}

/* Copies every tensor of `net` into a writer, with edits for the bad cases. */
typedef enum edit { EDIT_NONE, EDIT_DROP, EDIT_RESHAPE, EDIT_EXTRA, EDIT_TORCHVISION } edit;

static void write_variant(reid_net *net, const char *path, edit e, const char *victim,
                          const char *const *meta) {
  st_writer *w = st_writer_new();
  for (int i = 0; meta && meta[i]; i += 2) CHECK_OK(st_writer_add_meta(w, meta[i], meta[i + 1]));
  for (int i = 0; i < reid_net_tensor_count(net); i++) {
    const reid_tensor_view *t = reid_net_tensor(net, i);
    int is_victim = victim && !strcmp(t->name, victim);
    if (e == EDIT_DROP && is_victim) continue;
    int64_t shape[4];
    memcpy(shape, t->shape, sizeof shape);
    int ndim = t->ndim;
    size_t numel = t->numel;
    if (e == EDIT_RESHAPE && is_victim) shape[0] -= 1, numel = numel / t->shape[0] * shape[0];
    float *data = test_alloc(numel);
    memcpy(data, reid_net_tensor_data(net, t), sizeof(float) * numel);
    CHECK_OK(st_writer_add_f32(w, t->name, ST_F32, ndim, shape, data));
    free(data);
    if (e == EDIT_TORCHVISION && strstr(t->name, "running_var")) {
      char name[96];
      snprintf(name, sizeof name, "%.*snum_batches_tracked",
               (int)(strlen(t->name) - strlen("running_var")), t->name);
      int64_t zero = 0;
      CHECK_OK(st_writer_add_raw(w, name, ST_I64, 0, NULL, &zero));
    }
  }
  if (e == EDIT_EXTRA) {
    float v[2] = {1, 2};
    int64_t s[1] = {2};
    CHECK_OK(st_writer_add_f32(w, victim, ST_F32, 1, s, v));
  }
  if (e == EDIT_TORCHVISION) { /* an ImageNet head that a backbone-only model ignores */
    int64_t s[2] = {10, 512}, sb[1] = {10};
    float *fc = test_alloc(10 * 512);
    CHECK_OK(st_writer_add_f32(w, "fc.weight", ST_F32, 2, s, fc));
    CHECK_OK(st_writer_add_f32(w, "fc.bias", ST_F32, 1, sb, fc));
    free(fc);
  }
  CHECK_OK(st_writer_save(w, path));
  st_writer_free(w);
}

static void expect_load_error(reid_backend *be, const char *path, reid_status want,
                              const char *needle) {
  reid_net *net = NULL;
  reid_status st = reid_checkpoint_load(path, NULL, be, &net);
  CHECK(st == want, "%s: status %s, want %s (%s)", path, reid_status_name(st),
        reid_status_name(want), reid_last_error());
  CHECK(net == NULL, "no network on failure");
  CHECK(strstr(reid_last_error(), needle) != NULL, "message '%s' lacks '%s'", reid_last_error(),
        needle);
  const char *base = strrchr(path, '/');
  CHECK(strstr(reid_last_error(), base ? base + 1 : path) != NULL,
        "message '%s' lacks the file name", reid_last_error());
}

int main(void) {
  snprintf(dir, sizeof dir, "%s/reid-ckpt-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(dir)) return 2;
  reid_backend *be;
  CHECK_OK(reid_backend_create("cpu", 0, &be));
  reid_model_config cfg;
  reid_model_config_default(&cfg);
  cfg.arch = REID_ARCH_RESNET18;
  cfg.last_stride = 2;
  cfg.input_height = 128;
  cfg.input_width = 64;
  cfg.bnneck = 1;
  cfg.num_classes = 11;
  snprintf(cfg.task, sizeof cfg.task, "market-task-3");
  snprintf(cfg.description, sizeof cfg.description, "unit \"test\" model");
  reid_net *net = NULL;
  CHECK_OK(reid_net_create(&cfg, be, &net));
  CHECK_OK(reid_net_init_weights(net, 42));
  size_t np, nb;
  float *p0 = reid_net_params(net, &np), *b0 = reid_net_buffers(net, &nb);
  test_rng rng = test_rng_make(3);
  test_fill_uniform(&rng, b0, nb, 0.5f, 1.5f);

  /* round trip in every dtype */
  const st_dtype dtypes[3] = {ST_F32, ST_F16, ST_BF16};
  const double tolerance[3] = {0, 1.0 / 2048, 1.0 / 128};
  for (int k = 0; k < 3; k++) {
    const char *path = path_of(k == 0   ? "f32.safetensors"
                               : k == 1 ? "f16.safetensors"
                                        : "bf16.safetensors");
    CHECK_OK(reid_checkpoint_save(net, path, dtypes[k]));
    reid_net *back = NULL;
    CHECK_OK(reid_checkpoint_load(path, NULL, be, &back));
    if (!back) continue;
    const reid_model_config *c = reid_net_config(back);
    CHECK(c->arch == cfg.arch && c->last_stride == 2 && c->input_height == 128 &&
              c->input_width == 64 && c->bnneck == 1 && c->num_classes == 11 &&
              !strcmp(c->task, cfg.task) && !strcmp(c->description, cfg.description) &&
              fabsf(c->mean[1] - cfg.mean[1]) < 1e-6f,
          "%s: configuration survives", st_dtype_name(dtypes[k]));
    size_t np2, nb2;
    float *p1 = reid_net_params(back, &np2), *b1 = reid_net_buffers(back, &nb2);
    CHECK(np2 == np && nb2 == nb, "same sizes");
    if (k == 0) {
      CHECK(!memcmp(p1, p0, sizeof(float) * np) && !memcmp(b1, b0, sizeof(float) * nb),
            "F32 exact");
    } else { /* fp16 flushes |x| < 6e-8 to zero */
      CHECK_CLOSE(p1, p0, np, 1e-7, tolerance[k], st_dtype_name(dtypes[k]));
      CHECK_CLOSE(b1, b0, nb, 1e-7, tolerance[k], st_dtype_name(dtypes[k]));
    }
    reid_net_destroy(back);
  }

  /* torchvision-style: no metadata, num_batches_tracked, an fc head; inferred as resnet18 */
  reid_model_config plain;
  reid_model_config_default(&plain);
  plain.arch = REID_ARCH_RESNET18;
  reid_net *backbone = NULL;
  CHECK_OK(reid_net_create(&plain, be, &backbone));
  write_variant(backbone, path_of("torchvision.safetensors"), EDIT_TORCHVISION, NULL, NULL);
  reid_net *tv = NULL;
  CHECK_OK(reid_checkpoint_load(path_of("torchvision.safetensors"), NULL, be, &tv));
  if (tv) {
    const reid_model_config *c = reid_net_config(tv);
    CHECK(c->arch == REID_ARCH_RESNET18 && c->num_classes == 10 && !c->bnneck &&
              c->last_stride == 1,
          "inferred: arch %s, %d classes, last stride %d", reid_arch_name(c->arch), c->num_classes,
          c->last_stride);
    reid_net_destroy(tv);
  }
  /* the same without the fc head: a backbone-only model */
  const char *meta_ls2[] = {"last_stride", "2", NULL};
  write_variant(backbone, path_of("backbone.safetensors"), EDIT_NONE, NULL, meta_ls2);
  CHECK_OK(reid_checkpoint_load(path_of("backbone.safetensors"), NULL, be, &tv));
  if (tv) {
    CHECK(reid_net_config(tv)->num_classes == 0 && reid_net_config(tv)->last_stride == 2,
          "backbone only");
    reid_net_destroy(tv);
  }

  /* every disagreement is an error naming the file and the problem */
  write_variant(backbone, path_of("missing.safetensors"), EDIT_DROP, "layer2.1.bn2.running_var",
                NULL);
  expect_load_error(be, path_of("missing.safetensors"), REID_EFORMAT,
                    "missing tensor 'layer2.1.bn2.running_var'");
  write_variant(backbone, path_of("reshaped.safetensors"), EDIT_RESHAPE, "layer3.0.conv1.weight",
                NULL);
  expect_load_error(be, path_of("reshaped.safetensors"), REID_EFORMAT, "has shape [255,128,3,3]");
  write_variant(backbone, path_of("extra.safetensors"), EDIT_EXTRA, "layer9.0.conv1.weight", NULL);
  expect_load_error(be, path_of("extra.safetensors"), REID_EFORMAT,
                    "unexpected tensor 'layer9.0.conv1.weight'");
  const char *meta_arch[] = {"arch", "resnet50", NULL};
  write_variant(backbone, path_of("wrongarch.safetensors"), EDIT_NONE, NULL, meta_arch);
  expect_load_error(be, path_of("wrongarch.safetensors"), REID_EFORMAT, "resnet50");
  const char *meta_bad[][3] = {{"arch", "vgg16", NULL},       {"last_stride", "3", NULL},
                               {"embed_dim", "2048", NULL},   {"mean", "0.5,0.5", NULL},
                               {"input_height", "abc", NULL}, {"std", "1,0,1", NULL}};
  const char *needles[] = {"vgg16", "last_stride", "embed_dim", "mean", "input_height", "std"};
  for (int i = 0; i < 6; i++) {
    char name[64];
    snprintf(name, sizeof name, "badmeta%d.safetensors", i);
    write_variant(backbone, path_of(name), EDIT_NONE, NULL, meta_bad[i]);
    expect_load_error(be, path_of(name), REID_EFORMAT, needles[i]);
  }
  expect_load_error(be, path_of("absent.safetensors"), REID_EIO, "absent.safetensors");
  FILE *f = fopen(path_of("garbage.safetensors"), "wb");
  fputs("this is not a checkpoint at all", f);
  fclose(f);
  expect_load_error(be, path_of("garbage.safetensors"), REID_EFORMAT, "garbage.safetensors");

  /* an MDKT pair: both networks come back under their prefixes, roles from the metadata */
  CHECK_OK(reid_checkpoint_save_pair(net, backbone, path_of("pair.safetensors"), ST_F32));
  st_file *pf = NULL;
  CHECK_OK(st_open(path_of("pair.safetensors"), &pf));
  if (pf) {
    reid_model_roles roles;
    CHECK_OK(reid_checkpoint_roles(pf, &roles));
    CHECK(roles.is_pair && !strcmp(roles.image_prefix, "student.") &&
              !strcmp(roles.video_prefix, "student."),
          "pair roles");
    st_close(pf);
  }
  reid_net *teacher = NULL, *student = NULL;
  CHECK_OK(reid_checkpoint_load(path_of("pair.safetensors"), "teacher.", be, &teacher));
  CHECK_OK(reid_checkpoint_load(path_of("pair.safetensors"), "student.", be, &student));
  if (teacher && student) {
    CHECK(reid_net_config(teacher)->bnneck == 1 && reid_net_config(teacher)->num_classes == 11 &&
              reid_net_config(student)->bnneck == 0 && reid_net_config(student)->last_stride == 1,
          "pair members keep their own configuration");
    CHECK(!memcmp(reid_net_params(teacher, NULL), p0, sizeof(float) * np), "teacher weights");
  }
  reid_net_destroy(teacher);
  reid_net_destroy(student);
  CHECK_OK(st_open(path_of("f32.safetensors"), &pf));
  if (pf) {
    reid_model_roles roles;
    CHECK_OK(reid_checkpoint_roles(pf, &roles));
    CHECK(!roles.is_pair && !roles.image_prefix[0], "a single model has no roles");
    st_close(pf);
  }

  reid_net_destroy(backbone);
  reid_net_destroy(net);
  reid_backend_destroy(be);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return test_finish("checkpoint");
}
