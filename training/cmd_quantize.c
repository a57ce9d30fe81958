/* reid-train quantize: post-training int8 quantization of a model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "cli.h"
#include "engine.h"
#include "image_list.h"
#include "npy.h"
#include "quantize.h"

static const char *const help =
    "usage: reid-train quantize --model M.safetensors --calibration LIST --output "
    "M-int8.safetensors\n"
    "\n"
    "Post-training int8 quantization for `reidembed precision=int8` and\n"
    "`reid-train embed --precision int8` (the CPU engine runs it with oneDNN's int8\n"
    "convolutions, VNNI where the CPU has it).\n"
    "Weights: per output channel, symmetric (step = max |w| / 127).\n"
    "Activations: each activation's clipping range is the --percentile of |x| over\n"
    "the calibration crops (a histogram per activation), so that a few outliers do\n"
    "not stretch the step of all other values.\n"
    "LIST is a text file of image paths, one per line (as for embed), or a .npy of\n"
    "float32 N x 3 x H x W crops already normalised at the model's input size.\n"
    "A few hundred crops of the deployment's scenes are enough. The command then\n"
    "embeds the --check crops (default: the calibration crops) with the float model\n"
    "and with the int8 engine and prints the mean and minimum cosine between the two.\n"
    "\n"
    "  --model FILE         float checkpoint (required)\n"
    "  --calibration FILE   image list or .npy of crops (required)\n"
    "  --output FILE        int8 checkpoint to write (required; written atomically)\n"
    "  --check FILE         image list or .npy of crops to compare int8 with fp32 on\n"
    "  --min-cosine C       fail (exit 1) when the mean cosine is below C (default 0)\n"
    "  --percentile P       of |x|, in (0, 100] (default 99.99)\n"
    "  --batch-size N       crops per calibration forward (default 8)\n"
    "  --threads N          CPU threads (default: all cores)\n"
    "  -h, --help           this text\n";

typedef struct quantize_args {
  const char *model, *calibration, *output, *check;
  double percentile, min_cosine;
  int batch, threads;
} quantize_args;

/* the crops [n, 3, H, W] at the model's input size */
static reid_status load_crops(const char *path, const reid_model_config *cfg, float **x, int *n) {
  if (image_list_is_npy(path)) {
    int ndim;
    int64_t shape[8];
    REID_TRY(npy_read_f32(path, &ndim, shape, x));
    if (ndim != 4 || shape[0] < 1 || shape[1] != 3 || shape[2] != cfg->input_height ||
        shape[3] != cfg->input_width) {
      free(*x);
      *x = NULL;
      return reid_fail(REID_EINVAL,
                       "%s: expected float32 N x 3 x %d x %d crops (the model's input)", path,
                       cfg->input_height, cfg->input_width);
    }
    *n = (int)shape[0];
    return REID_OK;
  }
  char **paths;
  REID_TRY(image_list_read(path, &paths, n));
  size_t image = (size_t)3 * cfg->input_height * cfg->input_width;
  *x = malloc(sizeof(float) * image * *n);
  reid_status st = *x ? image_list_load(paths, *n, cfg, *x)
                      : reid_fail(REID_ENOMEM, "out of memory for %d crops", *n);
  image_list_free(paths, *n);
  if (st != REID_OK) {
    free(*x);
    *x = NULL;
  }
  return st;
}

static reid_status embed_all(reid_net *net, reid_precision p, int batch, const float *x, int n,
                             float *out) {
  reid_engine *e;
  REID_TRY(reid_engine_create(net, p, batch, &e));
  reid_status st = reid_engine_embed(e, x, n, out);
  reid_engine_destroy(e);
  if (st == REID_OK) reid_l2_normalize_rows(out, n, reid_net_feature_dim(net));
  return st;
}

