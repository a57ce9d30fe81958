/* reid-train scene-eval: what reidembed's watchlist found, and how right it was. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fileio.h"
#include "scene_eval.h"
#include "video.h"

static const char *const help =
    "usage: reid-train scene-eval --jsonl FILE --queries LIST --query-embeddings Q.npy\n"
    "                             (--scene DIR | --camera NAME=VIDEO,MOT[,TRUTH] ...) [options]\n"
    "\n"
    "Reads the JSON lines that reidembed elements wrote (stream-name = the camera's name),\n"
    "prints for each query photo the tracklets it matched in each camera, with scores and\n"
    "times, and - where there is ground truth - whether each match is the query's person:\n"
    "the watchlist's precision (right matches / matches) and recall (tracklets of the\n"
    "queries' people that matched their query / all of them), and I2V rank-1 and mAP of\n"
    "each query photo ranked against every tracklet by cosine. A tracklet's person is the\n"
    "ground-truth id that most of its tracker boxes overlap best (IoU >= 0.5).\n"
    "\n"
    "  --jsonl FILE             the elements' JSON lines (required)\n"
    "  --queries LIST           the query photos, one path a line (relative to LIST)\n"
    "  --query-embeddings F     their embeddings, [n, dim] .npy in LIST's order (reid-train\n"
    "                           embed --input LIST, with the elements' model)\n"
    "  --scene DIR              a reid-train synth --scene folder: cameras camK, videos,\n"
    "                           tracker and ground-truth MOT files, the queries' people\n"
    "  --camera NAME=VIDEO,MOT[,TRUTH]  a camera of your own (repeat); TRUTH: its ground truth\n"
    "  --fps F                  frame rate of --camera videos (default: read from the video)\n"
    "  --contact-sheet FILE.png each query photo beside its best tracklets (a crop of one\n"
    "                           frame each), framed green (right) or red (wrong); a thick\n"
    "                           frame: the watchlist matched it\n"
    "  --top K                  tracklets per query on the sheet (default 5)\n"
    "  --json FILE              {\"matches\", \"right\", \"precision\", \"recall\", \"rank1\", "
    "\"mAP\"}\n"
    "  -h, --help               this text\n";

static reid_status video_fps(const char *video, double *fps);

static reid_status write_json(const char *path, const scene_scores *s) {
  char text[512];
  int n = snprintf(text, sizeof text,
                   "{\"matches\":%d,\"right\":%d,\"positives\":%d,\"found\":%d,"
                   "\"precision\":%.6f,\"recall\":%.6f,\"rank1\":%.6f,\"mAP\":%.6f,"
                   "\"i2v_queries\":%d}\n",
                   s->matches, s->right, s->positives, s->found,
                   s->matches ? (double)s->right / s->matches : 0.0,
                   s->positives ? (double)s->found / s->positives : 0.0, s->rank1, s->map,
                   s->i2v_queries);
  const void *parts[1] = {text};
  size_t sizes[1] = {(size_t)n};
  return reid_write_file_atomic(path, parts, sizes, 1, 1);
}

int cmd_scene_eval(int argc, char **argv) {
  static const struct option options[] = {{"jsonl", required_argument, 0, 'j'},
                                          {"queries", required_argument, 0, 'q'},
                                          {"query-embeddings", required_argument, 0, 'e'},
                                          {"scene", required_argument, 0, 's'},
                                          {"camera", required_argument, 0, 'c'},
                                          {"fps", required_argument, 0, 'f'},
                                          {"contact-sheet", required_argument, 0, 'p'},
                                          {"top", required_argument, 0, 't'},
                                          {"json", required_argument, 0, 'J'},
                                          {"help", no_argument, 0, 'h'},
                                          {0, 0, 0, 0}};
  const char *cmd = "scene-eval";
  const char *jsonl = NULL, *queries = NULL, *npy = NULL, *scene = NULL, *sheet = NULL,
             *json = NULL;
  const char **cameras = calloc((size_t)argc, sizeof *cameras);
  int n_cameras = 0, top = 5;
  double fps = 0;
  if (!cameras) return cli_library_error(cmd, reid_fail(REID_ENOMEM, "out of memory"));
  optind = 1;
  opterr = 0;
  int c, rc = CLI_OK;
  while (rc == CLI_OK && (c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
    switch (c) {
    case 'j': jsonl = optarg; break;
    case 'q': queries = optarg; break;
    case 'e': npy = optarg; break;
    case 's': scene = optarg; break;
    case 'c': cameras[n_cameras++] = optarg; break;
    case 'f': {
      char *end;
      fps = strtod(optarg, &end);
      if (end == optarg || *end || !(fps > 0 && fps < 1000))
        rc = cli_usage_error(cmd, "--fps expects a frame rate, got '%s'", optarg);
      break;
    }
    case 'p': sheet = optarg; break;
    case 't':
      if (cli_parse_int(cmd, "--top", optarg, 1, 50, &top)) rc = CLI_USAGE;
      break;
    case 'J': json = optarg; break;
    case 'h':
      fputs(help, stdout);
      free(cameras);
      return CLI_OK;
    default: rc = cli_bad_option(cmd, argv); break;
    }
  }
  if (rc == CLI_OK && optind < argc)
    rc = cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
  if (rc == CLI_OK && (!jsonl || !queries || !npy))
    rc = cli_usage_error(cmd, "--jsonl, --queries and --query-embeddings are required");
  if (rc == CLI_OK && !scene == !n_cameras)
    rc = cli_usage_error(cmd, "give either --scene or --camera");
  if (rc != CLI_OK) {
    free(cameras);
    return rc;
  }
  scene_eval e = {0};
  scene_scores s;
  reid_status st = REID_OK;
  if (scene) st = scene_eval_read_scene(&e, scene);
  for (int i = 0; i < n_cameras && st == REID_OK; i++) st = scene_eval_add_camera(&e, cameras[i]);
  if (st == REID_OK && !scene) {
    e.fps = fps;
    if (e.fps <= 0) st = video_fps(e.cameras[0].video, &e.fps);
  }
  if (st == REID_OK) st = scene_eval_read_queries(&e, queries, npy);
  if (st == REID_OK) st = scene_eval_read_jsonl(&e, jsonl);
  if (st == REID_OK) st = scene_eval_score(&e, &s);
  if (st == REID_OK) scene_eval_print(&e, &s);
  if (st == REID_OK && json) st = write_json(json, &s);
  if (st == REID_OK && sheet) st = scene_eval_contact_sheet(&e, sheet, top);
  if (st == REID_OK && sheet) printf("contact sheet: %s\n", sheet);
  rc = st == REID_OK ? CLI_OK : cli_library_error(cmd, st);
  scene_eval_free(&e);
  free(cameras);
  return rc;
}

static reid_status video_fps(const char *video, double *fps) {
  reid_video_reader *r = NULL;
  REID_TRY(reid_video_reader_open(video, &r));
  *fps = reid_video_reader_fps(r);
  reid_video_reader_close(r);
  if (*fps <= 0) return reid_fail(REID_EFORMAT, "%s: unknown frame rate; give --fps", video);
  return REID_OK;
}
