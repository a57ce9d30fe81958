/* Finite-difference gradient checks shared by the op tests (linked into each
 * test executable; the tests declare the two functions they use).
 *
 * A test defines a scalar loss L = sum(y * r) with a fixed random r, so the
 * analytic gradient is the op's backward with dy = r. gradcheck perturbs one
 * input element at a time by +-h, recomputes L in double and compares the
 * central difference (L+ - L-) / (x+ - x-), where x+ - x- is the step the
 * float input actually took. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>

typedef double (*gc_loss_fn)(void *ctx);

int gradcheck(const char *what, float *p, size_t n, const float *analytic, gc_loss_fn loss,
              void *ctx, float h, double atol, double rtol);
double gc_dot(const float *a, const float *b, size_t n);

/* sum a * b in double */
double gc_dot(const float *a, const float *b, size_t n) {
  double s = 0.0;
  for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
  return s;
}

/* Returns the number of elements where |num - ana| > atol + rtol max(|num|, |ana|);
 * prints the first few. */
int gradcheck(const char *what, float *p, size_t n, const float *analytic, gc_loss_fn loss,
              void *ctx, float h, double atol, double rtol) {
  int bad = 0;
  double worst = 0.0;
  for (size_t i = 0; i < n; i++) {
    const float saved = p[i];
    const float up = saved + h, down = saved - h;
    p[i] = up;
    const double lp = loss(ctx);
    p[i] = down;
    const double lm = loss(ctx);
    p[i] = saved;
    const double num = (lp - lm) / ((double)up - (double)down);
    const double ana = analytic[i];
    const double err = fabs(num - ana) / (atol + rtol * fmax(fabs(num), fabs(ana)));
    if (!(err <= 1.0)) {
      if (bad < 5)
        fprintf(stderr, "gradcheck %s: element %zu: numeric %.7g analytic %.7g\n", what, i, num,
                ana);
      bad++;
    }
    if (err > worst) worst = err;
  }
  fprintf(stderr, "gradcheck %s: %zu elements, %d mismatches, worst ratio %.3g\n", what, n, bad,
          worst);
  return bad;
}
