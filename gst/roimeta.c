/* See roimeta.h. */
#include "roimeta.h"

gint64 gst_reid_roi_track_id(GstVideoRegionOfInterestMeta *roi) {
  GstStructure *p = gst_video_region_of_interest_meta_get_param(roi, "object_id");
  const GValue *v = p ? gst_structure_get_value(p, "id") : NULL;
  if (v) {
    switch (G_VALUE_TYPE(v)) {
    case G_TYPE_INT: return g_value_get_int(v);
    case G_TYPE_UINT: return g_value_get_uint(v);
    case G_TYPE_INT64: return g_value_get_int64(v);
    case G_TYPE_UINT64: return (gint64)g_value_get_uint64(v);
    default: break;
    }
  }
  return roi->id;
}
