#!/usr/bin/env python3
"""DeepStream detector + tracker -> reidembed (see deepstream.sh).

DeepStream's results live in NvDsObjectMeta inside NvDsBatchMeta; reidembed
reads GStreamer's GstVideoRegionOfInterestMeta. This script runs two pipelines
joined by appsink/appsrc and converts the metadata in between:

  uridecodebin ! nvstreammux batch-size=1 ! nvinfer ! nvtracker !
      nvvideoconvert ! video/x-raw,format=RGBA ! appsink
  appsrc ! reidembed ! fakesink

For every frame the buffer is copied (the pixels are shared, not copied), and
each NvDsObjectMeta becomes a ROI meta (rect_params -> box, obj_label -> type)
with an `object_id` param carrying the tracker's object_id.

Not tested on the project's machine (no DeepStream there); written against
the DeepStream 6.x Python bindings (pyds) and gst-python 1.22.
"""
import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import GLib, Gst, GstVideo  # noqa: E402

import pyds  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", help="video file or URI")
    p.add_argument("--pgie-config", required=True, help="nvinfer config file")
    p.add_argument("--tracker-lib", required=True, help="nvtracker low-level library")
    p.add_argument("--model", required=True, help="reid checkpoint")
    p.add_argument("--device", default="cuda")
    p.add_argument("--tracklets", default="deepstream.jsonl")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=720)
    return p.parse_args()


def ds_objects(buf):
    """(label, object_id, left, top, width, height) of the frame's objects."""
    batch = pyds.gst_buffer_get_nvds_batch_meta(hash(buf))
    if not batch:
        return
    lf = batch.frame_meta_list
    while lf is not None:
        frame = pyds.NvDsFrameMeta.cast(lf.data)
        lo = frame.obj_meta_list
        while lo is not None:
            o = pyds.NvDsObjectMeta.cast(lo.data)
            r = o.rect_params
            yield o.obj_label or "object", int(o.object_id), r.left, r.top, r.width, r.height
            lo = lo.next
        lf = lf.next


def main():
    a = parse_args()
    Gst.init(None)
    uri = a.source if "://" in a.source else Gst.filename_to_uri(a.source)
    detect = Gst.parse_launch(
        f"uridecodebin uri={uri} ! m.sink_0 "
        f"nvstreammux name=m batch-size=1 width={a.width} height={a.height} ! "
        f"nvinfer config-file-path={a.pgie_config} ! "
        f"nvtracker ll-lib-file={a.tracker_lib} ! "
        "nvvideoconvert ! video/x-raw,format=RGBA ! appsink name=out sync=false max-buffers=4")
    embed = Gst.parse_launch(
        f"appsrc name=in format=time ! reidembed model={a.model} device={a.device} "
        f"tracklet-location={a.tracklets} ! fakesink sync=false")
    out, src = detect.get_by_name("out"), embed.get_by_name("in")
    embed.set_state(Gst.State.PLAYING)
    detect.set_state(Gst.State.PLAYING)
    caps_set = False
    while True:
        sample = out.emit("pull-sample") if not out.get_property("eos") else None
        if sample is None:
            src.emit("end-of-stream")
            break
        if not caps_set:
            src.set_property("caps", sample.get_caps())
            caps_set = True
        buf = sample.get_buffer()
        frame = buf.copy()  # writable, shares the pixels
        for label, object_id, x, y, w, h in ds_objects(buf):
            roi = GstVideo.buffer_add_video_region_of_interest_meta(
                frame, label, max(int(x), 0), max(int(y), 0), int(w), int(h))
            roi.add_param(Gst.Structure.new_from_string(f"object_id, id=(int){object_id}"))
        if src.emit("push-buffer", frame) != Gst.FlowReturn.OK:
            break
    bus = embed.get_bus()
    while True:
        m = bus.timed_pop_filtered(Gst.CLOCK_TIME_NONE,
                                   Gst.MessageType.EOS | Gst.MessageType.ERROR | Gst.MessageType.ELEMENT)
        if m.type == Gst.MessageType.ELEMENT:
            s = m.get_structure()
            if s.get_name() == "reid-tracklet":
                print(f"track {s.get_value('track-id')}: {s.get_value('frames')} frames")
            continue
        if m.type == Gst.MessageType.ERROR:
            print(m.parse_error()[0].message, file=sys.stderr)
        break
    detect.set_state(Gst.State.NULL)
    embed.set_state(Gst.State.NULL)
    print(f"tracklets: {a.tracklets}")


if __name__ == "__main__":
    GLib.set_prgname("deepstream_bridge")
    main()
