/* reid-train continual: lifelong re-ID training (DwoPP and its baselines, continual.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "continual.h"
#include "train_options.h"

static const char *const help =
    "usage: reid-train continual --stream intra|inter|collected --data DIR... --output "
    "M.safetensors\n"
    "                            [--method dwopp|dwpp|ft|joint] [options]\n"
    "\n"
    "Lifelong re-ID (papers.md §2): trains one model on a stream of tasks, one after the\n"
    "other, without keeping images of earlier tasks, and evaluates it after every task.\n"
    "Each step is a DMML episode (C identities x (S support + Q query) images of the task);\n"
    "the loss is DMML + norm penalty + lambda KL(old || new) over query-to-prototype\n"
    "softmaxes of the frozen previous model (eval mode) and the model, on the same batch.\n"
    "The model is a ResNet with global average pooling after the last ReLU (no BNNeck, no\n"
    "classifier); its checkpoints load in reidembed as they are.\n"
    "\n"
    "stream:\n"
    "  --stream K             intra (default): one dataset split by identity (ids sorted;\n"
    "                         the first --base-ids form task 0, the rest --tasks - 1 equal\n"
    "                         tasks); test sets: retrieval among each task's own training\n"
    "                         identities (forgetting) and the dataset's test split (unseen ids)\n"
    "                         inter: one dataset per task, in the order given (LReID), the\n"
    "                         first --ids-per-task identities of each; test sets: each\n"
    "                         dataset's query/gallery (seen once its task is trained)\n"
    "                         collected: one folder of `reidembed collect-location=` per\n"
    "                         task, every tracklet a pseudo-identity (layout collected);\n"
    "                         only the --unseen sets are evaluated (nothing is labelled)\n"
    "  --data DIR             a dataset folder (intra: one; inter, collected: one per task)\n"
    "  --layout L             auto (default), mars, duke, market, veri or collected (every\n"
    "                         folder; a collected stream reads its --unseen sets as detected)\n"
    "  --base-ids N           identities of task 0 (intra, default 76)\n"
    "  --tasks N              tasks (intra, default 10)\n"
    "  --ids-per-task N       identities per dataset (inter, default 500)\n"
    "  --unseen DIR           an unseen test set (its query/gallery; repeat for more)\n"
    "  --collected-negatives N  collected streams: known (default): a tracklet's DMML\n"
    "                         negatives are the tracklets of its own camera and those seen\n"
    "                         with it in one frame (different people by construction); one\n"
    "                         of another camera may be the same person and is not pushed\n"
    "                         away; episodes gather tracklets seen together. all: every\n"
    "                         other tracklet is a negative, episodes at random\n"
    "method:\n"
    "  --method M             dwopp (default): distillation of the 32 x 31 negatives only;\n"
    "                         dwpp: with the positive pairs (32 x 32); ft: no distillation;\n"
    "                         joint: all tasks' identities at once (the upper bound; with\n"
    "                         --steps-per-epoch, that many steps times the number of tasks)\n"
    "  --episode-ids C        identities per episode (default 32)\n"
    "  --support S            support images per identity (default 5)\n"
    "  --query Q              query images per identity (default 1); identities with fewer\n"
    "                         than S + Q images repeat some\n"
    "  --margin M             DMML margin on squared distances (default 0.4)\n"
    "  --norm-weight W        weight of the mean squared feature norm (default 5e-4)\n"
    "  --kd-weight L          lambda, the distillation weight (default 1; 0 for ft)\n"
    "  --temperature T        distillation temperature (default 1 for dwopp, 10 for dwpp)\n"
    "  --clamp X              lower clamp of both softmaxes in the KL (default 1e-4)\n"
    "model:\n"
    "  --arch A               resnet50 (default), or any architecture of reid-train init\n"
    "  --last-stride N        1 (default) or 2\n"
    "  --input-size HxW       input size (default 256x128)\n"
    "  --init FILE            start from a checkpoint reidembed loads (one network, or the\n"
    "                         student of an MDKT pair); default: ImageNet-style random init.\n"
    "                         With dwopp/dwpp it is also the previous model of task 0, so\n"
    "                         the first task already distils from it\n"
    "optimisation (per task: a fresh Adam, lr constant for the first half of the epochs,\n"
    "then exponential decay to --lr-end):\n"
    "  --epochs N             epochs per task (default 600)\n"
    "  --steps-per-epoch N    default: the loader's epoch, ceil(identities / C)\n"
    "  --lr X                 Adam learning rate (default 2e-4)\n"
    "  --lr-end X             learning rate at the last epoch (default 1e-6)\n"
    "  --weight-decay X       Adam's (coupled) weight decay (default 1e-4)\n"
    "  --flip-p P             horizontal flip probability (default 0.5)\n"
    "  --erase-p A:B          random erasing probability, growing linearly over each task's\n"
    "                         steps from A to B (default 0.3:0.7)\n"
    "  --erase-area A:B       largest erased area (fraction of the image), growing from A\n"
    "                         to B (default 0.1:0.34)\n"
    "  --erase-area-min X     smallest erased area (default 0.02)\n"
    "  --erase-aspect-min X   erased aspect ratio range [X, 1/X] (default 0.3)\n"
    "  --seed N               seeds initialisation, sampling and augmentation (default 1)\n"
    "outputs and resumption (M = --output without .safetensors):\n"
    "  --output FILE          the final model (required); also M.taskNN.safetensors after\n"
    "                         each task (metadata continual_task, continual_method,\n"
    "                         continual_stream, continual_datasets), M.taskNN.log.jsonl (loss\n"
    "                         terms per step), M.results.csv / M.results.json (mAP and R1 of\n"
    "                         every test set after every task, the Seen / Unseen summary and\n"
    "                         the forgetting of each set), M.map.svg / M.map.png\n"
    "  --save-every N         checkpoint the resumable state every N epochs (default 50)\n"
    "  --resume               continue from M.state.safetensors (within a task or at a task\n"
    "                         boundary; the same settings; bit-identical on the CPU)\n"
    "  --stop-after T[:E]     stop once task T has trained E epochs (default: all), keeping\n"
    "                         the state for --resume (train the tasks as they arrive)\n"
    "  --eval-batch N         images per evaluation batch (default 64)\n"
    "  --quiet                no progress lines\n"
    "device:\n"
    "  --device D             cpu, cuda or auto (default auto)\n"
    "  --gpu-id N             CUDA device (default 0)\n"
    "  --tf32                 CUDA: TF32 tensor cores in convolutions and matrix products\n"
    "  --threads N            CPU compute threads (default: all cores)\n"
    "  --workers N            image decoding threads (default 2)\n"
    "  -h, --help             this text\n";

enum {
  O_STREAM = 256,
  O_DATA,
  O_BASE,
  O_TASKS,
  O_IPT,
  O_UNSEEN,
  O_NEGATIVES,
  O_METHOD,
  O_EPIDS,
  O_SUPPORT,
  O_QUERY,
  O_MARGIN,
  O_NORM,
  O_KD,
  O_TEMP,
  O_CLAMP,
  O_LR_END,
  O_ERASE_P,
  O_ERASE_AREA,
  O_ERASE_MIN,
  O_ERASE_ASPECT,
  O_STOP,
  O_EVAL_BATCH,
};

static const struct option options[] = {
    TRAIN_OPTIONS,
    {"stream", required_argument, 0, O_STREAM},
    {"data", required_argument, 0, O_DATA},
    {"base-ids", required_argument, 0, O_BASE},
    {"tasks", required_argument, 0, O_TASKS},
    {"ids-per-task", required_argument, 0, O_IPT},
    {"unseen", required_argument, 0, O_UNSEEN},
    {"collected-negatives", required_argument, 0, O_NEGATIVES},
    {"method", required_argument, 0, O_METHOD},
    {"episode-ids", required_argument, 0, O_EPIDS},
    {"support", required_argument, 0, O_SUPPORT},
    {"query", required_argument, 0, O_QUERY},
    {"margin", required_argument, 0, O_MARGIN},
    {"norm-weight", required_argument, 0, O_NORM},
    {"kd-weight", required_argument, 0, O_KD},
    {"temperature", required_argument, 0, O_TEMP},
    {"clamp", required_argument, 0, O_CLAMP},
    {"lr-end", required_argument, 0, O_LR_END},
    {"erase-p", required_argument, 0, O_ERASE_P},
    {"erase-area", required_argument, 0, O_ERASE_AREA},
    {"erase-area-min", required_argument, 0, O_ERASE_MIN},
    {"erase-aspect-min", required_argument, 0, O_ERASE_ASPECT},
    {"stop-after", required_argument, 0, O_STOP},
    {"eval-batch", required_argument, 0, O_EVAL_BATCH},
    {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0},
};

static const char *const cmd = "continual";

/* "A:B" with both in [lo, hi] and A <= B. */
static int parse_range(const char *option, const char *text, double lo, double hi, float *a,
                       float *b) {
  char *end;
  errno = 0;
  double x = strtod(text, &end), y = NAN;
  if (!errno && end != text && *end == ':') {
    const char *q = end + 1;
    y = strtod(q, &end);
    if (end == q || *end) y = NAN;
  }
  if (errno || !(x >= lo && x <= y && y <= hi))
    return cli_usage_error(cmd, "%s expects A:B with %g <= A <= B <= %g, got '%s'", option, lo, hi,
                           text);
  *a = (float)x, *b = (float)y;
  return 0;
}

