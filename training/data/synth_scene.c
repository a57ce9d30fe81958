/* Multi-camera scenes: the people of `reid-train synth` walking through the views of several
 * cameras, with pixel-exact ground truth.
 *
 * World: each camera looks at a floor; a point on it is (x, d): x across the view (0 .. 1 is
 * the image width; outside is off screen), d the depth (0 at the far end of the floor, 1 at
 * the bottom edge of the image). A person at (x, d) stands with the feet at
 *   foot_y = far_y + d (near_y - far_y),  height = h_far + d (h_near - h_far)  (pixels).
 * Two kinds of camera: "lateral" (odd cameras 1, 3): people cross the view from one side to
 * the other at some depth (side views, crossing and occluding each other); "depth" (even
 * cameras): people come from a door at the far end towards the camera and leave under it, or
 * walk away from it (front and back views, scale changing fourfold).
 *
 * A person's itinerary is one or two visits: a walk through one camera, then (most people) a
 * walk through another camera a few seconds later. Everything is a function of the seed.
 *
 * Ground truth: every person is also drawn in white on a black mask; the pixels it touches
 * at all (coverage > 0.01) give its tight box; of the pixels it mostly covers (> 0.5), the
 * share still its own after the nearer people are drawn is its visibility. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "synth.h"

typedef struct scene_visit {
  int camera, t0, t1; /* frames [t0, t1) */
  float x0, d0, x1, d1;
} scene_visit;

typedef struct scene_person {
  synth_identity id;
  scene_visit visit[2];
  int visits;
  float phase0;
} scene_person;

typedef struct scene_camera {
  synth_camera cam;
  int lateral;
  float far_y, near_y, h_far, h_near; /* pixels */
  float light_slope, bg_x;
} scene_camera;

struct synth_scene {
  synth_scene_options o;
  int frames;
  scene_person *people;
  scene_camera *cams;
};

static float range(reid_rng *r, float lo, float hi) {
  return lo + (hi - lo) * reid_rng_uniform(r);
}

int synth_scene_people(const synth_scene *s) {
  return s->o.people;
}

void synth_scene_free(synth_scene *s) {
  if (!s) return;
  free(s->people);
  free(s->cams);
  free(s);
}

static void camera_make(const synth_scene_options *o, int c, scene_camera *k) {
  synth_camera_make(o->seed ^ 0x5CE7Eull, c, &k->cam);
  reid_rng r;
  synth_stream(&r, o->seed, 31, (uint64_t)c);
  const float H = (float)o->height;
  k->lateral = c % 2 == 0;
  k->cam.blur *= 0.4f; /* the clip cameras blur 128-pixel crops; these frames are larger */
  k->cam.horizon = range(&r, 0.3f, 0.45f);
  k->far_y = (k->cam.horizon + 0.08f) * H;
  k->near_y = 0.97f * H;
  if (k->lateral) { /* close: people fill half to most of the height */
    k->h_far = range(&r, 0.38f, 0.45f) * H;
    k->h_near = range(&r, 0.7f, 0.8f) * H;
  } else { /* a longer view: small at the door, large under the camera */
    k->h_far = range(&r, 0.16f, 0.22f) * H;
    k->h_near = range(&r, 0.65f, 0.75f) * H;
  }
  k->light_slope = range(&r, -0.5f, 0.5f);
  k->bg_x = range(&r, 0, 10);
}

/* A walk through camera c starting at frame t0; returns its length in frames. */
static int visit_make(const synth_scene_options *o, const scene_camera *k, reid_rng *r, int t0,
                      scene_visit *v) {
  float seconds = range(r, 5, 8);
  int dir = reid_rng_uniform(r) < 0.5f ? 1 : -1;
  if (k->lateral) {
    float d = range(r, 0.05f, 0.95f);
    v->x0 = dir > 0 ? -0.12f : 1.12f;
    v->x1 = dir > 0 ? 1.12f : -0.12f;
    v->d0 = d;
    v->d1 = d + range(r, -0.1f, 0.1f);
  } else { /* from the door towards the camera (front view), or away from it (back view) */
    float x = range(r, 0.25f, 0.75f), drift = range(r, -0.2f, 0.2f);
    float dfar = -0.05f, dnear = 1.45f;
    v->x0 = dir > 0 ? x : x + drift;
    v->x1 = dir > 0 ? x + drift : x;
    v->d0 = dir > 0 ? dfar : dnear;
    v->d1 = dir > 0 ? dnear : dfar;
  }
  v->t0 = t0;
  v->t1 = t0 + (int)lrintf(seconds * o->fps);
  return v->t1 - v->t0;
}

