/* reid-train eval: CMC and mAP of a model (or an MDKT pair) on a dataset's
 * query / gallery split. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "checkpoint.h"
#include "cli.h"
#include "eval.h"
#include "json.h"
#include "plot.h"

static const char *const help =
    "usage: reid-train eval --data DIR --model M.safetensors --protocol P [options]\n"
    "\n"
    "Ranks the gallery for every query by 1 - cosine of L2-normalised features and\n"
    "prints mAP and CMC (Market-1501 devkit: junk = same identity in the same camera,\n"
    "and identity -1; AP by the devkit's trapezoid rule; queries without any good match\n"
    "in the gallery are skipped and counted).\n"
    "Features: a video sample = the mean of the embeddings of T evenly spaced frames,\n"
    "an image query = the first frame of the query tracklet (image datasets: the image).\n"
    "  i2v  image queries (image model) against video gallery samples (video model)\n"
    "  v2v  video queries and gallery (video model)\n"
    "  i2i  first frames of queries and gallery samples (image model)\n"
    "An MDKT pair (reid-train student) supplies both models by its metadata (image =\n"
    "the student, video = the teacher) unless --part picks one of its networks for\n"
    "every role (VKD and MDKT report the student alone: images and videos through the\n"
    "student); a single network serves every role.\n"
    "\n"
    "  --data DIR          dataset root (required)\n"
    "  --layout L          auto (default), mars, duke, market, veri or collected\n"
    "  --model FILE        checkpoint or MDKT pair (required)\n"
    "  --protocol P        i2v, v2v or i2i (required)\n"
    "  --part P            student or teacher: one network of an MDKT pair for every role\n"
    "  --frames T          frames of a video sample (default 8)\n"
    "  --flip              add the embedding of each mirrored frame\n"
    "  --json FILE         write {\"protocol\", \"mAP\", \"cmc\": [rank-1, rank-2, ...],\n"
    "                      \"queries\", \"skipped\", \"threshold\": {\"at_fmr\", \"fmr\",\n"
    "                      \"fnmr_at_fmr\", \"at_eer\", \"eer\", ...}, ...} (fractions in [0, 1])\n"
    "  --plot FILE         draw the CMC curve, as SVG (FILE.svg) or PNG (FILE.png)\n"
    "  --fmr F             false-match rate of the reported threshold (default 0.01)\n"
    "  --calibrate         write that threshold into the model file's metadata\n"
    "                      (match_threshold, reidembed's default match-threshold)\n"
    "  --max-rank N        length of the CMC (default 50)\n"
    "  --batch-size N      samples per batch (default 16)\n"
    "  --device D          cpu, cuda or auto (default auto)\n"
    "  --gpu-id N          CUDA device (default 0)\n"
    "  --precision P       fp32 (default) or bf16 (CPU with AVX512-BF16), tf32/fp16 (CUDA),\n"
    "                      int8 (models written by reid-train quantize; CPU)\n"
    "  --threads N         CPU compute threads (default: all cores)\n"
    "  --workers N         image decoding threads (default 2)\n"
    "  -h, --help          this text\n";

typedef struct eval_args {
  const char *data, *model, *json, *plot, *device, *part;
  reid_layout layout;
  int protocol_set, gpu_id, threads, calibrate;
  double fmr;
  reid_eval_config cfg;
} eval_args;

static reid_status load_models(const eval_args *a, reid_backend *be, reid_net **image,
                               reid_net **video) {
  st_file *f;
  REID_TRY(st_open(a->model, &f));
  reid_model_roles roles;
  reid_status st = reid_checkpoint_roles(f, &roles);
  int need_image = a->cfg.protocol != REID_PROTOCOL_V2V,
      need_video = a->cfg.protocol != REID_PROTOCOL_I2I;
  if (st == REID_OK && a->part) { /* one network of the pair for every role */
    if (!roles.is_pair)
      st = reid_fail(REID_EINVAL, "%s: --part needs an MDKT pair; this is a single network",
                     a->model);
    snprintf(roles.image_prefix, sizeof roles.image_prefix, "%s.", a->part);
    roles.is_pair = 0;
    need_image = 1;
    need_video = 0;
  }
  const char *prefixes[2] = {roles.image_prefix, roles.video_prefix};
  int need[2] = {need_image, need_video};
  reid_net **nets[2] = {image, video};
  for (int i = 0; i < 2 && st == REID_OK; i++) {
    if (!need[i] || (!roles.is_pair && i == 1 && *image)) continue;
    reid_model_config cfg;
    st = reid_checkpoint_read_config(f, prefixes[i], &cfg);
    if (st == REID_OK) st = reid_net_create_empty(&cfg, be, nets[i]);
    if (st == REID_OK) st = reid_checkpoint_load_weights(*nets[i], f, prefixes[i]);
  }
  st_close(f);
  if (st != REID_OK) return st;
  if (!*image) *image = *video;
  if (!*video) *video = *image;
  const reid_model_config *ci = reid_net_config(*image), *cv = reid_net_config(*video);
  if (ci->input_height != cv->input_height || ci->input_width != cv->input_width)
    return reid_fail(REID_EFORMAT, "%s: the image model takes %dx%d, the video model %dx%d",
                     a->model, ci->input_height, ci->input_width, cv->input_height,
                     cv->input_width);
  return REID_OK;
}

