/* reid-train embed: embeddings of a .npy batch or of a list of image files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "cli.h"
#include "engine.h"
#include "image_list.h"
#include "npy.h"
#include "onnx_import.h"

static const char *const help =
    "usage: reid-train embed --model M.safetensors|M.onnx --input X --output F.npy [options]\n"
    "\n"
    "Writes float32 N x D embeddings, one row per input, L2-normalised.\n"
    "X is either a .npy file of float32 N x 3 x H x W images already normalised\n"
    "(any H x W), or a text file listing image paths, one per line (blank lines and\n"
    "lines starting with # are skipped; relative paths are relative to the list's\n"
    "folder). Images are decoded with FFmpeg, resized (bilinear) to the model's\n"
    "input size and normalised with the model's mean/std.\n"
    "The embedding is the global-average-pooled last stage (what torchvision gives\n"
    "with fc = Identity), or the BNNeck output for models saved with embed_after_bn.\n"
    "\n"
    "  --model FILE         checkpoint (.safetensors) or ONNX model (.onnx) (required)\n"
    "  --input FILE         .npy batch or image list (required)\n"
    "  --output FILE        .npy to write (required; written atomically)\n"
    "  --device D           cpu, cuda or auto (default auto)\n"
    "  --gpu-id N           CUDA device (default 0)\n"
    "  --batch-size N       images per network call (default 16)\n"
    "  --precision P        fp32 (default), bf16 (CPU with AVX512-BF16), tf32/fp16 (CUDA),\n"
    "                       int8 (models written by reid-train quantize; CPU, CUDA)\n"
    "  --threads N          CPU threads (default: all cores)\n"
    "  --raw                write the pooled feature without L2 normalisation\n"
    "  --input-size HxW     run at this size (default: the model's; an ONNX graph with a\n"
    "                       dynamic size: metadata_props input_height/width, else 256x128)\n"
    "  --mean R,G,B         normalisation mean (default: the model's, else ImageNet's)\n"
    "  --std R,G,B          normalisation std (default: the model's, else ImageNet's)\n"
    "  -h, --help           this text\n";

typedef struct embed_args {
  const char *model, *input, *output, *device, *size, *mean, *std;
  int gpu_id, batch, threads, raw;
  reid_precision precision;
} embed_args;

static int run_embed(const embed_args *a) {
  const char *cmd = "embed";
  if (a->threads > 0) reid_set_num_threads(a->threads);
  reid_backend *be = NULL;
  st_file *f = NULL;
  reid_net *net = NULL;
  reid_engine *engine = NULL;
  float *x = NULL, *out = NULL;
  char **paths = NULL;
  int n = 0;
  int64_t shape[8];
  int ndim = 0;
  reid_model_config cfg;

  reid_onnx_options o;
  int onnx = reid_onnx_is_path(a->model);
  reid_status st = reid_onnx_options_parse(&o, a->size, a->mean, a->std);
  if (st == REID_OK && !onnx) st = st_open(a->model, &f);
  if (st == REID_OK && !onnx) st = reid_checkpoint_read_config(f, NULL, &cfg);
  if (st == REID_OK && !onnx) reid_onnx_options_apply(&o, &cfg);
  int npy_input = image_list_is_npy(a->input);
  if (st == REID_OK && npy_input) {
    st = npy_read_f32(a->input, &ndim, shape, &x);
    if (st == REID_OK && (ndim != 4 || shape[1] != 3 || shape[0] < 1 || shape[2] < 32 ||
                          shape[3] < 32 || shape[2] > 4096 || shape[3] > 4096))
      st = reid_fail(REID_EINVAL, "%s: expected float32 N x 3 x H x W images (H, W in 32..4096)",
                     a->input);
    if (st == REID_OK) {
      n = (int)shape[0];
      cfg.input_height = o.input_height = (int)shape[2]; /* the network adapts to the batch */
      cfg.input_width = o.input_width = (int)shape[3];
    }
  } else if (st == REID_OK) {
    st = image_list_read(a->input, &paths, &n);
  }
  if (st == REID_OK) st = reid_backend_create(a->device, a->gpu_id, &be);
  if (st == REID_OK && onnx) st = reid_onnx_load(a->model, &o, be, &net, NULL);
  if (st == REID_OK && onnx) cfg = *reid_net_config(net);
  if (st == REID_OK && !onnx) st = reid_net_create_empty(&cfg, be, &net);
  if (st == REID_OK && !onnx) st = reid_checkpoint_load_weights(net, f, NULL);
  if (f) st_close(f);
  f = NULL;
  int dim = net ? reid_net_feature_dim(net) : 0;
  if (st == REID_OK) st = reid_engine_create(net, a->precision, a->batch, &engine);
  if (st == REID_OK) {
    out = malloc(sizeof(float) * dim * (size_t)n);
    if (!out) st = reid_fail(REID_ENOMEM, "out of memory for %d embeddings", n);
  }
  if (st == REID_OK && npy_input) {
    st = reid_engine_embed(engine, x, n, out);
  } else if (st == REID_OK) {
    size_t image = (size_t)3 * cfg.input_height * cfg.input_width;
    x = malloc(sizeof(float) * image * a->batch);
    if (!x) st = reid_fail(REID_ENOMEM, "out of memory");
    for (int done = 0; st == REID_OK && done < n; done += a->batch) {
      int chunk = n - done < a->batch ? n - done : a->batch;
      st = image_list_load(paths + done, chunk, &cfg, x);
      if (st == REID_OK) st = reid_engine_embed(engine, x, chunk, out + (size_t)dim * done);
    }
  }
  if (st == REID_OK && !a->raw) reid_l2_normalize_rows(out, n, dim);
  if (st == REID_OK) {
    int64_t oshape[2] = {n, dim};
    st = npy_write_f32(a->output, 2, oshape, out);
  }
  if (st == REID_OK)
    fprintf(stderr, "reid-train embed: %d x %d embeddings -> %s (%s)\n", n, dim, a->output,
            reid_engine_describe(engine));
  int rc = st == REID_OK ? CLI_OK : cli_library_error(cmd, st);
  image_list_free(paths, n);
  free(x);
  free(out);
  reid_engine_destroy(engine);
  reid_net_destroy(net);
  reid_backend_destroy(be);
  return rc;
}

