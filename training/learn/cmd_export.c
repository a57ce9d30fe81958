/* reid-train export: one network of an MDKT pair as a checkpoint of its own,
 * or any checkpoint's network as ONNX. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "cli.h"
#include "onnx_import.h"

static const char *const help =
    "usage: reid-train export --model PAIR.safetensors --part student|teacher --output "
    "M.safetensors\n"
    "       reid-train export --model M.safetensors --part single --output M2.safetensors\n"
    "       reid-train export --format onnx --model M.safetensors --output M.onnx\n"
    "\n"
    "Writes one network of an MDKT pair (written by 'reid-train student') alone, with\n"
    "its tensors and metadata under their plain torchvision names, so any command or\n"
    "the reidembed element can load it as a single model; --part single rewrites a single\n"
    "network (another --dtype, --embed-after-bn).\n"
    "--format onnx writes the network as ONNX (opset 13, float32, input 'input'\n"
    "[batch, 3, H, W] normalised, output 'embedding' [batch, D] before L2\n"
    "normalisation, dynamic batch) with metadata_props arch, input_height,\n"
    "input_width, mean, std, embed_dim and match_threshold (when the checkpoint has\n"
    "one); reidembed, reid-train embed, ONNX Runtime and TensorRT load it.\n"
    "\n"
    "  --model FILE      the checkpoint (required)\n"
    "  --part P          student (the image model) or teacher (the video model) of a pair,\n"
    "                    or single (the model is one network) (required, except with\n"
    "                    --format onnx: single, or a pair's student)\n"
    "  --format F        safetensors (default) or onnx\n"
    "  --output FILE     checkpoint to write (required; atomically)\n"
    "  --dtype T         f32 (default), f16 or bf16\n"
    "  --embed-after-bn B  1: embed after the BNNeck's batch norm (centred features, cosines\n"
    "                    spread over [-1, 1]), 0: before it (default: as the model has it)\n"
    "  --description TEXT  the metadata's description (how the model was made; default: the\n"
    "                    training command's own, which names the training data's path)\n"
    "  -h, --help        this text\n";

static int run_export(const char *model, const char *part, const char *output, st_dtype dtype,
                      int after_bn, int onnx, const char *description) {
  const char *cmd = "export";
  st_file *f = NULL;
  reid_backend *cpu = NULL;
  reid_net *net = NULL;
  char prefix[32] = "";
  if (part && strcmp(part, "single")) snprintf(prefix, sizeof prefix, "%s.", part);
  reid_model_roles roles;
  reid_model_config cfg;
  double threshold = NAN;
  reid_status st = st_open(model, &f);
  if (st == REID_OK) st = reid_checkpoint_roles(f, &roles);
  if (st == REID_OK && onnx && !part) { /* a single network, or the pair's image network */
    part = roles.is_pair ? "image network" : "single";
    snprintf(prefix, sizeof prefix, "%s", roles.is_pair ? roles.image_prefix : "");
  }
  if (st == REID_OK && st_meta(f, "match_threshold"))
    threshold = strtod(st_meta(f, "match_threshold"), NULL);
  if (st == REID_OK && !roles.is_pair && strcmp(part, "single"))
    st = reid_fail(REID_EFORMAT,
                   "%s: a single network, not an MDKT pair (no format=mdkt-pair "
                   "metadata): nothing to export",
                   model);
  if (st == REID_OK && roles.is_pair && !strcmp(part, "single"))
    st = reid_fail(REID_EINVAL, "%s: an MDKT pair: --part student or teacher picks the network",
                   model);
  if (st == REID_OK) st = reid_checkpoint_read_config(f, prefix, &cfg);
  if (st == REID_OK && after_bn >= 0) {
    if (after_bn && !cfg.bnneck)
      st = reid_fail(REID_EINVAL, "%s: --embed-after-bn 1 needs a BNNeck network", model);
    cfg.embed_after_bn = after_bn;
  }
  if (st == REID_OK && description)
    snprintf(cfg.description, sizeof cfg.description, "%s", description);
  if (st == REID_OK) st = reid_backend_create("cpu", 0, &cpu);
  if (st == REID_OK) st = reid_net_create_empty(&cfg, cpu, &net);
  if (st == REID_OK) st = reid_checkpoint_load_weights(net, f, prefix);
  if (st == REID_OK && !onnx) st = reid_checkpoint_save(net, output, dtype);
  if (st == REID_OK && onnx) st = reid_onnx_save(net, output, threshold);
  if (f) st_close(f);
  int rc = st == REID_OK ? CLI_OK : cli_library_error(cmd, st);
  if (st == REID_OK)
    fprintf(stderr, "reid-train export: %s (%s, %s) -> %s\n", part, reid_arch_name(cfg.arch),
            cfg.task[0] ? cfg.task : "no task", output);
  reid_net_destroy(net);
  reid_backend_destroy(cpu);
  return rc;
}

int cmd_export(int argc, char **argv) {
  static const struct option options[] = {{"model", required_argument, 0, 'm'},
                                          {"part", required_argument, 0, 'p'},
                                          {"output", required_argument, 0, 'o'},
                                          {"dtype", required_argument, 0, 't'},
                                          {"embed-after-bn", required_argument, 0, 'b'},
                                          {"format", required_argument, 0, 'f'},
                                          {"description", required_argument, 0, 'D'},
                                          {"help", no_argument, 0, 'h'},
                                          {0, 0, 0, 0}};
  const char *cmd = "export";
  const char *model = NULL, *part = NULL, *output = NULL, *description = NULL;
  st_dtype dtype = ST_F32;
  int after_bn = -1, onnx = 0;
  optind = 1;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
    switch (c) {
    case 'm': model = optarg; break;
    case 'p':
      if (strcmp(optarg, "student") && strcmp(optarg, "teacher") && strcmp(optarg, "single"))
        return cli_usage_error(cmd, "--part expects student, teacher or single, got '%s'", optarg);
      part = optarg;
      break;
    case 'o': output = optarg; break;
    case 't':
      if (!strcmp(optarg, "f32"))
        dtype = ST_F32;
      else if (!strcmp(optarg, "f16"))
        dtype = ST_F16;
      else if (!strcmp(optarg, "bf16"))
        dtype = ST_BF16;
      else
        return cli_usage_error(cmd, "--dtype expects f32, f16 or bf16, got '%s'", optarg);
      break;
    case 'b':
      if (cli_parse_int(cmd, "--embed-after-bn", optarg, 0, 1, &after_bn)) return CLI_USAGE;
      break;
    case 'f':
      if (strcmp(optarg, "onnx") && strcmp(optarg, "safetensors"))
        return cli_usage_error(cmd, "--format expects safetensors or onnx, got '%s'", optarg);
      onnx = !strcmp(optarg, "onnx");
      break;
    case 'D':
      if (strlen(optarg) >= sizeof((reid_model_config *)0)->description)
        return cli_usage_error(cmd, "--description: %zu characters, at most %zu", strlen(optarg),
                               sizeof((reid_model_config *)0)->description - 1);
      description = optarg;
      break;
    case 'h': fputs(help, stdout); return CLI_OK;
    default: return cli_bad_option(cmd, argv);
    }
  }
  if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
  if (!model) return cli_usage_error(cmd, "--model is required");
  if (!part && !onnx)
    return cli_usage_error(cmd, "--part is required (student, teacher or single)");
  if (!output) return cli_usage_error(cmd, "--output is required");
  return run_export(model, part, output, dtype, after_bn, onnx, description);
}