static char *json_string(const char *s) {
  size_t need = json_escape(NULL, 0, s, strlen(s)) + 1;
  char *out = malloc(need);
  if (out) json_escape(out, need, s, strlen(s));
  return out;
}

static reid_status write_json(const eval_args *a, const reid_rank_result *r,
                              const reid_threshold_result *t) {
  char *model = json_string(a->model), *data = json_string(a->data);
  size_t cap =
      1024 + 16 * (size_t)r->max_rank + (model ? strlen(model) : 0) + (data ? strlen(data) : 0);
  char *text = model && data ? malloc(cap) : NULL;
  reid_status st = text ? REID_OK : reid_fail(REID_ENOMEM, "out of memory");
  size_t n = 0;
  if (st == REID_OK)
    n = (size_t)snprintf(text, cap, "{\"protocol\":\"%s\",\"mAP\":%.6f,\"cmc\":[",
                         reid_protocol_name(a->cfg.protocol), r->map);
  for (int k = 0; st == REID_OK && k < r->max_rank && n < cap; k++)
    n += (size_t)snprintf(text + n, cap - n, "%s%.6f", k ? "," : "", r->cmc[k]);
  if (st == REID_OK && n < cap)
    n += (size_t)snprintf(text + n, cap - n,
                          "],\"queries\":%d,\"skipped\":%d,\"frames\":%d,\"flip\":%s,"
                          "\"threshold\":{\"fmr_target\":%.6f,\"at_fmr\":%.6f,\"fmr\":%.6f,"
                          "\"fnmr_at_fmr\":%.6f,\"at_eer\":%.6f,\"eer\":%.6f,\"genuine_pairs\":%ld,"
                          "\"impostor_pairs\":%ld,\"calibrated\":%s},"
                          "\"part\":%s%s%s,\"model\":%s,\"data\":%s}\n",
                          r->queries, r->skipped, a->cfg.frames, a->cfg.flip ? "true" : "false",
                          t->fmr_target, t->at_fmr, t->fmr, t->fnmr_at_fmr, t->at_eer, t->eer,
                          t->genuine, t->impostor, a->calibrate ? "true" : "false",
                          a->part ? "\"" : "", a->part ? a->part : "null", a->part ? "\"" : "",
                          model, data);
  if (st == REID_OK && n >= cap) st = reid_fail(REID_EINVAL, "%s: JSON too long", a->json);
  if (st == REID_OK) {
    const void *parts[1] = {text};
    size_t sizes[1] = {n};
    st = reid_write_file_atomic(a->json, parts, sizes, 1, 1);
  }
  free(text);
  free(model);
  free(data);
  return st;
}

