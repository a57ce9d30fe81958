/**
 * SECTION:element-reidembed
 * @title: reidembed
 *
 * Computes a re-identification embedding for every object of a video frame
 * (each #GstVideoRegionOfInterestMeta on the buffer; with GStreamer >= 1.24
 * also the analytics relation meta's object-detection mtds), pools them per
 * track into tracklet embeddings, reports finished tracklets as bus messages
 * and JSON lines, compares them with a watchlist of query images, and collects
 * the crops of finished tracklets as a dataset for reid-train (collect-location).
 *
 * The track id is the `id` field of the ROI meta's `object_id` param
 * structure (DL Streamer's convention), else the meta's own id. Each
 * processed object gets two param structures on its ROI meta:
 * `reid-embedding` (this frame's embedding; fields model, dims, data as
 * #GBytes of float32, frame-count = 1) and `reid-track-embedding` (the
 * track's pooled embedding so far; same fields, frame-count = frames pooled,
 * plus track-id). With inference-interval N a track is embedded at most
 * every N frames; in the other frames its objects get only the pooled value.
 * With a watchlist, a track whose pooled embedding (scored again whenever
 * it changes) has a closest query at or above match-threshold also gets
 * `reid-match` (query, query-index, score, threshold): what reidoverlay draws.
 *
 * Buffers pass through unchanged but for metadata; frames are mapped
 * read-only.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 -m filesrc location=walk.mp4 ! decodebin ! videoconvert ! \
 *     reidattachroi location=walk.mot ! \
 *     reidembed model=resnet50.safetensors tracklet-location=tracklets.jsonl ! fakesink
 * ]|
 */
#include "gstreidembed.h"

#include <math.h>
#include <string.h>

GST_DEBUG_CATEGORY(gst_reid_embed_debug);
#define GST_CAT_DEFAULT gst_reid_embed_debug

#define DEFAULT_PROP_MODEL              NULL
#define DEFAULT_PROP_DEVICE             GST_REID_DEVICE_AUTO
#define DEFAULT_PROP_GPU_ID             0
#define DEFAULT_PROP_BATCH_SIZE         16
#define DEFAULT_PROP_PRECISION          GST_REID_PRECISION_FP32
#define DEFAULT_PROP_INFERENCE_INTERVAL 1
#define DEFAULT_PROP_OBJECT_CLASS       ""
#define DEFAULT_PROP_MIN_SIZE           0
#define DEFAULT_PROP_TRACK_TIMEOUT      30
#define DEFAULT_PROP_TRACKLET_LOCATION  NULL
#define DEFAULT_PROP_QUERY_LOCATION     NULL
#define DEFAULT_PROP_MATCH_THRESHOLD    0.7
#define DEFAULT_PROP_MESSAGE            TRUE
#define DEFAULT_PROP_STREAM_NAME        NULL
#define DEFAULT_PROP_GALLERY_LOCATION   NULL
#define DEFAULT_PROP_GALLERY_QUEUE      1000
#define DEFAULT_PROP_GALLERY_FLUSH      10000
#define DEFAULT_PROP_GALLERY_FP16       FALSE
#define DEFAULT_PROP_MODEL_INSTANCE_ID  NULL
#define DEFAULT_PROP_MAX_BATCH_LATENCY  10
#define DEFAULT_PROP_INPUT_SIZE         NULL

enum {
  PROP_0,
  PROP_MODEL,
  PROP_DEVICE,
  PROP_GPU_ID,
  PROP_BATCH_SIZE,
  PROP_PRECISION,
  PROP_INFERENCE_INTERVAL,
  PROP_OBJECT_CLASS,
  PROP_MIN_SIZE,
  PROP_TRACK_TIMEOUT,
  PROP_TRACKLET_LOCATION,
  PROP_QUERY_LOCATION,
  PROP_MATCH_THRESHOLD,
  PROP_MESSAGE,
  PROP_STREAM_NAME,
  PROP_GALLERY_LOCATION,
  PROP_GALLERY_QUEUE,
  PROP_GALLERY_FLUSH_TIMEOUT,
  PROP_GALLERY_FP16,
  PROP_MODEL_INSTANCE_ID,
  PROP_MAX_BATCH_LATENCY,
  PROP_INPUT_SIZE,
  PROP_MEAN,
  PROP_STD,
};

#define REID_CAPS GST_VIDEO_CAPS_MAKE("{ NV12, I420, RGB, BGR, RGBA, BGRA, BGRx, RGBx }")

static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS(REID_CAPS));
static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS(REID_CAPS));

