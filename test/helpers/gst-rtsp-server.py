#!/usr/bin/python3
# A real RTSP camera for tests: GStreamer's gst-rtsp-server (Debian: python3-gst-1.0,
# gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-{base,good,bad,ugly}), run with /usr/bin/python3.
#
# usage: gst-rtsp-server.py --port N [--mount /cam] [--pipeline h264|h264-aac|h264-pcma|h265|h265-aac|h265-pcma|h264-file|h265-file]
#                           [--auth basic|digest --user U --password P] [--session-timeout S]
#                           [--file clip.h264 [--fps 25]] [--mounts N]
#                           [--backchannel pcma|pcmu|aac [--backchannel-out audio.s16]]
# h264-file serves an H.264 Annex B file (--file) in a loop at --fps frames per second, without
# encoding anything: the benchmarks' camera, so that the camera costs no CPU they measure.
# h265-file does the same with an H.265 Annex B file (the transcode benchmark's camera).
# --mounts N (N > 1) serves N cameras from this one process: mounts <mount>1 … <mount>N, each with
# a media of its own (for the file pipelines its own feeder, from the file's first frame when its
# first client comes), all of the same pipeline: the house benchmark's 16 cameras.
# --backchannel pcma|pcmu|aac makes it an ONVIF camera with an audio backchannel (RTSPOnvifServer and
# RTSPOnvifMediaFactory): a client whose DESCRIBE carries `Require: www.onvif.org/ver20/backchannel`
# gets one more audio media, a=sendonly, PCMA (PT 8) or PCMU (PT 0) at 8 kHz, or AAC (PT 97:
# MPEG4-GENERIC/16000/1, AAC-hbr, config=1408: AAC-LC 16 kHz mono, as ONVIF cameras that take
# AAC describe it; decoded by faad from plugins-bad), whose RTP it sends to the camera (TCP
# interleaved or UDP); GStreamer gives such a client a media (pipeline, encoder) of its own, never
# shared. Clients without the header get the normal, shared media and SDP.
# What GStreamer does (1.22): the media is the one the connection's DESCRIBE made, so its SETUPs
# need no Require (a SETUP on a connection without that DESCRIBE needs it, or gets 404 for the
# backchannel); the backchannel's SETUP must come before PLAY (one after PLAY is answered 200 but
# its RTP is dropped); RTP of another payload type than the SDP's is dropped silently; RTP
# timestamps and pacing do not matter here (appsink sync=false). Without --backchannel the camera
# answers a Require of the backchannel with 551 Option not supported (and reports no request).
# The decoded audio is appended to --backchannel-out as raw s16le 8 kHz mono, flushed as it comes.
#
# Prints one JSON object per line on stdout, flushed at once, so a test can wait for events:
#   {"event": "ready", "port": N}
#   {"event": "connected", "client": K, "remote": "ip:port"}
#   {"event": "request", "client": K, "method": "DESCRIBE", "uri": "...", "transport": "...", "require": "..."}
#   {"event": "closed", "client": K}
#   {"event": "backchannel", "packets": N, "bytes": B, "pt": 8, "ssrc": S, "caps": "application/x-rtp, ..."}
#   {"event": "backchannel-end", "packets": N, "bytes": B}
# transport is a SETUP's Transport header, require a request's Require header (when it has one).
# backchannel counts, for the whole process, the RTP packets that reached the backchannel's
# depayloader (after GStreamer's jitterbuffer) and the bytes of audio written to --backchannel-out;
# it comes at the first packet of each backchannel media, then every 25 packets written and once a
# second while the counts change (never decreasing, line after line); pt, ssrc and caps are those
# of the latest packet. backchannel-end: a backchannel media went (its client left or tore it
# down), with the process's counts.
# Requests that fail authentication are still reported (the signal fires before the check for
# some methods, not for others), so tests count only what they need.
import argparse
import json
import os
import sys
import threading

import gi

gi.require_version('Gst', '1.0')
gi.require_version('GstRtsp', '1.0')
gi.require_version('GstRtspServer', '1.0')
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

VIDEO_H264 = ('videotestsrc is-live=true pattern=ball ! video/x-raw,format=I420,width=320,height=180,framerate=25/1 '
              '! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 bitrate=300 '
              '! video/x-h264,profile=constrained-baseline ! rtph264pay name=pay0 pt=96 config-interval=-1')
