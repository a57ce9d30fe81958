/* Shared helpers of the reid-train subcommands. Exit codes: 0 success,
 * 1 the work failed (message names the cause), 2 bad command line. */
#pragma once

#include <getopt.h>

#include "status.h"

#define CLI_OK     0
#define CLI_FAILED 1
#define CLI_USAGE  2

/* Prints "reid-train CMD: error: ..." and returns CLI_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "reid-train CMD: error: <library message>" and returns CLI_FAILED. */
int cli_library_error(const char *cmd, reid_status st);
/* Parses an integer option in [lo, hi]; 0 on success. */
int cli_parse_int(const char *cmd, const char *option, const char *text, int lo, int hi, int *out);
/* Parses a --seed value: a non-negative decimal integer below 2^64; 0 on success. */
int cli_parse_seed(const char *cmd, const char *text, unsigned long long *out);
/* Parses a number in [lo, hi] (lo excluded when lo_open) into a float; 0 on success. */
int cli_parse_float(const char *cmd, const char *option, const char *text, double lo, int lo_open,
                    double hi, float *out);
/* Checks cpu, cuda or auto; 0 on success. */
int cli_parse_device(const char *cmd, const char *option, const char *text, const char **out);
/* Parses "HxW" (e.g. 256x128); 0 on success. */
int cli_parse_size(const char *cmd, const char *option, const char *text, int *h, int *w);
/* The message getopt_long would print, as a one-line error (call when it returns '?'). */
int cli_bad_option(const char *cmd, char **argv);

int cmd_init(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_embed(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_synth_scene(int argc, char **argv); /* cmd_synth with --scene */
int cmd_scene_eval(int argc, char **argv);
int cmd_teacher(int argc, char **argv);
int cmd_continual(int argc, char **argv);
int cmd_student(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
