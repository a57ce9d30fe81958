/* reid-train synth --scene: multi-camera scene videos with ground truth (synth_scene*.c). */
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "synth.h"
#include "synth_cli.h"

static const char *const help =
    "usage: reid-train synth --scene --output DIR [options]\n"
    "\n"
    "Renders a scene watched by several cameras: people of the synth renderer enter, walk,\n"
    "cross and hide each other, leave, and most of them reappear in another camera a few\n"
    "seconds later. Odd cameras look across a floor (side views, people close), even cameras\n"
    "along it (people come from a far door towards the camera or walk away: front and back\n"
    "views, the size changing fourfold); each camera has its own colour cast, brightness,\n"
    "contrast, lighting gradient, blur and noise. Writes into DIR:\n"
    "  camK.mp4             the videos (H.264 with libx264; else MJPEG .avi or FFV1 .mkv)\n"
    "  camK.gt.txt          MOTChallenge ground truth, ids = people (the same in every camera),\n"
    "                       boxes = the pixels each person covers, visibility = the share\n"
    "                       not hidden by nearer people\n"
    "  camK.tracker.txt     what a tracker gives: misses, jitter, broken tracks, id switches\n"
    "                       where people cross; ids are per-camera track numbers\n"
    "  queries/person-NNNN.png  photos of some people by a camera of their own\n"
    "  scene.txt            the list of the above, read by reid-train scene-eval\n"
    "People are synth identities first-identity, first-identity + 1, ... of the seed;\n"
    "training datasets use identities 0 .. N-1, so the default first identity 100000 keeps\n"
    "the scene's people out of any training set. The same options give identical files.\n"
    "\n"
    "  --output DIR         a new or empty folder (required)\n"
    "  --cameras C          cameras (default 2, 2..8)\n"
    "  --people N           people (default 10)\n"
    "  --queries Q          query photos (default 4; people seen by two cameras first)\n"
    "  --seconds S          length (default 30)\n"
    "  --fps F              frames per second (default 10)\n"
    "  --size WxH           frame size (default 640x360; even numbers)\n"
    "  --first-identity I   synth identity of person 1 (default 100000)\n"
    "  --crops train|test   also write DIR/crops/: the people as DukeMTMC-VideoReID tracklets\n"
    "                       (128x64): each walk through camera K is tracklet K, photos by\n"
    "                       third cameras are camera C+1; train: all in train/ (4 photos\n"
    "                       each); test: the photos in query/, the walks in gallery/ (for\n"
    "                       reid-train eval --calibrate on the scene's own look)\n"
    "  --seed S             random seed (default 1)\n"
    "  --threads N          rendering threads (default: all cores)\n"
    "  -h, --help           this text\n";

static int scene_option(const char *cmd, int opt, void *ctx) {
  synth_scene_options *o = ctx;
  switch (opt) {
  case 'S': break;
  case 'n':
    if (cli_parse_int(cmd, "--people", optarg, 1, 9999, &o->people)) return CLI_USAGE;
    break;
  case 'q':
    if (cli_parse_int(cmd, "--queries", optarg, 0, 9999, &o->queries)) return CLI_USAGE;
    break;
  case 's':
    if (cli_parse_int(cmd, "--seconds", optarg, 4, 3600, &o->seconds)) return CLI_USAGE;
    break;
  case 'f':
    if (cli_parse_int(cmd, "--fps", optarg, 1, 120, &o->fps)) return CLI_USAGE;
    break;
  case 'z': {
    int w, h;
    char tail;
    if (sscanf(optarg, "%dx%d%c", &w, &h, &tail) != 2 || w < 64 || h < 64 || w > 7680 || h > 4320 ||
        w % 2 || h % 2)
      return cli_usage_error(cmd, "--size expects WxH, even, 64x64 .. 7680x4320, got '%s'", optarg);
    o->width = w, o->height = h;
    break;
  }
  case 'i':
    if (cli_parse_int(cmd, "--first-identity", optarg, 0, 1 << 30, &o->first_identity))
      return CLI_USAGE;
    break;
  case 'C':
    if (!strcmp(optarg, "train"))
      o->crops = 1;
    else if (!strcmp(optarg, "test"))
      o->crops = 2;
    else
      return cli_usage_error(cmd, "--crops expects train or test, got '%s'", optarg);
    break;
  default: return SYNTH_NOT_OWN;
  }
  return CLI_OK;
}

int cmd_synth_scene(int argc, char **argv) {
  static const struct option options[] = {
      SYNTH_SHARED_OPTIONS,
      {"scene", no_argument, 0, 'S'},
      {"people", required_argument, 0, 'n'},
      {"queries", required_argument, 0, 'q'},
      {"seconds", required_argument, 0, 's'},
      {"fps", required_argument, 0, 'f'},
      {"size", required_argument, 0, 'z'},
      {"first-identity", required_argument, 0, 'i'},
      {"crops", required_argument, 0, 'C'},
      {0, 0, 0, 0},
  };
  const char *cmd = "synth --scene";
  synth_scene_options o = {.people = 10,
                           .queries = 4,
                           .seconds = 30,
                           .fps = 10,
                           .width = 640,
                           .height = 360,
                           .first_identity = 100000};
  synth_shared_args shared;
  synth_shared_init(&shared, 2, 8);
  int rc = synth_parse_options(cmd, help, argc, argv, options, scene_option, &o, &shared);
  if (rc >= 0) return rc;
  o.output = shared.output, o.cameras = shared.cameras, o.threads = shared.threads;
  o.seed = shared.seed;
  synth_scene_stats s;
  reid_status st = synth_scene_generate(&o, &s);
  if (st != REID_OK) return cli_library_error(cmd, st);
  printf("%s: %d cameras x %d frames (%s), %d people (%d seen by two cameras or more), "
         "%d ground-truth boxes, tracker: %d boxes in %d tracks, %d query photos\n",
         o.output, o.cameras, s.frames, s.codec ? s.codec : "-", o.people, s.people_seen_twice,
         s.gt_boxes, s.tracker_boxes, s.tracker_tracks, s.queries);
  return CLI_OK;
}