VIDEO_H265 = ('videotestsrc is-live=true pattern=ball ! video/x-raw,format=I420,width=320,height=180,framerate=25/1 '
              '! x265enc tune=zerolatency speed-preset=ultrafast key-int-max=25 bitrate=300 '
              '! rtph265pay name=pay0 pt=96 config-interval=-1')
AUDIO_AAC = ('audiotestsrc is-live=true wave=sine freq=440 ! audio/x-raw,rate=48000,channels=1 '
             '! voaacenc bitrate=64000 ! aacparse ! rtpmp4gpay name=pay1 pt=97')

# G.711 A-law at 8 kHz, the audio of most IP cameras: what no MP4 player takes.
AUDIO_PCMA = ('audiotestsrc is-live=true wave=sine freq=440 ! audio/x-raw,rate=8000,channels=1 '
              '! alawenc ! rtppcmapay name=pay1 pt=8')

PIPELINES = {
    'h264': f'( {VIDEO_H264} )',
    'h264-aac': f'( {VIDEO_H264} {AUDIO_AAC} )',
    'h265': f'( {VIDEO_H265} )',
    'h265-aac': f'( {VIDEO_H265} {AUDIO_AAC} )',
    'h264-pcma': f'( {VIDEO_H264} {AUDIO_PCMA} )',
    'h265-pcma': f'( {VIDEO_H265} {AUDIO_PCMA} )',
}


# h264-file: the file's access units are pushed into an appsrc at --fps in real time, looping,
# stamped with the pipeline clock (do-timestamp), so the camera is live and its RTP timestamps
# keep growing across the loop. GStreamer's own file elements cannot do this: multifilesrc +
# h264parse loops but leaves PTS unset (constant RTP timestamps, no pacing).
FILE_PIPELINE = ('( appsrc name=feed is-live=true do-timestamp=true format=time '
                 'caps=video/x-h264,stream-format=byte-stream,alignment=au,framerate={fps}/1 '
                 '! h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1 )')
FILE_PIPELINE_H265 = ('( appsrc name=feed is-live=true do-timestamp=true format=time '
                      'caps=video/x-h265,stream-format=byte-stream,alignment=au,framerate={fps}/1 '
                      '! h265parse ! rtph265pay name=pay0 pt=96 config-interval=-1 )')
FILE_PIPELINES = {'h264-file': FILE_PIPELINE, 'h265-file': FILE_PIPELINE_H265}

# The ONVIF backchannel: a bin whose first element, named depay_backchannel, answers a caps query
# with the complete RTP caps it takes (GStreamer puts them in the SDP's sendonly media); its sink
# must not wait for preroll (async=false), or the whole media never prepares.
# The SDP's fmtp is made of the caps' string fields (GStreamer's gst_sdp_media_set_media_from_caps),
# hence the (string) types of the AAC parameters.
AAC_BACKCHANNEL_CAPS = ('application/x-rtp,media=audio,payload=97,clock-rate=16000,encoding-name=MPEG4-GENERIC,'
                        'encoding-params=(string)1,streamtype=(string)5,profile-level-id=(string)1,mode=(string)AAC-hbr,'
                        'sizelength=(string)13,indexlength=(string)3,indexdeltalength=(string)3,config=(string)1408')
BACKCHANNELS = {
    'pcma': ('application/x-rtp,media=audio,payload=8,clock-rate=8000,encoding-name=PCMA', 'rtppcmadepay ! alawdec'),
    'pcmu': ('application/x-rtp,media=audio,payload=0,clock-rate=8000,encoding-name=PCMU', 'rtppcmudepay ! mulawdec'),
    'aac': (AAC_BACKCHANNEL_CAPS, 'rtpmp4gdepay ! aacparse ! faad ! audioresample'),
}


def backchannel_launch(kind):
    caps, decode = BACKCHANNELS[kind]
    return (f'( capsfilter name=depay_backchannel caps="{caps}" '
            f'! {decode} ! audioconvert ! audio/x-raw,format=S16LE,rate=8000,channels=1 '
            '! appsink name=backchannel_out sync=false async=false emit-signals=true max-buffers=0 )')


