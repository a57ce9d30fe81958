/* Internal: the procedural re-ID data generator behind `reid-train synth`.
 *
 * An identity is a rendered person (head, torso, arms, legs; skin, hair, clothing colours and
 * patterns, sleeves, trousers/shorts/skirt, hat, backpack or shoulder bag; height, build, head
 * and leg proportions) or vehicle (sedan, SUV, van, pickup, bus; body and trim colour, windows,
 * wheels, stripes, roof rack, sunroof, spoiler, two-tone roof). Every fourth identity copies
 * the previous one and changes exactly one pattern or accessory (the hard cases).
 *
 * A camera has a colour cast, brightness/contrast/gamma, a background, blur, noise, a typical
 * subject scale and placement, preferred viewpoints and an occlusion rate. A clip (tracklet)
 * is one identity seen by one camera from one viewpoint over consecutive frames: walking
 * phase (people) or approach (vehicles), drift, detector-like box jitter, maybe an occluder.
 *
 * Everything is a function of (seed, identity index, camera index, clip index): the same
 * seed gives the same pixels, in any order and on any number of threads. */
#pragma once

#include <stdint.h>

#include "dataset.h"
#include "image.h"
#include "rng.h"

typedef struct synth_rgb {
  float r, g, b; /* linear-ish 0..1 */
} synth_rgb;

/* ------------------------------------------------------------ canvas and shapes (synth_draw.c) */

typedef enum synth_pattern {
  SYNTH_PLAIN,
  SYNTH_HSTRIPES,
  SYNTH_VSTRIPES,
  SYNTH_CHECK,
  SYNTH_LOGO, /* a block of the second colour on the chest (front only) */
  SYNTH_TWO_TONE,
  SYNTH_N_PATTERNS
} synth_pattern;

/* A fill: colour `a`, patterned with `b` in the frame (u, v) = ((x - x0) / sx, (y - y0) / sy). */
typedef struct synth_paint {
  synth_rgb a, b;
  synth_pattern pattern;
  float period; /* stripe/check period in u/v units */
  float x0, y0, sx, sy;
  int front; /* the logo shows only on the front */
} synth_paint;

static inline synth_paint synth_solid(synth_rgb c) {
  synth_paint p = {c, c, SYNTH_PLAIN, 1, 0, 0, 1, 1, 0};
  return p;
}

typedef struct synth_canvas {
  int w, h;
  float *rgb; /* [h][w][3] */
} synth_canvas;

void synth_capsule(synth_canvas *c, float ax, float ay, float bx, float by, float r,
                   const synth_paint *p);
void synth_ellipse(synth_canvas *c, float cx, float cy, float rx, float ry, const synth_paint *p);
/* Axis-aligned box [x0, x1] x [y0, y1] with rounded corners of radius r. */
void synth_box(synth_canvas *c, float x0, float y0, float x1, float y1, float r,
               const synth_paint *p);
/* Convex polygon, vertices in order (either winding), n <= 8. */
void synth_polygon(synth_canvas *c, const float *xy, int n, const synth_paint *p);

/* ------------------------------------------------------------ identities */

typedef enum synth_kind { SYNTH_PERSON, SYNTH_VEHICLE } synth_kind;
typedef enum synth_view { SYNTH_FRONT, SYNTH_BACK, SYNTH_LEFT, SYNTH_RIGHT } synth_view;

typedef struct synth_person {
  synth_rgb skin, hair, upper, upper2, lower, shoes, bag, hat;
  synth_pattern upper_pattern;
  int long_sleeves, lower_type;              /* lower: 0 trousers, 1 shorts, 2 skirt */
  int long_hair, hat_on, bag_type, bag_side; /* bag: 0 none, 1 backpack, 2 shoulder bag; side +-1 */
  float height_k, build, head_k, leg_k, stripe_period;
} synth_person;

typedef struct synth_vehicle {
  int type; /* 0 sedan, 1 SUV, 2 van, 3 pickup, 4 bus */
  synth_rgb body, trim, window, rim;
  int stripe, roof_rack, sunroof, spoiler, two_tone;
  float length_k, height_k;
} synth_vehicle;

typedef struct synth_identity {
  synth_kind kind;
  synth_person person;
  synth_vehicle vehicle;
} synth_identity;

/* Identity `index` of a generator seeded `seed` (hard cases: index % 4 == 3 derives from
 * index - 1 with one attribute changed). */
void synth_identity_make(synth_kind kind, uint64_t seed, int index, synth_identity *out);

/* ------------------------------------------------------------ cameras and clips */

typedef struct synth_camera {
  synth_rgb gain; /* colour cast */
  float brightness, contrast, gamma;
  synth_rgb wall, wall2, ground;
  float horizon; /* ground starts at this fraction of the height */
  int bg_style;  /* 0 pillars, 1 windows, 2 foliage, 3 street lines */
  float bg_period;
  float blur, noise, scale, occlusion_p, y_bias;
  float view_p[4]; /* front, back, left, right */
} synth_camera;

void synth_camera_make(uint64_t seed, int index, synth_camera *out);
/* Directions of a colour cast (per unit of amount): warm, cool, green, magenta. */
extern const synth_rgb synth_cast_directions[4];

/* A domain (synth_domain.c): palette, background, lighting and colour cast shared by all
 * the cameras and identities of one dataset. Index 0 is the identity (no change). */
