/* The DwoPP losses (training/continual/dmml.h) against naive implementations written
 * here from papers.md §2, and their gradients against central finite differences:
 * DMML with hard mining and margin, the feature-norm penalty, and the prototype
 * distillation with (DwPP) and without (DwoPP) the positive pairs, its clamps included. */
#include "dmml.h"
#include "test_util.h"

typedef double (*gc_loss_fn)(void *ctx);
int gradcheck(const char *what, float *p, size_t n, const float *analytic, gc_loss_fn loss,
              void *ctx, float h, double atol, double rtol);

enum { C = 4, S = 3, Q = 2, D = 5, N = C * (S + Q) };

static double sq(const float *a, const float *b) {
  double s = 0;
  for (int k = 0; k < D; k++) s += ((double)a[k] - b[k]) * ((double)a[k] - b[k]);
  return s;
}
static const float *row(const float *x, int c, int k) {
  return x + (c * (S + Q) + k) * D;
}

/* DMML from the formula: a C x C matrix per query, -log softmax of its own column over
 * the class itself and its negatives (mask[i][j]; NULL: all classes) */
static double naive_dmml_masked(const float *x, double m, const unsigned char *mask) {
  double total = 0;
  for (int i = 0; i < C; i++)
    for (int q = 0; q < Q; q++) {
      double Dm[C], z = 0;
      for (int j = 0; j < C; j++) {
        double mx = -1, mn = 1e300;
        for (int s = 0; s < S; s++) {
          double v = sq(row(x, i, S + q), row(x, j, s));
          mx = v > mx ? v : mx;
          mn = v < mn ? v : mn;
        }
        Dm[j] = j == i ? mx : (mn - m > 0 ? mn - m : 0);
      }
      for (int j = 0; j < C; j++)
        if (j == i || !mask || mask[i * C + j]) z += exp(-Dm[j]);
      total += -log(exp(-Dm[i]) / z);
    }
  return total / (C * Q);
}
static double naive_dmml(const float *x, double m) {
  return naive_dmml_masked(x, m, NULL);
}

/* prototype distillation from the formula: build the logits, delete the diagonal when
 * !positive (copying the C - 1 others), softmax with T, clamp, KL(old || new) */
static double naive_kd(const float *xo, const float *xn, int positive, double T, double clamp) {
  double total = 0, po[C][D], pn[C][D];
  for (int c = 0; c < C; c++)
    for (int k = 0; k < D; k++) {
      po[c][k] = pn[c][k] = 0;
      for (int s = 0; s < S; s++)
        po[c][k] += row(xo, c, s)[k] / S, pn[c][k] += row(xn, c, s)[k] / S;
    }
  for (int i = 0; i < C; i++)
    for (int q = 0; q < Q; q++) {
      double zo[C], zn[C];
      int n = 0;
      for (int j = 0; j < C; j++) {
        if (!positive && j == i) continue;
        double a = 0, b = 0;
        for (int k = 0; k < D; k++) {
          a += pow(row(xo, i, S + q)[k] - po[j][k], 2);
          b += pow(row(xn, i, S + q)[k] - pn[j][k], 2);
        }
        zo[n] = -a / T, zn[n] = -b / T, n++;
      }
      double so = 0, sn = 0;
      for (int a = 0; a < n; a++) so += exp(zo[a]), sn += exp(zn[a]);
      for (int a = 0; a < n; a++) {
        double t = fmax(exp(zo[a]) / so, clamp), s = fmax(exp(zn[a]) / sn, clamp);
        total += t * log(t / s);
      }
    }
  return total / (C * Q);
}

static const reid_episode_shape shape = {C, S, Q, D};
static float g_old[N * D], g_new[N * D];
static int g_positive;
static float g_T, g_clamp;

static double dmml_of(void *ctx) {
  double l;
  reid_dmml_loss(ctx, &shape, 0.4f, &l, 1, NULL);
  return l;
}
/* classes 0 and 1 of different cameras, not known distinct: not each other's negatives;
 * class 3 has no negative at all */
static const unsigned char g_mask[C * C] = {0,      0, 1, 0, /**/ 0, 0, 1, 1,
                                            /**/ 1, 1, 0, 0, 0,      0, 0, 0};
static double dmml_masked_of(void *ctx) {
  double l;
  reid_dmml_loss_masked(ctx, &shape, 0.4f, g_mask, &l, 1, NULL);
  return l;
}
static double kd_of(void *ctx) {
  (void)ctx;
  double l;
  reid_proto_distill_loss(g_old, g_new, &shape, g_positive, g_T, g_clamp, &l, 1, NULL);
  return l;
}
static double norm_of(void *ctx) {
  double l;
  reid_norm_penalty(ctx, N, D, &l, 1, NULL);
  return l;
}

