/* Learning-rate schedules: evaluation and the text parser (see schedule.h). */
#include "schedule.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void reid_lr_schedule_constant(reid_lr_schedule *s, float base_lr) {
  memset(s, 0, sizeof *s);
  s->kind = REID_LR_CONSTANT;
  s->base_lr = base_lr;
  s->gamma = 1.0f;
  s->warmup_factor = 1.0f;
}

reid_status reid_lr_schedule_validate(const reid_lr_schedule *s) {
  if (!s) return reid_fail(REID_EINVAL, "lr schedule: NULL schedule");
  if (!(isfinite(s->base_lr) && s->base_lr >= 0.0f))
    return reid_fail(REID_EINVAL, "lr schedule: base lr %g must be finite and >= 0",
                     (double)s->base_lr);
  if (s->warmup_steps < 0)
    return reid_fail(REID_EINVAL, "lr schedule: warm-up of %d steps", s->warmup_steps);
  if (s->warmup_steps > 0 && !(s->warmup_factor >= 0.0f && s->warmup_factor <= 1.0f))
    return reid_fail(REID_EINVAL, "lr schedule: warm-up factor %g outside [0, 1]",
                     (double)s->warmup_factor);
  switch (s->kind) {
  case REID_LR_CONSTANT: return REID_OK;
  case REID_LR_MULTISTEP:
    if (s->n_milestones < 1 || s->n_milestones > REID_LR_MAX_MILESTONES)
      return reid_fail(REID_EINVAL, "lr schedule: multistep needs 1 to %d milestones, got %d",
                       REID_LR_MAX_MILESTONES, s->n_milestones);
    for (int i = 0; i < s->n_milestones; i++)
      if (s->milestones[i] < 0 || (i > 0 && s->milestones[i] <= s->milestones[i - 1]))
        return reid_fail(REID_EINVAL,
                         "lr schedule: milestones must be >= 0 and strictly increasing "
                         "(milestone %d is %d)",
                         i, s->milestones[i]);
    if (!(isfinite(s->gamma) && s->gamma > 0.0f))
      return reid_fail(REID_EINVAL, "lr schedule: multistep gamma %g must be > 0",
                       (double)s->gamma);
    return REID_OK;
  case REID_LR_EXP_TAIL:
    if (s->total < 1) return reid_fail(REID_EINVAL, "lr schedule: exp-tail total %d < 1", s->total);
    if (!(isfinite(s->final_lr) && s->final_lr > 0.0f))
      return reid_fail(REID_EINVAL, "lr schedule: exp-tail final lr %g must be > 0",
                       (double)s->final_lr);
    if (!(s->base_lr > 0.0f))
      return reid_fail(REID_EINVAL, "lr schedule: exp-tail needs a base lr > 0");
    return REID_OK;
  }
  return reid_fail(REID_EINVAL, "lr schedule: unknown kind %d", (int)s->kind);
}

static double main_curve(const reid_lr_schedule *s, int t) {
  const double lr0 = s->base_lr;
  switch (s->kind) {
  case REID_LR_CONSTANT: return lr0;
  case REID_LR_MULTISTEP: {
    int passed = 0; /* milestones <= t */
    while (passed < s->n_milestones && s->milestones[passed] <= t) passed++;
    return lr0 * pow(s->gamma, passed);
  }
  case REID_LR_EXP_TAIL: {
    const int half = s->total / 2;
    if (t < half) return lr0;
    if (t >= s->total) return s->final_lr;
    const double frac = (double)(t - half) / (double)(s->total - half);
    return lr0 * pow((double)s->final_lr / lr0, frac);
  }
  }
  return lr0;
}

float reid_lr_at(const reid_lr_schedule *s, int step) {
  const int t = step < 0 ? 0 : step;
  double lr = main_curve(s, t);
  if (t < s->warmup_steps) {
    const double alpha = (double)t / s->warmup_steps;
    lr *= s->warmup_factor * (1.0 - alpha) + alpha;
  }
  return (float)lr;
}

/* ---- parser ---- */

typedef struct parser {
  const char *text; /* whole string, for messages */
  const char *p;    /* cursor */
} parser;

static reid_status parse_error(const parser *ps, const char *what) {
  return reid_fail(REID_EINVAL, "lr schedule '%s': %s at offset %d ('%s')", ps->text, what,
                   (int)(ps->p - ps->text), ps->p);
}

/* INT: decimal digits only, fits in int */
static reid_status parse_int(parser *ps, int *out) {
  if (!isdigit((unsigned char)*ps->p)) return parse_error(ps, "expected an integer");
  errno = 0;
  char *end = NULL;
  const long v = strtol(ps->p, &end, 10);
  if (errno || v > INT_MAX) return parse_error(ps, "integer out of range");
  ps->p = end;
  *out = (int)v;
  return REID_OK;
}

