/* Learning-rate schedules (kernels/optim/schedule.h): values of every kind at
 * chosen steps, warm-up composed with each, and the parser's errors. */
#include "schedule.h"
#include "test_util.h"

/* lr(step) of the parsed text with base lr0, within a relative 1e-6 */
static void expect_lr(const char *text, float lr0, int step, double expected) {
  reid_lr_schedule s;
  reid_status st = reid_lr_schedule_parse(text, lr0, &s);
  CHECK(st == REID_OK, "parse '%s': %s", text, reid_last_error());
  if (st != REID_OK) return;
  const double got = reid_lr_at(&s, step);
  CHECK(fabs(got - expected) <= 1e-6 * fabs(expected) + 1e-30, "'%s' at %d: %.9g, expected %.9g",
        text, step, got, expected);
}

static void expect_error(const char *text, const char *fragment) {
  reid_lr_schedule s;
  reid_lr_schedule_constant(&s, 0.5f);
  reid_clear_error();
  const reid_status st = reid_lr_schedule_parse(text, 0.1f, &s);
  CHECK(st == REID_EINVAL, "'%s' should fail to parse", text);
  CHECK(strstr(reid_last_error(), fragment) != NULL, "'%s': message '%s' lacks '%s'", text,
        reid_last_error(), fragment);
  CHECK(s.kind == REID_LR_CONSTANT && s.base_lr == 0.5f, "'%s': output changed on error", text);
}