static reid_status plot_cmc(const eval_args *a, const reid_rank_result *r) {
  double *x = malloc(sizeof(double) * r->max_rank);
  if (!x) return reid_fail(REID_ENOMEM, "out of memory");
  for (int k = 0; k < r->max_rank; k++) x[k] = k + 1;
  char title[160], name[64];
  snprintf(title, sizeof title, "CMC, %s (mAP %.2f%%, %d queries)",
           reid_protocol_name(a->cfg.protocol), 100 * r->map, r->queries);
  snprintf(name, sizeof name, "%s", reid_protocol_name(a->cfg.protocol));
  reid_plot_series s = {name, x, r->cmc, r->max_rank};
  reid_plot p = {
      .title = title, .x_label = "rank", .y_label = "matching rate", .y_min = 0, .y_max = 1};
  reid_status st = reid_plot_write(a->plot, &p, &s, 1);
  free(x);
  return st;
}

static int run_eval(const eval_args *a) {
  const char *cmd = "eval";
  if (a->threads > 0) reid_set_num_threads(a->threads);
  reid_backend *be = NULL;
  reid_net *image = NULL, *video = NULL;
  reid_dataset *d = NULL;
  reid_rank_result r = {0};
  reid_threshold_result thr = {0};
  reid_status st = reid_backend_create(a->device, a->gpu_id, &be);
  if (st == REID_OK) st = load_models(a, be, &image, &video);
  if (st == REID_OK) st = reid_dataset_load(a->data, a->layout, &d);
  if (st == REID_OK && (d->query.count < 1 || d->gallery.count < 1))
    st = reid_fail(REID_EFORMAT, "%s: %d query and %d gallery samples: nothing to evaluate",
                   a->data, d->query.count, d->gallery.count);
  if (st == REID_OK) st = reid_evaluate_calibrated(image, video, d, &a->cfg, &r, a->fmr, &thr);
  if (st == REID_OK && a->calibrate) st = reid_checkpoint_set_threshold(a->model, thr.at_fmr);
  if (st == REID_OK && a->json) st = write_json(a, &r, &thr);
  if (st == REID_OK && a->plot) st = plot_cmc(a, &r);
  int rc = st == REID_OK ? CLI_OK : cli_library_error(cmd, st);
  if (st == REID_OK) {
    printf("protocol  %s (%s, %d query / %d gallery samples, %s)\n",
           reid_protocol_name(a->cfg.protocol), reid_layout_name(d->layout), d->query.count,
           d->gallery.count, d->video ? "tracklets" : "images");
    printf("queries   %d evaluated, %d skipped (no good match in the gallery)\n", r.queries,
           r.skipped);
    printf("mAP       %6.2f%%\n", 100 * r.map);
    const int ranks[5] = {1, 5, 10, 20, 50};
    for (int i = 0; i < 5; i++)
      if (ranks[i] <= r.max_rank)
        printf("rank-%-4d %6.2f%%\n", ranks[i], 100 * r.cmc[ranks[i] - 1]);
    printf("threshold %.4f at false-match rate %.2f%% (missed matches %.2f%%; %ld same-id, "
           "%ld different-id pairs)\n",
           thr.at_fmr, 100 * thr.fmr, 100 * thr.fnmr_at_fmr, thr.genuine, thr.impostor);
    printf("threshold %.4f at equal error %.2f%%\n", thr.at_eer, 100 * thr.eer);
    if (a->calibrate) printf("calibrated %s: match_threshold=%.6f\n", a->model, thr.at_fmr);
  }
  reid_rank_result_free(&r);
  reid_dataset_free(d);
  if (video != image) reid_net_destroy(video);
  reid_net_destroy(image);
  reid_backend_destroy(be);
  return rc;
}