static void test_dmml(void) {
  test_rng r = test_rng_make(3);
  float x[N * D], dx[N * D];
  for (int trial = 0; trial < 4; trial++) {
    /* trial 0: spread (hinge active everywhere); later: tighter (some hinges at 0) */
    test_fill_uniform(&r, x, N * D, -1.0f, 1.0f);
    if (trial >= 2)
      for (int i = 0; i < N * D; i++) x[i] *= 0.25f;
    for (int i = 0; i < N * D; i++) dx[i] = 0.5f; /* gradients accumulate */
    double l;
    CHECK_OK(reid_dmml_loss(x, &shape, 0.4f, &l, 2.0f, dx));
    double want = naive_dmml(x, 0.4);
    CHECK(fabs(l - want) < 1e-7 * (1 + want), "trial %d: DMML %.12g, naive %.12g", trial, l, want);
    for (int i = 0; i < N * D; i++) dx[i] = (dx[i] - 0.5f) / 2.0f;
    CHECK(gradcheck("dmml", x, N * D, dx, dmml_of, x, 1e-3f, 1e-4, 1e-2) == 0,
          "trial %d: DMML gradient", trial);
  }
  /* hand-made: query 0 at its supports, every other class far: loss ~ 0 */
  float y[N * D];
  memset(y, 0, sizeof y);
  for (int c = 0; c < C; c++)
    for (int k = 0; k < S + Q; k++) y[(c * (S + Q) + k) * D] = 10.0f * c;
  double l;
  CHECK_OK(reid_dmml_loss(y, &shape, 0.4f, &l, 1, NULL));
  CHECK(l < 1e-12, "separated classes give DMML %g", l);
}

static void test_norm(void) {
  test_rng r = test_rng_make(4);
  float x[N * D], dx[N * D] = {0};
  test_fill_uniform(&r, x, N * D, -2.0f, 2.0f);
  double l, want = 0;
  CHECK_OK(reid_norm_penalty(x, N, D, &l, 1, dx));
  for (int i = 0; i < N * D; i++) want += (double)x[i] * x[i];
  CHECK(fabs(l - want / N) < 1e-9, "norm penalty %g, naive %g", l, want / N);
  CHECK(gradcheck("norm", x, N * D, dx, norm_of, x, 1e-3f, 1e-5, 1e-3) == 0, "norm gradient");
}

static void test_kd(void) {
  test_rng r = test_rng_make(5);
  for (int positive = 0; positive < 2; positive++)
    for (int trial = 0; trial < 3; trial++) {
      g_positive = positive;
      g_T = positive ? 10.0f : 1.0f;
      g_clamp = 1e-4f;
      float scale = trial == 2 ? 3.0f : 0.6f; /* trial 2: spread out, some P below the clamp */
      test_fill_uniform(&r, g_old, N * D, -scale, scale);
      for (int i = 0; i < N * D; i++) g_new[i] = g_old[i] + test_rng_uniform(&r, -0.3f, 0.3f);
      if (trial == 2 && !positive) g_T = 0.25f;
      float dx[N * D] = {0};
      double l;
      CHECK_OK(reid_proto_distill_loss(g_old, g_new, &shape, positive, g_T, g_clamp, &l, 1, dx));
      double want = naive_kd(g_old, g_new, positive, g_T, g_clamp);
      CHECK(fabs(l - want) < 1e-7 * (1 + want), "%s trial %d: KD %.12g, naive %.12g",
            positive ? "dwpp" : "dwopp", trial, l, want);
      CHECK(gradcheck(positive ? "kd dwpp" : "kd dwopp", g_new, N * D, dx, kd_of, NULL, 1e-3f, 1e-5,
                      2e-2) == 0,
            "%s trial %d: KD gradient", positive ? "dwpp" : "dwopp", trial);
    }
  /* the clamp: without it the KL of near-one-hot rows differs */
  g_positive = 0, g_T = 0.05f;
  test_rng r2 = test_rng_make(6);
  test_fill_uniform(&r2, g_old, N * D, -2, 2);
  test_fill_uniform(&r2, g_new, N * D, -2, 2);
  double clamped, raw;
  CHECK_OK(reid_proto_distill_loss(g_old, g_new, &shape, 0, g_T, 1e-4f, &clamped, 1, NULL));
  CHECK_OK(reid_proto_distill_loss(g_old, g_new, &shape, 0, g_T, 0, &raw, 1, NULL));
  CHECK(fabs(clamped - naive_kd(g_old, g_new, 0, g_T, 1e-4)) < 1e-7 * (1 + clamped),
        "clamped KD %g vs naive", clamped);
  CHECK(clamped < raw, "clamping at 1e-4 bounds the KL (%g) below the unclamped one (%g)", clamped,
        raw);
  /* the diagonal: DwoPP ignores the positive pair, so moving the new model's queries
   * toward their own prototypes, and nothing else, changes DwPP's loss but not... */
  test_fill_uniform(&r2, g_old, N * D, -1, 1);
  memcpy(g_new, g_old, sizeof g_new);
  double same0, same1;
  CHECK_OK(reid_proto_distill_loss(g_old, g_new, &shape, 0, 1, 1e-4f, &same0, 1, NULL));
  CHECK_OK(reid_proto_distill_loss(g_old, g_new, &shape, 1, 10, 1e-4f, &same1, 1, NULL));
  CHECK(fabs(same0) < 1e-12 && fabs(same1) < 1e-12, "identical models: KD %g / %g", same0, same1);
  /* ... the 31 negatives' softmax: a query's distance to its own prototype is not in it */
  float dx0[N * D] = {0};
  CHECK_OK(reid_proto_distill_loss(g_old, g_new, &shape, 0, 1, 1e-4f, &same0, 1, dx0));
  double gmax = 0;
  for (int i = 0; i < N * D; i++) gmax = fmax(gmax, fabs(dx0[i]));
  CHECK(gmax < 1e-9, "identical models: zero gradient (max %g)", gmax);
}

