/* reid-train synth: a procedural re-ID dataset in a public layout. */
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "synth.h"
#include "synth_cli.h"

static const char *const help =
    "usage: reid-train synth --layout mars|duke|market|veri --output DIR [options]\n"
    "       reid-train synth --scene --output DIR [options]   (multi-camera videos: --scene "
    "--help)\n"
    "\n"
    "Renders people (or vehicles) seen by several cameras and writes them as JPEGs in the\n"
    "layout of MARS, DukeMTMC-VideoReID, Market-1501 or VeRi-776, index files included\n"
    "(MARS info/*.txt and MATLAB .mat, VeRi name_*.txt and test_track.txt), so the dataset\n"
    "loaders read it as they read the real datasets. The same --seed gives identical files.\n"
    "\n"
    "Identities 1..N; the last --test-identities of them form the test side. Tracklet k of\n"
    "identity i is seen by camera (i + k) mod C. A tracklet is F consecutive frames (a walking\n"
    "person or an approaching vehicle, with detector-like box jitter); in the image layouts\n"
    "(market, veri) each of its frames is one image. Every fourth identity copies the previous\n"
    "one except for one clothing pattern or accessory (hard cases). Query/gallery split:\n"
    "  mars    query_IDX = each test identity's first tracklet in each of its cameras;\n"
    "          gallery = all test tracklets (the standard MARS protocol: the query itself is\n"
    "          same identity + same camera, i.e. junk)\n"
    "  duke    query/ = each test identity's first tracklet, gallery/ = its other tracklets\n"
    "  market  query/ = each test identity's first image in each camera, bounding_box_test/ =\n"
    "          the other test images\n"
    "  veri    image_query/ as market; image_test/ keeps every test image (queries included,\n"
    "          as in VeRi-776); test_track.txt lists each test tracklet\n"
    "\n"
    "  --layout L               mars, duke, market or veri (required)\n"
    "  --output DIR             a new or empty folder (required)\n"
    "  --identities N           identities (default 20)\n"
    "  --test-identities N      of them on the test side (default N/2)\n"
    "  --cameras C              cameras (default 4; at most 9, veri 999)\n"
    "  --tracklets-per-identity K  tracklets of each identity (default 4, at least 2)\n"
    "  --frames F               frames per tracklet (default 8)\n"
    "  --size HxW               image size (default 128x64; 128x128 for vehicles)\n"
    "  --kind person|vehicle    what to render (default: vehicle for veri, else person)\n"
    "  --distractors N          gallery-only tracklets of other identities (pid 0000 for\n"
    "                           mars/market, new ids for duke/veri; default 0)\n"
    "  --junk N                 junk tracklets, pid -1 (mars, market; default 0)\n"
    "  --domain N               render as domain N (default 0: none): its own clothing\n"
    "                           palette (hue, saturation, value), background style and\n"
    "                           tint, lighting (brightness, contrast, gamma, noise, blur)\n"
    "                           and a colour cast shared by all its cameras; N alone sets\n"
    "                           them, so datasets of one domain look alike and datasets of\n"
    "                           different domains do not (inter-domain task streams)\n"
    "  --quality Q              JPEG quality 1..100 (default 90)\n"
    "  --seed S                 random seed (default 1)\n"
    "  --threads N              rendering threads (default: all cores)\n"
    "  -h, --help               this text\n";

void synth_shared_init(synth_shared_args *a, int cameras, int max_cameras) {
  *a = (synth_shared_args){
      .cameras = cameras, .max_cameras = max_cameras, .threads = omp_get_max_threads(), .seed = 1};
}

/* --output, --cameras, --seed, --threads (see synth_own_option for the return value). */
static int shared_option(const char *cmd, int opt, char **argv, synth_shared_args *a) {
  unsigned long long seed;
  switch (opt) {
  case 'o': a->output = optarg; break;
  case 'c':
    if (cli_parse_int(cmd, "--cameras", optarg, 2, a->max_cameras, &a->cameras)) return CLI_USAGE;
    break;
  case 'r':
    if (cli_parse_seed(cmd, optarg, &seed)) return CLI_USAGE;
    a->seed = seed;
    break;
  case 't':
    if (cli_parse_int(cmd, "--threads", optarg, 1, 256, &a->threads)) return CLI_USAGE;
    break;
  default: return cli_bad_option(cmd, argv);
  }
  return CLI_OK;
}

int synth_parse_options(const char *cmd, const char *help, int argc, char **argv,
                        const struct option *options, synth_own_option own, void *ctx,
                        synth_shared_args *a) {
  optind = 1;
  opterr = 0;
  int opt;
  while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
    if (opt == 'h') {
      fputs(help, stdout);
      return CLI_OK;
    }
    int rc = own(cmd, opt, ctx);
    if (rc == SYNTH_NOT_OWN) rc = shared_option(cmd, opt, argv, a);
    if (rc != CLI_OK) return rc;
  }
  if (optind < argc) return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
  if (!a->output) return cli_usage_error(cmd, "--output is required");
  return -1;
}

/* The dataset's options and what they fill. */
typedef struct dataset_args {
  synth_options o;
  int kind; /* -1: by layout */
} dataset_args;

