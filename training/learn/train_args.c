#include "train_args.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "plot.h"
#include "train_options.h"

const char *const train_args_common_help =
    "data and outputs:\n"
    "  --data DIR             dataset root (required)\n"
    "  --layout L             auto (default), mars, duke, market, veri or collected\n"
    "  --output FILE          model checkpoint to write (required); the resumable state goes\n"
    "                         to FILE's stem + .state.safetensors, the per-step log of every\n"
    "                         loss term to FILE's stem + .log.jsonl\n"
    "  --plot FILE            draw the loss curves (log scale) at every checkpoint, as SVG\n"
    "                         (FILE.svg) or PNG (FILE.png)\n"
    "  --save-every N         checkpoint (model + state, atomic) every N epochs and at the end\n"
    "                         (default 10)\n"
    "  --resume               continue from the state file (same settings; bit-identical on\n"
    "                         the CPU with the same thread count); --epochs may grow\n"
    "  --quiet                no progress lines\n"
    "device:\n"
    "  --device D             cpu, cuda or auto (default auto)\n"
    "  --gpu-id N             CUDA device (default 0)\n"
    "  --tf32                 CUDA: convolutions and matrix products on TF32 tensor cores\n"
    "                         (PyTorch's default for convolutions; ~1e-3 relative error);\n"
    "                         without it strict fp32. No effect on the CPU\n"
    "  --threads N            CPU compute threads (default: all cores)\n"
    "  --workers N            image decoding threads (default 2)\n"
    "batches and augmentation:\n"
    "  --batch-p P            identities per batch\n"
    "  --batch-k K            tracklets (or images) per identity\n"
    "  --frames T             frames per sample (default 8)\n"
    "  --sampling S           chunks (default: one random frame from each of T chunks of a\n"
    "                         tracklet) or multiview (T frames across the identity's tracklets\n"
    "                         and cameras)\n"
    "  --steps-per-epoch N    steps per epoch (default: the loader's epoch)\n"
    "  --no-augment           no flip, pad/crop or erasing\n"
    "  --flip-p P             horizontal flip probability (default 0.5)\n"
    "  --pad N                zero padding before the random crop (default 10)\n"
    "  --erase-p P            random erasing probability (default 0.5; area 0.02-0.4, aspect\n"
    "                         0.3-3.3)\n"
    "optimisation:\n"
    "  --epochs N             epochs\n"
    "  --lr X                 Adam learning rate (default 1e-4)\n"
    "  --weight-decay X       default 1e-5, coupled (PyTorch Adam's weight_decay, as VKD)\n"
    "  --optimizer O          adam (default) or adamw (decoupled weight decay)\n"
    "  --lr-schedule S        in epochs: constant, multistep:M1,M2:GAMMA, exp-tail:T:LR_END,\n"
    "                         optionally warmup:N:FACTOR+...\n"
    "  --label-smoothing E    cross-entropy label smoothing (default 0)\n"
    "  --seed N               seeds initialisation, sampling and augmentation (default 1)\n";

enum {
  OPT_DATA = 256,
  OPT_PLOT,
  OPT_BATCH_P,
  OPT_BATCH_K,
  OPT_FRAMES,
  OPT_SAMPLING,
  OPT_NO_AUGMENT,
  OPT_PAD,
  OPT_ERASE_P,
  OPT_OPTIMIZER,
  OPT_SCHEDULE,
  OPT_SMOOTHING,
  /* student only */
  OPT_TEACHER,
  OPT_MODE,
  OPT_LOSSES,
  OPT_TAU1,
  OPT_TAU2,
  OPT_W_TR,
  OPT_W_MKD,
  OPT_W_PD,
  OPT_W_TCL,
  OPT_STUDENT_FRAMES,
  OPT_STUDENT_INIT,
  OPT_STUDENT_LAST,
};

