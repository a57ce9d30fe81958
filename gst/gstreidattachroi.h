/* reidattachroi: attaches the boxes of a MOTChallenge file to video frames
 * as GstVideoRegionOfInterestMeta. See gstreidattachroi.c. */
#pragma once

#include <gst/base/gstbasetransform.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#include "motfile.h"

G_BEGIN_DECLS

#define GST_TYPE_REID_ATTACH_ROI (gst_reid_attach_roi_get_type())
G_DECLARE_FINAL_TYPE(GstReidAttachRoi, gst_reid_attach_roi, GST, REID_ATTACH_ROI, GstBaseTransform)

struct _GstReidAttachRoi {
  GstBaseTransform parent;
  /* properties, under the object lock */
  gchar *location;
  gchar *roi_type;
  gint frame_offset;
  /* from start() to stop() */
  reid_mot *mot;
  GQuark roi_quark;
  GstVideoInfo info;
  gboolean have_info;
  guint64 buffers; /* since start */
};

GST_ELEMENT_REGISTER_DECLARE(reidattachroi);

G_END_DECLS