class Backchannel:
    """Counts the backchannel RTP of every media, writes its decoded audio to one file, reports both."""

    def __init__(self, path):
        self.lock = threading.Lock()
        self.out = open(path, 'ab') if path else None
        self.packets = 0
        self.bytes = 0
        self.written = 0  # appsink buffers (one per packet) written since the last report
        self.last = None  # (pt, ssrc, caps) of the latest packet
        self.reported = (0, 0)
        GLib.timeout_add(1000, self._tick)

    def attach(self, media):
        element = media.get_element()
        depay = element.get_by_name('depay_backchannel')
        sink = element.get_by_name('backchannel_out')
        if depay is None or sink is None:
            return  # a client that did not ask for the backchannel: the normal media
        seen = [False]  # this media's first packet is reported at once, as the process's is

        def on_rtp(pad, info):
            first = not seen[0]
            seen[0] = True
            return self._on_rtp(pad, info, first)

        depay.get_static_pad('sink').add_probe(Gst.PadProbeType.BUFFER, on_rtp)
        sink.connect('new-sample', self._on_sample)
        media.connect('unprepared', lambda _m: self._report(event='backchannel-end'))

    def _on_rtp(self, pad, info, first):
        buf = info.get_buffer()
        head = buf.extract_dup(0, 12) if buf.get_size() >= 12 else b''
        caps = pad.get_current_caps()
        with self.lock:
            self.packets += 1
            if len(head) == 12:
                self.last = (head[1] & 0x7f, int.from_bytes(head[8:12], 'big'), caps.to_string() if caps else None)
        if first:
            self._report()
        return Gst.PadProbeReturn.OK

    def _on_sample(self, sink):
        sample = sink.emit('pull-sample')
        if sample is None:
            return Gst.FlowReturn.EOS
        data = sample.get_buffer().extract_dup(0, sample.get_buffer().get_size())
        with self.lock:
            if self.out:
                self.out.write(data)
                self.out.flush()
            self.bytes += len(data)
            self.written += 1
            due = self.written >= 25
            if due:
                self.written = 0
        if due:
            self._report()
        return Gst.FlowReturn.OK

    def _tick(self):
        with self.lock:
            changed = (self.packets, self.bytes) != self.reported
        if changed:
            self._report()
        return True

    def _report(self, event='backchannel'):
        # Emitted under the lock, so that reports from the streaming threads and the timer come out
        # in the order of their counts.
        with self.lock:
            self.reported = (self.packets, self.bytes)
            fields = {'event': event, 'packets': self.packets, 'bytes': self.bytes}
            if event == 'backchannel' and self.last:
                fields['pt'], fields['ssrc'], fields['caps'] = self.last
            emit(**fields)


def h264_nal(nal, h):
    """(is a slice, is the first slice of its picture) of the H.264 NAL unit whose header is at h."""
    t = nal[h] & 0x1f if h < len(nal) else 0
    vcl = t in (1, 5)
    return vcl, vcl and h + 1 < len(nal) and (nal[h + 1] & 0x80) != 0


def h265_nal(nal, h):
    """The same for H.265: VCL types 0-31, first_slice_segment_in_pic_flag after the 2-byte header."""
    t = (nal[h] >> 1) & 0x3f if h < len(nal) else 63
    vcl = t < 32
    return vcl, vcl and h + 2 < len(nal) and (nal[h + 2] & 0x80) != 0


def access_units(data, nal_kind=h264_nal):
    """Splits an H.264 (or, with h265_nal, H.265) Annex B byte stream into access units (bytes each, start codes kept)."""
    starts = []
    i = data.find(b'\x00\x00\x01')
    while i >= 0:
        starts.append(i - 1 if i > 0 and data[i - 1] == 0 else i)
        i = data.find(b'\x00\x00\x01', i + 3)
    aus, cur, has_vcl = [], [], False
    for k, s in enumerate(starts):
        e = starts[k + 1] if k + 1 < len(starts) else len(data)
        nal = data[s:e]
        h = nal.index(b'\x00\x00\x01') + 3
        vcl, first_slice = nal_kind(nal, h)
        # A new AU starts at a non-VCL NAL after a picture, or at the first slice of a picture
        # (H.264: first_mb_in_slice 0; H.265: first_slice_segment_in_pic_flag). The clips here
        # carry no suffix SEI, the one H.265 non-VCL NAL that follows its picture.
        if has_vcl and (not vcl or first_slice):
            aus.append(b''.join(cur))
            cur, has_vcl = [], False
        cur.append(nal)
        has_vcl = has_vcl or vcl
    if cur:
        aus.append(b''.join(cur))
    return aus