int cmd_eval(int argc, char **argv) {
  static const struct option options[] = {{"data", required_argument, 0, 'd'},
                                          {"layout", required_argument, 0, 'L'},
                                          {"model", required_argument, 0, 'm'},
                                          {"protocol", required_argument, 0, 'p'},
                                          {"frames", required_argument, 0, 'T'},
                                          {"flip", no_argument, 0, 'f'},
                                          {"json", required_argument, 0, 'j'},
                                          {"plot", required_argument, 0, 'P'},
                                          {"max-rank", required_argument, 0, 'r'},
                                          {"batch-size", required_argument, 0, 'b'},
                                          {"device", required_argument, 0, 'D'},
                                          {"gpu-id", required_argument, 0, 'g'},
                                          {"precision", required_argument, 0, 'q'},
                                          {"threads", required_argument, 0, 't'},
                                          {"workers", required_argument, 0, 'w'},
                                          {"part", required_argument, 0, 'a'},
                                          {"fmr", required_argument, 0, 'F'},
                                          {"calibrate", no_argument, 0, 'C'},
                                          {"help", no_argument, 0, 'h'},
                                          {0, 0, 0, 0}};
  const char *cmd = "eval";
  eval_args a = {.device = "auto", .layout = REID_LAYOUT_AUTO, .fmr = 0.01};
  reid_eval_config_default(&a.cfg);
  optind = 1;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
    switch (c) {
    case 'd': a.data = optarg; break;
    case 'L':
      if (reid_layout_parse(optarg, &a.layout) != REID_OK)
        return cli_usage_error(
            cmd, "--layout expects auto, mars, duke, market, veri or collected, got '%s'", optarg);
      break;
    case 'm': a.model = optarg; break;
    case 'p':
      if (reid_protocol_parse(optarg, &a.cfg.protocol) != REID_OK)
        return cli_usage_error(cmd, "--protocol expects i2v, v2v or i2i, got '%s'", optarg);
      a.protocol_set = 1;
      break;
    case 'T':
      if (cli_parse_int(cmd, "--frames", optarg, 1, 64, &a.cfg.frames)) return CLI_USAGE;
      break;
    case 'f': a.cfg.flip = 1; break;
    case 'a':
      if (strcmp(optarg, "student") && strcmp(optarg, "teacher"))
        return cli_usage_error(cmd, "--part expects student or teacher, got '%s'", optarg);
      a.part = optarg;
      break;
    case 'j': a.json = optarg; break;
    case 'P':
      if (reid_plot_format_of(optarg) == REID_PLOT_UNKNOWN)
        return cli_usage_error(
            cmd, "--plot writes SVG or PNG: the file name must end in .svg or .png, got '%s'",
            optarg);
      a.plot = optarg;
      break;
    case 'r':
      if (cli_parse_int(cmd, "--max-rank", optarg, 1, 1000, &a.cfg.max_rank)) return CLI_USAGE;
      break;
    case 'b':
      if (cli_parse_int(cmd, "--batch-size", optarg, 1, 4096, &a.cfg.batch)) return CLI_USAGE;
      break;
    case 'D':
      if (cli_parse_device(cmd, "--device", optarg, &a.device)) return CLI_USAGE;
      break;
    case 'g':
      if (cli_parse_int(cmd, "--gpu-id", optarg, 0, 63, &a.gpu_id)) return CLI_USAGE;
      break;
    case 'q':
      if (reid_precision_parse(optarg, &a.cfg.precision) != REID_OK)
        return cli_usage_error(cmd, "--precision expects fp32, tf32, fp16, bf16 or int8, got '%s'",
                               optarg);
      break;
    case 't':
      if (cli_parse_int(cmd, "--threads", optarg, 1, 1024, &a.threads)) return CLI_USAGE;
      break;
    case 'w':
      if (cli_parse_int(cmd, "--workers", optarg, 1, 256, &a.cfg.workers)) return CLI_USAGE;
      break;
    case 'F': {
      char *end;
      a.fmr = strtod(optarg, &end);
      if (end == optarg || *end || !(a.fmr > 0 && a.fmr < 1))
        return cli_usage_error(cmd, "--fmr expects a rate in (0, 1), got '%s'", optarg);
      break;
    }
    case 'C': a.calibrate = 1; break;
    case 'h': fputs(help, stdout); return CLI_OK;
    default: return cli_bad_option(cmd, argv);
    }
  }
  if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
  if (!a.data) return cli_usage_error(cmd, "--data is required");
  if (!a.model) return cli_usage_error(cmd, "--model is required");
  if (!a.protocol_set) return cli_usage_error(cmd, "--protocol is required (i2v, v2v or i2i)");
  return run_eval(&a);
}
