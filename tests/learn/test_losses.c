/* The MDKT losses (training/learn/losses.h): each against a naive
 * implementation written here from the formulas (papers.md §1), and each
 * gradient against central finite differences of the whole chain
 * embeddings -> distances -> (mining) -> loss; batch-hard mining on a
 * hand-made distance matrix; argument errors. */
#include "losses.h"
#include "test_util.h"

typedef double (*gc_loss_fn)(void *ctx);
int gradcheck(const char *what, float *p, size_t n, const float *analytic, gc_loss_fn loss,
              void *ctx, float h, double atol, double rtol);

static reid_backend *cpu;

/* ---- naive references, in double, straight from the formulas ---- */

static double naive_dist(const float *a, const float *b, int d, int squared) {
  double s = 0;
  for (int k = 0; k < d; k++) s += ((double)a[k] - b[k]) * ((double)a[k] - b[k]);
  return squared ? s : sqrt(s + 1e-12);
}

/* batch-hard soft-margin triplet from embeddings: mean over anchors having both */
static double naive_triplet(const float *x, const int32_t *lab, int n, int d) {
  double sum = 0;
  int count = 0;
  for (int a = 0; a < n; a++) {
    double hp = -1, hn = INFINITY;
    for (int j = 0; j < n; j++) {
      double dj = naive_dist(x + a * d, x + j * d, d, 0);
      if (lab[j] == lab[a] && j != a) hp = fmax(hp, dj);
      if (lab[j] != lab[a]) hn = fmin(hn, dj);
    }
    if (hp < 0 || !isfinite(hn)) continue;
    sum += log(1 + exp(hp - hn));
    count++;
  }
  return count ? sum / count : 0;
}

static void naive_softmax(const float *z, int k, double tau, double *y) {
  double s = 0;
  for (int j = 0; j < k; j++) s += exp(z[j] / tau);
  for (int j = 0; j < k; j++) y[j] = exp(z[j] / tau) / s;
}

/* tau^2 mean_rows KL(softmax(zt/tau) || softmax(zs/tau)) */
static double naive_kd(const float *zt, const float *zs, int b, int k, double tau) {
  double yt[64], ys[64], sum = 0;
  for (int i = 0; i < b; i++) {
    naive_softmax(zt + i * k, k, tau, yt);
    naive_softmax(zs + i * k, k, tau, ys);
    for (int j = 0; j < k; j++) sum += yt[j] * log(yt[j] / ys[j]);
  }
  return tau * tau * sum / b;
}

/* (1/n^2) sum_{i<j} (Dt - Ds)^2 on squared Euclidean distances */
static double naive_pd(const float *xt, const float *xs, int n, int d) {
  double sum = 0;
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++) {
      double diff =
          naive_dist(xt + i * d, xt + j * d, d, 1) - naive_dist(xs + i * d, xs + j * d, d, 1);
      sum += diff * diff;
    }
  return sum / ((double)n * n);
}

/* sum over (a, pos[a], neg[a]) of KL(P_t || P_s), p = exp(-dap/tau) / (exp(-dap/tau) +
 * exp(-dan/tau)) */
static double naive_tcl(const float *xt, const float *xs, int n, int d, const int *pos,
                        const int *neg, double tau) {
  double sum = 0;
  for (int a = 0; a < n; a++) {
    if (pos[a] < 0 || neg[a] < 0) continue;
    double p[2];
    for (int s = 0; s < 2; s++) {
      const float *x = s ? xs : xt;
      double dap = naive_dist(x + a * d, x + pos[a] * d, d, 0);
      double dan = naive_dist(x + a * d, x + neg[a] * d, d, 0);
      p[s] = exp(-dap / tau) / (exp(-dap / tau) + exp(-dan / tau));
    }
    sum += p[0] * log(p[0] / p[1]) + (1 - p[0]) * log((1 - p[0]) / (1 - p[1]));
  }
  return sum;
}

/* ---- the library chain, as a function of the embeddings (for finite differences) ---- */

enum { N = 8, D = 5, K = 6 };

typedef struct chain {
  float xt[N * D], xs[N * D]; /* teacher / student embeddings */
  float zt[N * K], zs[N * K]; /* logits */
  int32_t labels[N];
  int pos[N], neg[N]; /* fixed triplets (TCL) */
  float tau;
  float smoothing;
  int which; /* 0 triplet(xs), 1 kd t2s (zs), 2 kd s2t (zt), 3 pd (xs), 4 pd (xt), 5 tcl (xs), 6 ce
                (zs) */
} chain;

/* Loss and, when grad != NULL, the analytic gradient w.r.t. the input that `which` differentiates.
 */
