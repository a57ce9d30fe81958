/* reidembed's collect-* properties: crops of finished tracklets written as a dataset
 * (gst/collector.h does the work; this file ties it to the element). */
#pragma once

#include <gst/gst.h>

#include "collector.h"
#include "tracklets.h"

G_BEGIN_DECLS

/* Property ids of the collect-* properties start here, clear of the element's own. */
#define GST_REID_EMBED_PROP_COLLECT_FIRST 1000

typedef struct ReidCollectProps { /* under the object lock; apply at the next start */
  gchar *location;
  gint min_frames, frames, queue_size, jpeg_quality;
  guint64 max_bytes, memory;
} ReidCollectProps;

typedef struct ReidCollect ReidCollect; /* streaming state: the collector and scratch */

typedef struct _GstReidEmbed GstReidEmbed;

void gst_reid_embed_collect_install_properties(GObjectClass *klass);
void gst_reid_embed_collect_props_init(ReidCollectProps *p);
void gst_reid_embed_collect_props_clear(ReidCollectProps *p);
/* FALSE when prop_id is not a collect-* property. Object lock held. */
gboolean gst_reid_embed_collect_set_property(ReidCollectProps *p, guint prop_id,
                                             const GValue *value);
gboolean gst_reid_embed_collect_get_property(const ReidCollectProps *p, guint prop_id,
                                             GValue *value);

/* start(): opens the collector when collect-location is set; FALSE after posting an error. */
gboolean gst_reid_embed_collect_start(GstReidEmbed *self);
/* stop(): writes what is queued, posts reid-collect-summary, frees. */
void gst_reid_embed_collect_stop(GstReidEmbed *self);
/* Per frame (proc_lock held): which of self->objects need a crop now (count, -1 after
 * posting an error), then the copies while the frame is mapped. */
gint gst_reid_embed_collect_observe(GstReidEmbed *self, GstClockTime pts);
gboolean gst_reid_embed_collect_copy(GstReidEmbed *self, const reid_frame *frame);
/* A track ended: hand its crops to the writer. */
void gst_reid_embed_collect_end(GstReidEmbed *self, const reid_tracklet *t);

G_END_DECLS