int main(void) {
  /* constant */
  expect_lr("constant", 0.1f, 0, 0.1);
  expect_lr("constant", 0.1f, 100000, 0.1);

  /* multistep: decayed at each milestone reached (MultiStepLR counts milestones <= t) */
  const char *ms = "multistep:100,200:0.1";
  expect_lr(ms, 0.1f, 0, 0.1);
  expect_lr(ms, 0.1f, 99, 0.1);
  expect_lr(ms, 0.1f, 100, 0.01);
  expect_lr(ms, 0.1f, 199, 0.01);
  expect_lr(ms, 0.1f, 200, 0.001);
  expect_lr(ms, 0.1f, 5000, 0.001);
  expect_lr(ms, 0.1f, -3, 0.1); /* negative steps count as 0 */
  expect_lr("multistep:0:0.5", 2.0f, 0, 1.0);

  /* warm-up + multistep: f + (1 - f) t / N times the main curve */
  const char *wms = "warmup:10:0.01+multistep:100,200:0.1";
  expect_lr(wms, 0.1f, 0, 0.1 * 0.01);
  expect_lr(wms, 0.1f, 5, 0.1 * (0.01 + 0.99 * 0.5));
  expect_lr(wms, 0.1f, 9, 0.1 * (0.01 + 0.99 * 0.9));
  expect_lr(wms, 0.1f, 10, 0.1);
  expect_lr(wms, 0.1f, 150, 0.01);
  /* terms in either order; a milestone inside the warm-up multiplies both */
  expect_lr("multistep:4:0.5+warmup:10:0.1", 1.0f, 6, 0.5 * (0.1 + 0.9 * 0.6));
  expect_lr("warmup:5:0.1", 0.2f, 1, 0.2 * (0.1 + 0.9 * 0.2));
  expect_lr("warmup:5:0.1", 0.2f, 7, 0.2);
  expect_lr("warmup:0:0.1", 0.2f, 0, 0.2);

  /* exp-tail: constant for t < T/2, then lr0 (lr_end / lr0)^((t - T/2) / (T - T/2)) */
  const double lr0 = 3.5e-4, lr_end = 1e-6;
  const char *et = "exp-tail:600:1e-6";
  expect_lr(et, (float)lr0, 0, lr0);
  expect_lr(et, (float)lr0, 299, lr0);
  expect_lr(et, (float)lr0, 300, lr0);
  expect_lr(et, (float)lr0, 450, lr0 * pow(lr_end / lr0, 0.5));
  expect_lr(et, (float)lr0, 451, lr0 * pow(lr_end / lr0, 151.0 / 300.0));
  expect_lr(et, (float)lr0, 600, lr_end);
  expect_lr(et, (float)lr0, 10000, lr_end); /* held at lr_end after T */
  /* odd T: T/2 = 3, T - T/2 = 4 */
  expect_lr("exp-tail:7:0.001", 0.1f, 2, 0.1);
  expect_lr("exp-tail:7:0.001", 0.1f, 5, 0.1 * pow(0.01, 2.0 / 4.0));
  expect_lr("exp-tail:7:0.001", 0.1f, 7, 0.001);
  expect_lr("exp-tail:1:0.5", 1.0f, 0, 1.0); /* T/2 = 0: decay starts at once */
  /* warm-up + exp-tail; '+' inside a number is not a separator */
  expect_lr("warmup:100:0.1+exp-tail:600:1e-6", (float)lr0, 50, lr0 * (0.1 + 0.9 * 0.5));
  expect_lr("warmup:100:0.1+exp-tail:600:1e-6", (float)lr0, 450, lr0 * pow(lr_end / lr0, 0.5));
  expect_lr("exp-tail:600:1e+0", 2.0f, 600, 1.0);

  /* hand-built schedules */
  reid_lr_schedule s;
  reid_lr_schedule_constant(&s, 0.3f);
  CHECK(reid_lr_schedule_validate(&s) == REID_OK, "constant is valid");
  CHECK(reid_lr_at(&s, 42) == 0.3f, "constant value");
  s.kind = (reid_lr_kind)9;
  CHECK(reid_lr_schedule_validate(&s) == REID_EINVAL, "unknown kind");
  reid_lr_schedule_constant(&s, 0.3f);
  s.kind = REID_LR_MULTISTEP;
  s.n_milestones = 2, s.milestones[0] = 5, s.milestones[1] = 5, s.gamma = 0.1f;
  CHECK(reid_lr_schedule_validate(&s) == REID_EINVAL, "repeated milestone");

  /* parser errors */
  expect_error("", "empty");
  expect_error("cosine:10", "expected constant, multistep, exp-tail or warmup");
  expect_error("multistep", "expected ':'");
  expect_error("multistep:", "expected an integer");
  expect_error("multistep:100,50:0.1", "strictly increasing");
  expect_error("multistep:100,100:0.1", "strictly increasing");
  expect_error("multistep:-5:0.1", "expected an integer");
  expect_error("multistep:99999999999:0.1", "out of range");
  expect_error("multistep:100:", "expected a number");
  expect_error("multistep:100:0", "gamma must be > 0");
  expect_error("multistep:100:-1", "gamma must be > 0");
  expect_error("multistep:100:nan", "expected a number");
  expect_error("multistep:100:inf", "expected a number");
  expect_error("multistep:100:1e999", "out of range");
  expect_error("multistep:100:0x10", "decimal");
  expect_error("multistep:100,:0.1", "expected an integer");
  expect_error("multistep:100:0.1x", "expected '+'");
  expect_error("multistep:100:0.1+", "expected constant");
  expect_error("multistep:100:0.1 ", "expected '+'");
  expect_error(" multistep:100:0.1", "expected constant");
  expect_error("multisteps:100:0.1", "expected constant");
  expect_error("warmup:10:2", "warm-up factor");
  expect_error("warmup:10", "expected ':'");
  expect_error("warmup:1:0.1+warmup:2:0.1", "second warm-up");
  expect_error("exp-tail:0:1e-6", "total must be >= 1");
  expect_error("exp-tail:600:0", "final lr must be > 0");
  expect_error("exp-tail:600", "expected ':'");
  expect_error("multistep:10:0.1+exp-tail:600:1e-6", "second main schedule");
  expect_error("constant+constant", "second main schedule");
  {
    /* exp-tail needs lr0 > 0 (the ratio lr_end / lr0) */
    reid_lr_schedule t;
    CHECK(reid_lr_schedule_parse("exp-tail:10:1e-6", 0.0f, &t) == REID_EINVAL,
          "exp-tail with lr0 = 0");
    CHECK(reid_lr_schedule_parse("constant", -1.0f, &t) == REID_EINVAL, "negative base lr");
    CHECK(reid_lr_schedule_parse(NULL, 0.1f, &t) == REID_EINVAL, "NULL text");
  }
  {
    /* the most milestones the struct holds, and one more */
    char text[512] = "multistep:";
    for (int i = 0; i < REID_LR_MAX_MILESTONES; i++)
      snprintf(text + strlen(text), sizeof text - strlen(text), "%s%d", i ? "," : "", 10 * (i + 1));
    strcat(text, ":0.5");
    expect_lr(text, 1.0f, 10 * REID_LR_MAX_MILESTONES, pow(0.5, REID_LR_MAX_MILESTONES));
    char more[600];
    snprintf(more, sizeof more, "multistep:1,%s", text + strlen("multistep:"));
    expect_error(more, "too many milestones");
  }
  return test_finish("test_lr_schedule");
}
