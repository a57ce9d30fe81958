#include "train_options.h"

#include "cli.h"

int train_option_parse(const char *cmd, int code, const char *arg, const train_options *o) {
  switch (code) {
  case TRAIN_OPT_OUTPUT: *o->output = arg; return 0;
  case TRAIN_OPT_LAYOUT:
    if (reid_layout_parse(arg, o->layout) == REID_OK) return 0;
    return cli_usage_error(
        cmd, "--layout expects auto, mars, duke, market, veri or collected, got '%s'", arg);
  case TRAIN_OPT_SAVE_EVERY:
    return cli_parse_int(cmd, "--save-every", arg, 1, 1000000, o->save_every);
  case TRAIN_OPT_RESUME: *o->resume = 1; return 0;
  case TRAIN_OPT_QUIET: *o->progress = NULL; return 0;
  case TRAIN_OPT_DEVICE: return cli_parse_device(cmd, "--device", arg, o->device);
  case TRAIN_OPT_GPU_ID: return cli_parse_int(cmd, "--gpu-id", arg, 0, 63, o->gpu_id);
  case TRAIN_OPT_TF32: *o->tf32 = 1; return 0;
  case TRAIN_OPT_THREADS: return cli_parse_int(cmd, "--threads", arg, 1, 1024, o->threads);
  case TRAIN_OPT_WORKERS: return cli_parse_int(cmd, "--workers", arg, 1, 256, o->workers);
  case TRAIN_OPT_ARCH:
    if (reid_arch_parse(arg, o->arch) != REID_OK)
      return cli_usage_error(cmd, "--arch expects one of %s, got '%s'", reid_arch_list(), arg);
    if (o->arch_set) *o->arch_set = 1;
    return 0;
  case TRAIN_OPT_LAST_STRIDE: return cli_parse_int(cmd, "--last-stride", arg, 1, 2, o->last_stride);
  case TRAIN_OPT_INPUT_SIZE: return cli_parse_size(cmd, "--input-size", arg, o->height, o->width);
  case TRAIN_OPT_INIT: *o->init = arg; return 0;
  case TRAIN_OPT_STEPS:
    return cli_parse_int(cmd, "--steps-per-epoch", arg, 0, 10000000, o->steps_per_epoch);
  case TRAIN_OPT_EPOCHS: return cli_parse_int(cmd, "--epochs", arg, 1, 1000000, o->epochs);
  case TRAIN_OPT_LR: /* up to 1e30: the trainers' divergence guard is tested with it */
    return cli_parse_float(cmd, "--lr", arg, 0, 1, 1e30, o->lr);
  case TRAIN_OPT_WD: return cli_parse_float(cmd, "--weight-decay", arg, 0, 0, 1, o->weight_decay);
  case TRAIN_OPT_FLIP_P: return cli_parse_float(cmd, "--flip-p", arg, 0, 0, 1, o->flip_p);
  case TRAIN_OPT_SEED: {
    unsigned long long seed;
    if (cli_parse_seed(cmd, arg, &seed)) return -1;
    *o->seed = seed;
    return 0;
  }
  default: return cli_usage_error(cmd, "internal: option code %d is not a shared one", code);
  }
}