class FileFeeder:
    """Pushes access units into one media's appsrc on the GLib main loop until the media goes."""

    def __init__(self, appsrc, aus, fps):
        self.appsrc, self.aus, self.fps = appsrc, aus, fps
        self.n = 0
        self.t0 = GLib.get_monotonic_time()
        self.stopped = False
        self._tick()

    def stop(self):
        self.stopped = True

    def _tick(self):
        if self.stopped:
            return False
        now = GLib.get_monotonic_time()
        # Every AU that is due (normally one); the schedule is from t0, so timer lateness never drifts.
        for _ in range(self.fps):
            if self.t0 + self.n * 1_000_000 // self.fps > now:
                break
            au = self.aus[self.n % len(self.aus)]
            if self.appsrc.emit('push-buffer', Gst.Buffer.new_wrapped(au)) != Gst.FlowReturn.OK:
                self.stopped = True
                return False
            self.n += 1
        due = self.t0 + self.n * 1_000_000 // self.fps
        GLib.timeout_add(max(1, (due - GLib.get_monotonic_time() + 999) // 1000), self._tick)
        return False


EMIT_LOCK = threading.Lock()


def emit(**fields):
    # Backchannel reports come from GStreamer's streaming threads too: one whole line at a time.
    with EMIT_LOCK:
        sys.stdout.write(json.dumps(fields) + '\n')
        sys.stdout.flush()


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--port', type=int, required=True)
    p.add_argument('--mount', default='/cam')
    p.add_argument('--pipeline', default='h264', choices=sorted([*PIPELINES, *FILE_PIPELINES]))
    p.add_argument('--auth', choices=['basic', 'digest'])
    p.add_argument('--user', default='')
    p.add_argument('--password', default='')
    p.add_argument('--session-timeout', type=int, default=0)
    p.add_argument('--file', help='H.264 (H.265) Annex B file for --pipeline h264-file (h265-file)')
    p.add_argument('--fps', type=int, default=25)
    p.add_argument('--mounts', type=int, default=1, help='N > 1: serve <mount>1 … <mount>N, one media each')
    p.add_argument('--backchannel', choices=sorted(BACKCHANNELS), help='an ONVIF audio backchannel of this codec')
    p.add_argument('--backchannel-out', help='file the decoded backchannel audio is appended to (s16le, 8 kHz, mono)')
    a = p.parse_args()
    if a.backchannel_out and not a.backchannel:
        p.error('--backchannel-out needs --backchannel')
    if a.mounts < 1:
        p.error('--mounts must be at least 1')
    if a.pipeline in FILE_PIPELINES and not a.file:
        p.error(f'--pipeline {a.pipeline} needs --file')

    Gst.init(None)
    # The ONVIF server's clients understand `Require: www.onvif.org/ver20/backchannel` (others
    # answer 551 Option not supported); the ONVIF factory adds the backchannel to the media of the
    # requests that carry it.
    server = GstRtspServer.RTSPOnvifServer() if a.backchannel else GstRtspServer.RTSPServer()
    server.set_address('127.0.0.1')
    server.set_service(str(a.port))

    if a.backchannel:
        factory = GstRtspServer.RTSPOnvifMediaFactory()
        factory.set_media_gtype(GstRtspServer.RTSPOnvifMedia)  # its construct() makes nothing else
        factory.set_backchannel_launch(backchannel_launch(a.backchannel))
        backchannel = Backchannel(a.backchannel_out)
        factory.connect('media-configure', lambda _f, media: backchannel.attach(media))
    else:
        factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(FILE_PIPELINES[a.pipeline].format(fps=a.fps) if a.pipeline in FILE_PIPELINES else PIPELINES[a.pipeline])
    # One pipeline for every client of the mount, like a camera (the ONVIF factory shares none
    # whose request asked for the backchannel).
    factory.set_shared(True)
    # Some cameras only stream over TCP or only over UDP; this one does both.
    factory.set_protocols(GstRtsp.RTSPLowerTrans.TCP | GstRtsp.RTSPLowerTrans.UDP)

    if a.auth:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken.new()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, 'user')
        if a.auth == 'basic':
            auth.add_basic(GstRtspServer.RTSPAuth.make_basic(a.user, a.password), token)
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.BASIC)
        else:
            auth.add_digest(a.user, a.password, token)
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
        server.set_auth(auth)
        perms = GstRtspServer.RTSPPermissions()
        perms.add_role('user')
        perms.add_permission_for_role('user', GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, True)
        perms.add_permission_for_role('user', GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, True)
        factory.set_permissions(perms)

    if a.pipeline in FILE_PIPELINES:
        h265 = a.pipeline == 'h265-file'
        with open(a.file, 'rb') as f:
            aus = access_units(f.read(), h265_nal if h265 else h264_nal)
        if not aus:
            emit(event='error', message=f'no {"H.265" if h265 else "H.264"} access units in {a.file}')
            sys.exit(2)

        def on_media(_factory, media):
            feeder = FileFeeder(media.get_element().get_by_name('feed'), aus, a.fps)
            media.connect('unprepared', lambda _m: feeder.stop())

        factory.connect('media-configure', on_media)

    # One factory serves every mount: a shared factory keeps one media per URL path, so each mount
    # gets a pipeline (and a feeder) of its own.
    for mount in [a.mount] if a.mounts == 1 else [f'{a.mount}{i}' for i in range(1, a.mounts + 1)]:
        server.get_mount_points().add_factory(mount, factory)

    clients = {}
    counter = [0]

    def on_request(method):
        def handler(client, ctx):
            fields = {'event': 'request', 'client': clients.get(hash(client), 0), 'method': method}
            try:
                fields['uri'] = ctx.uri.get_request_uri()
            except Exception:  # noqa: BLE001 - a missing uri must not stop the report
                pass
            if method == 'SETUP':
                res, value = ctx.request.get_header(GstRtsp.RTSPHeaderField.TRANSPORT, 0)
                if res == GstRtsp.RTSPResult.OK:
                    fields['transport'] = value
            res, value = ctx.request.get_header(GstRtsp.RTSPHeaderField.REQUIRE, 0)
            if res == GstRtsp.RTSPResult.OK:
                fields['require'] = value
            emit(**fields)
        return handler

    def on_new_session(client, session):
        if a.session_timeout > 0:
            session.set_timeout(a.session_timeout)

    def on_client(_server, client):
        counter[0] += 1
        k = counter[0]
        clients[hash(client)] = k
        conn = client.get_connection()
        remote = f'{conn.get_ip()}' if conn is not None else '?'
        emit(event='connected', client=k, remote=remote)
        client.connect('options-request', on_request('OPTIONS'))
        client.connect('describe-request', on_request('DESCRIBE'))
        client.connect('setup-request', on_request('SETUP'))
        client.connect('play-request', on_request('PLAY'))
        client.connect('teardown-request', on_request('TEARDOWN'))
        client.connect('get-parameter-request', on_request('GET_PARAMETER'))
        client.connect('set-parameter-request', on_request('SET_PARAMETER'))
        client.connect('new-session', on_new_session)
        client.connect('closed', lambda c: emit(event='closed', client=clients.get(hash(c), 0)))

    server.connect('client-connected', on_client)
    if server.attach(None) == 0:
        emit(event='error', message=f'cannot listen on 127.0.0.1:{a.port}')
        sys.exit(2)

    # Sessions whose keep-alive lapsed are only removed when somebody runs the pool's cleanup.
    pool = server.get_session_pool()
    GLib.timeout_add_seconds(1, lambda: (pool.cleanup(), True)[1])

    loop = GLib.MainLoop()

    # The test that started us owns our stdin: when it ends (even killed), stdin reaches EOF and
    # we exit, so no camera outlives its test.
    def on_stdin(fd, _cond):
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b''
        if not data:
            loop.quit()
            return False
        return True

    GLib.io_add_watch(sys.stdin.fileno(), GLib.IO_IN | GLib.IO_HUP | GLib.IO_ERR, on_stdin)
    emit(event='ready', port=server.get_bound_port())
    loop.run()


if __name__ == '__main__':
    main()
