/* ResNet checkpoints as safetensors, with torchvision's tensor names.
 *
 * __metadata__ keys (all strings; missing ones take the default or are
 * inferred from the tensors):
 *   arch            resnet18|resnet34|resnet50   inferred from the blocks present
 *   last_stride     1|2                          default 1 (the re-ID convention)
 *   input_height    default 256
 *   input_width     default 128
 *   embed_dim       must equal the architecture's feature size (512 or 2048)
 *   bnneck          0|1                          inferred from bottleneck.weight
 *   embed_after_bn  0|1                          default 0
 *   mean, std       "r,g,b"                      default ImageNet's
 *   num_classes     inferred from classifier.weight or fc.weight, else 0
 *   task            free text, default ""
 *   description     free text, default ""
 * `*.num_batches_tracked` tensors are ignored; so are `fc.*` tensors when the
 * model has no classifier. With a prefix ("teacher.", "student."), only tensors
 * named prefix + torchvision name belong to the network, and metadata keys are
 * looked up as prefix + key first. */
#pragma once

#include "resnet.h"
#include "safetensors.h"

reid_status reid_checkpoint_read_config(const st_file *f, const char *prefix,
                                        reid_model_config *cfg);
reid_status reid_checkpoint_load_weights(reid_net *net, const st_file *f, const char *prefix);
/* Opens `path`, reads the configuration, creates the network on `be` and loads it. */
reid_status reid_checkpoint_load(const char *path, const char *prefix, reid_backend *be,
                                 reid_net **out);

/* Adds the network's metadata (keys prefixed) and tensors to a writer. */
reid_status reid_checkpoint_add(st_writer *w, reid_net *net, const char *prefix, st_dtype dtype);
/* Writes one network to `path` atomically. */
reid_status reid_checkpoint_save(reid_net *net, const char *path, st_dtype dtype);

/* MDKT pairs: one file holding two networks, tensors and metadata keys
 * prefixed "teacher." and "student.", plus top-level metadata
 *   format = "mdkt-pair", image_model = PREFIX, video_model = PREFIX
 * naming the network that embeds query images and the one that embeds
 * tracklets (for a single-network file both prefixes are "").
 * reid_checkpoint_save_pair names the student for both: MDKT's losses align
 * the student's logits and distances with the teacher's, not its embedding
 * coordinates, so student queries against teacher tracklets match poorly
 * (measured on the synthetic end-to-end run: I2V mAP 18.6% against 34.7%
 * with the student on both sides). The teacher stays in the file for V2V
 * evaluation (`reid-train eval --part teacher`) and further training. */
typedef struct reid_model_roles {
  char image_prefix[32];
  char video_prefix[32];
  int is_pair;
} reid_model_roles;

reid_status reid_checkpoint_roles(const st_file *f, reid_model_roles *roles);
/* Writes a pair (teacher., student.; the student serves both roles). */
reid_status reid_checkpoint_save_pair(reid_net *teacher, reid_net *student, const char *path,
                                      st_dtype dtype);

/* Copies all tensors to host memory (params then buffers as the views say). */
reid_status reid_net_download(reid_net *net, float **params, float **buffers);