int cmd_embed(int argc, char **argv) {
  static const struct option options[] = {{"model", required_argument, 0, 'm'},
                                          {"input", required_argument, 0, 'i'},
                                          {"output", required_argument, 0, 'o'},
                                          {"device", required_argument, 0, 'd'},
                                          {"gpu-id", required_argument, 0, 'g'},
                                          {"batch-size", required_argument, 0, 'b'},
                                          {"precision", required_argument, 0, 'p'},
                                          {"threads", required_argument, 0, 't'},
                                          {"raw", no_argument, 0, 'r'},
                                          {"input-size", required_argument, 0, 's'},
                                          {"mean", required_argument, 0, 'M'},
                                          {"std", required_argument, 0, 'S'},
                                          {"help", no_argument, 0, 'h'},
                                          {0, 0, 0, 0}};
  const char *cmd = "embed";
  embed_args a = {.device = "auto", .batch = 16, .precision = REID_PRECISION_FP32};
  optind = 1;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
    switch (c) {
    case 'm': a.model = optarg; break;
    case 'i': a.input = optarg; break;
    case 'o': a.output = optarg; break;
    case 'd':
      if (cli_parse_device(cmd, "--device", optarg, &a.device)) return CLI_USAGE;
      break;
    case 'g':
      if (cli_parse_int(cmd, "--gpu-id", optarg, 0, 63, &a.gpu_id)) return CLI_USAGE;
      break;
    case 'b':
      if (cli_parse_int(cmd, "--batch-size", optarg, 1, 4096, &a.batch)) return CLI_USAGE;
      break;
    case 'p':
      if (reid_precision_parse(optarg, &a.precision) != REID_OK)
        return cli_usage_error(cmd, "--precision expects fp32, tf32, fp16, bf16 or int8, got '%s'",
                               optarg);
      break;
    case 't':
      if (cli_parse_int(cmd, "--threads", optarg, 1, 1024, &a.threads)) return CLI_USAGE;
      break;
    case 'r': a.raw = 1; break;
    case 's': a.size = optarg; break;
    case 'M': a.mean = optarg; break;
    case 'S': a.std = optarg; break;
    case 'h': fputs(help, stdout); return CLI_OK;
    default: return cli_bad_option(cmd, argv);
    }
  }
  if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
  if (!a.model) return cli_usage_error(cmd, "--model is required");
  if (!a.input) return cli_usage_error(cmd, "--input is required");
  if (!a.output) return cli_usage_error(cmd, "--output is required");
  return run_embed(&a);
}
