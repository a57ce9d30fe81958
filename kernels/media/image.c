/* Image decode / encode through FFmpeg (libavformat, libavcodec, libswscale).
 *
 * Loading reads the whole file into memory and hands it to libavformat through
 * a custom AVIOContext: the format is probed by content only, so paths are
 * never interpreted as protocols ("http:", "concat:") or image2 patterns ("%d"),
 * and an empty file is caught before FFmpeg sees it.
 *
 * Logging: FFmpeg logs through one process-wide callback. We install ours once;
 * it prints nothing and keeps the last error-level line per thread, which is
 * appended to our error messages. Decoders run single-threaded, so their log
 * lines arrive on the calling thread. */
#include "image.h"

#include "ff_log.h"
#include "fileio.h"

#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/error.h>
#include <libavutil/log.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

#define MAX_FILE_BYTES    ((int64_t)1 << 30) /* refuse to slurp more than 1 GiB */
#define AVIO_BUFFER_BYTES 65536

/* ---------------------------------------------------------------- logging */

static _Thread_local char ff_last_log[256];
static pthread_once_t ff_log_once = PTHREAD_ONCE_INIT;

/* Keeps "<component>: <message>" of error-level lines, e.g. "mjpeg: overread 8". */
static void ff_log_callback(void *avcl, int level, const char *fmt, va_list vl) {
  if (level > AV_LOG_ERROR) return;
  char line[sizeof ff_last_log];
  int no_prefix = 0; /* "[mjpeg @ 0x5591e1786300] " carries a pointer: build our own */
  av_log_format_line2(avcl, level, fmt, vl, line, sizeof line, &no_prefix);
  size_t n = strlen(line);
  while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
  if (n == 0) return;
  const AVClass *cls = avcl ? *(const AVClass **)avcl : NULL;
  const char *who = cls && cls->item_name ? cls->item_name(avcl) : NULL;
  if (who)
    snprintf(ff_last_log, sizeof ff_last_log, "%s: %s", who, line);
  else
    memcpy(ff_last_log, line, n + 1);
}

static void ff_log_install(void) {
  av_log_set_level(AV_LOG_ERROR);
  av_log_set_callback(ff_log_callback);
}

void ff_log_begin(void) {
  pthread_once(&ff_log_once, ff_log_install);
  ff_last_log[0] = '\0';
}

/* "path: what: <av_strerror(err)> (ffmpeg: <last log line>)" */
reid_status ff_fail(reid_status code, const char *path, const char *what, int err) {
  char reason[AV_ERROR_MAX_STRING_SIZE];
  av_strerror(err, reason, sizeof reason);
  if (ff_last_log[0])
    return reid_fail(code, "%s: %s: %s (ffmpeg: %s)", path, what, reason, ff_last_log);
  return reid_fail(code, "%s: %s: %s", path, what, reason);
}

/* ---------------------------------------------------------------- images */

reid_status reid_image_alloc(int width, int height, reid_image *out) {
  if (!out) return reid_fail(REID_EINVAL, "reid_image_alloc: out is NULL");
  memset(out, 0, sizeof *out);
  if (width < 1 || height < 1 || width > INT_MAX / 3)
    return reid_fail(REID_EINVAL, "reid_image_alloc: bad size %dx%d", width, height);
  size_t bytes = (size_t)height * (size_t)width * 3;
  uint8_t *data = calloc(bytes + 64, 1); /* slack: SIMD converters may overshoot a row */
  if (!data) return reid_fail(REID_ENOMEM, "reid_image_alloc: %dx%d", width, height);
  *out = (reid_image){.width = width, .height = height, .stride = width * 3, .data = data};
  return REID_OK;
}

void reid_image_free(reid_image *img) {
  if (!img) return;
  free(img->data);
  memset(img, 0, sizeof *img);
}

static reid_status check_image(const char *path, const reid_image *rgb) {
  if (!path) return reid_fail(REID_EINVAL, "image save: path is NULL");
  if (!rgb || !rgb->data || rgb->width < 1 || rgb->height < 1 || rgb->width > INT_MAX / 3 ||
      rgb->stride < rgb->width * 3)
    return reid_fail(REID_EINVAL, "%s: invalid image (%dx%d, stride %d)", path,
                     rgb ? rgb->width : 0, rgb ? rgb->height : 0, rgb ? rgb->stride : 0);
  return REID_OK;
}

