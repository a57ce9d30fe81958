/* Command-line options of `reid-train teacher` and `reid-train student`
 * (shared flags plus the student's MDKT flags) into a reid_train_config. */
#pragma once

#include "trainer.h"

/* Parses argv into *c (defaults from reid_train_config_default). Returns 1
 * to run the training, 0 when the command is done (--help printed: exit 0,
 * or a usage error printed: exit 2) with the code in *exit_code. */
int train_args_parse(const char *cmd, int student, const char *help, int argc, char **argv,
                     reid_train_config *c, int *exit_code);

/* Text of the shared options, for the commands' --help. */
extern const char *const train_args_common_help;

/* A whole training command: --help from `summary` and the shared options,
 * parsing, reid_train, a closing line; returns the process exit code. */
int train_command(const char *cmd, int student, const char *summary, int argc, char **argv);
