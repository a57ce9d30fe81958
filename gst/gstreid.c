/* The `reid` plugin: reidembed (re-ID embeddings, tracklets, watchlist),
 * reidattachroi (ROI metas from MOTChallenge files) and reidoverlay (boxes,
 * track ids and watchlist matches drawn into the video). */
#include <gst/gst.h>

#include "gstreidattachroi.h"
#include "gstreidembed.h"
#if HAVE_REID_OVERLAY
#include "gstreidoverlay.h"
#endif

#ifndef PACKAGE
#define PACKAGE "reid"
#endif

static gboolean plugin_init(GstPlugin *plugin) {
  gboolean ok = FALSE;
  ok |= GST_ELEMENT_REGISTER(reidembed, plugin);
  ok |= GST_ELEMENT_REGISTER(reidattachroi, plugin);
#if HAVE_REID_OVERLAY
  ok |= GST_ELEMENT_REGISTER(reidoverlay, plugin);
#endif
  return ok;
}

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, reid,
                  "Re-identification embeddings for video analytics", plugin_init, REID_VERSION,
                  "LGPL", "reid", "reid project (local build)")
