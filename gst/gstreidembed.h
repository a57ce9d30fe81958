/* reidembed: re-identification embeddings for the objects of video frames.
 * See gstreidembed.c for the element's documentation. */
#pragma once

#include <gst/base/gstbasetransform.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#include "embedder.h"
#include "gstreidembed_collect.h"
#include "jsonl.h"
#include "shared_engine.h"
#include "tracklets.h"
#include "watchlist.h"

G_BEGIN_DECLS

typedef enum {
  GST_REID_DEVICE_AUTO = 0,
  GST_REID_DEVICE_CPU = 1,
  GST_REID_DEVICE_CUDA = 2,
} GstReidDevice;

/* Values equal reid_precision's. */
typedef enum {
  GST_REID_PRECISION_FP32 = 0,
  GST_REID_PRECISION_TF32 = 1,
  GST_REID_PRECISION_FP16 = 2,
  GST_REID_PRECISION_BF16 = 3,
  GST_REID_PRECISION_INT8 = 4,
} GstReidPrecision;

GType gst_reid_device_get_type(void);
GType gst_reid_precision_get_type(void);

#define GST_TYPE_REID_EMBED (gst_reid_embed_get_type())
G_DECLARE_FINAL_TYPE(GstReidEmbed, gst_reid_embed, GST, REID_EMBED, GstBaseTransform)

#define REID_EMBED_MAX_CLASSES 64

typedef struct ReidGalleryOutput ReidGalleryOutput; /* gstreidembed_gallery.c */

/* One object of the current frame. */
typedef struct ReidObject {
  GstVideoRegionOfInterestMeta *meta; /* NULL for an analytics OD mtd (GStreamer >= 1.24) */
  reid_tracklet *track;               /* owned by the pool */
  reid_box box;                       /* clipped to the frame */
  gint embed_row;                     /* row in the frame's embedding batch, -1: none */
} ReidObject;

struct _GstReidEmbed {
  GstBaseTransform parent;

  /* properties, under the object lock; model/device/... apply at the next start */
  gchar *model;
  GstReidDevice device;
  gint gpu_id;
  gint batch_size;
  GstReidPrecision precision;
  gint inference_interval;
  gchar *object_class;
  GQuark classes[REID_EMBED_MAX_CLASSES];
  gint n_classes;
  gint min_size;
  gint track_timeout;
  gchar *tracklet_location;
  gchar *query_location;
  gdouble match_threshold;
  gboolean match_threshold_set;  /* else the model's calibrated threshold applies, if any */
  gdouble model_match_threshold; /* the loaded checkpoint's match_threshold, or NAN */
  gboolean message;
  gchar *stream_name;
  gchar *gallery_location;
  gint gallery_queue;
  gint gallery_flush_timeout;
  gboolean gallery_fp16;
  gchar *model_instance_id;                 /* NULL: an engine of its own */
  gint max_batch_latency;                   /* ms */
  gchar *input_size, *norm_mean, *norm_std; /* overrides of the model's ("HxW", "r,g,b") */
  ReidCollectProps collect_props;           /* collect-* (gstreidembed_collect.c) */

  /* streaming state, from start() to stop(), under proc_lock */
  GMutex proc_lock;
  reid_embedder *embedder;  /* owned, or the shared instance's */
  ReidSharedClient *shared; /* model-instance-id set; the pointer also under the object lock */
  reid_tracklet_pool *pool;
  reid_watchlist *watchlist;
  reid_jsonl *jsonl;
  ReidGalleryOutput *gallery;
  ReidCollect *collect; /* NULL unless collect-location is set */
  gchar *stream_label;  /* stream-name, or the element's name */
  GstVideoInfo info;
  gboolean have_info;
  gint64 frame_index; /* buffers seen since start */
  gint dim;           /* video-role embedding size */
  GArray *objects;    /* ReidObject scratch */
  reid_box *boxes;    /* [boxes_cap] scratch: boxes to embed */
  gfloat *embeddings; /* [boxes_cap, dim] scratch */
  gfloat *pooled;     /* [dim] scratch */
  gfloat *scores;     /* [watchlist count] scratch */
  gint boxes_cap;
};

GST_ELEMENT_REGISTER_DECLARE(reidembed);

/* gstreidembed_process.c: per-frame work and tracklet reporting (proc_lock held). */
typedef struct ReidFrameSettings {
  gint inference_interval, min_size, track_timeout;
  GQuark classes[REID_EMBED_MAX_CLASSES];
  gint n_classes;
  gdouble match_threshold;
  gboolean message;
} ReidFrameSettings;

GstFlowReturn gst_reid_embed_process(GstReidEmbed *self, GstBuffer *buf,
                                     const ReidFrameSettings *s);
/* Ends every live track (EOS, flush, stop) with `reason`; FALSE after posting an error. */
gboolean gst_reid_embed_end_all(GstReidEmbed *self, const ReidFrameSettings *s,
                                const gchar *reason);
void gst_reid_embed_settings(GstReidEmbed *self, ReidFrameSettings *s);

/* gstreidembed_gallery.c: the gallery output (gallery-location). */
gboolean gst_reid_embed_gallery_start(GstReidEmbed *self, const gchar *uri, const gchar *model,
                                      gint queue, gint flush_timeout_ms);
/* Flushes the queue (bounded by gallery-flush-timeout) and posts the reid-gallery counts. */
void gst_reid_embed_gallery_stop(GstReidEmbed *self);
/* Per buffer: the wall-clock time of its pts. */
void gst_reid_embed_gallery_frame_time(GstReidEmbed *self, GstBuffer *buf);
/* Whether an object of self->objects has a larger box than its track's thumbnail. */
gboolean gst_reid_embed_gallery_wants_frame(GstReidEmbed *self);
void gst_reid_embed_gallery_thumbnails(GstReidEmbed *self, const reid_frame *frame);
/* Queues a finished tracklet (pooled: its embedding). */
void gst_reid_embed_gallery_add(GstReidEmbed *self, const reid_tracklet *t, const gfloat *pooled);
/* gstreidembed_shared.c: the model, of the element's own or a shared instance
 * (model-instance-id); proc_lock held for open / close. */
reid_status gst_reid_embed_open_model(GstReidEmbed *self, const reid_embedder_options *o,
                                      const gchar *instance_id, gint max_latency_ms);
void gst_reid_embed_close_model(GstReidEmbed *self);
/* Any thread: a frame waiting for the shared engine returns GST_FLOW_FLUSHING. */
void gst_reid_embed_set_flushing(GstReidEmbed *self, gboolean flushing);
/* Embeds n boxes of a mapped frame into self->embeddings, on either kind of model. */
GstFlowReturn gst_reid_embed_run(GstReidEmbed *self, const reid_frame *frame, gint n);

G_END_DECLS
