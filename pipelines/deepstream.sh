#!/usr/bin/env bash
# reidembed after NVIDIA DeepStream's detector (nvinfer) and tracker (nvtracker).
#
# DeepStream keeps its results in NvDsBatchMeta / NvDsObjectMeta (its own
# metadata, in NVMM GPU memory buffers batched by nvstreammux), while
# reidembed reads GStreamer's standard GstVideoRegionOfInterestMeta from
# system-memory frames. So the pipeline needs, after nvtracker:
#   nvstreamdemux       one stream per branch (or batch-size=1 on nvstreammux)
#   nvvideoconvert      NVMM -> system memory:  ! video/x-raw,format=RGBA !
#   a small bridge      NvDsObjectMeta (rect_params, object_id, obj_label) ->
#                       GstVideoRegionOfInterestMeta + `object_id` param; here a
#                       pad probe in pipelines/deepstream_bridge.py (pyds)
#   reidembed           as everywhere else (device=cuda to stay on the GPU for
#                       the network; the crops are taken on the CPU)
#
# This script runs that Python pipeline. DeepStream is not installed on the
# project's build machine, so this path is documented but not tested here.
#
#   pipelines/deepstream.sh VIDEO_OR_URI
#   env: PGIE_CONFIG  nvinfer config (default: DeepStream's sample
#                     config_infer_primary.txt), TRACKER_LIB (default
#                     libnvds_nvmultiobjecttracker.so), MODEL, DEVICE, TRACKLETS
set -euo pipefail
source "$(dirname "$0")/env.sh"
[ $# -ge 1 ] || usage
NEED_HINT="install NVIDIA DeepStream and its Python bindings (pyds)" need_element nvstreammux nvinfer nvtracker nvvideoconvert
python3 -c "import pyds" 2>/dev/null || { echo "the DeepStream Python bindings (pyds) are not installed" >&2; exit 1; }
ds=/opt/nvidia/deepstream/deepstream
exec python3 "$(dirname "$0")/deepstream_bridge.py" "$1" \
  --pgie-config "${PGIE_CONFIG:-$ds/samples/configs/deepstream-app/config_infer_primary.txt}" \
  --tracker-lib "${TRACKER_LIB:-$ds/lib/libnvds_nvmultiobjecttracker.so}" \
  --model "$MODEL" --device "${DEVICE:-cuda}" --tracklets "${TRACKLETS:-deepstream.jsonl}"