G_DEFINE_TYPE(GstReidEmbed, gst_reid_embed, GST_TYPE_BASE_TRANSFORM);
GST_ELEMENT_REGISTER_DEFINE(reidembed, "reidembed", GST_RANK_NONE, GST_TYPE_REID_EMBED);

GType gst_reid_device_get_type(void) {
  static GType type = 0;
  static const GEnumValue values[] = {
      {GST_REID_DEVICE_AUTO, "CUDA when a GPU is usable, else the CPU", "auto"},
      {GST_REID_DEVICE_CPU, "CPU (oneDNN)", "cpu"},
      {GST_REID_DEVICE_CUDA, "CUDA GPU (fails at start without one)", "cuda"},
      {0, NULL, NULL},
  };
  if (g_once_init_enter(&type))
    g_once_init_leave(&type, g_enum_register_static("GstReidDevice", values));
  return type;
}

GType gst_reid_precision_get_type(void) {
  static GType type = 0;
  static const GEnumValue values[] = {
      {GST_REID_PRECISION_FP32, "float32", "fp32"},
      {GST_REID_PRECISION_TF32, "TF32 tensor cores (CUDA)", "tf32"},
      {GST_REID_PRECISION_FP16, "float16 (CUDA)", "fp16"},
      {GST_REID_PRECISION_BF16, "bfloat16 (CPU with AVX512-BF16, CUDA)", "bf16"},
      {GST_REID_PRECISION_INT8, "int8 (CPU, CUDA; models written by reid-train quantize)", "int8"},
      {0, NULL, NULL},
  };
  if (g_once_init_enter(&type))
    g_once_init_leave(&type, g_enum_register_static("GstReidPrecision", values));
  return type;
}

/* ------------------------------------------------------------ properties */

/* "person, car" -> quarks; unknown class names are fine (they never match). */
static void parse_classes(GstReidEmbed *self, const gchar *list) {
  self->n_classes = 0;
  if (!list) return;
  gchar **parts = g_strsplit(list, ",", -1);
  for (gchar **p = parts; *p; p++) {
    gchar *name = g_strstrip(*p);
    if (!*name) continue;
    if (self->n_classes == REID_EMBED_MAX_CLASSES) {
      g_warning(
          "reidembed: object-class lists more than %d classes; '%s' and later ones are ignored",
          REID_EMBED_MAX_CLASSES, name);
      break;
    }
    self->classes[self->n_classes++] = g_quark_from_string(name);
  }
  g_strfreev(parts);
}

/* A set match-threshold wins; unset, the model's calibrated one, else the default (object
 * lock held). */
static gdouble effective_threshold(const GstReidEmbed *self) {
  if (self->match_threshold_set || isnan(self->model_match_threshold)) return self->match_threshold;
  return self->model_match_threshold;
}

static void gst_reid_embed_set_property(GObject *object, guint prop_id, const GValue *value,
                                        GParamSpec *pspec) {
  GstReidEmbed *self = GST_REID_EMBED(object);
  GST_OBJECT_LOCK(self);
  switch (prop_id) {
  case PROP_MODEL: g_free(self->model), self->model = g_value_dup_string(value); break;
  case PROP_DEVICE: self->device = g_value_get_enum(value); break;
  case PROP_GPU_ID: self->gpu_id = g_value_get_int(value); break;
  case PROP_BATCH_SIZE: self->batch_size = g_value_get_int(value); break;
  case PROP_PRECISION: self->precision = g_value_get_enum(value); break;
  case PROP_INFERENCE_INTERVAL: self->inference_interval = g_value_get_int(value); break;
  case PROP_OBJECT_CLASS:
    g_free(self->object_class);
    self->object_class = g_value_dup_string(value);
    parse_classes(self, self->object_class);
    break;
  case PROP_MIN_SIZE: self->min_size = g_value_get_int(value); break;
  case PROP_TRACK_TIMEOUT: self->track_timeout = g_value_get_int(value); break;
  case PROP_TRACKLET_LOCATION:
    g_free(self->tracklet_location), self->tracklet_location = g_value_dup_string(value);
    break;
  case PROP_QUERY_LOCATION:
    g_free(self->query_location), self->query_location = g_value_dup_string(value);
    break;
  case PROP_MATCH_THRESHOLD:
    self->match_threshold = g_value_get_double(value);
    self->match_threshold_set = TRUE;
    break;
  case PROP_MESSAGE: self->message = g_value_get_boolean(value); break;
  case PROP_STREAM_NAME:
    g_free(self->stream_name), self->stream_name = g_value_dup_string(value);
    break;
  case PROP_GALLERY_LOCATION:
    g_free(self->gallery_location), self->gallery_location = g_value_dup_string(value);
    break;
  case PROP_GALLERY_QUEUE: self->gallery_queue = g_value_get_int(value); break;
  case PROP_GALLERY_FLUSH_TIMEOUT: self->gallery_flush_timeout = g_value_get_int(value); break;
  case PROP_GALLERY_FP16: self->gallery_fp16 = g_value_get_boolean(value); break;
  case PROP_MODEL_INSTANCE_ID:
    g_free(self->model_instance_id), self->model_instance_id = g_value_dup_string(value);
    break;
  case PROP_MAX_BATCH_LATENCY: self->max_batch_latency = g_value_get_int(value); break;
  case PROP_INPUT_SIZE:
    g_free(self->input_size), self->input_size = g_value_dup_string(value);
    break;
  case PROP_MEAN: g_free(self->norm_mean), self->norm_mean = g_value_dup_string(value); break;
  case PROP_STD: g_free(self->norm_std), self->norm_std = g_value_dup_string(value); break;
  default:
    if (!gst_reid_embed_collect_set_property(&self->collect_props, prop_id, value))
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
    break;
  }
  GST_OBJECT_UNLOCK(self);
}

