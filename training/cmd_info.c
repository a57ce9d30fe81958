/* reid-train info: a checkpoint's metadata, tensors and the model it describes. */
#include <stdio.h>
#include <string.h>

#include "checkpoint.h"
#include "cli.h"

static const char *const help =
    "usage: reid-train info FILE.safetensors\n"
    "\n"
    "Prints the checkpoint's metadata, a table of its tensors (name, dtype, shape)\n"
    "and the model configuration it describes. Fails with the reason when the file\n"
    "is malformed or does not describe a ResNet.\n";

int cmd_info(int argc, char **argv) {
  const char *cmd = "info";
  if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
    fputs(help, stdout);
    return CLI_OK;
  }
  if (argc != 2 || argv[1][0] == '-')
    return cli_usage_error(cmd, argc < 2 ? "a checkpoint file is required"
                                         : "expects exactly one checkpoint file");
  st_file *f;
  reid_status st = st_open(argv[1], &f);
  if (st != REID_OK) return cli_library_error(cmd, st);
  printf("%s\n\nmetadata:\n", argv[1]);
  for (size_t i = 0; i < st_meta_count(f); i++) {
    const char *key, *value;
    st_meta_at(f, i, &key, &value);
    printf("  %-16s %s\n", key, value);
  }
  printf("\n%-48s %-5s %s\n", "tensor", "dtype", "shape");
  long long total = 0;
  for (size_t i = 0; i < st_count(f); i++) {
    const st_tensor *t = st_tensor_at(f, i);
    char shape[128] = "[";
    for (int d = 0; d < t->ndim; d++)
      snprintf(shape + strlen(shape), sizeof shape - strlen(shape), d ? ", %lld" : "%lld",
               (long long)t->shape[d]);
    strncat(shape, "]", sizeof shape - strlen(shape) - 1);
    printf("%-48s %-5s %s\n", t->name, st_dtype_name(t->dtype), shape);
    total += t->numel;
  }
  printf("\n%zu tensors, %lld values\n", st_count(f), total);
  reid_model_config cfg;
  st = reid_checkpoint_read_config(f, NULL, &cfg);
  if (st == REID_OK)
    printf("model: %s, last stride %d, input %dx%d, embedding %d%s%s, %d classes\n",
           reid_arch_name(cfg.arch), cfg.last_stride, cfg.input_height, cfg.input_width,
           reid_arch_feature_dim(cfg.arch), cfg.bnneck ? ", BNNeck" : "",
           cfg.embed_after_bn ? " (embedding after BN)" : "", cfg.num_classes);
  st_close(f);
  return st == REID_OK ? CLI_OK : cli_library_error(cmd, st);
}
