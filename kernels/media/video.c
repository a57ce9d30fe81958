/* Video encode / decode through FFmpeg (libavformat, libavcodec, libswscale). */
#include "video.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>

#include "ff_log.h"

/* ---------------------------------------------------------------- writer */

struct reid_video_writer {
  char *path;
  const char *codec_name;
  AVFormatContext *fmt;
  AVCodecContext *enc;
  AVStream *stream;
  AVFrame *frame;
  AVPacket *pkt;
  struct SwsContext *sws;
  int64_t next_pts;
  int header_written;
};

void reid_video_writer_abort(reid_video_writer *w) {
  if (!w) return;
  if (w->fmt) {
    if (w->fmt->pb) avio_closep(&w->fmt->pb);
    avformat_free_context(w->fmt);
  }
  avcodec_free_context(&w->enc);
  av_frame_free(&w->frame);
  av_packet_free(&w->pkt);
  sws_freeContext(w->sws);
  free(w->path);
  free(w);
}

const char *reid_video_writer_path(const reid_video_writer *w) {
  return w->path;
}
const char *reid_video_writer_codec(const reid_video_writer *w) {
  return w->codec_name;
}

/* Sends frame (NULL: flush) and writes every packet the encoder returns. */
static reid_status encode(reid_video_writer *w, AVFrame *frame) {
  int err = avcodec_send_frame(w->enc, frame);
  if (err < 0) return ff_fail(REID_EIO, w->path, "encoding a frame", err);
  for (;;) {
    err = avcodec_receive_packet(w->enc, w->pkt);
    if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return REID_OK;
    if (err < 0) return ff_fail(REID_EIO, w->path, "encoding a frame", err);
    if (w->pkt->duration <= 0) w->pkt->duration = 1; /* one frame: else MP4 drops the last */
    av_packet_rescale_ts(w->pkt, w->enc->time_base, w->stream->time_base);
    w->pkt->stream_index = w->stream->index;
    err = av_interleaved_write_frame(w->fmt, w->pkt);
    if (err < 0) return ff_fail(REID_EIO, w->path, "writing a packet", err);
  }
}

