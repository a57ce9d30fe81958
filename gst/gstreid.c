/* The `reid` plugin: reidembed (re-ID embeddings, tracklets, watchlist) and
 * reidattachroi (ROI metas from MOTChallenge files). */
#include <gst/gst.h>

#include "gstreidattachroi.h"
#include "gstreidembed.h"

#ifndef PACKAGE
#define PACKAGE "reid"
#endif

static gboolean plugin_init(GstPlugin *plugin) {
  gboolean ok = FALSE;
  ok |= GST_ELEMENT_REGISTER(reidembed, plugin);
  ok |= GST_ELEMENT_REGISTER(reidattachroi, plugin);
  return ok;
}

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, reid,
                  "Re-identification embeddings for video analytics", plugin_init, REID_VERSION,
                  "LGPL", "reid", "reid project (local build)")