/* The masked DMML: against the naive formula and finite differences; an all-ones mask is
 * the plain loss; a masked pair passes no gradient between the two classes. */
static void test_dmml_masked(void) {
  test_rng r = test_rng_make(5);
  float x[N * D], dx[N * D], dx2[N * D];
  unsigned char ones[C * C];
  memset(ones, 1, sizeof ones);
  for (int trial = 0; trial < 3; trial++) {
    test_fill_uniform(&r, x, N * D, -1.0f, 1.0f);
    if (trial == 2)
      for (int i = 0; i < N * D; i++) x[i] *= 0.25f;
    memset(dx, 0, sizeof dx);
    double l, plain, all;
    CHECK_OK(reid_dmml_loss_masked(x, &shape, 0.4f, g_mask, &l, 1, dx));
    double want = naive_dmml_masked(x, 0.4, g_mask);
    CHECK(fabs(l - want) < 1e-7 * (1 + want), "trial %d: masked DMML %.12g, naive %.12g", trial, l,
          want);
    CHECK(gradcheck("dmml masked", x, N * D, dx, dmml_masked_of, x, 1e-3f, 1e-4, 1e-2) == 0,
          "trial %d: masked DMML gradient", trial);
    CHECK_OK(reid_dmml_loss(x, &shape, 0.4f, &plain, 1, NULL));
    CHECK_OK(reid_dmml_loss_masked(x, &shape, 0.4f, ones, &all, 1, NULL));
    CHECK(all == plain, "trial %d: all-ones mask %.17g, plain %.17g", trial, all, plain);
  }
  /* only class 1's rows move: class 0's queries must not feel it (1 is not their negative) */
  test_fill_uniform(&r, x, N * D, -1.0f, 1.0f);
  memset(dx, 0, sizeof dx);
  memset(dx2, 0, sizeof dx2);
  double l0, l1;
  CHECK_OK(reid_dmml_loss_masked(x, &shape, 0.4f, g_mask, &l0, 1, dx));
  for (int k = 0; k < S + Q; k++)
    for (int d = 0; d < D; d++) x[(1 * (S + Q) + k) * D + d] = x[(0 * (S + Q) + k) * D + d];
  CHECK_OK(reid_dmml_loss_masked(x, &shape, 0.4f, g_mask, &l1, 1, dx2));
  for (int q = 0; q < Q; q++)
    for (int d = 0; d < D; d++) {
      int i = (0 * (S + Q) + S + q) * D + d;
      CHECK(fabsf(dx[i] - dx2[i]) < 1e-6f, "class 0 query %d moved by class 1 (%g vs %g)", q, dx[i],
            dx2[i]);
    }
}

static void test_errors(void) {
  float x[N * D] = {0};
  double l;
  reid_episode_shape bad = {1, S, Q, D};
  CHECK(reid_dmml_loss(x, &bad, 0.4f, &l, 1, NULL) == REID_EINVAL, "C = 1 refused");
  CHECK(reid_proto_distill_loss(x, x, &shape, 0, 0, 1e-4f, &l, 1, NULL) == REID_EINVAL,
        "T = 0 refused");
  CHECK(reid_norm_penalty(x, 0, D, &l, 1, NULL) == REID_EINVAL, "no rows refused");
}

int main(void) {
  test_dmml();
  test_dmml_masked();
  test_norm();
  test_kd();
  test_errors();
  return test_finish("test_dmml");
}