static double chain_eval(chain *c, float *grad) {
  float dt[N * N], ds[N * N], gdt[N * N] = {0}, gds[N * N] = {0};
  double loss = 0;
  int pos[N], neg[N];
  switch (c->which) {
  case 0:
    CHECK_OK(reid_pairwise_distances(c->xs, N, D, 0, ds));
    CHECK_OK(reid_mine_batch_hard(ds, c->labels, N, pos, neg));
    CHECK_OK(reid_triplet_soft_margin(ds, N, pos, neg, &loss, NULL, 1.0f, grad ? gds : NULL));
    if (grad) CHECK_OK(reid_pairwise_distances_backward(c->xs, ds, gds, N, D, 0, grad));
    break;
  case 1: CHECK_OK(reid_kd_logits(c->zt, c->zs, N, K, c->tau, &loss, 1.0f, grad)); break;
  case 2: CHECK_OK(reid_kd_logits(c->zs, c->zt, N, K, c->tau, &loss, 1.0f, grad)); break;
  case 3:
  case 4:
    CHECK_OK(reid_pairwise_distances(c->xt, N, D, 1, dt));
    CHECK_OK(reid_pairwise_distances(c->xs, N, D, 1, ds));
    CHECK_OK(reid_pd_loss(dt, ds, N, &loss, 1.0f, gdt, gds));
    if (grad && c->which == 3)
      CHECK_OK(reid_pairwise_distances_backward(c->xs, ds, gds, N, D, 1, grad));
    if (grad && c->which == 4)
      CHECK_OK(reid_pairwise_distances_backward(c->xt, dt, gdt, N, D, 1, grad));
    break;
  case 5:
    CHECK_OK(reid_pairwise_distances(c->xt, N, D, 0, dt));
    CHECK_OK(reid_pairwise_distances(c->xs, N, D, 0, ds));
    CHECK_OK(
        reid_tcl_loss(dt, ds, N, c->pos, c->neg, c->tau, &loss, NULL, 1.0f, grad ? gds : NULL));
    if (grad) CHECK_OK(reid_pairwise_distances_backward(c->xs, ds, gds, N, D, 0, grad));
    break;
  case 6:
    CHECK_OK(reid_ce_loss(cpu, c->zs, c->labels, N, K, c->smoothing, &loss, 1.0f, grad));
    break;
  }
  return loss;
}

static double chain_loss(void *ctx) {
  return chain_eval(ctx, NULL);
}

static void fill_chain(chain *c, test_rng *rng) {
  test_fill_uniform(rng, c->xt, N * D, -1, 1);
  test_fill_uniform(rng, c->xs, N * D, -1, 1);
  test_fill_uniform(rng, c->zt, N * K, -3, 3);
  test_fill_uniform(rng, c->zs, N * K, -3, 3);
  for (int i = 0; i < N; i++) c->labels[i] = i / 2; /* P = 4 ids x K = 2 */
  float dt[N * N];
  CHECK_OK(reid_pairwise_distances(c->xt, N, D, 0, dt));
  CHECK_OK(reid_mine_batch_hard(dt, c->labels, N, c->pos, c->neg)); /* mined on the teacher */
}

static void check_gradient(chain *c, int which, const char *what) {
  c->which = which;
  float *input = which == 1 || which == 6 ? c->zs : which == 2 ? c->zt : which == 4 ? c->xt : c->xs;
  size_t n = which == 1 || which == 2 || which == 6 ? N * K : N * D;
  float grad[N * K > N * D ? N * K : N * D] = {0};
  chain_eval(c, grad);
  int bad = gradcheck(what, input, n, grad, chain_loss, c, 1e-3f, 2e-4, 2e-2);
  CHECK(bad == 0, "%s: %d gradient mismatches", what, bad);
}