static void gst_reid_embed_get_property(GObject *object, guint prop_id, GValue *value,
                                        GParamSpec *pspec) {
  GstReidEmbed *self = GST_REID_EMBED(object);
  GST_OBJECT_LOCK(self);
  switch (prop_id) {
  case PROP_MODEL: g_value_set_string(value, self->model); break;
  case PROP_DEVICE: g_value_set_enum(value, self->device); break;
  case PROP_GPU_ID: g_value_set_int(value, self->gpu_id); break;
  case PROP_BATCH_SIZE: g_value_set_int(value, self->batch_size); break;
  case PROP_PRECISION: g_value_set_enum(value, self->precision); break;
  case PROP_INFERENCE_INTERVAL: g_value_set_int(value, self->inference_interval); break;
  case PROP_OBJECT_CLASS: g_value_set_string(value, self->object_class); break;
  case PROP_MIN_SIZE: g_value_set_int(value, self->min_size); break;
  case PROP_TRACK_TIMEOUT: g_value_set_int(value, self->track_timeout); break;
  case PROP_TRACKLET_LOCATION: g_value_set_string(value, self->tracklet_location); break;
  case PROP_QUERY_LOCATION: g_value_set_string(value, self->query_location); break;
  case PROP_MATCH_THRESHOLD: g_value_set_double(value, effective_threshold(self)); break;
  case PROP_MESSAGE: g_value_set_boolean(value, self->message); break;
  case PROP_STREAM_NAME: g_value_set_string(value, self->stream_name); break;
  case PROP_GALLERY_LOCATION: g_value_set_string(value, self->gallery_location); break;
  case PROP_GALLERY_QUEUE: g_value_set_int(value, self->gallery_queue); break;
  case PROP_GALLERY_FLUSH_TIMEOUT: g_value_set_int(value, self->gallery_flush_timeout); break;
  case PROP_GALLERY_FP16: g_value_set_boolean(value, self->gallery_fp16); break;
  case PROP_MODEL_INSTANCE_ID: g_value_set_string(value, self->model_instance_id); break;
  case PROP_MAX_BATCH_LATENCY: g_value_set_int(value, self->max_batch_latency); break;
  case PROP_INPUT_SIZE: g_value_set_string(value, self->input_size); break;
  case PROP_MEAN: g_value_set_string(value, self->norm_mean); break;
  case PROP_STD: g_value_set_string(value, self->norm_std); break;
  default:
    if (!gst_reid_embed_collect_get_property(&self->collect_props, prop_id, value))
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
    break;
  }
  GST_OBJECT_UNLOCK(self);
}

void gst_reid_embed_settings(GstReidEmbed *self, ReidFrameSettings *s) {
  GST_OBJECT_LOCK(self);
  s->inference_interval = self->inference_interval;
  s->min_size = self->min_size;
  s->track_timeout = self->track_timeout;
  s->n_classes = self->n_classes;
  memcpy(s->classes, self->classes, sizeof(GQuark) * (gsize)self->n_classes);
  s->match_threshold = effective_threshold(self);
  s->message = self->message;
  GST_OBJECT_UNLOCK(self);
}

/* ------------------------------------------------------------ start / stop */

