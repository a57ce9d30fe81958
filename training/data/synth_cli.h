/* What `reid-train synth` and `synth --scene` parse alike (cmd_synth.c): --output, --cameras,
 * --seed, --threads and --help, the leftover arguments and the required --output. */
#pragma once

#include <stdint.h>

#include "cli.h"

/* The shared entries of both getopt_long tables; their codes are the letters o, c, r, t, h. */
// clang-format off
#define SYNTH_SHARED_OPTIONS                                                            \
  {"output", required_argument, 0, 'o'}, {"cameras", required_argument, 0, 'c'},       \
  {"seed", required_argument, 0, 'r'}, {"threads", required_argument, 0, 't'},          \
  {"help", no_argument, 0, 'h'}
// clang-format on

typedef struct synth_shared_args {
  const char *output;
  int cameras, max_cameras; /* --cameras in [2, max_cameras] */
  int threads;              /* default: all cores */
  uint64_t seed;            /* default 1 */
} synth_shared_args;

/* Sets the defaults: no output, `cameras` cameras (at most max_cameras), all cores, seed 1. */
void synth_shared_init(synth_shared_args *a, int cameras, int max_cameras);

/* A command's own options: given what getopt_long returned (opt, with optarg), returns CLI_OK
 * when it took the option, SYNTH_NOT_OWN when the option is not one of its own, CLI_USAGE
 * after printing an error. */
#define SYNTH_NOT_OWN (-1)
typedef int (*synth_own_option)(const char *cmd, int opt, void *ctx);

/* Parses argv by getopt_long over `options` (SYNTH_SHARED_OPTIONS and the command's own):
 * the shared ones into a, the others by own(cmd, opt, ctx); then checks that nothing is left
 * over and --output is given. Returns -1 when the command line is complete, else the exit
 * code for the command to return: CLI_OK after printing --help, CLI_USAGE after an error
 * (a bad value, an unknown option, a leftover argument, no --output; printed). */
int synth_parse_options(const char *cmd, const char *help, int argc, char **argv,
                        const struct option *options, synth_own_option own, void *ctx,
                        synth_shared_args *a);