static int dataset_option(const char *cmd, int opt, void *ctx) {
  dataset_args *x = ctx;
  switch (opt) {
  case 'l':
    if (reid_layout_parse(optarg, &x->o.layout) != REID_OK || x->o.layout == REID_LAYOUT_AUTO ||
        x->o.layout == REID_LAYOUT_COLLECTED)
      return cli_usage_error(cmd, "--layout expects mars, duke, market or veri, got '%s'", optarg);
    break;
  case 'n':
    if (cli_parse_int(cmd, "--identities", optarg, 2, 9000, &x->o.identities)) return CLI_USAGE;
    break;
  case 'e':
    if (cli_parse_int(cmd, "--test-identities", optarg, 1, 8999, &x->o.test_identities))
      return CLI_USAGE;
    break;
  case 'k':
    if (cli_parse_int(cmd, "--tracklets-per-identity", optarg, 2, 999, &x->o.tracklets))
      return CLI_USAGE;
    break;
  case 'f':
    if (cli_parse_int(cmd, "--frames", optarg, 1, 999, &x->o.frames)) return CLI_USAGE;
    break;
  case 's':
    if (cli_parse_size(cmd, "--size", optarg, &x->o.height, &x->o.width)) return CLI_USAGE;
    break;
  case 'v':
    if (!strcmp(optarg, "person"))
      x->kind = SYNTH_PERSON;
    else if (!strcmp(optarg, "vehicle"))
      x->kind = SYNTH_VEHICLE;
    else
      return cli_usage_error(cmd, "--kind expects person or vehicle, got '%s'", optarg);
    break;
  case 'd':
    if (cli_parse_int(cmd, "--distractors", optarg, 0, 9000, &x->o.distractors)) return CLI_USAGE;
    break;
  case 'j':
    if (cli_parse_int(cmd, "--junk", optarg, 0, 9000, &x->o.junk)) return CLI_USAGE;
    break;
  case 'q':
    if (cli_parse_int(cmd, "--quality", optarg, 1, 100, &x->o.quality)) return CLI_USAGE;
    break;
  case 'D':
    if (cli_parse_int(cmd, "--domain", optarg, 0, 1000000, &x->o.domain)) return CLI_USAGE;
    break;
  default: return SYNTH_NOT_OWN;
  }
  return CLI_OK;
}

int cmd_synth(int argc, char **argv) {
  static const struct option options[] = {
      SYNTH_SHARED_OPTIONS,
      {"layout", required_argument, 0, 'l'},
      {"identities", required_argument, 0, 'n'},
      {"test-identities", required_argument, 0, 'e'},
      {"tracklets-per-identity", required_argument, 0, 'k'},
      {"frames", required_argument, 0, 'f'},
      {"size", required_argument, 0, 's'},
      {"kind", required_argument, 0, 'v'},
      {"distractors", required_argument, 0, 'd'},
      {"junk", required_argument, 0, 'j'},
      {"quality", required_argument, 0, 'q'},
      {"domain", required_argument, 0, 'D'},
      {0, 0, 0, 0},
  };
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--scene")) return cmd_synth_scene(argc, argv);
  const char *cmd = "synth";
  dataset_args x = {.o = {.layout = REID_LAYOUT_AUTO,
                          .identities = 20,
                          .test_identities = -1,
                          .tracklets = 4,
                          .frames = 8,
                          .quality = 90},
                    .kind = -1};
  synth_shared_args shared;
  synth_shared_init(&shared, 4, 999);
  int rc = synth_parse_options(cmd, help, argc, argv, options, dataset_option, &x, &shared);
  if (rc >= 0) return rc;
  synth_options o = x.o;
  o.output = shared.output, o.cameras = shared.cameras, o.threads = shared.threads;
  o.seed = shared.seed;
  if (o.layout == REID_LAYOUT_AUTO) return cli_usage_error(cmd, "--layout is required");
  o.kind = x.kind >= 0                    ? (synth_kind)x.kind
           : o.layout == REID_LAYOUT_VERI ? SYNTH_VEHICLE
                                          : SYNTH_PERSON;
  if (o.height == 0) o.height = 128, o.width = o.kind == SYNTH_VEHICLE ? 128 : 64;
  if (o.test_identities < 0) o.test_identities = o.identities / 2;
  if (o.test_identities >= o.identities)
    return cli_usage_error(cmd, "--test-identities %d leaves no train identity of %d",
                           o.test_identities, o.identities);
  if (o.cameras > 9 && o.layout != REID_LAYOUT_VERI)
    return cli_usage_error(cmd, "--cameras %d: the %s layout names cameras with one digit (2..9)",
                           o.cameras, reid_layout_name(o.layout));
  if (o.junk > 0 && o.layout != REID_LAYOUT_MARS && o.layout != REID_LAYOUT_MARKET)
    return cli_usage_error(cmd, "--junk: only the mars and market layouts have junk (pid -1)");
  if (o.identities + o.distractors > 9999)
    return cli_usage_error(cmd, "--identities + --distractors must stay below 10000");
  synth_stats s;
  reid_status st = synth_generate(&o, &s);
  if (st != REID_OK) return cli_library_error(cmd, st);
  printf("%s: %s layout, %d images; train %d, query %d, gallery %d %s\n", o.output,
         reid_layout_name(o.layout), s.images, s.train_samples, s.query_samples, s.gallery_samples,
         o.layout == REID_LAYOUT_MARS || o.layout == REID_LAYOUT_DUKE ? "tracklets" : "images");
  return CLI_OK;
}