static void free_streaming_state(GstReidEmbed *self) {
  gst_reid_embed_gallery_stop(self); /* flushes what the stop's end_all queued */
  gst_reid_embed_collect_stop(self); /* writes what is queued first */
  reid_jsonl_close(self->jsonl);
  reid_watchlist_free(self->watchlist);
  reid_tracklet_pool_destroy(self->pool);
  gst_reid_embed_close_model(self);
  self->jsonl = NULL;
  self->watchlist = NULL;
  self->pool = NULL;
  self->embedder = NULL;
  g_clear_pointer(&self->stream_label, g_free);
  g_clear_pointer(&self->boxes, g_free);
  g_clear_pointer(&self->embeddings, g_free);
  g_clear_pointer(&self->pooled, g_free);
  g_clear_pointer(&self->scores, g_free);
  self->boxes_cap = 0;
  self->have_info = FALSE;
}

/* The library's message names the file when the file is at fault; otherwise
 * say which model was being loaded. */
static gchar *model_error_text(const gchar *path, const gchar *lib_message) {
  if (path && g_str_has_prefix(lib_message, path)) return g_strdup(lib_message);
  return g_strdup_printf("model '%s': %s", path ? path : "(none)", lib_message);
}

static gboolean gst_reid_embed_start(GstBaseTransform *trans) {
  GstReidEmbed *self = GST_REID_EMBED(trans);
  static const char *const devices[] = {"auto", "cpu", "cuda"};
  GST_OBJECT_LOCK(self);
  gchar *model = g_strdup(self->model);
  gchar *tracklets = g_strdup(self->tracklet_location);
  gchar *queries = g_strdup(self->query_location);
  gchar *label = g_strdup(self->stream_name ? self->stream_name : GST_OBJECT_NAME(self));
  gchar *gallery = g_strdup(self->gallery_location);
  gint gallery_queue = self->gallery_queue, gallery_flush = self->gallery_flush_timeout;
  gchar *instance = g_strdup(self->model_instance_id);
  gint latency = self->max_batch_latency;
  gchar *size = g_strdup(self->input_size), *mean = g_strdup(self->norm_mean),
        *std = g_strdup(self->norm_std);
  reid_embedder_options opt = {.model_path = model,
                               .device = devices[self->device],
                               .gpu_id = self->gpu_id,
                               .batch_size = self->batch_size,
                               .precision = (reid_precision)self->precision,
                               .input_size = size,
                               .mean = mean,
                               .std = std};
  GST_OBJECT_UNLOCK(self);

  g_mutex_lock(&self->proc_lock);
  self->stream_label = label;
  self->frame_index = 0;
  gboolean ok = FALSE;
  reid_status st = gst_reid_embed_open_model(self, &opt, instance, latency);
  if (st != REID_OK) {
    gchar *text = model_error_text(model, reid_last_error());
    if (st == REID_EIO)
      GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ, ("%s", text),
                        ("reid status %s", reid_status_name(st)));
    else if (st == REID_EUNSUPPORTED || st == REID_EINVAL)
      GST_ELEMENT_ERROR(self, RESOURCE, SETTINGS, ("%s", text),
                        ("reid status %s", reid_status_name(st)));
    else
      GST_ELEMENT_ERROR(self, RESOURCE, FAILED, ("%s", text),
                        ("reid status %s", reid_status_name(st)));
    g_free(text);
    goto done;
  }
  self->dim = reid_embedder_dim(self->embedder, REID_ROLE_VIDEO);
  GST_OBJECT_LOCK(self);
  self->model_match_threshold = reid_embedder_match_threshold(self->embedder);
  GST_OBJECT_UNLOCK(self);
  GST_INFO_OBJECT(self, "model %s: %s", model, reid_embedder_describe(self->embedder));
  if (reid_tracklet_pool_create(self->dim, &self->pool) != REID_OK) {
    GST_ELEMENT_ERROR(self, RESOURCE, FAILED, ("%s", reid_last_error()), (NULL));
    goto done;
  }
  self->pooled = g_new0(gfloat, self->dim);
  if (queries && *queries) {
    if (self->shared) reid_shared_client_lock(self->shared);
    st = reid_watchlist_load(queries, self->embedder, &self->watchlist);
    if (self->shared) reid_shared_client_unlock(self->shared);
    if (st != REID_OK) {
      GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ, ("%s", reid_last_error()), (NULL));
      goto done;
    }
    if (self->watchlist->dim != self->dim) {
      GST_ELEMENT_ERROR(
          self, RESOURCE, SETTINGS,
          ("model '%s': query images give %d-dimensional embeddings but tracklets %d; "
           "they cannot be compared",
           model, self->watchlist->dim, self->dim),
          (NULL));
      goto done;
    }
    self->scores = g_new0(gfloat, self->watchlist->count);
    GST_INFO_OBJECT(self, "watchlist %s: %d queries", queries, self->watchlist->count);
  }
  if (tracklets && *tracklets && reid_jsonl_open(tracklets, &self->jsonl) != REID_OK) {
    GST_ELEMENT_ERROR(self, RESOURCE, OPEN_WRITE, ("tracklet-location: %s", reid_last_error()),
                      (NULL));
    goto done;
  }
  if (gallery && *gallery &&
      !gst_reid_embed_gallery_start(self, gallery, model, gallery_queue, gallery_flush))
    goto done;
  if (!gst_reid_embed_collect_start(self)) goto done;
  ok = TRUE;
