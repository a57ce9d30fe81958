/* reid-search's text, JSON and HTML outputs. */
#include "search_report.h"

#include <glib.h>
#include <string.h>

#include "json.h"

void search_format_time(int64_t unix_us, char *buf, size_t cap) {
  GDateTime *t = g_date_time_new_from_unix_utc(unix_us / 1000000);
  if (!t) {
    snprintf(buf, cap, "%lld", (long long)unix_us);
    return;
  }
  gchar *s = g_date_time_format(t, "%Y-%m-%dT%H:%M:%S");
  snprintf(buf, cap, "%s.%03dZ", s, (int)((unix_us % 1000000 + 1000000) % 1000000 / 1000));
  g_free(s);
  g_date_time_unref(t);
}

void search_write_text(FILE *out, const search_report *r) {
  fprintf(out, "%-4s %-7s %-16s %8s  %-24s  %-24s %6s %10s\n", "rank", "score", "stream", "track",
          "first seen (UTC)", "last seen (UTC)", "frames", "id");
  for (int i = 0; i < r->n_hits; i++) {
    const reid_gallery_hit *h = &r->hits[i];
    char first[40], last[40];
    search_format_time(h->first_time, first, sizeof first);
    search_format_time(h->last_time, last, sizeof last);
    fprintf(out, "%-4d %-7.4f %-16s %8lld  %-24s  %-24s %6d %10lld\n", i + 1, (double)h->score,
            h->stream, (long long)h->track_id, first, last, h->frames, (long long)h->id);
  }
  fprintf(stderr, "%d results from %s (%s, %.3f s)\n", r->n_hits, r->gallery, r->method,
          r->seconds);
}

static void json_string(FILE *out, const char *s) {
  size_t len = strlen(s), cap = 6 * len + 3;
  char *buf = g_malloc(cap);
  json_escape(buf, cap, s, len);
  fputs(buf, out);
  g_free(buf);
}

void search_write_json(FILE *out, const search_report *r) {
  fputs("{\"gallery\":", out);
  json_string(out, r->gallery);
  fputs(",\"model\":", out);
  json_string(out, r->model);
  fputs(",\"method\":", out);
  json_string(out, r->method);
  fprintf(out, ",\"seconds\":%.6f,\"queries\":[", r->seconds);
  for (int i = 0; i < r->n_queries; i++) {
    if (i) fputc(',', out);
    json_string(out, r->queries[i]);
  }
  fputs("],\"results\":[", out);
  for (int i = 0; i < r->n_hits; i++) {
    const reid_gallery_hit *h = &r->hits[i];
    char first[40], last[40];
    search_format_time(h->first_time, first, sizeof first);
    search_format_time(h->last_time, last, sizeof last);
    fprintf(out, "%s{\"rank\":%d,\"score\":%.6f,\"id\":%lld,\"stream\":", i ? "," : "", i + 1,
            (double)h->score, (long long)h->id);
    json_string(out, h->stream);
    fprintf(out,
            ",\"track_id\":%lld,\"first_time\":\"%s\",\"last_time\":\"%s\","
            "\"first_time_us\":%lld,\"last_time_us\":%lld,",
            (long long)h->track_id, first, last, (long long)h->first_time, (long long)h->last_time);
    if (h->first_pts == REID_GALLERY_TIME_NONE)
      fputs("\"first_pts\":null,", out);
    else
      fprintf(out, "\"first_pts\":%lld,", (long long)h->first_pts);
    if (h->last_pts == REID_GALLERY_TIME_NONE)
      fputs("\"last_pts\":null,", out);
    else
      fprintf(out, "\"last_pts\":%lld,", (long long)h->last_pts);
    fprintf(out, "\"frames\":%d,\"bbox\":[%g,%g,%g,%g]}", h->frames, (double)h->bbox[0],
            (double)h->bbox[1], (double)h->bbox[2], (double)h->bbox[3]);
  }
  fputs("]}\n", out);
}

/* ------------------------------------------------------------ HTML */

static const char *image_mime(const guint8 *d, gsize n) {
  if (n >= 3 && d[0] == 0xff && d[1] == 0xd8) return "image/jpeg";
  if (n >= 8 && !memcmp(d, "\x89PNG", 4)) return "image/png";
  if (n >= 2 && d[0] == 'B' && d[1] == 'M') return "image/bmp";
  if (n >= 12 && !memcmp(d, "RIFF", 4) && !memcmp(d + 8, "WEBP", 4)) return "image/webp";
  if (n >= 4 && !memcmp(d, "GIF8", 4)) return "image/gif";
  return NULL;
}