typedef struct synth_domain {
  int index;
  float hue, saturation, value;      /* clothing: hue rotation (rad), saturation, value factors */
  int bg_style;                      /* every camera's background style (-1: each its own) */
  synth_rgb bg_tint, cast;           /* wall/ground tint; colour gain of every camera */
  float brightness, contrast, gamma; /* factors on each camera's */
  float noise, blur;                 /* added to each camera's */
} synth_domain;

void synth_domain_make(int index, synth_domain *d);
void synth_domain_camera(const synth_domain *d, synth_camera *c);
void synth_domain_identity(const synth_domain *d, synth_identity *id);

/* Per clip: viewpoint, motion and occluder, drawn once; per frame: pose and box jitter. */
typedef struct synth_clip_look {
  synth_view view;
  float phase0, phase_step;   /* walking phase (rad) */
  float drift_x, drift_scale; /* per frame, fractions of the box */
  float bg_x, bg_y;           /* background offset */
  float light;                /* brightness factor of this clip */
  int occluder;               /* 0 none, 1 bottom, 2 left, 3 right */
  float occ_extent;
  synth_rgb occ_colour;
} synth_clip_look;

void synth_clip_make(const synth_camera *cam, synth_kind kind, reid_rng *rng, synth_clip_look *out);

/* Renders frame t of a clip into img (allocated by the caller, RGB24). rng supplies the box
 * jitter and the sensor noise, so call it in frame order from the clip's own stream.
 * canvas: scratch of img->width * img->height * 3 floats (blur needs twice that). */
void synth_render(const synth_identity *id, const synth_camera *cam, const synth_clip_look *look,
                  int t, reid_rng *rng, float *canvas, reid_image *img);

/* The camera's background into canvas [H][W][3]: pixel (x, y) shows the background at
 * ((x - shift_x) / H + ox, (y - shift_y) / H + oy), in units of the image height. */
void synth_background_fill(const synth_camera *cam, float *canvas, int W, int H, float shift_x,
                           float shift_y, float ox, float oy);
/* The sensor, canvas -> img (8-bit RGB): blur (canvas needs twice W * H * 3 floats), colour
 * cast, brightness * light * (1 + light_slope * (x / W - 0.5)), contrast, gamma, noise from
 * rng (none when rng is NULL), quantisation. */
void synth_sensor(const synth_camera *cam, float light, float light_slope, float *canvas,
                  reid_rng *rng, reid_image *img);

/* Drawing the subject in the box (x, y offsets and scale already applied). */
typedef struct synth_place {
  float cx, cy; /* subject centre in pixels */
  float size;   /* person: height in pixels; vehicle: the box width it fills */
  float phase;
  synth_view view;
} synth_place;
void synth_draw_person(synth_canvas *c, const synth_person *p, const synth_place *at);
void synth_draw_vehicle(synth_canvas *c, const synth_vehicle *v, const synth_place *at);

/* Independent RNG stream per (seed, purpose, index). */
void synth_stream(reid_rng *r, uint64_t seed, uint64_t purpose, uint64_t index);

/* ------------------------------------------------------------ datasets (synth_write.c) */

typedef struct synth_options {
  reid_layout layout;
  synth_kind kind;
  const char *output;
  int identities, test_identities, cameras, tracklets, frames, height, width;
  int distractors, junk, quality, threads;
  uint64_t seed;
  int domain; /* synth_domain index, 0: none */
} synth_options;

typedef struct synth_stats {
  int images, train_samples, query_samples, gallery_samples;
} synth_stats;

reid_status synth_generate(const synth_options *o, synth_stats *stats);

/* Makes `out` a new empty folder (with its parents); an existing non-empty folder or a file
 * there is an error (never mix two datasets). */
reid_status synth_prepare_output(const char *out);
/* mkdir -p of the folder part of root/rel. */
reid_status synth_make_dirs(const char *root, const char *rel);

/* ------------------------------------------------------------ multi-camera scenes (synth_scene*.c)
 */

typedef struct synth_scene_options {
  const char *output;
  int cameras, people, queries, seconds, fps, width, height, threads;
  int first_identity; /* appearance index of person 1 (training datasets use 0 .. N-1) */
  uint64_t seed;
  int crops; /* also write DIR/crops/ in the DukeMTMC-VideoReID layout: 0 no, 1 train, 2 test */
} synth_scene_options;

typedef struct synth_scene_stats {
  int frames, gt_boxes, tracker_boxes, tracker_tracks, queries, people_seen_twice;
  const char *codec;
} synth_scene_stats;

reid_status synth_scene_generate(const synth_scene_options *o, synth_scene_stats *stats);

/* One person's ground truth in one frame: the tight box of its rendered pixels, its pixel
 * count, and the fraction of them not hidden by nearer people. */
typedef struct synth_scene_box {
  int x0, y0, x1, y1; /* pixels [x0, x1) x [y0, y1) */
  int pixels;
  float visibility;
} synth_scene_box;

typedef struct synth_scene synth_scene;
/* The plan of a scene (people, itineraries, cameras), without rendering. */
reid_status synth_scene_plan(const synth_scene_options *o, synth_scene **out);
void synth_scene_free(synth_scene *s);
int synth_scene_people(const synth_scene *s);
/* Renders frame t (0-based) of camera c into img (width x height of the options). people:
 * include the people (0: the empty background); noise: the sensor noise. boxes[people] (may be
 * NULL) receives each person's ground truth, pixels 0 when not in view. */
reid_status synth_scene_render(const synth_scene *s, int c, int t, int people, int noise,
                               reid_image *img, synth_scene_box *boxes);