done:
  if (!ok) free_streaming_state(self);
  g_mutex_unlock(&self->proc_lock);
  g_free(model);
  g_free(tracklets);
  g_free(queries);
  g_free(gallery);
  g_free(instance);
  g_free(size);
  g_free(mean);
  g_free(std);
  return ok;
}

static gboolean gst_reid_embed_stop(GstBaseTransform *trans) {
  GstReidEmbed *self = GST_REID_EMBED(trans);
  ReidFrameSettings s;
  gst_reid_embed_settings(self, &s);
  g_mutex_lock(&self->proc_lock);
  /* tracks still alive (no EOS before the stop) are reported, not lost */
  if (self->pool) gst_reid_embed_end_all(self, &s, "stop");
  free_streaming_state(self);
  g_mutex_unlock(&self->proc_lock);
  return TRUE;
}

/* ------------------------------------------------------------ streaming */

static gboolean gst_reid_embed_set_caps(GstBaseTransform *trans, GstCaps *incaps,
                                        GstCaps *outcaps) {
  GstReidEmbed *self = GST_REID_EMBED(trans);
  (void)outcaps;
  GstVideoInfo info;
  if (!gst_video_info_from_caps(&info, incaps)) {
    GST_ERROR_OBJECT(self, "cannot parse caps %" GST_PTR_FORMAT, incaps);
    return FALSE;
  }
  g_mutex_lock(&self->proc_lock);
  self->info = info;
  self->have_info = TRUE;
  g_mutex_unlock(&self->proc_lock);
  return TRUE;
}

static gboolean gst_reid_embed_sink_event(GstBaseTransform *trans, GstEvent *event) {
  GstReidEmbed *self = GST_REID_EMBED(trans);
  const gchar *reason = NULL;
  if (GST_EVENT_TYPE(event) == GST_EVENT_EOS)
    reason = "eos";
  else if (GST_EVENT_TYPE(event) == GST_EVENT_FLUSH_STOP)
    reason = "flush";
  /* a frame waiting for a shared engine gives up at once (it never waits on other streams) */
  if (GST_EVENT_TYPE(event) == GST_EVENT_FLUSH_START) gst_reid_embed_set_flushing(self, TRUE);
  if (GST_EVENT_TYPE(event) == GST_EVENT_FLUSH_STOP) gst_reid_embed_set_flushing(self, FALSE);
  if (reason) {
    ReidFrameSettings s;
    gst_reid_embed_settings(self, &s);
    g_mutex_lock(&self->proc_lock);
    if (self->pool) gst_reid_embed_end_all(self, &s, reason);
    g_mutex_unlock(&self->proc_lock);
  }
  return GST_BASE_TRANSFORM_CLASS(gst_reid_embed_parent_class)->sink_event(trans, event);
}

static GstFlowReturn gst_reid_embed_transform_ip(GstBaseTransform *trans, GstBuffer *buf) {
  GstReidEmbed *self = GST_REID_EMBED(trans);
  ReidFrameSettings s;
  gst_reid_embed_settings(self, &s);
  g_mutex_lock(&self->proc_lock);
  GstFlowReturn ret;
  if (!self->have_info) {
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, ("no caps before the first buffer"), (NULL));
    ret = GST_FLOW_NOT_NEGOTIATED;
  } else if (!self->pool) {
    GST_ELEMENT_ERROR(self, CORE, STATE_CHANGE, ("buffer before start"), (NULL));
    ret = GST_FLOW_ERROR;
  } else {
    ret = gst_reid_embed_process(self, buf, &s);
  }
  g_mutex_unlock(&self->proc_lock);
  return ret;
}

static GstStateChangeReturn gst_reid_embed_change_state(GstElement *element,
                                                        GstStateChange transition) {
  GstReidEmbed *self = GST_REID_EMBED(element);
  /* stopping: a frame waiting for a shared engine returns before the pads deactivate */
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY) gst_reid_embed_set_flushing(self, TRUE);
  return GST_ELEMENT_CLASS(gst_reid_embed_parent_class)->change_state(element, transition);
}

/* ------------------------------------------------------------ GObject */