reid_status reid_video_writer_open(const char *base, int width, int height, int fps,
                                   reid_video_writer **out) {
  *out = NULL;
  if (width < 2 || height < 2 || width % 2 || height % 2 || fps < 1)
    return reid_fail(REID_EINVAL, "%s: video size %dx%d (even, >= 2) at %d fps", base, width,
                     height, fps);
  ff_log_begin();
  static const struct {
    const char *codec, *ext;
    enum AVPixelFormat pix;
  } choices[] = {{"libx264", "mp4", AV_PIX_FMT_YUV420P},
                 {"mjpeg", "avi", AV_PIX_FMT_YUVJ420P},
                 {"ffv1", "mkv", AV_PIX_FMT_YUV420P}};
  const AVCodec *codec = NULL;
  int c = 0;
  for (; c < 3 && !codec; c++) codec = avcodec_find_encoder_by_name(choices[c].codec);
  if (!codec)
    return reid_fail(REID_EUNSUPPORTED,
                     "%s: this FFmpeg has none of the encoders libx264, mjpeg, "
                     "ffv1",
                     base);
  c--;
  reid_video_writer *w = calloc(1, sizeof *w);
  if (!w || asprintf(&w->path, "%s.%s", base, choices[c].ext) < 0) {
    free(w);
    return reid_fail(REID_ENOMEM, "%s: out of memory", base);
  }
  w->codec_name = choices[c].codec;
  reid_status st = REID_OK;
  int err = avformat_alloc_output_context2(&w->fmt, NULL, NULL, w->path);
  if (err < 0) st = ff_fail(REID_EIO, w->path, "no container for this name", err);
  if (st == REID_OK) {
    w->stream = avformat_new_stream(w->fmt, NULL);
    w->enc = avcodec_alloc_context3(codec);
    w->frame = av_frame_alloc();
    w->pkt = av_packet_alloc();
    if (!w->stream || !w->enc || !w->frame || !w->pkt)
      st = reid_fail(REID_ENOMEM, "%s: out of memory", w->path);
  }
  if (st == REID_OK) {
    w->enc->width = width;
    w->enc->height = height;
    w->enc->pix_fmt = choices[c].pix;
    w->enc->time_base = (AVRational){1, fps};
    w->enc->framerate = (AVRational){fps, 1};
    w->enc->gop_size = 2 * fps;
    w->enc->max_b_frames = 0; /* frame k is packet k: no reordering delay in the file */
    w->enc->thread_count = 1; /* the caller renders in parallel */
    if (w->fmt->oformat->flags & AVFMT_GLOBALHEADER) w->enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    if (!strcmp(w->codec_name, "libx264")) {
      av_opt_set(w->enc->priv_data, "preset", "veryfast", 0);
      av_opt_set(w->enc->priv_data, "crf", "20", 0);
    } else if (!strcmp(w->codec_name, "mjpeg")) {
      w->enc->flags |= AV_CODEC_FLAG_QSCALE;
      w->enc->global_quality = FF_QP2LAMBDA * 3;
    }
    err = avcodec_open2(w->enc, codec, NULL);
    if (err < 0) st = ff_fail(REID_EIO, w->path, "opening the encoder", err);
  }
  if (st == REID_OK) {
    err = avcodec_parameters_from_context(w->stream->codecpar, w->enc);
    w->stream->time_base = w->enc->time_base;
    if (err >= 0) err = avio_open(&w->fmt->pb, w->path, AVIO_FLAG_WRITE);
    if (err >= 0) err = avformat_write_header(w->fmt, NULL);
    if (err < 0) st = ff_fail(REID_EIO, w->path, "creating the file", err);
    w->header_written = err >= 0;
  }
  if (st == REID_OK) {
    w->frame->format = w->enc->pix_fmt;
    w->frame->width = width;
    w->frame->height = height;
    err = av_frame_get_buffer(w->frame, 0);
    w->sws = sws_getContext(width, height, AV_PIX_FMT_RGB24, width, height, w->enc->pix_fmt,
                            SWS_BILINEAR, NULL, NULL, NULL);
    if (err < 0 || !w->sws) st = reid_fail(REID_ENOMEM, "%s: out of memory", w->path);
  }
  if (st != REID_OK) {
    reid_video_writer_abort(w);
    return st;
  }
  *out = w;
  return REID_OK;
}

reid_status reid_video_writer_add(reid_video_writer *w, const reid_image *rgb) {
  if (rgb->width != w->enc->width || rgb->height != w->enc->height)
    return reid_fail(REID_EINVAL, "%s: a %dx%d frame for a %dx%d video", w->path, rgb->width,
                     rgb->height, w->enc->width, w->enc->height);
  ff_log_begin();
  int err = av_frame_make_writable(w->frame);
  if (err < 0) return ff_fail(REID_ENOMEM, w->path, "frame buffer", err);
  const uint8_t *src[1] = {rgb->data};
  const int stride[1] = {rgb->stride};
  sws_scale(w->sws, src, stride, 0, rgb->height, w->frame->data, w->frame->linesize);
  w->frame->pts = w->next_pts++;
  return encode(w, w->frame);
}

reid_status reid_video_writer_close(reid_video_writer *w) {
  ff_log_begin();
  reid_status st = encode(w, NULL);
  if (st == REID_OK) {
    int err = av_write_trailer(w->fmt);
    if (err < 0) st = ff_fail(REID_EIO, w->path, "writing the trailer", err);
  }
  if (st == REID_OK && w->fmt->pb) {
    int err = avio_closep(&w->fmt->pb);
    if (err < 0) st = ff_fail(REID_EIO, w->path, "closing the file", err);
  }
  reid_video_writer_abort(w);
  return st;
}

/* ---------------------------------------------------------------- reader */

struct reid_video_reader {
  char *path;
  AVFormatContext *fmt;
  AVCodecContext *dec;
  AVFrame *frame;
  AVPacket *pkt;
  struct SwsContext *sws;
  int stream, eof;
  reid_image rgb;
};

void reid_video_reader_close(reid_video_reader *r) {
  if (!r) return;
  avformat_close_input(&r->fmt);
  avcodec_free_context(&r->dec);
  av_frame_free(&r->frame);
  av_packet_free(&r->pkt);
  sws_freeContext(r->sws);
  reid_image_free(&r->rgb);
  free(r->path);
  free(r);
}

