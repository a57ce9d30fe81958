/* reid-train: train, inspect and run re-ID models. One binary, subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

typedef struct command {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
} command;

static const command commands[] = {
    {"init", cmd_init, "write a freshly initialised ResNet checkpoint"},
    {"info", cmd_info, "print a checkpoint's metadata and tensors"},
    {"embed", cmd_embed, "compute embeddings of images or a .npy batch"},
    {"synth", cmd_synth, "write a synthetic re-ID dataset (mars, duke, market, veri layouts)"},
    {"scene-eval", cmd_scene_eval, "score reidembed's watchlist on a scene against ground truth"},
    {"teacher", cmd_teacher, "train the MDKT video teacher"},
    {"student", cmd_student, "distil an MDKT image student (teacher/student pair)"},
    {"continual", cmd_continual,
     "lifelong re-ID: DwoPP, DwPP, fine-tuning or joint over a task stream"},
    {"eval", cmd_eval, "CMC and mAP (i2v, v2v, i2i) of a model on a dataset"},
    {"export", cmd_export, "write one network of an MDKT pair alone"},
    {"quantize", cmd_quantize,
     "post-training int8 quantization (per-channel weights, calibration)"},
};

static void usage(FILE *out) {
  fprintf(out, "usage: reid-train COMMAND [OPTIONS]\n\ncommands:\n");
  for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
    fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
  fprintf(out, "\n'reid-train COMMAND --help' describes a command's options.\n");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "reid-train: error: a command is required (see 'reid-train --help')\n");
    return CLI_USAGE;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    usage(stdout);
    return CLI_OK;
  }
  for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
    if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "reid-train: error: unknown command '%s' (see 'reid-train --help')\n", argv[1]);
  return CLI_USAGE;
}