static void gst_reid_embed_finalize(GObject *object) {
  GstReidEmbed *self = GST_REID_EMBED(object);
  free_streaming_state(self);
  g_array_free(self->objects, TRUE);
  g_free(self->model);
  g_free(self->object_class);
  g_free(self->tracklet_location);
  g_free(self->query_location);
  g_free(self->stream_name);
  g_free(self->gallery_location);
  g_free(self->model_instance_id);
  g_free(self->input_size);
  g_free(self->norm_mean);
  g_free(self->norm_std);
  gst_reid_embed_collect_props_clear(&self->collect_props);
  g_mutex_clear(&self->proc_lock);
  G_OBJECT_CLASS(gst_reid_embed_parent_class)->finalize(object);
}

static void gst_reid_embed_init(GstReidEmbed *self) {
  self->model = g_strdup(DEFAULT_PROP_MODEL);
  self->device = DEFAULT_PROP_DEVICE;
  self->gpu_id = DEFAULT_PROP_GPU_ID;
  self->batch_size = DEFAULT_PROP_BATCH_SIZE;
  self->precision = DEFAULT_PROP_PRECISION;
  self->inference_interval = DEFAULT_PROP_INFERENCE_INTERVAL;
  self->object_class = g_strdup(DEFAULT_PROP_OBJECT_CLASS);
  self->min_size = DEFAULT_PROP_MIN_SIZE;
  self->track_timeout = DEFAULT_PROP_TRACK_TIMEOUT;
  self->tracklet_location = g_strdup(DEFAULT_PROP_TRACKLET_LOCATION);
  self->query_location = g_strdup(DEFAULT_PROP_QUERY_LOCATION);
  self->match_threshold = DEFAULT_PROP_MATCH_THRESHOLD;
  self->model_match_threshold = NAN;
  self->message = DEFAULT_PROP_MESSAGE;
  self->stream_name = g_strdup(DEFAULT_PROP_STREAM_NAME);
  self->gallery_location = g_strdup(DEFAULT_PROP_GALLERY_LOCATION);
  self->gallery_queue = DEFAULT_PROP_GALLERY_QUEUE;
  self->gallery_flush_timeout = DEFAULT_PROP_GALLERY_FLUSH;
  self->gallery_fp16 = DEFAULT_PROP_GALLERY_FP16;
  self->model_instance_id = g_strdup(DEFAULT_PROP_MODEL_INSTANCE_ID);
  self->max_batch_latency = DEFAULT_PROP_MAX_BATCH_LATENCY;
  gst_reid_embed_collect_props_init(&self->collect_props);
  g_mutex_init(&self->proc_lock);
  self->objects = g_array_new(FALSE, FALSE, sizeof(ReidObject));
  gst_base_transform_set_in_place(GST_BASE_TRANSFORM(self), TRUE);
  gst_base_transform_set_passthrough(GST_BASE_TRANSFORM(self), FALSE);
}

