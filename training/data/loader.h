/* Batches of decoded, augmented, normalised frames from a reid_dataset.
 *
 * Worker threads decode (FFmpeg) and augment ahead into a ring of `prefetch`
 * batches, so the consumer waits only when it outruns all of them. What a
 * batch holds depends only on the seed and the batch's index, never on the
 * thread count or timing: the sampler draws every random number (ids, frames,
 * crop, flip, erasing) on the consumer's side of the ring, in batch order.
 *
 * Per frame, as inference does it (kernels/media/preprocess.h): the image is
 * padded by `pad` (zeros) and a box of the image's own size is cropped at a
 * random offset; that box is resized to height x width with
 * reid_preprocess_cpu; then mirrored (flip) and a random rectangle erased
 * (set to 0 = the mean after normalisation). Without augmentation the whole
 * image is resized. With `bicubic` (DwoPP, papers.md §2: "256x128 (bicubic)") an image
 * not already height x width is first resized to it with swscale's bicubic
 * (reid_image_resize_bicubic), as torchvision's Resize before Pad/RandomCrop; the
 * crop then moves whole pixels. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "status.h"

typedef enum reid_frame_sampling {
  REID_FRAMES_RANDOM_CHUNKS, /* training: one random frame from each of T equal chunks */
  REID_FRAMES_EVEN,          /* evaluation: T evenly spaced frames */
  REID_FRAMES_FIRST,         /* the first frame only (I2V query), T must be 1 */
  REID_FRAMES_MULTIVIEW,     /* T frames drawn across the identity's tracklets and cameras */
} reid_frame_sampling;

typedef struct reid_augment {
  int enabled;
  float flip_p; /* 0.5 */
  int pad;      /* 10: pad then random crop back to size */
  float erase_p, erase_area_min, erase_area_max, erase_aspect_min; /* 0.5, 0.02, 0.4, 0.3 */
  /* growing erasing (DwoPP): with grow_batches > 0, training batch b erases with probability
   * and largest area moved linearly from erase_p / erase_area_max (b = 0) to erase_p_end /
   * erase_area_max_end (b >= grow_batches - 1); grow_batches = 0 keeps them fixed */
  long grow_batches;
  float erase_p_end, erase_area_max_end;
} reid_augment;

typedef struct reid_loader_config {
  int batch_p, batch_k; /* training: P identities x K samples (batch = P*K) */
  int batch;            /* evaluation: samples per batch */
  int frames;           /* T frames per sample */
  reid_frame_sampling sampling;
  int height, width;
  float mean[3], std[3];
  reid_augment augment;
  int bicubic; /* 1: bicubic resize to height x width first (above); 0: bilinear */
  /* train: each epoch's identity order keeps identities with a known distinct pair
   * (reid_dataset.distinct_pairs: tracklets seen together) next to each other, so a P x K
   * batch holds people known to be different; 0: a plain shuffle */
  int group_distinct;
  int threads;  /* decoding threads (>= 1) */
  int prefetch; /* batches decoded ahead (>= 1) */
  uint64_t seed;
} reid_loader_config;

typedef struct reid_batch {
  float *images;      /* [batch * frames, 3, height, width], frames of a sample consecutive */
  int32_t *labels;    /* [batch] train labels (-1 outside the train split) */
  int *pids, *camids; /* [batch] */
  int *sample_index;  /* [batch] index into the split */
  int batch, frames;
} reid_batch;

typedef struct reid_loader reid_loader;

/* Endless P x K batches from the train split (an "epoch" = batches_per_epoch() batches). */
reid_status reid_loader_train(const reid_dataset *d, const reid_loader_config *c,
                              reid_loader **out);
/* The samples of `split` in order, `batch` at a time; the last batch may be smaller;
 * after the last, next() returns REID_OK with batch->batch == 0. */
reid_status reid_loader_eval(const reid_dataset *d, const reid_split *split,
                             const reid_loader_config *c, reid_loader **out);
reid_status reid_loader_next(reid_loader *l,
                             reid_batch *out); /* batch memory valid until the next call */
int reid_loader_batches_per_epoch(const reid_loader *l);
/* Resume support: the sampler's RNG state (and position) as bytes, and back.
 * Every batch draws from its own stream seeded by (seed, batch index), so the state is the
 * index of the batch the next next() returns, with the seed and a fingerprint of the
 * configuration and split (a state from another seed or configuration is refused).
 * state_load discards the batches decoded ahead and the batch last handed out. */
size_t reid_loader_state_size(const reid_loader *l);
reid_status reid_loader_state_save(const reid_loader *l, void *buf);
reid_status reid_loader_state_load(reid_loader *l, const void *buf);
void reid_loader_destroy(reid_loader *l);
