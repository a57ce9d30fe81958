/* One model instance shared by the reidembed elements of a process that give
 * the same model-instance-id (DL Streamer's name for it): one loaded model,
 * one engine, and crops of all their frames batched together.
 *
 * Each element is a client. A client submits the boxes of one frame and
 * waits; a worker thread of the instance gathers the crops of waiting frames
 * (in arrival order, a frame's crops possibly split over two batches) until
 * it has batch-size crops, or every client of the instance is waiting, or the
 * oldest waiting frame has waited its client's max-batch-latency; then it
 * preprocesses them into one input batch, runs the engine once and hands
 * every frame its rows. A frame's embeddings are the ones it would get
 * alone (same network, same preprocessing), in its own box order, so the
 * per-stream order and metadata stay exact.
 *
 * A client waits only for its own frame: set_flushing (flush, stop) takes its
 * crops out of the queue at once; crops already inside a running batch are
 * waited for (one engine call at most). Thread-safe: every function may be
 * called from any thread; one client serves one element (one streaming
 * thread submits at a time). */
#pragma once

#include <glib.h>

#include "embedder.h"

typedef struct ReidSharedClient ReidSharedClient;

typedef enum ReidSharedResult {
  REID_SHARED_OK,
  REID_SHARED_FLUSHING, /* the client was set flushing: the frame was not embedded */
  REID_SHARED_ERROR,    /* reid_last_error() says why (in the caller's thread) */
} ReidSharedResult;

/* Joins the instance `name`, opening it (loading the model) when it is not
 * open. The model, device, GPU, precision and batch size must equal those of
 * the instance's other clients (an error names the difference).
 * max_latency_ms >= 0: how long this client's frames may wait for others. */
reid_status reid_shared_client_open(const char *name, const reid_embedder_options *o,
                                    int max_latency_ms, ReidSharedClient **out);
/* Leaves the instance; the last client closes it (worker and model). */
void reid_shared_client_close(ReidSharedClient *c);

/* The instance's embedder, for its read-only queries (dims, names). Embedding
 * with it directly (query images) must hold reid_shared_client_lock. */
reid_embedder *reid_shared_client_embedder(ReidSharedClient *c);
void reid_shared_client_lock(ReidSharedClient *c);
void reid_shared_client_unlock(ReidSharedClient *c);

/* Embeds n boxes of a frame (clipped) into out [n, dim], L2-normalised, as
 * part of shared batches. Blocks until done. The frame must stay valid. */
ReidSharedResult reid_shared_client_embed(ReidSharedClient *c, const reid_frame *frame,
                                          const reid_box *boxes, int n, float *out);
/* TRUE: the waiting frame (if any) and later ones return REID_SHARED_FLUSHING
 * without waiting for other streams; FALSE: back to normal. */
void reid_shared_client_set_flushing(ReidSharedClient *c, gboolean flushing);

/* Statistics of the client's instance since it opened: engine calls and crops. */
void reid_shared_client_stats(ReidSharedClient *c, guint64 *batches, guint64 *crops);
/* Number of open instances in the process (tests). */
int reid_shared_instances(void);
