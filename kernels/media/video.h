/* Video files via FFmpeg: an encoder for rendered RGB frames and a sequential
 * decoder to RGB24.
 *
 * The writer picks the best encoder this FFmpeg build has, in order:
 *   libx264 (H.264, CRF 20, "veryfast", yuv420p) in MP4   -> "<base>.mp4"
 *   mjpeg (quality ~ JPEG 90, yuvj420p) in AVI           -> "<base>.avi"
 *   ffv1 (lossless) in Matroska                          -> "<base>.mkv"
 * Frame k gets the timestamp k / fps. */
#pragma once

#include "image.h"

typedef struct reid_video_writer reid_video_writer;

/* Opens "<base>.<ext>" for width x height (both even) frames at fps frames per second.
 * The chosen file name is reid_video_writer_path(). */
reid_status reid_video_writer_open(const char *base, int width, int height, int fps,
                                   reid_video_writer **out);
const char *reid_video_writer_path(const reid_video_writer *w);
/* "libx264", "mjpeg" or "ffv1". */
const char *reid_video_writer_codec(const reid_video_writer *w);
reid_status reid_video_writer_add(reid_video_writer *w, const reid_image *rgb);
/* Flushes the encoder and writes the trailer; frees w (also on failure). */
reid_status reid_video_writer_close(reid_video_writer *w);
/* Frees without finishing the file (after an error). */
void reid_video_writer_abort(reid_video_writer *w);

typedef struct reid_video_reader reid_video_reader;

reid_status reid_video_reader_open(const char *path, reid_video_reader **out);
/* The next frame as RGB24 into *frame (allocated or reused by the reader; valid until the
 * next call). Returns REID_OK with *got = 0 at the end of the stream. */
reid_status reid_video_reader_next(reid_video_reader *r, const reid_image **frame, int *got);
/* Frames per second of the video stream (its average frame rate; 0 when unknown). */
double reid_video_reader_fps(const reid_video_reader *r);
void reid_video_reader_close(reid_video_reader *r);
