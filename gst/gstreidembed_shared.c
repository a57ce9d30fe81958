/* reidembed's model: an embedder of its own, or a client of a shared model
 * instance (model-instance-id, gst/shared_engine.h). */
#include "gstreidembed.h"

GST_DEBUG_CATEGORY_EXTERN(gst_reid_embed_debug);
#define GST_CAT_DEFAULT gst_reid_embed_debug

reid_status gst_reid_embed_open_model(GstReidEmbed *self, const reid_embedder_options *o,
                                      const gchar *instance_id, gint max_latency_ms) {
  if (!instance_id || !*instance_id) return reid_embedder_open(o, &self->embedder);
  ReidSharedClient *client;
  REID_TRY(reid_shared_client_open(instance_id, o, max_latency_ms, &client));
  GST_OBJECT_LOCK(self);
  self->shared = client;
  GST_OBJECT_UNLOCK(self);
  self->embedder = reid_shared_client_embedder(client);
  GST_INFO_OBJECT(self, "model instance '%s' (max-batch-latency %d ms)", instance_id,
                  max_latency_ms);
  return REID_OK;
}

void gst_reid_embed_close_model(GstReidEmbed *self) {
  GST_OBJECT_LOCK(self);
  ReidSharedClient *client = self->shared;
  self->shared = NULL;
  GST_OBJECT_UNLOCK(self);
  if (client)
    reid_shared_client_close(client); /* the embedder belongs to the instance */
  else
    reid_embedder_close(self->embedder);
  self->embedder = NULL;
}

void gst_reid_embed_set_flushing(GstReidEmbed *self, gboolean flushing) {
  /* under the object lock: stop() cannot close the client meanwhile */
  GST_OBJECT_LOCK(self);
  if (self->shared) reid_shared_client_set_flushing(self->shared, flushing);
  GST_OBJECT_UNLOCK(self);
}

GstFlowReturn gst_reid_embed_run(GstReidEmbed *self, const reid_frame *frame, gint n) {
  if (!self->shared) {
    if (reid_embedder_embed_boxes(self->embedder, frame, self->boxes, n, self->embeddings) ==
        REID_OK)
      return GST_FLOW_OK;
  } else {
    switch (reid_shared_client_embed(self->shared, frame, self->boxes, n, self->embeddings)) {
    case REID_SHARED_OK: return GST_FLOW_OK;
    case REID_SHARED_FLUSHING:
      GST_DEBUG_OBJECT(self, "frame %" G_GINT64_FORMAT ": flushing", self->frame_index);
      return GST_FLOW_FLUSHING;
    case REID_SHARED_ERROR: break;
    }
  }
  GST_ELEMENT_ERROR(self, STREAM, FAILED, ("embedding %d objects failed: %s", n, reid_last_error()),
                    (NULL));
  return GST_FLOW_ERROR;
}