static int run_quantize(const quantize_args *a) {
  const char *cmd = "quantize";
  if (a->threads > 0) reid_set_num_threads(a->threads);
  reid_backend *be = NULL;
  reid_net *net = NULL;
  reid_calibrator *cal = NULL;
  float *x = NULL, *y = NULL, *range = NULL, *ref = NULL, *got = NULL;
  int n = 0, m = 0;
  st_file *source = NULL;
  reid_model_roles roles;
  reid_status st = reid_backend_create("cpu", 0, &be);
  if (st == REID_OK) st = st_open(a->model, &source);
  if (st == REID_OK) st = reid_checkpoint_roles(source, &roles);
  if (st == REID_OK && roles.is_pair)
    st = reid_fail(REID_EINVAL,
                   "%s is an MDKT pair: quantize one network of it (reid-train export writes one)",
                   a->model);
  reid_model_config cfg;
  if (st == REID_OK) st = reid_checkpoint_read_config(source, NULL, &cfg);
  if (st == REID_OK) st = reid_net_create_empty(&cfg, be, &net);
  if (st == REID_OK) st = reid_checkpoint_load_weights(net, source, NULL);
  if (st == REID_OK && reid_net_config(net)->int8)
    st = reid_fail(REID_EINVAL, "%s is already quantized (precision=int8)", a->model);
  if (st == REID_OK) st = load_crops(a->calibration, reid_net_config(net), &x, &n);
  if (st == REID_OK && a->check) st = load_crops(a->check, reid_net_config(net), &y, &m);
  const float *checked = a->check ? y : x;
  if (!a->check) m = n;
  const int dim = net ? reid_net_feature_dim(net) : 0;
  size_t image =
      net ? (size_t)3 * reid_net_config(net)->input_height * reid_net_config(net)->input_width : 0;
  if (st == REID_OK) {
    range = malloc(sizeof(float) * reid_net_activation_count(net));
    ref = malloc(sizeof(float) * dim * (size_t)m);
    got = malloc(sizeof(float) * dim * (size_t)m);
    if (!range || !ref || !got) st = reid_fail(REID_ENOMEM, "out of memory");
  }
  /* the float model's embeddings first: quantizing rounds the weights in place */
  if (st == REID_OK) st = embed_all(net, REID_PRECISION_FP32, a->batch, checked, m, ref);
  if (st == REID_OK) st = reid_calibrator_create(net, &cal);
  for (int done = 0; st == REID_OK && done < n; done += a->batch) {
    int chunk = n - done < a->batch ? n - done : a->batch;
    st = reid_calibrator_add(cal, x + image * done, chunk);
  }
  if (st == REID_OK) st = reid_calibrator_ranges(cal, a->percentile, range);
  if (st == REID_OK) st = reid_net_quantize(net, range);
  if (st == REID_OK) st = embed_all(net, REID_PRECISION_INT8, a->batch, checked, m, got);
  char method[160];
  snprintf(method, sizeof method,
           "per-channel symmetric int8 weights; activation ranges: %g percentile of |x| over %d "
           "calibration crops",
           a->percentile, n);
  double sum = 0, lo = 1;
  for (int i = 0; st == REID_OK && i < m; i++) {
    double c = 0;
    for (int j = 0; j < dim; j++) c += (double)ref[(size_t)i * dim + j] * got[(size_t)i * dim + j];
    sum += c;
    if (c < lo) lo = c;
  }
  if (st == REID_OK && sum / m < a->min_cosine)
    st = reid_fail(REID_EINVAL,
                   "int8 vs fp32 on the %s crops: mean cosine %.5f (min %.5f) is below "
                   "--min-cosine %g; nothing written",
                   a->check ? "check" : "calibration", sum / m, lo, a->min_cosine);
  if (st == REID_OK) st = reid_checkpoint_save_int8(net, source, a->output, method);
  if (st == REID_OK) {
    printf("reid-train quantize: %s -> %s (%s)\n", a->model, a->output, method);
    printf("int8 vs fp32 on %d %s crops: mean cosine %.5f, min %.5f\n", m,
           a->check ? "check" : "calibration", sum / m, lo);
  }
  int rc = st == REID_OK ? CLI_OK : cli_library_error(cmd, st);
  reid_calibrator_destroy(cal);
  free(x);
  free(y);
  free(range);
  free(ref);
  free(got);
  reid_net_destroy(net);
  if (source) st_close(source);
  reid_backend_destroy(be);
  return rc;
}

int cmd_quantize(int argc, char **argv) {
  static const struct option options[] = {{"model", required_argument, 0, 'm'},
                                          {"calibration", required_argument, 0, 'c'},
                                          {"output", required_argument, 0, 'o'},
                                          {"percentile", required_argument, 0, 'p'},
                                          {"check", required_argument, 0, 'k'},
                                          {"min-cosine", required_argument, 0, 'M'},
                                          {"batch-size", required_argument, 0, 'b'},
                                          {"threads", required_argument, 0, 't'},
                                          {"help", no_argument, 0, 'h'},
                                          {0, 0, 0, 0}};
  const char *cmd = "quantize";
  quantize_args a = {.percentile = 99.99, .batch = 8};
  optind = 1;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
    switch (c) {
    case 'm': a.model = optarg; break;
    case 'c': a.calibration = optarg; break;
    case 'o': a.output = optarg; break;
    case 'p': {
      char *end;
      a.percentile = strtod(optarg, &end);
      if (end == optarg || *end || !(a.percentile > 0 && a.percentile <= 100))
        return cli_usage_error(cmd, "--percentile expects a number in (0, 100], got '%s'", optarg);
      break;
    }
    case 'k': a.check = optarg; break;
    case 'M': {
      char *end;
      a.min_cosine = strtod(optarg, &end);
      if (end == optarg || *end || !(a.min_cosine >= -1 && a.min_cosine <= 1))
        return cli_usage_error(cmd, "--min-cosine expects a number in [-1, 1], got '%s'", optarg);
      break;
    }
    case 'b':
      if (cli_parse_int(cmd, "--batch-size", optarg, 1, 4096, &a.batch)) return CLI_USAGE;
      break;
    case 't':
      if (cli_parse_int(cmd, "--threads", optarg, 1, 1024, &a.threads)) return CLI_USAGE;
      break;
    case 'h': fputs(help, stdout); return CLI_OK;
    default: return cli_bad_option(cmd, argv);
    }
  }
  if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
  if (!a.model) return cli_usage_error(cmd, "--model is required");
  if (!a.calibration) return cli_usage_error(cmd, "--calibration is required");
  if (!a.output) return cli_usage_error(cmd, "--output is required");
  return run_quantize(&a);
}
