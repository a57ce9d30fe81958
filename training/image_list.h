/* Image lists for reid-train embed and quantize: a text file of image paths,
 * one per line (blank lines and lines starting with # skipped; relative paths
 * are relative to the list's folder). */
#pragma once

#include "resnet.h"

reid_status image_list_read(const char *list_path, char ***paths, int *count);
/* Decodes and preprocesses paths[0..n) into x [n, 3, H, W] (the model's input
 * size, mean and std), in parallel; the first failure names its file. */
reid_status image_list_load(char **paths, int n, const reid_model_config *cfg, float *x);
void image_list_free(char **paths, int n);
/* 1 when `path` starts with the .npy magic (an input batch rather than a list) */
int image_list_is_npy(const char *path);