static int add_path(const char ***list, int *n, const char *path) {
  const char **grown = realloc(*list, sizeof(char *) * (size_t)(*n + 1));
  if (!grown) return cli_usage_error(cmd, "out of memory");
  grown[(*n)++] = path;
  *list = grown;
  return 0;
}

static int parse(int argc, char **argv, reid_continual_config *c, const char ***data,
                 const char ***unseen, int *exit_code) {
  *exit_code = CLI_USAGE;
  optind = 1;
  opterr = 0;
  int code, n_data = 0, n_unseen = 0;
  const train_options shared = {TRAIN_OPTIONS_OF(c), .layout = &c->stream.layout,
                                .flip_p = &c->flip_p};
  while ((code = getopt_long(argc, argv, "h", options, NULL)) != -1) {
    if (code >= TRAIN_OPT_FIRST && code < TRAIN_OPT_LAST) {
      if (train_option_parse(cmd, code, optarg, &shared)) return 0;
      continue;
    }
    int bad = 0;
    switch (code) {
    case O_STREAM:
      if (reid_stream_kind_parse(optarg, &c->stream.kind) != REID_OK)
        bad = cli_usage_error(cmd, "--stream expects intra, inter or collected, got '%s'", optarg);
      break;
    case O_DATA: bad = add_path(data, &n_data, optarg); break;
    case O_UNSEEN: bad = add_path(unseen, &n_unseen, optarg); break;
    case O_NEGATIVES:
      if (strcmp(optarg, "known") && strcmp(optarg, "all"))
        bad = cli_usage_error(cmd, "--collected-negatives expects known or all, got '%s'", optarg);
      c->known_negatives = !strcmp(optarg, "known");
      break;
    case O_BASE:
      bad = cli_parse_int(cmd, "--base-ids", optarg, 1, 1 << 24, &c->stream.base_ids);
      break;
    case O_TASKS: bad = cli_parse_int(cmd, "--tasks", optarg, 1, 10000, &c->stream.tasks); break;
    case O_IPT:
      bad = cli_parse_int(cmd, "--ids-per-task", optarg, 2, 1 << 24, &c->stream.ids_per_task);
      break;
    case O_METHOD:
      if (reid_cl_method_parse(optarg, &c->method) != REID_OK)
        bad = cli_usage_error(cmd, "--method expects dwopp, dwpp, ft or joint, got '%s'", optarg);
      break;
    case O_EPIDS:
      bad = cli_parse_int(cmd, "--episode-ids", optarg, 2, 4096, &c->episode_ids);
      break;
    case O_SUPPORT: bad = cli_parse_int(cmd, "--support", optarg, 1, 256, &c->support); break;
    case O_QUERY: bad = cli_parse_int(cmd, "--query", optarg, 1, 256, &c->query); break;
    case O_MARGIN: bad = cli_parse_float(cmd, "--margin", optarg, 0, 0, 1e6, &c->margin); break;
    case O_NORM:
      bad = cli_parse_float(cmd, "--norm-weight", optarg, 0, 0, 1e6, &c->norm_weight);
      break;
    case O_KD: bad = cli_parse_float(cmd, "--kd-weight", optarg, 0, 0, 1e6, &c->kd_weight); break;
    case O_TEMP:
      bad = cli_parse_float(cmd, "--temperature", optarg, 0, 1, 1e6, &c->temperature);
      break;
    case O_CLAMP: bad = cli_parse_float(cmd, "--clamp", optarg, 0, 0, 0.5, &c->clamp); break;
    case O_LR_END: bad = cli_parse_float(cmd, "--lr-end", optarg, 0, 1, 1e3, &c->lr_end); break;
    case O_ERASE_P:
      bad = parse_range("--erase-p", optarg, 0, 1, &c->erase_p_start, &c->erase_p_end);
      break;
    case O_ERASE_AREA:
      bad = parse_range("--erase-area", optarg, 0, 0.999, &c->erase_area_start, &c->erase_area_end);
      break;
    case O_ERASE_MIN:
      bad = cli_parse_float(cmd, "--erase-area-min", optarg, 0, 1, 0.999, &c->erase_area_min);
      break;
    case O_ERASE_ASPECT:
      bad = cli_parse_float(cmd, "--erase-aspect-min", optarg, 0, 1, 1, &c->erase_aspect_min);
      break;
    case O_STOP: {
      char *end;
      long t = strtol(optarg, &end, 10), e = 0;
      if (end != optarg && *end == ':') {
        const char *q = end + 1;
        e = strtol(q, &end, 10);
        if (end == q || e < 1) t = -1;
      }
      if (end == optarg || *end || t < 0 || t > 100000 || e > 1000000)
        bad = cli_usage_error(cmd, "--stop-after expects TASK or TASK:EPOCH, got '%s'", optarg);
      c->stop_task = (int)t, c->stop_epoch = (int)e;
      break;
    }
    case O_EVAL_BATCH:
      bad = cli_parse_int(cmd, "--eval-batch", optarg, 1, 4096, &c->eval_batch);
      break;
    case 'h':
      fputs(help, stdout);
      *exit_code = CLI_OK;
      return 0;
    default: cli_bad_option(cmd, argv); return 0;
    }
    if (bad) return 0;
  }
  if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]), 0;
  if (!n_data) return cli_usage_error(cmd, "--data is required"), 0;
  if (!c->output) return cli_usage_error(cmd, "--output is required"), 0;
  if (c->stream.kind == REID_STREAM_INTRA && n_data != 1)
    return cli_usage_error(cmd, "--stream intra splits one dataset: give --data once (got %d)",
                           n_data),
           0;
  if (c->erase_area_min > c->erase_area_start)
    return cli_usage_error(cmd, "--erase-area-min %g exceeds the starting erased area %g",
                           (double)c->erase_area_min, (double)c->erase_area_start),
           0;
  c->stream.data = *data;
  c->stream.n_data = n_data;
  c->stream.unseen = *unseen;
  c->stream.n_unseen = n_unseen;
  return 1;
}

int cmd_continual(int argc, char **argv) {
  reid_continual_config c;
  reid_continual_config_default(&c);
  const char **data = NULL, **unseen = NULL;
  int code;
  if (parse(argc, argv, &c, &data, &unseen, &code)) {
    reid_status st = reid_continual(&c);
    code = st == REID_OK ? CLI_OK : cli_library_error(cmd, st);
    if (st == REID_OK && c.progress)
      fprintf(c.progress, "reid-train continual: wrote %s\n", c.output);
  }
  free(data);
  free(unseen);
  return code;
}