static void test_against_naive(void) {
  test_rng rng = test_rng_make(11);
  for (int trial = 0; trial < 3; trial++) {
    chain c = {.tau = trial == 0 ? 1.0f : trial == 1 ? 4.0f : 0.5f, .smoothing = 0.1f * trial};
    fill_chain(&c, &rng);
    char what[64];
    c.which = 0;
    double got = chain_eval(&c, NULL), want = naive_triplet(c.xs, c.labels, N, D);
    CHECK(fabs(got - want) <= 1e-5 * (1 + fabs(want)), "triplet %g vs naive %g", got, want);
    c.which = 1;
    got = chain_eval(&c, NULL), want = naive_kd(c.zt, c.zs, N, K, c.tau);
    CHECK(fabs(got - want) <= 1e-5 * (1 + fabs(want)), "kd t2s %g vs naive %g", got, want);
    c.which = 2;
    got = chain_eval(&c, NULL), want = naive_kd(c.zs, c.zt, N, K, c.tau);
    CHECK(fabs(got - want) <= 1e-5 * (1 + fabs(want)), "kd s2t %g vs naive %g", got, want);
    c.which = 3;
    got = chain_eval(&c, NULL), want = naive_pd(c.xt, c.xs, N, D);
    CHECK(fabs(got - want) <= 1e-5 * (1 + fabs(want)), "pd %g vs naive %g", got, want);
    c.which = 5;
    got = chain_eval(&c, NULL), want = naive_tcl(c.xt, c.xs, N, D, c.pos, c.neg, c.tau);
    CHECK(fabs(got - want) <= 1e-5 * (1 + fabs(want)), "tcl %g vs naive %g", got, want);
    c.which = 6; /* CE with smoothing: -sum_j t_j log softmax_j, mean over rows */
    double ce = 0, y[K];
    for (int i = 0; i < N; i++) {
      naive_softmax(c.zs + i * K, K, 1.0, y);
      for (int j = 0; j < K; j++)
        ce -= ((j == c.labels[i] ? 1 - c.smoothing : 0) + c.smoothing / K) * log(y[j]);
    }
    got = chain_eval(&c, NULL), want = ce / N;
    CHECK(fabs(got - want) <= 1e-5 * (1 + fabs(want)), "ce %g vs naive %g", got, want);

    const char *names[] = {"triplet d/dx_s", "kd t2s d/dz_s",  "kd s2t d/dz_t", "pd d/dx_s",
                           "pd d/dx_t",      "tcl t2s d/dx_s", "ce d/dz"};
    for (int w = 0; w < 7; w++) {
      snprintf(what, sizeof what, "%s (tau %g)", names[w], (double)c.tau);
      check_gradient(&c, w, what);
    }
  }
}

/* Identical inputs: every distillation term is 0 and so is its gradient. */
static void test_zero_when_equal(void) {
  test_rng rng = test_rng_make(5);
  float x[N * D], z[N * K], d[N * N], g[N * N] = {0}, gz[N * K] = {0};
  int32_t labels[N];
  int pos[N], neg[N];
  for (int i = 0; i < N; i++) labels[i] = i / 2;
  test_fill_uniform(&rng, x, N * D, -1, 1);
  test_fill_uniform(&rng, z, N * K, -2, 2);
  double loss = -1;
  CHECK_OK(reid_kd_logits(z, z, N, K, 10.0f, &loss, 1.0f, gz));
  CHECK(fabs(loss) < 1e-12, "KL(y || y) = %g", loss);
  CHECK_OK(reid_pairwise_distances(x, N, D, 0, d));
  CHECK_OK(reid_mine_batch_hard(d, labels, N, pos, neg));
  CHECK_OK(reid_tcl_loss(d, d, N, pos, neg, 2.0f, &loss, NULL, 1.0f, g));
  CHECK(fabs(loss) < 1e-12, "TCL of identical distances = %g", loss);
  CHECK_OK(reid_pd_loss(d, d, N, &loss, 1.0f, g, g));
  CHECK(loss == 0, "PD of identical distances = %g", loss);
  float worst = 0;
  for (int i = 0; i < N * N; i++) worst = fmaxf(worst, fabsf(g[i]));
  for (int i = 0; i < N * K; i++) worst = fmaxf(worst, fabsf(gz[i]));
  CHECK(worst < 1e-6f, "gradient of a zero distillation term reaches %g", (double)worst);
}

/* Mining on a hand-made 6 x 6 matrix: ids {0, 0, 0, 1, 1, 2}. */
static void test_mining(void) {
  const int n = 6;
  const int32_t labels[6] = {0, 0, 0, 1, 1, 2};
  /* symmetric; the hardest positive / negative of each anchor is marked in the comment */
  const float d[36] = {
      0, 2, 5, 4, 3, 9, /* a0: pos 2 (5), neg 4 (3) */
      2, 0, 1, 7, 8, 6, /* a1: pos 0 (2), neg 5 (6) */
      5, 1, 0, 2, 2, 3, /* a2: pos 0 (5), neg 3 (2; tie with 4 -> lower index) */
      4, 7, 2, 0, 1, 5, /* a3: pos 4 (1), neg 2 (2) */
      3, 8, 2, 1, 0, 4, /* a4: pos 3 (1), neg 2 (2) */
      9, 6, 3, 5, 4, 0, /* a5: no positive, neg 2 (3) */
  };
  int pos[6], neg[6];
  CHECK_OK(reid_mine_batch_hard(d, labels, n, pos, neg));
  const int want_pos[6] = {2, 0, 0, 4, 3, -1}, want_neg[6] = {4, 5, 3, 2, 2, 2};
  for (int i = 0; i < n; i++)
    CHECK(pos[i] == want_pos[i] && neg[i] == want_neg[i], "anchor %d: pos %d neg %d, want %d %d", i,
          pos[i], neg[i], want_pos[i], want_neg[i]);
  /* the triplet loss averages over the 5 anchors that have both */
  double loss = 0;
  int anchors = 0;
  CHECK_OK(reid_triplet_soft_margin(d, n, pos, neg, &loss, &anchors, 1.0f, NULL));
  double want = (log1p(exp(5 - 3)) + log1p(exp(2 - 6)) + log1p(exp(5 - 2)) + log1p(exp(1 - 2)) +
                 log1p(exp(1 - 2))) /
                5;
  CHECK(anchors == 5 && fabs(loss - want) < 1e-9, "triplet %g over %d anchors, want %g over 5",
        loss, anchors, want);
  /* one identity only: no negatives anywhere, the loss is 0 */
  const int32_t same[3] = {7, 7, 7};
  CHECK_OK(reid_mine_batch_hard(d, same, 3, pos, neg));
  CHECK(neg[0] == -1 && neg[1] == -1 && neg[2] == -1, "negatives %d %d %d in a one-id batch",
        neg[0], neg[1], neg[2]);
  CHECK_OK(reid_triplet_soft_margin(d, 3, pos, neg, &loss, &anchors, 1.0f, NULL));
  CHECK(loss == 0 && anchors == 0, "one-id batch: loss %g over %d anchors", loss, anchors);
}