static void html_text(GString *s, const char *text) {
  gchar *e = g_markup_escape_text(text, -1);
  g_string_append(s, e);
  g_free(e);
}

/* An <img> with the bytes inlined, or a note when the format is not one browsers show. */
static void html_image(GString *s, const guint8 *data, gsize size, const char *alt) {
  const char *mime = image_mime(data, size);
  if (!mime) {
    g_string_append(s, "<span class=\"none\">(not shown: ");
    html_text(s, alt);
    g_string_append(s, ")</span>");
    return;
  }
  gchar *b64 = g_base64_encode(data, size);
  g_string_append_printf(s, "<img src=\"data:%s;base64,%s\" alt=\"", mime, b64);
  html_text(s, alt);
  g_string_append(s, "\"/>");
  g_free(b64);
}

reid_status search_write_html(const char *path, const search_report *r, reid_gallery *g) {
  GString *s = g_string_new(NULL);
  g_string_append(
      s,
      "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n"
      "<meta charset=\"utf-8\"/>\n<title>reid-search</title>\n<style>\n"
      "body{font-family:sans-serif;margin:1.5em}\n"
      "img{max-height:160px;border:1px solid #888;margin:2px}\n"
      "table{border-collapse:collapse}\ntd,th{padding:4px 10px;border-bottom:1px solid #ddd;"
      "text-align:left}\n.none{color:#888}\n</style>\n</head>\n<body>\n<h1>reid-search</h1>\n<p>");
  g_string_append(s, "Gallery ");
  html_text(s, r->gallery);
  g_string_append(s, ", model ");
  html_text(s, r->model);
  g_string_append_printf(s, ", %s search, %d results in %.3f s.</p>\n<h2>Query</h2>\n<p>",
                         r->method, r->n_hits, r->seconds);
  reid_status st = REID_OK;
  for (int i = 0; i < r->n_queries && st == REID_OK; i++) {
    gchar *data = NULL;
    gsize size = 0;
    GError *err = NULL;
    if (!g_file_get_contents(r->queries[i], &data, &size, &err)) {
      st = reid_fail(REID_EIO, "%s: %s", r->queries[i], err->message);
      g_error_free(err);
      break;
    }
    html_image(s, (const guint8 *)data, size, r->queries[i]);
    g_free(data);
  }
  g_string_append(s, "</p>\n<h2>Results</h2>\n<table>\n<tr><th>rank</th><th>thumbnail</th>"
                     "<th>score</th><th>stream</th><th>track</th><th>first seen (UTC)</th>"
                     "<th>last seen (UTC)</th><th>frames</th></tr>\n");
  for (int i = 0; i < r->n_hits && st == REID_OK; i++) {
    const reid_gallery_hit *h = &r->hits[i];
    uint8_t *jpeg = NULL;
    size_t size = 0;
    st = reid_gallery_thumbnail(g, h->id, &jpeg, &size);
    if (st != REID_OK) break;
    g_string_append_printf(s, "<tr><td>%d</td><td>", i + 1);
    if (jpeg) {
      gchar *alt = g_strdup_printf("tracklet %lld", (long long)h->id);
      html_image(s, jpeg, size, alt);
      g_free(alt);
    } else {
      g_string_append(s, "<span class=\"none\">(no thumbnail)</span>");
    }
    free(jpeg);
    char first[40], last[40];
    search_format_time(h->first_time, first, sizeof first);
    search_format_time(h->last_time, last, sizeof last);
    g_string_append_printf(s, "</td><td>%.4f</td><td>", (double)h->score);
    html_text(s, h->stream);
    g_string_append_printf(s, "</td><td>%lld</td><td>%s</td><td>%s</td><td>%d</td></tr>\n",
                           (long long)h->track_id, first, last, h->frames);
  }
  g_string_append(s, "</table>\n</body>\n</html>\n");
  GError *err = NULL;
  if (st == REID_OK && !g_file_set_contents(path, s->str, (gssize)s->len, &err)) {
    st = reid_fail(REID_EIO, "--html %s: %s", path, err->message);
    g_error_free(err);
  }
  g_string_free(s, TRUE);
  return st;
}