reid_status reid_image_resize_bicubic(const reid_image *src, int width, int height,
                                      reid_image *out) {
  memset(out, 0, sizeof *out);
  REID_TRY(check_image("bicubic resize", src));
  if (width < 1 || height < 1)
    return reid_fail(REID_EINVAL, "bicubic resize to %dx%d", width, height);
  REID_TRY(reid_image_alloc(width, height, out));
  struct SwsContext *sws =
      sws_getContext(src->width, src->height, AV_PIX_FMT_RGB24, width, height, AV_PIX_FMT_RGB24,
                     SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, NULL, NULL, NULL);
  if (!sws) {
    reid_image_free(out);
    return reid_fail(REID_EUNSUPPORTED, "swscale cannot resize %dx%d to %dx%d", src->width,
                     src->height, width, height);
  }
  const uint8_t *in[4] = {src->data, NULL, NULL, NULL};
  int in_stride[4] = {src->stride, 0, 0, 0};
  uint8_t *dst[4] = {out->data, NULL, NULL, NULL};
  int dst_stride[4] = {out->stride, 0, 0, 0};
  int rows = sws_scale(sws, in, in_stride, 0, src->height, dst, dst_stride);
  sws_freeContext(sws);
  if (rows != height) {
    reid_image_free(out);
    return reid_fail(REID_EFORMAT, "swscale resized %d of %d rows", rows, height);
  }
  return REID_OK;
}

/* ---------------------------------------------------------------- file -> memory */

typedef struct {
  uint8_t *data; /* size + AV_INPUT_BUFFER_PADDING_SIZE bytes, padding zeroed */
  int64_t size, pos;
} mem_file;