static const struct option options[] = {
    TRAIN_OPTIONS,
    {"data", required_argument, 0, OPT_DATA},
    {"plot", required_argument, 0, OPT_PLOT},
    {"batch-p", required_argument, 0, OPT_BATCH_P},
    {"batch-k", required_argument, 0, OPT_BATCH_K},
    {"frames", required_argument, 0, OPT_FRAMES},
    {"sampling", required_argument, 0, OPT_SAMPLING},
    {"no-augment", no_argument, 0, OPT_NO_AUGMENT},
    {"pad", required_argument, 0, OPT_PAD},
    {"erase-p", required_argument, 0, OPT_ERASE_P},
    {"optimizer", required_argument, 0, OPT_OPTIMIZER},
    {"lr-schedule", required_argument, 0, OPT_SCHEDULE},
    {"label-smoothing", required_argument, 0, OPT_SMOOTHING},
    {"teacher", required_argument, 0, OPT_TEACHER},
    {"teacher-mode", required_argument, 0, OPT_MODE},
    {"losses", required_argument, 0, OPT_LOSSES},
    {"tau1", required_argument, 0, OPT_TAU1},
    {"tau2", required_argument, 0, OPT_TAU2},
    {"w-tr", required_argument, 0, OPT_W_TR},
    {"w-mkd", required_argument, 0, OPT_W_MKD},
    {"w-pd", required_argument, 0, OPT_W_PD},
    {"w-tcl", required_argument, 0, OPT_W_TCL},
    {"student-frames", required_argument, 0, OPT_STUDENT_FRAMES},
    {"student-init", required_argument, 0, OPT_STUDENT_INIT},
    {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0},
};

static const char *option_name(int code) {
  for (const struct option *o = options; o->name; o++)
    if (o->val == code) return o->name;
  return "?";
}