/* FLOAT: a finite decimal number as strtod reads it (no leading blanks, no inf/nan/hex) */
static reid_status parse_float(parser *ps, float *out) {
  const char c = *ps->p;
  if (!(isdigit((unsigned char)c) || c == '.' || c == '+' || c == '-'))
    return parse_error(ps, "expected a number");
  const char *digits = ps->p + (c == '+' || c == '-');
  if (digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X'))
    return parse_error(ps, "expected a decimal number");
  errno = 0;
  char *end = NULL;
  const double v = strtod(ps->p, &end);
  if (end == ps->p) return parse_error(ps, "expected a number");
  if (errno || !isfinite(v) || fabs(v) > 3.0e38) return parse_error(ps, "number out of range");
  ps->p = end;
  *out = (float)v;
  return REID_OK;
}

static reid_status expect(parser *ps, char c) {
  if (*ps->p != c) {
    char what[32];
    snprintf(what, sizeof what, "expected '%c'", c);
    return parse_error(ps, what);
  }
  ps->p++;
  return REID_OK;
}

/* Reports a second main term, pointing at its start. */
static reid_status second_main(parser *ps, const char *term) {
  ps->p = term;
  return parse_error(ps, "second main schedule (constant, multistep or exp-tail)");
}

/* Consumes `word` when the cursor is on it followed by ':', '+' or the end. */
static int accept_word(parser *ps, const char *word) {
  const size_t len = strlen(word);
  if (strncmp(ps->p, word, len) != 0) return 0;
  const char next = ps->p[len];
  if (next != ':' && next != '+' && next != '\0') return 0;
  ps->p += len;
  return 1;
}

reid_status reid_lr_schedule_parse(const char *text, float base_lr, reid_lr_schedule *out) {
  if (!text || !out) return reid_fail(REID_EINVAL, "lr schedule: NULL argument");
  parser ps = {text, text};
  reid_lr_schedule s;
  reid_lr_schedule_constant(&s, base_lr);
  int have_main = 0, have_warmup = 0;
  if (!*text) return parse_error(&ps, "empty schedule");

  for (;;) {
    const char *term = ps.p;
    if (accept_word(&ps, "constant")) {
      if (have_main++) return second_main(&ps, term);
      s.kind = REID_LR_CONSTANT;
    } else if (accept_word(&ps, "multistep")) {
      if (have_main++) return second_main(&ps, term);
      s.kind = REID_LR_MULTISTEP;
      REID_TRY(expect(&ps, ':'));
      for (;;) {
        if (s.n_milestones == REID_LR_MAX_MILESTONES)
          return parse_error(&ps, "too many milestones");
        REID_TRY(parse_int(&ps, &s.milestones[s.n_milestones]));
        if (s.n_milestones > 0 && s.milestones[s.n_milestones] <= s.milestones[s.n_milestones - 1])
          return parse_error(&ps, "milestones must be strictly increasing");
        s.n_milestones++;
        if (*ps.p != ',') break;
        ps.p++;
      }
      REID_TRY(expect(&ps, ':'));
      REID_TRY(parse_float(&ps, &s.gamma));
      if (!(s.gamma > 0.0f)) return parse_error(&ps, "gamma must be > 0");
    } else if (accept_word(&ps, "exp-tail")) {
      if (have_main++) return second_main(&ps, term);
      s.kind = REID_LR_EXP_TAIL;
      REID_TRY(expect(&ps, ':'));
      REID_TRY(parse_int(&ps, &s.total));
      if (s.total < 1) return parse_error(&ps, "exp-tail total must be >= 1");
      REID_TRY(expect(&ps, ':'));
      REID_TRY(parse_float(&ps, &s.final_lr));
      if (!(s.final_lr > 0.0f)) return parse_error(&ps, "exp-tail final lr must be > 0");
    } else if (accept_word(&ps, "warmup")) {
      if (have_warmup++) {
        ps.p = term;
        return parse_error(&ps, "second warm-up term");
      }
      REID_TRY(expect(&ps, ':'));
      REID_TRY(parse_int(&ps, &s.warmup_steps));
      REID_TRY(expect(&ps, ':'));
      REID_TRY(parse_float(&ps, &s.warmup_factor));
      if (!(s.warmup_factor >= 0.0f && s.warmup_factor <= 1.0f))
        return parse_error(&ps, "warm-up factor must be in [0, 1]");
    } else {
      return parse_error(&ps, "expected constant, multistep, exp-tail or warmup");
    }
    if (*ps.p == '\0') break;
    REID_TRY(expect(&ps, '+'));
  }
  REID_TRY(reid_lr_schedule_validate(&s));
  *out = s;
  return REID_OK;
}