static void gst_reid_embed_class_init(GstReidEmbedClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS(klass);
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS;
  const GParamFlags rw_ready = rw | GST_PARAM_MUTABLE_READY;
  const GParamFlags rw_playing = rw | GST_PARAM_MUTABLE_PLAYING;

  gobject_class->set_property = gst_reid_embed_set_property;
  gobject_class->get_property = gst_reid_embed_get_property;
  gobject_class->finalize = gst_reid_embed_finalize;

  /**
   * GstReidEmbed:model:
   * The model to load at start: a checkpoint (.safetensors) of one network,
   * or an MDKT pair whose video_model / image_model metadata name the networks
   * that embed tracklets and query images (reid-train names the student for
   * both); or an ONNX file (.onnx) whose operators the network graph supports
   * (README: ONNX import).
   */
  g_object_class_install_property(
      gobject_class, PROP_MODEL,
      g_param_spec_string("model", "Model", "Model file (.safetensors or .onnx); required",
                          DEFAULT_PROP_MODEL, rw_ready));
  g_object_class_install_property(
      gobject_class, PROP_DEVICE,
      g_param_spec_enum("device", "Device", "Where the network runs: auto, cpu or cuda",
                        gst_reid_device_get_type(), DEFAULT_PROP_DEVICE, rw_ready));
  g_object_class_install_property(gobject_class, PROP_GPU_ID,
                                  g_param_spec_int("gpu-id", "GPU id",
                                                   "CUDA device index (device=cuda or auto)", 0, 63,
                                                   DEFAULT_PROP_GPU_ID, rw_ready));
  g_object_class_install_property(gobject_class, PROP_BATCH_SIZE,
                                  g_param_spec_int("batch-size", "Batch size",
                                                   "Crops per network call", 1, 1024,
                                                   DEFAULT_PROP_BATCH_SIZE, rw_ready));
  g_object_class_install_property(
      gobject_class, PROP_PRECISION,
      g_param_spec_enum("precision", "Precision",
                        "Inference precision: fp32; bf16 on CPUs with AVX512-BF16; int8 on the "
                        "CPU and CUDA for models written by reid-train quantize; tf32, fp16, bf16 "
                        "on CUDA "
                        "(an unsupported one, or int8 with a float model, fails at start)",
                        gst_reid_precision_get_type(), DEFAULT_PROP_PRECISION, rw_ready));
  /**
   * GstReidEmbed:inference-interval:
   * Embed each track at most every N frames; in between, its objects get
   * only the pooled embedding and the track stays alive.
   */
  g_object_class_install_property(gobject_class, PROP_INFERENCE_INTERVAL,
                                  g_param_spec_int("inference-interval", "Inference interval",
                                                   "Embed each track at most every N frames", 1,
                                                   G_MAXINT, DEFAULT_PROP_INFERENCE_INTERVAL,
                                                   rw_playing));
  g_object_class_install_property(
      gobject_class, PROP_OBJECT_CLASS,
      g_param_spec_string("object-class", "Object class",
                          "Comma-separated ROI types to process (e.g. \"person,car\"); empty: all",
                          DEFAULT_PROP_OBJECT_CLASS, rw_playing));
  g_object_class_install_property(
      gobject_class, PROP_MIN_SIZE,
      g_param_spec_int("min-size", "Minimum size",
                       "Boxes narrower or lower than this many pixels (after clipping) are skipped",
                       0, G_MAXINT, DEFAULT_PROP_MIN_SIZE, rw_playing));
  g_object_class_install_property(
      gobject_class, PROP_TRACK_TIMEOUT,
      g_param_spec_int("track-timeout", "Track timeout",
                       "A track ends after this many consecutive frames without it", 1, G_MAXINT,
                       DEFAULT_PROP_TRACK_TIMEOUT, rw_playing));
  /**
   * GstReidEmbed:tracklet-location:
   * File that gets one JSON line per finished tracklet and per watchlist
   * match (appended; opened at start, which fails if it cannot be).
   */
  g_object_class_install_property(
      gobject_class, PROP_TRACKLET_LOCATION,
      g_param_spec_string("tracklet-location", "Tracklet location",
                          "JSON-lines file for finished tracklets and matches (appended)",
                          DEFAULT_PROP_TRACKLET_LOCATION, rw_ready));
  g_object_class_install_property(
      gobject_class, PROP_QUERY_LOCATION,
      g_param_spec_string("query-location", "Query location",
                          "Watchlist: a folder of query images or a text file listing them",
                          DEFAULT_PROP_QUERY_LOCATION, rw_ready));
  g_object_class_install_property(
      gobject_class, PROP_MATCH_THRESHOLD,
      g_param_spec_double("match-threshold", "Match threshold",
                          "Cosine similarity at or above which a tracklet matches a query "
                          "(unset: the model's calibrated match_threshold, else 0.7)",
                          -1.0, 1.0, DEFAULT_PROP_MATCH_THRESHOLD, rw_playing));
  g_object_class_install_property(
      gobject_class, PROP_MESSAGE,
      g_param_spec_boolean("message", "Message",
                           "Post reid-tracklet and reid-match element messages on the bus",
                           DEFAULT_PROP_MESSAGE, rw_playing));
  g_object_class_install_property(
      gobject_class, PROP_STREAM_NAME,
      g_param_spec_string("stream-name", "Stream name",
                          "Name of the stream in messages and JSON lines (default: element name)",
                          DEFAULT_PROP_STREAM_NAME, rw_ready));
  /**
   * GstReidEmbed:model-instance-id:
   * Elements of a process with the same id share one loaded model and one
   * engine (model, device, gpu-id, precision and batch-size must agree) and
   * their crops are batched together (gst/shared_engine.h).
   */
  g_object_class_install_property(
      gobject_class, PROP_MODEL_INSTANCE_ID,
      g_param_spec_string("model-instance-id", "Model instance id",
                          "Share one model and engine with the elements of this id; "
                          "batch their crops together (empty: an engine of its own)",
                          DEFAULT_PROP_MODEL_INSTANCE_ID, rw_ready));
  g_object_class_install_property(
      gobject_class, PROP_MAX_BATCH_LATENCY,
      g_param_spec_int("max-batch-latency", "Max batch latency",
                       "With model-instance-id: how many ms a frame may wait for other "
                       "streams' crops to fill a batch",
                       0, 10000, DEFAULT_PROP_MAX_BATCH_LATENCY, rw_ready));
  /**
   * GstReidEmbed:input-size:
   * "HxW": the size crops are resized to, instead of the model's (an ONNX
   * graph with a dynamic input and no input_height/input_width metadata runs
   * 256x128; a graph with a fixed input size refuses another).
   */
  g_object_class_install_property(
      gobject_class, PROP_INPUT_SIZE,
      g_param_spec_string("input-size", "Input size",
                          "Network input HxW, e.g. 256x128 (empty: the model's)",
                          DEFAULT_PROP_INPUT_SIZE, rw_ready));
  /**
   * GstReidEmbed:mean:
   * "r,g,b" on the 0..1 scale: normalisation mean, instead of the model's
   * (a model that names none: ImageNet's 0.485,0.456,0.406).
   */
  g_object_class_install_property(
      gobject_class, PROP_MEAN,
      g_param_spec_string("mean", "Mean", "Normalisation mean r,g,b (empty: the model's)", NULL,
                          rw_ready));
  /**
   * GstReidEmbed:std:
   * "r,g,b": normalisation std, instead of the model's (default ImageNet's
   * 0.229,0.224,0.225).
   */
  g_object_class_install_property(
      gobject_class, PROP_STD,
      g_param_spec_string("std", "Std", "Normalisation std r,g,b (empty: the model's)", NULL,
                          rw_ready));
  gst_reid_embed_collect_install_properties(gobject_class);

  /**
   * GstReidEmbed:gallery-location:
   * Tracklet gallery that gets one row per finished tracklet (times, box,
   * embedding, thumbnail): an SQLite file (PATH or sqlite:PATH) or a
   * PostgreSQL URI (postgresql://...). Written by a thread of its own; a
   * gallery made by another model fails at start. See README "Gallery".
   */
  g_object_class_install_property(
      gobject_class, PROP_GALLERY_LOCATION,
      g_param_spec_string("gallery-location", "Gallery location",
                          "Tracklet gallery: SQLite file (PATH, sqlite:PATH) or postgresql:// URI",
                          DEFAULT_PROP_GALLERY_LOCATION, rw_ready));
  g_object_class_install_property(
      gobject_class, PROP_GALLERY_QUEUE,
      g_param_spec_int("gallery-queue", "Gallery queue",
                       "Tracklets waiting for the database at most; more are dropped and counted",
                       1, G_MAXINT, DEFAULT_PROP_GALLERY_QUEUE, rw_ready));
  g_object_class_install_property(
      gobject_class, PROP_GALLERY_FLUSH_TIMEOUT,
      g_param_spec_int("gallery-flush-timeout", "Gallery flush timeout",
                       "Milliseconds the stop waits for the database to take the queued "
                       "tracklets (the rest are dropped and counted)",
                       0, G_MAXINT, DEFAULT_PROP_GALLERY_FLUSH, rw_ready));
  /**
   * GstReidEmbed:gallery-fp16:
   *
   * Store the embeddings of a new gallery as float16 (half the space; cosines
   * change by about 1e-3). The gallery's first writer decides; later writers
   * and reid-search read the type from the gallery.
   */
  g_object_class_install_property(
      gobject_class, PROP_GALLERY_FP16,
      g_param_spec_boolean("gallery-fp16", "Gallery float16",
                           "A new gallery stores embeddings as float16 (half the size); an "
                           "existing gallery keeps the type it was made with",
                           DEFAULT_PROP_GALLERY_FP16, rw_ready));

  gst_element_class_set_static_metadata(
      element_class, "Re-identification embeddings", "Filter/Analyzer/Video",
      "Embeds the objects (ROI metas) of video frames with a re-ID network, pools them into "
      "tracklets and matches tracklets against a watchlist of query images",
      "reid project");
  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_add_static_pad_template(element_class, &src_template);

  element_class->change_state = GST_DEBUG_FUNCPTR(gst_reid_embed_change_state);
  trans_class->start = GST_DEBUG_FUNCPTR(gst_reid_embed_start);
  trans_class->stop = GST_DEBUG_FUNCPTR(gst_reid_embed_stop);
  trans_class->set_caps = GST_DEBUG_FUNCPTR(gst_reid_embed_set_caps);
  trans_class->sink_event = GST_DEBUG_FUNCPTR(gst_reid_embed_sink_event);
  trans_class->transform_ip = GST_DEBUG_FUNCPTR(gst_reid_embed_transform_ip);
  trans_class->passthrough_on_same_caps = FALSE;

  gst_type_mark_as_plugin_api(gst_reid_device_get_type(), 0);
  gst_type_mark_as_plugin_api(gst_reid_precision_get_type(), 0);
  GST_DEBUG_CATEGORY_INIT(gst_reid_embed_debug, "reidembed", 0, "re-ID embeddings");
}