reid_status synth_scene_plan(const synth_scene_options *o, synth_scene **out) {
  *out = NULL;
  if (o->cameras < 2 || o->cameras > 8 || o->people < 1 || o->fps < 1 || o->seconds < 4 ||
      o->width < 64 || o->height < 64 || o->width % 2 || o->height % 2)
    return reid_fail(REID_EINVAL,
                     "synth --scene: needs 2..8 cameras, >= 1 person, >= 4 seconds, an even "
                     "size of at least 64x64");
  synth_scene *s = calloc(1, sizeof *s);
  if (s) s->people = calloc((size_t)o->people, sizeof *s->people);
  if (s) s->cams = calloc((size_t)o->cameras, sizeof *s->cams);
  if (!s || !s->people || !s->cams) {
    synth_scene_free(s);
    return reid_fail(REID_ENOMEM, "synth --scene: out of memory");
  }
  s->o = *o;
  s->frames = o->seconds * o->fps;
  for (int c = 0; c < o->cameras; c++) camera_make(o, c, &s->cams[c]);
  for (int i = 0; i < o->people; i++) {
    scene_person *p = &s->people[i];
    synth_identity_make(SYNTH_PERSON, o->seed, o->first_identity + i, &p->id);
    reid_rng r;
    synth_stream(&r, o->seed, 32, (uint64_t)i);
    p->phase0 = range(&r, 0, 6.2831853f);
    /* most people walk through two cameras (the second one, 1..4 s later); the first third
     * of them surely, so that the watchlist has someone to find twice */
    p->visits = i < (o->people + 2) / 3 || reid_rng_uniform(&r) < 0.6f ? 2 : 1;
    int c0 = (int)reid_rng_below(&r, (uint32_t)o->cameras);
    int c1 = (c0 + 1 + (int)reid_rng_below(&r, (uint32_t)o->cameras - 1)) % o->cameras;
    scene_visit a, b;
    int len_a = visit_make(o, &s->cams[c0], &r, 0, &a);
    int gap = (int)lrintf(range(&r, 1, 4) * o->fps);
    int len_b = visit_make(o, &s->cams[c1], &r, 0, &b);
    int need = len_a + (p->visits == 2 ? gap + len_b : 0);
    int slack = s->frames - need;
    if (slack < 0) p->visits = 1, slack = s->frames - len_a; /* too short for two walks */
    if (slack < 0) slack = 0;
    int start = (int)reid_rng_below(&r, (uint32_t)slack + 1);
    a.camera = c0, b.camera = c1;
    a.t1 = start + len_a, a.t0 = start;
    b.t0 = a.t1 + gap, b.t1 = b.t0 + len_b;
    p->visit[0] = a;
    p->visit[1] = b;
  }
  *out = s;
  return REID_OK;
}

/* Where person p stands in camera c at frame t: 0 when not walking there. */
static int place_at(const synth_scene *s, const scene_person *p, int c, int t, synth_place *at) {
  for (int v = 0; v < p->visits; v++) {
    const scene_visit *w = &p->visit[v];
    if (w->camera != c || t < w->t0 || t >= w->t1) continue;
    const scene_camera *k = &s->cams[c];
    float span = (float)(w->t1 - w->t0 - 1), u = span > 0 ? (t - w->t0) / span : 0;
    float x = w->x0 + u * (w->x1 - w->x0), d = w->d0 + u * (w->d1 - w->d0);
    float foot = k->far_y + d * (k->near_y - k->far_y);
    float h = k->h_far + d * (k->h_near - k->h_far);
    if (h < 4) return 0;
    at->size = h;
    at->cx = x * (float)s->o.width;
    at->cy = foot - 0.5f * h;
    /* about one stride a second: the phase advances with the distance walked */
    at->phase = p->phase0 + 0.6f * (10.0f / (float)s->o.fps) * (float)(t - w->t0);
    if (k->lateral)
      at->view = w->x1 > w->x0 ? SYNTH_RIGHT : SYNTH_LEFT;
    else
      at->view = w->d1 > w->d0 ? SYNTH_FRONT : SYNTH_BACK;
    return 1;
  }
  return 0;
}

