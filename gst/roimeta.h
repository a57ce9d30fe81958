/* Reading the ROI metas that reidattachroi, DL Streamer and reidembed write:
 * one place for the conventions the plugin's elements share. */
#pragma once

#include <gst/video/video.h>

G_BEGIN_DECLS

/* The track id of a ROI meta: the `id` field of its `object_id` param
 * structure (DL Streamer's convention; any integer type), else the meta's id. */
gint64 gst_reid_roi_track_id(GstVideoRegionOfInterestMeta *roi);

G_END_DECLS
