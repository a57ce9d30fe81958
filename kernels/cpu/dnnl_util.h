/* Small helpers around oneDNN's C API (v2.x, as in Debian bookworm). */
#pragma once

#if HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>

#include "status.h"

const char *dnnl_status_text(dnnl_status_t s);

#define DNNL_CHECK(call)                                                                           \
  do {                                                                                             \
    dnnl_status_t dnnl_check_status_ = (call);                                                     \
    if (dnnl_check_status_ != dnnl_success)                                                        \
      return reid_fail(REID_EDEVICE, "oneDNN: %s failed (%s) at %s:%d", #call,                     \
                       dnnl_status_text(dnnl_check_status_), __FILE__, __LINE__);                  \
  } while (0)

/* One tensor argument of a primitive: the caller's plain memory and, when
 * the primitive prefers another layout, an internal buffer plus the reorder
 * between them (user -> internal for inputs, internal -> user for outputs). */
typedef struct dnnl_port {
  dnnl_memory_t user;
  dnnl_memory_t internal;
  dnnl_primitive_t reorder;
  int is_output;
} dnnl_port;

reid_status dnnl_port_init(dnnl_port *p, dnnl_engine_t engine, const dnnl_memory_desc_t *user_md,
                           const dnnl_memory_desc_t *wanted_md, int is_output);
/* Points the port at the caller's buffer; for inputs, reorders into the internal buffer. */
reid_status dnnl_port_bind(dnnl_port *p, dnnl_stream_t stream, const void *user_ptr);
/* For outputs: reorders the internal buffer into the caller's (no-op when same layout). */
reid_status dnnl_port_flush(dnnl_port *p, dnnl_stream_t stream);
/* The memory the primitive reads or writes. */
static inline dnnl_memory_t dnnl_port_memory(const dnnl_port *p) {
  return p->reorder ? p->internal : p->user;
}
void dnnl_port_destroy(dnnl_port *p);

/* Plain memory descriptors */
reid_status dnnl_md_plain(dnnl_memory_desc_t *md, int ndims, const int64_t *dims,
                          dnnl_data_type_t dt);
reid_status dnnl_reorder_run(dnnl_engine_t engine, dnnl_stream_t stream, dnnl_memory_t src,
                             dnnl_memory_t dst);
#endif