reid_status reid_video_reader_open(const char *path, reid_video_reader **out) {
  *out = NULL;
  ff_log_begin();
  reid_video_reader *r = calloc(1, sizeof *r);
  if (!r || !(r->path = strdup(path))) {
    free(r);
    return reid_fail(REID_ENOMEM, "%s: out of memory", path);
  }
  reid_status st = REID_OK;
  int err = avformat_open_input(&r->fmt, path, NULL, NULL);
  if (err < 0) st = ff_fail(REID_EIO, path, "cannot open the video", err);
  if (st == REID_OK && (err = avformat_find_stream_info(r->fmt, NULL)) < 0)
    st = ff_fail(REID_EFORMAT, path, "not a readable video", err);
  const AVCodec *codec = NULL;
  if (st == REID_OK) {
    r->stream = av_find_best_stream(r->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (r->stream < 0 || !codec) st = ff_fail(REID_EFORMAT, path, "no video stream", r->stream);
  }
  if (st == REID_OK) {
    r->dec = avcodec_alloc_context3(codec);
    r->frame = av_frame_alloc();
    r->pkt = av_packet_alloc();
    if (!r->dec || !r->frame || !r->pkt) st = reid_fail(REID_ENOMEM, "%s: out of memory", path);
  }
  if (st == REID_OK) {
    err = avcodec_parameters_to_context(r->dec, r->fmt->streams[r->stream]->codecpar);
    if (err >= 0) err = avcodec_open2(r->dec, codec, NULL);
    if (err < 0) st = ff_fail(REID_EFORMAT, path, "opening the decoder", err);
  }
  if (st != REID_OK) {
    reid_video_reader_close(r);
    return st;
  }
  *out = r;
  return REID_OK;
}

static reid_status to_rgb(reid_video_reader *r, const reid_image **frame) {
  const AVFrame *f = r->frame;
  if (r->rgb.width != f->width || r->rgb.height != f->height) {
    reid_image_free(&r->rgb);
    REID_TRY(reid_image_alloc(f->width, f->height, &r->rgb));
  }
  r->sws =
      sws_getCachedContext(r->sws, f->width, f->height, (enum AVPixelFormat)f->format, f->width,
                           f->height, AV_PIX_FMT_RGB24, SWS_BILINEAR, NULL, NULL, NULL);
  if (!r->sws) return reid_fail(REID_EFORMAT, "%s: cannot convert the frames to RGB", r->path);
  uint8_t *dst[1] = {r->rgb.data};
  const int stride[1] = {r->rgb.stride};
  sws_scale(r->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst, stride);
  *frame = &r->rgb;
  return REID_OK;
}

reid_status reid_video_reader_next(reid_video_reader *r, const reid_image **frame, int *got) {
  *got = 0;
  ff_log_begin();
  for (;;) {
    int err = avcodec_receive_frame(r->dec, r->frame);
    if (err >= 0) {
      *got = 1;
      return to_rgb(r, frame);
    }
    if (err == AVERROR_EOF) return REID_OK;
    if (err != AVERROR(EAGAIN)) return ff_fail(REID_EFORMAT, r->path, "decoding", err);
    if (r->eof) return REID_OK;
    err = av_read_frame(r->fmt, r->pkt);
    if (err == AVERROR_EOF) {
      r->eof = 1;
      avcodec_send_packet(r->dec, NULL);
      continue;
    }
    if (err < 0) return ff_fail(REID_EIO, r->path, "reading", err);
    if (r->pkt->stream_index == r->stream) err = avcodec_send_packet(r->dec, r->pkt);
    av_packet_unref(r->pkt);
    if (err < 0 && err != AVERROR(EAGAIN)) return ff_fail(REID_EFORMAT, r->path, "decoding", err);
  }
}

double reid_video_reader_fps(const reid_video_reader *r) {
  AVRational q = r->fmt->streams[r->stream]->avg_frame_rate;
  if (q.num <= 0 || q.den <= 0) q = r->fmt->streams[r->stream]->r_frame_rate;
  return q.num > 0 && q.den > 0 ? av_q2d(q) : 0;
}