static reid_status read_whole_file(const char *path, mem_file *f) {
  memset(f, 0, sizeof *f);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ff_fail(REID_EIO, path, "cannot open", AVERROR(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return ff_fail(REID_EIO, path, "cannot stat", AVERROR(err));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return reid_fail(REID_EIO, "%s: not a regular file", path);
  }
  if (st.st_size == 0) {
    close(fd);
    return ff_fail(REID_EFORMAT, path, "empty file", AVERROR_INVALIDDATA);
  }
  if (st.st_size > MAX_FILE_BYTES) {
    close(fd);
    return reid_fail(REID_EFORMAT, "%s: file too large for an image (%lld bytes)", path,
                     (long long)st.st_size);
  }
  f->data = calloc((size_t)st.st_size + AV_INPUT_BUFFER_PADDING_SIZE, 1);
  if (!f->data) {
    close(fd);
    return reid_fail(REID_ENOMEM, "%s: %lld bytes", path, (long long)st.st_size);
  }
  while (f->size < st.st_size) {
    ssize_t got = read(fd, f->data + f->size, (size_t)(st.st_size - f->size));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break; /* error, or the file shrank under us */
    f->size += got;
  }
  int err = errno;
  close(fd);
  if (f->size != st.st_size) {
    free(f->data);
    f->data = NULL;
    return ff_fail(REID_EIO, path, "read failed", AVERROR(err ? err : EIO));
  }
  return REID_OK;
}

static int mem_read(void *opaque, uint8_t *buf, int n) {
  mem_file *f = opaque;
  int64_t left = f->size - f->pos;
  if (left <= 0) return AVERROR_EOF;
  if (n > left) n = (int)left;
  memcpy(buf, f->data + f->pos, (size_t)n);
  f->pos += n;
  return n;
}

static int64_t mem_seek(void *opaque, int64_t offset, int whence) {
  mem_file *f = opaque;
  int64_t base;
  switch (whence & ~AVSEEK_FORCE) {
  case AVSEEK_SIZE: return f->size;
  case SEEK_SET: base = 0; break;
  case SEEK_CUR: base = f->pos; break;
  case SEEK_END: base = f->size; break;
  default: return AVERROR(EINVAL);
  }
  if (offset > INT64_MAX - base || base + offset < 0) return AVERROR(EINVAL);
  f->pos = base + offset;
  return f->pos;
}

/* ---------------------------------------------------------------- JPEG completeness */

/* FFmpeg's mjpeg decoder only notices truncation when it reads past the data;
 * a file cut shortly before its end decodes "fine" (EOI emulated, the last
 * blocks garbage), so completeness is checked on the bytes: walk the marker
 * segments from SOI, skip each scan's entropy-coded data (where 0xFF is only
 * ever followed by 0x00 or RST0..7) and require an EOI at top level. Returns 1
 * when the stream is complete, 0 otherwise. Embedded thumbnails sit inside
 * APPn segments and are skipped with them. */
static int jpeg_is_complete(const uint8_t *p, int64_t n) {
  if (n < 4 || p[0] != 0xFF || p[1] != 0xD8) return 0;
  int64_t i = 2;
  while (i + 1 < n) {
    if (p[i] != 0xFF) { /* garbage between segments: skipped, as FFmpeg does */
      i++;
      continue;
    }
    uint8_t m = p[i + 1];
    if (m == 0xFF) { /* fill byte */
      i++;
      continue;
    }
    i += 2;
    if (m == 0xD9) return 1;                             /* EOI */
    if (m == 0x01 || (m >= 0xD0 && m <= 0xD7)) continue; /* no length */
    if (i + 2 > n) return 0;
    int64_t len = ((int64_t)p[i] << 8) | p[i + 1];
    if (len < 2) return 0;
    i += len;
    if (m != 0xDA) continue;
    /* SOS: entropy-coded data until a marker other than stuffing / RSTn */
    while (i + 1 < n) {
      if (p[i] == 0xFF && p[i + 1] != 0x00 && !(p[i + 1] >= 0xD0 && p[i + 1] <= 0xD7)) break;
      i++;
    }
  }
  return 0;
}

/* ---------------------------------------------------------------- decode */

typedef struct {
  AVFormatContext *fmt;
  AVIOContext *io;
  AVCodecContext *dec;
  AVPacket *pkt;
  AVFrame *frame;
  struct SwsContext *sws;
} decode_state;

static void decode_state_free(decode_state *s) {
  sws_freeContext(s->sws);
  av_frame_free(&s->frame);
  av_packet_free(&s->pkt);
  avcodec_free_context(&s->dec);
  if (s->fmt) avformat_close_input(&s->fmt); /* custom IO: does not free s->io */
  if (s->io) av_freep(&s->io->buffer);
  avio_context_free(&s->io);
}

/* Opens the demuxer over the in-memory file and sets up the decoder of its
 * first video stream. Returns that stream's index in *stream. */
static reid_status open_decoder(const char *path, mem_file *file, decode_state *s, int *stream) {
  uint8_t *iobuf = av_malloc(AVIO_BUFFER_BYTES);
  if (!iobuf) return reid_fail(REID_ENOMEM, "%s: avio buffer", path);
  s->io = avio_alloc_context(iobuf, AVIO_BUFFER_BYTES, 0, file, mem_read, NULL, mem_seek);
  if (!s->io) {
    av_free(iobuf);
    return reid_fail(REID_ENOMEM, "%s: avio context", path);
  }
  s->fmt = avformat_alloc_context();
  if (!s->fmt) return reid_fail(REID_ENOMEM, "%s: format context", path);
  s->fmt->pb = s->io;
  s->fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
  int err = avformat_open_input(&s->fmt, NULL, NULL, NULL); /* frees fmt on failure */
  if (err < 0) return ff_fail(REID_EFORMAT, path, "not a readable image", err);

  int idx = av_find_best_stream(s->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
  if (idx >= 0 && s->fmt->streams[idx]->codecpar->codec_id == AV_CODEC_ID_NONE) idx = -1;
  if (idx < 0) { /* containers that only know their streams after probing packets */
    err = avformat_find_stream_info(s->fmt, NULL);
    if (err < 0) return ff_fail(REID_EFORMAT, path, "cannot read stream info", err);
    idx = av_find_best_stream(s->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    if (idx < 0) return ff_fail(REID_EFORMAT, path, "no image stream", idx);
  }
  const AVCodecParameters *par = s->fmt->streams[idx]->codecpar;
  const AVCodec *codec = avcodec_find_decoder(par->codec_id);
  if (!codec)
    return reid_fail(REID_EUNSUPPORTED, "%s: no decoder for %s", path,
                     avcodec_get_name(par->codec_id));
  s->dec = avcodec_alloc_context3(codec);
  if (!s->dec) return reid_fail(REID_ENOMEM, "%s: decoder context", path);
  err = avcodec_parameters_to_context(s->dec, par);
  if (err < 0) return ff_fail(REID_EFORMAT, path, "bad codec parameters", err);
  s->dec->thread_count = 1; /* callers decode on their own worker threads */
  s->dec->err_recognition |= AV_EF_EXPLODE;
  err = avcodec_open2(s->dec, codec, NULL);
  if (err < 0) return ff_fail(REID_EFORMAT, path, "cannot open decoder", err);
  *stream = idx;
  return REID_OK;
}

/* Feeds packets of `stream` until the decoder yields its first frame. */
static reid_status decode_first_frame(const char *path, decode_state *s, int stream) {
  s->pkt = av_packet_alloc();
  s->frame = av_frame_alloc();
  if (!s->pkt || !s->frame) return reid_fail(REID_ENOMEM, "%s: packet/frame", path);
  int flushing = 0;
  for (;;) {
    int err = avcodec_receive_frame(s->dec, s->frame);
    if (err >= 0) break;
    if (err == AVERROR_EOF) return ff_fail(REID_EFORMAT, path, "no frame decoded", err);
    if (err != AVERROR(EAGAIN)) return ff_fail(REID_EFORMAT, path, "decode failed", err);
    if (flushing) return ff_fail(REID_EFORMAT, path, "no frame decoded", AVERROR_INVALIDDATA);
    err = av_read_frame(s->fmt, s->pkt);
    if (err == AVERROR_EOF) {
      flushing = 1;
      err = avcodec_send_packet(s->dec, NULL);
    } else if (err < 0) {
      return ff_fail(REID_EFORMAT, path, "read failed", err);
    } else {
      if (s->pkt->stream_index == stream) err = avcodec_send_packet(s->dec, s->pkt);
      av_packet_unref(s->pkt);
    }
    if (err < 0 && err != AVERROR(EAGAIN) && err != AVERROR_EOF)
      return ff_fail(REID_EFORMAT, path, "decode failed", err);
  }
  if (s->frame->width < 1 || s->frame->height < 1)
    return reid_fail(REID_EFORMAT, "%s: decoded image has size %dx%d", path, s->frame->width,
                     s->frame->height);
  if (s->frame->decode_error_flags || (s->frame->flags & AV_FRAME_FLAG_CORRUPT))
    return ff_fail(REID_EFORMAT, path, "corrupt image", AVERROR_INVALIDDATA);
  return REID_OK;
}

static reid_status frame_to_rgb(const char *path, decode_state *s, reid_image *out) {
  const AVFrame *f = s->frame;
  s->sws = sws_getContext(f->width, f->height, f->format, f->width, f->height, AV_PIX_FMT_RGB24,
                          SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, NULL, NULL, NULL);
  if (!s->sws) {
    const char *name = av_get_pix_fmt_name(f->format);
    return reid_fail(REID_EUNSUPPORTED, "%s: cannot convert pixel format %s to RGB", path,
                     name ? name : "?");
  }
  REID_TRY(reid_image_alloc(f->width, f->height, out));
  uint8_t *dst[4] = {out->data, NULL, NULL, NULL};
  int dst_stride[4] = {out->stride, 0, 0, 0};
  int rows = sws_scale(s->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst,
                       dst_stride);
  if (rows != f->height) {
    reid_image_free(out);
    return ff_fail(REID_EFORMAT, path, "pixel conversion failed", rows < 0 ? rows : AVERROR_BUG);
  }
  return REID_OK;
}

reid_status reid_image_load_rgb(const char *path, reid_image *out) {
  if (!out) return reid_fail(REID_EINVAL, "reid_image_load_rgb: out is NULL");
  memset(out, 0, sizeof *out);
  if (!path) return reid_fail(REID_EINVAL, "reid_image_load_rgb: path is NULL");
  ff_log_begin();

  mem_file file;
  REID_TRY(read_whole_file(path, &file));
  decode_state s = {0};
  int stream = -1;
  reid_status st = open_decoder(path, &file, &s, &stream);
  if (st == REID_OK) st = decode_first_frame(path, &s, stream); /* FFmpeg's verdict first */
  int raw_jpeg = file.size >= 2 && file.data[0] == 0xFF && file.data[1] == 0xD8;
  if (st == REID_OK && s.dec->codec_id == AV_CODEC_ID_MJPEG && raw_jpeg &&
      !jpeg_is_complete(file.data, file.size))
    st = reid_fail(REID_EFORMAT, "%s: truncated JPEG: no end-of-image marker after the scan data",
                   path);
  if (st == REID_OK) st = frame_to_rgb(path, &s, out);
  decode_state_free(&s);
  free(file.data);
  return st;
}

/* ---------------------------------------------------------------- encode */

/* Sends one frame through an opened encoder: the packet, malloc'd, in *data. */
static reid_status encode_packet(const char *path, AVCodecContext *enc, const AVFrame *frame,
                                 uint8_t **data, size_t *size) {
  *data = NULL;
  *size = 0;
  AVPacket *pkt = av_packet_alloc();
  if (!pkt) return reid_fail(REID_ENOMEM, "%s: packet", path);
  reid_status st = REID_OK;
  int err = avcodec_send_frame(enc, frame);
  if (err >= 0) err = avcodec_send_frame(enc, NULL);
  if (err >= 0) err = avcodec_receive_packet(enc, pkt);
  if (err < 0) {
    st = ff_fail(REID_EFORMAT, path, "encode failed", err);
  } else {
    *data = malloc((size_t)pkt->size);
    if (!*data) st = reid_fail(REID_ENOMEM, "%s: encoded image", path);
    if (*data) memcpy(*data, pkt->data, (size_t)pkt->size), *size = (size_t)pkt->size;
  }
  av_packet_free(&pkt);
  return st;
}

/* Sends one frame through an opened encoder and writes the packet to path. */
static reid_status encode_and_write(const char *path, AVCodecContext *enc, const AVFrame *frame) {
  uint8_t *data;
  size_t size;
  REID_TRY(encode_packet(path, enc, frame, &data, &size));
  reid_status st =
      reid_write_file_atomic(path, (const void *const[]){data}, (const size_t[]){size}, 1, 0);
  free(data);
  return st;
}

static reid_status open_encoder(const char *path, enum AVCodecID id, const reid_image *rgb,
                                enum AVPixelFormat fmt, int qscale, AVCodecContext **out) {
  const AVCodec *codec = avcodec_find_encoder(id);
  if (!codec)
    return reid_fail(REID_EUNSUPPORTED, "%s: this FFmpeg has no %s encoder", path,
                     avcodec_get_name(id));
  AVCodecContext *enc = avcodec_alloc_context3(codec);
  if (!enc) return reid_fail(REID_ENOMEM, "%s: encoder context", path);
  enc->width = rgb->width;
  enc->height = rgb->height;
  enc->pix_fmt = fmt;
  enc->time_base = (AVRational){1, 25};
  enc->thread_count = 1;
  if (qscale > 0) {
    enc->color_range = AVCOL_RANGE_JPEG;
    enc->flags |= AV_CODEC_FLAG_QSCALE;
    enc->global_quality = FF_QP2LAMBDA * qscale;
    enc->qmin = enc->qmax = qscale;
  }
  int err = avcodec_open2(enc, codec, NULL);
  if (err < 0) {
    avcodec_free_context(&enc);
    return ff_fail(REID_EFORMAT, path, "cannot open encoder", err);
  }
  *out = enc;
  return REID_OK;
}

reid_status reid_image_save_png(const char *path, const reid_image *rgb) {
  REID_TRY(check_image(path, rgb));
  ff_log_begin();
  AVCodecContext *enc = NULL;
  REID_TRY(open_encoder(path, AV_CODEC_ID_PNG, rgb, AV_PIX_FMT_RGB24, 0, &enc));
  reid_status st = REID_OK;
  AVFrame *frame = av_frame_alloc();
  if (!frame) st = reid_fail(REID_ENOMEM, "%s: frame", path);
  if (st == REID_OK) {
    /* wraps the caller's pixels; the encoder copies non-refcounted frames */
    frame->format = AV_PIX_FMT_RGB24;
    frame->width = rgb->width;
    frame->height = rgb->height;
    frame->data[0] = rgb->data;
    frame->linesize[0] = rgb->stride;
    st = encode_and_write(path, enc, frame);
  }
  av_frame_free(&frame);
  avcodec_free_context(&enc);
  return st;
}

/* JPEG bytes of an image; `path` only names it in messages. */
static reid_status encode_jpeg(const char *path, const reid_image *rgb, int quality, uint8_t **data,
                               size_t *size) {
  *data = NULL;
  *size = 0;
  REID_TRY(check_image(path, rgb));
  if (quality < 1 || quality > 100)
    return reid_fail(REID_EINVAL, "%s: JPEG quality %d not in [1, 100]", path, quality);
  ff_log_begin();
  int qscale = 1 + ((100 - quality) * 30 + 49) / 99; /* 100 -> 1, 1 -> 31 */
  AVCodecContext *enc = NULL;
  REID_TRY(open_encoder(path, AV_CODEC_ID_MJPEG, rgb, AV_PIX_FMT_YUVJ420P, qscale, &enc));
  reid_status st = REID_OK;
  struct SwsContext *sws = NULL;
  AVFrame *frame = av_frame_alloc();
  if (!frame) st = reid_fail(REID_ENOMEM, "%s: frame", path);
  if (st == REID_OK) {
    frame->format = AV_PIX_FMT_YUVJ420P;
    frame->width = rgb->width;
    frame->height = rgb->height;
    frame->quality = enc->global_quality;
    int err = av_frame_get_buffer(frame, 0);
    if (err < 0) st = ff_fail(REID_ENOMEM, path, "frame buffer", err);
  }
  if (st == REID_OK) {
    sws = sws_getContext(rgb->width, rgb->height, AV_PIX_FMT_RGB24, rgb->width, rgb->height,
                         AV_PIX_FMT_YUVJ420P, SWS_BICUBIC | SWS_ACCURATE_RND, NULL, NULL, NULL);
    if (!sws) st = reid_fail(REID_EUNSUPPORTED, "%s: cannot convert RGB to YUVJ420P", path);
  }
  if (st == REID_OK) {
    const uint8_t *src[4] = {rgb->data, NULL, NULL, NULL};
    int src_stride[4] = {rgb->stride, 0, 0, 0};
    int rows = sws_scale(sws, src, src_stride, 0, rgb->height, frame->data, frame->linesize);
    if (rows != rgb->height)
      st = ff_fail(REID_EFORMAT, path, "pixel conversion failed", rows < 0 ? rows : AVERROR_BUG);
  }
  if (st == REID_OK) st = encode_packet(path, enc, frame, data, size);
  sws_freeContext(sws);
  av_frame_free(&frame);
  avcodec_free_context(&enc);
  return st;
}

reid_status reid_image_encode_jpeg(const reid_image *rgb, int quality, uint8_t **data,
                                   size_t *size) {
  return encode_jpeg("JPEG image", rgb, quality, data, size);
}

reid_status reid_image_save_jpeg(const char *path, const reid_image *rgb, int quality) {
  uint8_t *data;
  size_t size;
  REID_TRY(encode_jpeg(path, rgb, quality, &data, &size));
  reid_status st =
      reid_write_file_atomic(path, (const void *const[]){data}, (const size_t[]){size}, 1, 0);
  free(data);
  return st;
}

void reid_image_resize_into(const reid_image *src, float x, float y, float w, float h,
                            reid_image *dst, int dx, int dy, int dw, int dh) {
  for (int j = 0; j < dh; j++)
    for (int i = 0; i < dw; i++) {
      float sx = x + (i + 0.5f) * w / dw - 0.5f, sy = y + (j + 0.5f) * h / dh - 0.5f;
      sx = fminf(fmaxf(sx, 0), (float)src->width - 1);
      sy = fminf(fmaxf(sy, 0), (float)src->height - 1);
      int x0 = (int)sx, y0 = (int)sy, x1 = x0 + 1 < src->width ? x0 + 1 : x0,
          y1 = y0 + 1 < src->height ? y0 + 1 : y0;
      float ax = sx - x0, ay = sy - y0;
      const uint8_t *r0 = src->data + (size_t)y0 * src->stride,
                    *r1 = src->data + (size_t)y1 * src->stride;
      uint8_t *o = dst->data + (size_t)(dy + j) * dst->stride + 3 * (dx + i);
      for (int ch = 0; ch < 3; ch++) {
        float top = r0[3 * x0 + ch] * (1 - ax) + r0[3 * x1 + ch] * ax,
              bot = r1[3 * x0 + ch] * (1 - ax) + r1[3 * x1 + ch] * ax;
        o[ch] = (uint8_t)lrintf(top * (1 - ay) + bot * ay);
      }
    }
}
