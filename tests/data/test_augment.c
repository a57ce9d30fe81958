/* Augmentation: without it a frame is exactly reid_preprocess_image; the flip is an exact
 * mirror; a centred crop of the padded image is the unpadded image; an off-centre crop shifts
 * the image and fills with normalised black; erasing zeroes a rectangle inside the image whose
 * area and aspect lie in the configured ranges; draws are deterministic for a seed and their
 * rates follow the probabilities. */
#include "augment.h"
#include "test_util.h"

enum { H = 32, W = 16, PAD = 4 };

static reid_image random_image(int w, int h, uint64_t seed) {
  reid_image im;
  reid_image_alloc(w, h, &im);
  test_rng r = test_rng_make(seed);
  for (size_t i = 0; i < (size_t)im.stride * h; i++) im.data[i] = (uint8_t)(test_rng_u64(&r) >> 56);
  return im;
}

static reid_preprocess_params params(void) {
  reid_preprocess_params p = reid_preprocess_params_imagenet(H, W);
  return p;
}

static void test_geometry(void) {
  reid_image im = random_image(50, 90, 1);
  reid_preprocess_params pp = params();
  const size_t n = 3 * H * W;
  float *ref = malloc(sizeof(float) * n), *out = malloc(sizeof(float) * n);
  float *flip = malloc(sizeof(float) * n), *scratch = malloc(sizeof(float) * n);
  CHECK_OK(reid_preprocess_image(&im, &pp, ref));
  reid_aug_draw a = reid_aug_none();
  CHECK_OK(reid_augment_apply(&im, &a, 0, &pp, scratch, out));
  CHECK(!memcmp(ref, out, sizeof(float) * n), "no augmentation != reid_preprocess_image");
  a.crop_x = a.crop_y = PAD; /* centred crop of the padded image = the image */
  CHECK_OK(reid_augment_apply(&im, &a, PAD, &pp, scratch, out));
  CHECK(!memcmp(ref, out, sizeof(float) * n), "centred crop != the image");
  a.flip = 1;
  CHECK_OK(reid_augment_apply(&im, &a, PAD, &pp, scratch, flip));
  int mirrored = 1;
  for (int c = 0; c < 3; c++)
    for (int y = 0; y < H; y++)
      for (int x = 0; x < W; x++)
        mirrored &= flip[(c * H + y) * W + x] == ref[(c * H + y) * W + (W - 1 - x)];
  CHECK(mirrored, "flip is not an exact mirror");
  /* crop at (0, 1): output (y, x) shows resized (y - PAD + 1, x - PAD); black where outside */
  a = reid_aug_none();
  a.crop_x = 0, a.crop_y = 1;
  CHECK_OK(reid_augment_apply(&im, &a, PAD, &pp, scratch, out));
  for (int c = 0; c < 3; c++) {
    float black = -pp.mean[c] / pp.std[c];
    for (int y = 0; y < H; y++)
      for (int x = 0; x < W; x++) {
        int sy = y - PAD + 1, sx = x - PAD;
        float got = out[(c * H + y) * W + x];
        if (sy < 0 || sx < 0) {
          CHECK(got == black, "padding at (%d, %d) is %g, not %g", y, x, got, black);
        } else {
          float want = ref[(c * H + sy) * W + sx];
          CHECK(fabsf(got - want) < 1e-4f, "shifted (%d, %d): %g vs %g", y, x, got, want);
        }
      }
  }
  /* erasing: zeros inside the rectangle, the rest untouched */
  a = reid_aug_none();
  a.erase_x = 3, a.erase_y = 5, a.erase_w = 7, a.erase_h = 11;
  CHECK_OK(reid_augment_apply(&im, &a, 0, &pp, scratch, out));
  int ok = 1;
  for (int c = 0; c < 3; c++)
    for (int y = 0; y < H; y++)
      for (int x = 0; x < W; x++) {
        int inside = x >= 3 && x < 10 && y >= 5 && y < 16;
        float v = out[(c * H + y) * W + x];
        ok &= inside ? v == 0 : v == ref[(c * H + y) * W + x];
      }
  CHECK(ok, "erased rectangle wrong");
  /* a crop that leaves nothing is refused, not written out of bounds */
  a = reid_aug_none();
  a.crop_x = 40;
  CHECK(reid_augment_apply(&im, &a, 20, &pp, scratch, out) == REID_EINVAL, "empty crop");
  free(ref), free(out), free(flip), free(scratch);
  reid_image_free(&im);
}

static void test_draws(void) {
  reid_augment aug = {1, 0.5f, PAD, 0.5f, 0.02f, 0.4f, 0.3f, 0, 0, 0};
  reid_rng r1, r2;
  reid_rng_seed(&r1, 9);
  reid_rng_seed(&r2, 9);
  int flips = 0, erased = 0, crops[2 * PAD + 1] = {0};
  const int N = 4000;
  for (int i = 0; i < N; i++) {
    reid_aug_draw a, b;
    reid_augment_draw(&aug, H, W, &r1, &a);
    reid_augment_draw(&aug, H, W, &r2, &b);
    CHECK(!memcmp(&a, &b, sizeof a), "draw %d differs for the same seed", i);
    CHECK(a.crop_x >= 0 && a.crop_x <= 2 * PAD && a.crop_y >= 0 && a.crop_y <= 2 * PAD, "crop");
    crops[a.crop_x]++;
    flips += a.flip;
    if (a.erase_w == 0) continue;
    erased++;
    CHECK(a.erase_x >= 0 && a.erase_y >= 0 && a.erase_x + a.erase_w <= W &&
              a.erase_y + a.erase_h <= H,
          "erase rect (%d, %d, %d, %d) outside %dx%d", a.erase_x, a.erase_y, a.erase_w, a.erase_h,
          H, W);
    /* area within [min, max] up to the rounding of h and w to whole pixels */
    float area = (float)(a.erase_w * a.erase_h) / (H * W);
    float hw = (float)a.erase_h, ww = (float)a.erase_w, slack = (hw + ww + 1) / (H * W);
    CHECK(area >= 0.02f - slack && area <= 0.4f + slack, "erase area %g", area);
    float aspect = hw / ww, lo = (hw - 0.5f) / (ww + 0.5f), hi = (hw + 0.5f) / (ww - 0.5f);
    CHECK(hi >= 0.3f && lo <= 1 / 0.3f, "erase aspect %g", aspect);
  }
  CHECK(abs(flips - N / 2) < N / 10, "flip rate %d / %d", flips, N);
  CHECK(erased > N * 0.35 && erased < N * 0.55, "erase rate %d / %d", erased, N);
  for (int k = 0; k <= 2 * PAD; k++)
    CHECK(crops[k] > N / 20, "crop offset %d drawn %d times", k, crops[k]);
  reid_augment off = aug;
  off.enabled = 0;
  reid_aug_draw a;
  reid_augment_draw(&off, H, W, &r1, &a);
  reid_aug_draw none = reid_aug_none();
  CHECK(!memcmp(&a, &none, sizeof a), "disabled augmentation drew something");
}

int main(void) {
  test_geometry();
  test_draws();
  return test_finish("test_augment");
}
