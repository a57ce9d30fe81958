/* Internal: what the per-layout readers (mars.c, duke.c, market.c, veri.c)
 * share to build a reid_dataset: growable frame and sample lists, sorted
 * folder listings, skipped-entry bookkeeping, number parsing. */
#pragma once

#include <stddef.h>

#include "dataset.h"

enum { DS_TRAIN = 0, DS_QUERY = 1, DS_GALLERY = 2 };

/* Adds "a/b" (b may be NULL: "a"; c likewise) to d->frames; returns its index in *index. */
reid_status ds_add_frame(reid_dataset *d, const char *a, const char *b, const char *c, int *index);
/* Appends a sample to a split (0 train, 1 query, 2 gallery); label is filled in by ds_finish. */
reid_status ds_add_sample(reid_dataset *d, int split, int pid, int camid, int first, int n);
/* Records that train samples a and b show different people (any order; duplicates are
 * dropped by ds_finish, which also sorts the pairs). */
reid_status ds_add_distinct_pair(reid_dataset *d, int a, int b);
/* Records an unreadable entry (counted; the first one's path is kept for the warning). */
void ds_skip(reid_dataset *d, const char *a, const char *b, const char *c);
/* Relabels the train split, checks that no split is empty and that few entries were skipped. */
reid_status ds_finish(reid_dataset *d, const char *root);

/* A folder's entries, sorted by name (strcmp), hidden entries (".*") left out.
 * want: 'd' folders only, 'f' regular files only. Fails naming the folder. */
typedef struct ds_listing {
  char **names;
  int count;
} ds_listing;
reid_status ds_list(const char *folder, char want, ds_listing *out);
void ds_listing_free(ds_listing *l);
int ds_listing_has(const ds_listing *l, const char *name);
/* "a/b" (or "a/b/c") in a malloc'd string, NULL when out of memory. */
char *ds_join(const char *a, const char *b, const char *c);
int ds_is_folder(const char *path);
int ds_is_file(const char *path);

/* Parses exactly n decimal digits (n > 0) at s; -1 if any is not a digit. */
int ds_digits(const char *s, int n);
/* Parses one or more decimal digits at *s (advancing it); -1 if none or > 9 digits. */
int ds_number(const char **s);
int ds_ends_with(const char *s, const char *suffix);

/* Lines of a text file (trailing whitespace and CR removed, blank lines dropped). */
typedef struct ds_lines {
  char **lines;
  int *lineno; /* 1-based line number of each kept line */
  int count;
} ds_lines;
reid_status ds_read_lines(const char *path, ds_lines *out);
void ds_lines_free(ds_lines *l);

reid_status ds_load_mars(const char *root, reid_dataset *d);
reid_status ds_load_duke(const char *root, reid_dataset *d);
reid_status ds_load_market(const char *root, reid_dataset *d);
reid_status ds_load_veri(const char *root, reid_dataset *d);
reid_status ds_load_collected(const char *root, reid_dataset *d);
/* Whether root holds a folder with an index.jsonl (the collected layout). */
int ds_is_collected(const char *root);
/* A MATLAB v5 .mat file's element sizes are consistent with the file (mat_check.c):
 * REID_EFORMAT naming the file otherwise. Call before libmatio reads it. */
reid_status ds_check_mat(const char *path);
