#include "dnnl_util.h"

#if HAVE_DNNL
#include <string.h>

const char *dnnl_status_text(dnnl_status_t s) {
  switch (s) {
  case dnnl_success: return "success";
  case dnnl_out_of_memory: return "out of memory";
  case dnnl_invalid_arguments: return "invalid arguments";
  case dnnl_unimplemented: return "unimplemented";
  case dnnl_iterator_ends: return "iterator ends";
  case dnnl_runtime_error: return "runtime error";
  case dnnl_not_required: return "not required";
  }
  return "unknown status";
}

reid_status dnnl_md_plain(dnnl_memory_desc_t *md, int ndims, const int64_t *dims,
                          dnnl_data_type_t dt) {
  static const dnnl_format_tag_t tags[] = {
      dnnl_format_tag_undef, dnnl_a, dnnl_ab, dnnl_abc, dnnl_abcd, dnnl_abcde};
  if (ndims < 1 || ndims > 5) return reid_fail(REID_EINVAL, "oneDNN: %d-d tensor", ndims);
  dnnl_dims_t d;
  for (int i = 0; i < ndims; i++) d[i] = dims[i];
  DNNL_CHECK(dnnl_memory_desc_init_by_tag(md, ndims, d, dt, tags[ndims]));
  return REID_OK;
}

reid_status dnnl_reorder_run(dnnl_engine_t engine, dnnl_stream_t stream, dnnl_memory_t src,
                             dnnl_memory_t dst) {
  const dnnl_memory_desc_t *src_md, *dst_md;
  DNNL_CHECK(dnnl_memory_get_memory_desc(src, &src_md));
  DNNL_CHECK(dnnl_memory_get_memory_desc(dst, &dst_md));
  dnnl_primitive_desc_t pd;
  DNNL_CHECK(dnnl_reorder_primitive_desc_create(&pd, src_md, engine, dst_md, engine, NULL));
  dnnl_primitive_t prim;
  dnnl_status_t s = dnnl_primitive_create(&prim, pd);
  dnnl_primitive_desc_destroy(pd);
  DNNL_CHECK(s);
  dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}};
  s = dnnl_primitive_execute(prim, stream, 2, args);
  if (s == dnnl_success) s = dnnl_stream_wait(stream);
  dnnl_primitive_destroy(prim);
  DNNL_CHECK(s);
  return REID_OK;
}

reid_status dnnl_port_init(dnnl_port *p, dnnl_engine_t engine, const dnnl_memory_desc_t *user_md,
                           const dnnl_memory_desc_t *wanted_md, int is_output) {
  memset(p, 0, sizeof *p);
  p->is_output = is_output;
  DNNL_CHECK(dnnl_memory_create(&p->user, user_md, engine, DNNL_MEMORY_NONE));
  if (dnnl_memory_desc_equal(user_md, wanted_md)) return REID_OK;
  DNNL_CHECK(dnnl_memory_create(&p->internal, wanted_md, engine, DNNL_MEMORY_ALLOCATE));
  dnnl_primitive_desc_t pd;
  if (is_output)
    DNNL_CHECK(dnnl_reorder_primitive_desc_create(&pd, wanted_md, engine, user_md, engine, NULL));
  else
    DNNL_CHECK(dnnl_reorder_primitive_desc_create(&pd, user_md, engine, wanted_md, engine, NULL));
  dnnl_status_t s = dnnl_primitive_create(&p->reorder, pd);
  dnnl_primitive_desc_destroy(pd);
  DNNL_CHECK(s);
  return REID_OK;
}

reid_status dnnl_port_bind(dnnl_port *p, dnnl_stream_t stream, const void *user_ptr) {
  DNNL_CHECK(dnnl_memory_set_data_handle(p->user, (void *)user_ptr));
  if (p->reorder && !p->is_output) {
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, p->user}, {DNNL_ARG_TO, p->internal}};
    DNNL_CHECK(dnnl_primitive_execute(p->reorder, stream, 2, args));
  }
  return REID_OK;
}

reid_status dnnl_port_flush(dnnl_port *p, dnnl_stream_t stream) {
  if (p->reorder && p->is_output) {
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, p->internal}, {DNNL_ARG_TO, p->user}};
    DNNL_CHECK(dnnl_primitive_execute(p->reorder, stream, 2, args));
  }
  return REID_OK;
}

void dnnl_port_destroy(dnnl_port *p) {
  if (p->reorder) dnnl_primitive_destroy(p->reorder);
  if (p->internal) dnnl_memory_destroy(p->internal);
  if (p->user) dnnl_memory_destroy(p->user);
  memset(p, 0, sizeof *p);
}
#endif
