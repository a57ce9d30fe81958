/* reid-train init: a freshly initialised ResNet as a safetensors checkpoint. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "cli.h"

static const char *const help =
    "usage: reid-train init --arch ARCH --output FILE [options]\n"
    "\n"
    "Writes a network with its upstream initialisation (Kaiming-normal convolutions,\n"
    "batch norm weight 1 and bias 0) as a safetensors checkpoint.\n"
    "\n"
    "  --arch ARCH            resnet18, resnet34, resnet50, mobilenet_v2, osnet_x0_25,\n"
    "                         osnet_x0_5, osnet_x0_75, osnet_x1_0, osnet_ibn_x1_0,\n"
    "                         osnet_ain_x1_0, fastreid_resnet50 or fastreid_resnet50_ibn_a\n"
    "                         (required)\n"
    "  --output FILE          checkpoint to write (required; written atomically)\n"
    "  --last-stride N        stride of layer4: 1 (re-ID, default) or 2 (torchvision)\n"
    "  --input-size HxW       input height x width (default 256x128)\n"
    "  --bnneck               add a BNNeck: BatchNorm1d with frozen zero bias, then a\n"
    "                         bias-free classifier (bottleneck.*, classifier.weight)\n"
    "  --num-classes N        identities of the classifier (default 0: none; without\n"
    "                         --bnneck the classifier is torchvision's fc with bias)\n"
    "  --embed-after-bn       embedding after the BNNeck BN (default: before it)\n"
    "  --seed N               random seed (default 0)\n"
    "  --dtype T              f32 (default), f16 or bf16\n"
    "  --task TEXT            free-form task name stored in the metadata\n"
    "  --description TEXT     free-form description stored in the metadata\n"
    "  -h, --help             this text\n";

int cmd_init(int argc, char **argv) {
  static const struct option options[] = {{"arch", required_argument, 0, 'a'},
                                          {"output", required_argument, 0, 'o'},
                                          {"last-stride", required_argument, 0, 's'},
                                          {"input-size", required_argument, 0, 'i'},
                                          {"bnneck", no_argument, 0, 'b'},
                                          {"num-classes", required_argument, 0, 'n'},
                                          {"embed-after-bn", no_argument, 0, 'e'},
                                          {"seed", required_argument, 0, 'r'},
                                          {"dtype", required_argument, 0, 'd'},
                                          {"task", required_argument, 0, 't'},
                                          {"description", required_argument, 0, 'D'},
                                          {"help", no_argument, 0, 'h'},
                                          {0, 0, 0, 0}};
  const char *cmd = "init", *arch = NULL, *output = NULL;
  reid_model_config cfg;
  reid_model_config_default(&cfg);
  st_dtype dtype = ST_F32;
  unsigned long long seed = 0;
  optind = 1;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
    switch (c) {
    case 'a': arch = optarg; break;
    case 'o': output = optarg; break;
    case 's':
      if (cli_parse_int(cmd, "--last-stride", optarg, 1, 2, &cfg.last_stride)) return CLI_USAGE;
      break;
    case 'i':
      if (cli_parse_size(cmd, "--input-size", optarg, &cfg.input_height, &cfg.input_width))
        return CLI_USAGE;
      break;
    case 'b': cfg.bnneck = 1; break;
    case 'n':
      if (cli_parse_int(cmd, "--num-classes", optarg, 0, 1000000, &cfg.num_classes))
        return CLI_USAGE;
      break;
    case 'e': cfg.embed_after_bn = 1; break;
    case 'r':
      if (cli_parse_seed(cmd, optarg, &seed)) return CLI_USAGE;
      break;
    case 'd':
      if (!strcmp(optarg, "f32"))
        dtype = ST_F32;
      else if (!strcmp(optarg, "f16"))
        dtype = ST_F16;
      else if (!strcmp(optarg, "bf16"))
        dtype = ST_BF16;
      else
        return cli_usage_error(cmd, "--dtype expects f32, f16 or bf16, got '%s'", optarg);
      break;
    case 't': snprintf(cfg.task, sizeof cfg.task, "%s", optarg); break;
    case 'D': snprintf(cfg.description, sizeof cfg.description, "%s", optarg); break;
    case 'h': fputs(help, stdout); return CLI_OK;
    default: return cli_bad_option(cmd, argv);
    }
  }
  if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
  if (!arch) return cli_usage_error(cmd, "--arch is required");
  if (!output) return cli_usage_error(cmd, "--output is required");
  if (reid_arch_parse(arch, &cfg.arch) != REID_OK)
    return cli_usage_error(cmd, "--arch expects one of %s, got '%s'", reid_arch_list(), arch);
  if (cfg.embed_after_bn && !cfg.bnneck)
    return cli_usage_error(cmd, "--embed-after-bn needs --bnneck");

  reid_backend *be = NULL;
  reid_net *net = NULL;
  reid_status st = reid_backend_create("cpu", 0, &be);
  if (st == REID_OK) st = reid_net_create(&cfg, be, &net);
  if (st == REID_OK) st = reid_net_init_weights(net, seed);
  if (st == REID_OK) st = reid_checkpoint_save(net, output, dtype);
  if (st == REID_OK) {
    size_t n_params;
    reid_net_params(net, &n_params);
    printf("wrote %s: %s, last stride %d, %dx%d, %zu parameters%s\n", output,
           reid_arch_name(cfg.arch), cfg.last_stride, cfg.input_height, cfg.input_width, n_params,
           cfg.bnneck ? ", BNNeck" : "");
  }
  reid_net_destroy(net);
  reid_backend_destroy(be);
  return st == REID_OK ? CLI_OK : cli_library_error(cmd, st);
}
