#!/usr/bin/python3
# A real RTSP camera for tests: GStreamer's gst-rtsp-server (Debian: python3-gst-1.0,
# gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-{base,good,bad,ugly}), run with /usr/bin/python3.
#
# usage: gst-rtsp-server.py --port N [--mount /cam] [--pipeline h264|h264-aac|h265]
#                           [--auth basic|digest --user U --password P] [--session-timeout S]
#
# Prints one JSON object per line on stdout, flushed at once, so a test can wait for events:
#   {"event": "ready", "port": N}
#   {"event": "connected", "client": K, "remote": "ip:port"}
#   {"event": "request", "client": K, "method": "DESCRIBE", "uri": "...", "transport": "..."}
#   {"event": "closed", "client": K}
# Requests that fail authentication are still reported (the signal fires before the check for
# some methods, not for others), so tests count only what they need.
import argparse
import json
import os
import sys

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

PIPELINES = {
    'h264': f'( {VIDEO_H264} )',
    'h264-aac': f'( {VIDEO_H264} {AUDIO_AAC} )',
    'h265': f'( {VIDEO_H265} )',
}


def emit(**fields):
    sys.stdout.write(json.dumps(fields) + '\n')
    sys.stdout.flush()


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--port', type=int, required=True)
    p.add_argument('--mount', default='/cam')
    p.add_argument('--pipeline', default='h264', choices=sorted(PIPELINES))
    p.add_argument('--auth', choices=['basic', 'digest'])
    p.add_argument('--user', default='')
    p.add_argument('--password', default='')
    p.add_argument('--session-timeout', type=int, default=0)
    a = p.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address('127.0.0.1')
    server.set_service(str(a.port))

    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(PIPELINES[a.pipeline])
    factory.set_shared(True)  # one pipeline for every client of the mount, like a camera
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

    server.get_mount_points().add_factory(a.mount, factory)

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