/* Large margins: no overflow in the soft margin, the sigmoids or the softmax. */
static void test_extremes(void) {
  const float d[4] = {0, 500, 500, 0};
  const int pos[2] = {-1, -1}, neg[2] = {1, 0};
  const int32_t lab[2] = {0, 1};
  double loss;
  float g[4] = {0};
  CHECK_OK(reid_triplet_soft_margin(d, 2, pos, neg, &loss, NULL, 1.0f, g));
  const int pos2[2] = {1, 0}, neg2[2] = {0, 1}; /* deliberately inverted: margin +500 */
  (void)lab;
  CHECK_OK(reid_triplet_soft_margin(d, 2, pos2, neg2, &loss, NULL, 1.0f, g));
  CHECK(isfinite(loss) && fabs(loss - 500) < 1e-6, "soft margin of +500 = %g", loss);
  const float dl[4] = {0, 0.001f, 0.001f, 0};
  CHECK_OK(reid_tcl_loss(d, dl, 2, pos2, neg2, 0.01f, &loss, NULL, 1.0f, g));
  CHECK(isfinite(loss), "TCL with saturated sigmoids = %g", loss);
  const float zt[3] = {1000, -1000, 0}, zs[3] = {-1000, 1000, 0};
  float dz[3] = {0};
  CHECK_OK(reid_kd_logits(zt, zs, 1, 3, 1.0f, &loss, 1.0f, dz));
  CHECK(isfinite(loss) && loss > 1000 && isfinite(dz[0]), "KD of opposite one-hots = %g", loss);
}

static void test_errors(void) {
  float d[4] = {0}, z[4] = {0};
  int32_t lab[2] = {0, 1};
  int pos[2] = {0, 5}, neg[2] = {1, 0};
  double loss;
  CHECK(reid_pairwise_distances(NULL, 2, 2, 0, d) == REID_EINVAL, "NULL x accepted");
  CHECK(reid_pairwise_distances(z, 0, 2, 0, d) == REID_EINVAL, "n = 0 accepted");
  CHECK(reid_mine_batch_hard(d, NULL, 2, pos, neg) == REID_EINVAL, "NULL labels accepted");
  CHECK(reid_triplet_soft_margin(d, 2, pos, neg, &loss, NULL, 1, NULL) == REID_EINVAL,
        "positive index 5 of a batch of 2 accepted");
  CHECK(strstr(reid_last_error(), "anchor 1") != NULL, "message '%s'", reid_last_error());
  CHECK(reid_kd_logits(z, z, 2, 2, 0.0f, &loss, 1, NULL) == REID_EINVAL, "tau 0 accepted");
  CHECK(reid_tcl_loss(d, d, 2, neg, neg, -1.0f, &loss, NULL, 1, NULL) == REID_EINVAL,
        "tau -1 accepted");
  CHECK(reid_pd_loss(d, NULL, 2, &loss, 1, NULL, NULL) == REID_EINVAL, "NULL D_s accepted");
  lab[1] = 9;
  CHECK(reid_ce_loss(cpu, z, lab, 2, 2, 0, &loss, 1, NULL) == REID_EINVAL, "label 9 of 2 accepted");
  float nan_d[4] = {0, NAN, NAN, 0};
  lab[1] = 1;
  CHECK(reid_mine_batch_hard(nan_d, lab, 2, pos, neg) == REID_ENUMERIC, "NaN distance accepted");
}

int main(void) {
  CHECK_OK(reid_backend_create("cpu", 0, &cpu));
  if (!cpu) return test_finish("test_losses");
  test_mining();
  test_against_naive();
  test_zero_when_equal();
  test_extremes();
  test_errors();
  reid_backend_destroy(cpu);
  return test_finish("test_losses");
}