typedef struct drawn {
  int person;
  float foot;
  synth_place at;
} drawn;

static int by_depth(const void *a, const void *b) {
  const drawn *x = a, *y = b;
  if (x->foot != y->foot) return x->foot < y->foot ? -1 : 1; /* far (higher up) first */
  return x->person - y->person;
}

static synth_person white_person(const synth_person *p) {
  synth_person w = *p;
  const synth_rgb one = {1, 1, 1};
  w.skin = w.hair = w.upper = w.upper2 = w.lower = w.shoes = w.bag = w.hat = one;
  return w;
}

reid_status synth_scene_render(const synth_scene *s, int c, int t, int people, int noise,
                               reid_image *img, synth_scene_box *boxes) {
  const int W = s->o.width, H = s->o.height, N = s->o.people;
  if (c < 0 || c >= s->o.cameras || t < 0 || t >= s->frames || img->width != W || img->height != H)
    return reid_fail(REID_EINVAL, "synth --scene: no frame %d of camera %d at %dx%d", t, c,
                     img->width, img->height);
  const size_t npx = (size_t)W * H;
  float *canvas = malloc(sizeof(float) * 3 * npx * 3); /* image (x2 for the blur), mask */
  int *owner = malloc(sizeof(int) * npx);
  drawn *order = malloc(sizeof(drawn) * (size_t)N);
  if (!canvas || !owner || !order) {
    free(canvas);
    free(owner);
    free(order);
    return reid_fail(REID_ENOMEM, "synth --scene: out of memory for a %dx%d frame", W, H);
  }
  float *mask = canvas + 6 * npx;
  const scene_camera *k = &s->cams[c];
  synth_background_fill(&k->cam, canvas, W, H, 0, 0, k->bg_x, 0);
  int n = 0;
  for (int i = 0; people && i < N; i++)
    if (place_at(s, &s->people[i], c, t, &order[n].at)) {
      order[n].person = i;
      order[n].foot = order[n].at.cy + 0.5f * order[n].at.size;
      n++;
    }
  qsort(order, (size_t)n, sizeof *order, by_depth);
  if (boxes) memset(boxes, 0, sizeof *boxes * (size_t)N);
  for (size_t i = 0; i < npx; i++) owner[i] = -1;
  memset(mask, 0, sizeof(float) * 3 * npx);
  synth_canvas image = {W, H, canvas}, m = {W, H, mask};
  for (int j = 0; j < n; j++) {
    const synth_person *p = &s->people[order[j].person].id.person;
    synth_draw_person(&image, p, &order[j].at);
    synth_person w = white_person(p);
    synth_draw_person(&m, &w, &order[j].at);
    synth_scene_box b = {W, H, 0, 0, 0, 0};
    for (int y = 0; y < H; y++)
      for (int x = 0; x < W; x++) {
        float *px = mask + 3 * ((size_t)y * W + x);
        if (px[0] == 0) continue;
        if (px[0] > 0.01f) { /* any visible trace of the person is in its box */
          b.x0 = x < b.x0 ? x : b.x0, b.x1 = x + 1 > b.x1 ? x + 1 : b.x1;
          b.y0 = y < b.y0 ? y : b.y0, b.y1 = y + 1 > b.y1 ? y + 1 : b.y1;
        }
        if (px[0] > 0.5f) { /* mostly this person: counts for the visibility */
          b.pixels++;
          owner[(size_t)y * W + x] = j;
        }
        px[0] = px[1] = px[2] = 0;
      }
    if (boxes && b.x1 > b.x0) {
      if (!b.pixels) b.pixels = 1; /* a faint trace: in view, hidden or not */
      boxes[order[j].person] = b;
    }
  }
  if (boxes) {
    for (int j = 0; j < n; j++) order[j].foot = 0; /* reused: owned pixels */
    for (size_t i = 0; i < npx; i++)
      if (owner[i] >= 0) order[owner[i]].foot += 1;
    for (int j = 0; j < n; j++) {
      synth_scene_box *b = &boxes[order[j].person];
      if (b->pixels) b->visibility = order[j].foot / (float)b->pixels;
    }
  }
  reid_rng r;
  synth_stream(&r, s->o.seed, 33, (uint64_t)c * 1000003u + (uint64_t)t);
  synth_sensor(&k->cam, 1, k->light_slope, canvas, noise ? &r : NULL, img);
  free(canvas);
  free(owner);
  free(order);
  return REID_OK;
}