int train_args_parse(const char *cmd, int student, const char *help, int argc, char **argv,
                     reid_train_config *c, int *exit_code) {
  reid_train_config_default(c, student);
  *exit_code = CLI_USAGE;
  optind = 1;
  opterr = 0;
  const train_options shared = {TRAIN_OPTIONS_OF(c), .layout = &c->layout, .arch_set = &c->arch_set,
                                .flip_p = &c->augment.flip_p};
  int code;
  while ((code = getopt_long(argc, argv, "h", options, NULL)) != -1) {
    if (code >= OPT_TEACHER && code < OPT_STUDENT_LAST && !student) {
      cli_usage_error(cmd, "--%s is an option of 'reid-train student'", option_name(code));
      return 0;
    }
    int bad = 0;
    if (student && code == TRAIN_OPT_INPUT_SIZE)
      bad = cli_usage_error(cmd, "--input-size: the student uses the teacher's input size");
    else if (student && code == TRAIN_OPT_INIT)
      bad = cli_usage_error(cmd, "--init is a teacher option; use --student-init");
    else if (code >= TRAIN_OPT_FIRST && code < TRAIN_OPT_LAST)
      bad = train_option_parse(cmd, code, optarg, &shared);
    if (bad) return 0;
    if (code >= TRAIN_OPT_FIRST && code < TRAIN_OPT_LAST) continue;
    switch (code) {
    case OPT_DATA: c->data = optarg; break;
    case OPT_PLOT:
      if (reid_plot_format_of(optarg) == REID_PLOT_UNKNOWN)
        bad = cli_usage_error(
            cmd, "--plot writes SVG or PNG: the file name must end in .svg or .png, got '%s'",
            optarg);
      c->plot = optarg;
      break;
    case OPT_BATCH_P: bad = cli_parse_int(cmd, "--batch-p", optarg, 2, 1024, &c->batch_p); break;
    case OPT_BATCH_K: bad = cli_parse_int(cmd, "--batch-k", optarg, 2, 1024, &c->batch_k); break;
    case OPT_FRAMES: bad = cli_parse_int(cmd, "--frames", optarg, 1, 64, &c->frames); break;
    case OPT_SAMPLING:
      if (!strcmp(optarg, "chunks"))
        c->sampling = REID_FRAMES_RANDOM_CHUNKS;
      else if (!strcmp(optarg, "multiview"))
        c->sampling = REID_FRAMES_MULTIVIEW;
      else
        bad = cli_usage_error(cmd, "--sampling expects chunks or multiview, got '%s'", optarg);
      break;
    case OPT_NO_AUGMENT: c->augment.enabled = 0; break;
    case OPT_PAD: bad = cli_parse_int(cmd, "--pad", optarg, 0, 256, &c->augment.pad); break;
    case OPT_ERASE_P:
      bad = cli_parse_float(cmd, "--erase-p", optarg, 0, 0, 1, &c->augment.erase_p);
      break;
    case OPT_OPTIMIZER:
      if (!strcmp(optarg, "adam"))
        c->adamw = 0;
      else if (!strcmp(optarg, "adamw"))
        c->adamw = 1;
      else
        bad = cli_usage_error(cmd, "--optimizer expects adam or adamw, got '%s'", optarg);
      break;
    case OPT_SCHEDULE:
      if (strlen(optarg) >= sizeof c->schedule_text)
        bad = cli_usage_error(cmd, "--lr-schedule is too long");
      else
        snprintf(c->schedule_text, sizeof c->schedule_text, "%s", optarg);
      break;
    case OPT_SMOOTHING:
      bad = cli_parse_float(cmd, "--label-smoothing", optarg, 0, 0, 0.999, &c->label_smoothing);
      break;
    case OPT_TEACHER: c->teacher = optarg; break;
    case OPT_MODE:
      if (reid_teacher_mode_parse(optarg, &c->mode) != REID_OK)
        bad = cli_usage_error(cmd, "--teacher-mode expects frozen, independent or mutual, got '%s'",
                              optarg);
      break;
    case OPT_LOSSES:
      if (reid_losses_parse(optarg, &c->losses) != REID_OK)
        bad = cli_usage_error(cmd, "--losses: %s", reid_last_error());
      break;
    case OPT_TAU1: bad = cli_parse_float(cmd, "--tau1", optarg, 0, 1, 1e6, &c->tau1); break;
    case OPT_TAU2: bad = cli_parse_float(cmd, "--tau2", optarg, 0, 1, 1e6, &c->tau2); break;
    case OPT_W_TR: bad = cli_parse_float(cmd, "--w-tr", optarg, 0, 0, 1e6, &c->w_tr); break;
    case OPT_W_MKD: bad = cli_parse_float(cmd, "--w-mkd", optarg, 0, 0, 1e6, &c->w_mkd); break;
    case OPT_W_PD: bad = cli_parse_float(cmd, "--w-pd", optarg, 0, 0, 1e6, &c->w_pd); break;
    case OPT_W_TCL: bad = cli_parse_float(cmd, "--w-tcl", optarg, 0, 0, 1e6, &c->w_tcl); break;
    case OPT_STUDENT_FRAMES:
      bad = cli_parse_int(cmd, "--student-frames", optarg, 1, 64, &c->student_frames);
      break;
    case OPT_STUDENT_INIT: c->student_init = optarg; break;
    case 'h':
      fputs(help, stdout);
      *exit_code = CLI_OK;
      return 0;
    default: cli_bad_option(cmd, argv); return 0;
    }
    if (bad) return 0;
  }
  if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]), 0;
  if (!c->data) return cli_usage_error(cmd, "--data is required"), 0;
  if (!c->output) return cli_usage_error(cmd, "--output is required"), 0;
  if (student && !c->teacher) return cli_usage_error(cmd, "--teacher is required"), 0;
  if (student && c->student_frames > c->frames)
    return cli_usage_error(cmd,
                           "--student-frames %d exceeds --frames %d (the student sees a "
                           "subset of the teacher's frames)",
                           c->student_frames, c->frames),
           0;
  if (reid_lr_schedule_parse(c->schedule_text, c->lr, &c->schedule) != REID_OK)
    return cli_usage_error(cmd, "--lr-schedule: %s", reid_last_error()), 0;
  return 1;
}

int train_command(const char *cmd, int student, const char *summary, int argc, char **argv) {
  char help[12288];
  snprintf(help, sizeof help, "%s%s  -h, --help             this text\n", summary,
           train_args_common_help);
  reid_train_config c;
  int code;
  if (!train_args_parse(cmd, student, help, argc, argv, &c, &code)) return code;
  reid_status st = reid_train(&c);
  if (st != REID_OK) return cli_library_error(cmd, st);
  if (c.progress) fprintf(c.progress, "reid-train %s: wrote %s\n", cmd, c.output);
  return CLI_OK;
}
