// MJPEG over the signalling socket, as go2rtc's /api/ws serves it (internal/mjpeg/mjpeg.go):
// the client sends {"type":"mjpeg"}, camrelay answers {"type":"mjpeg"} once the picture is on
// its way, then every JPEG as one binary message (go2rtc's player shows each as a poster, so a
// message is always one whole image). Unlike go2rtc, which serves only streams that already
// carry JPEG, camrelay encodes the stream's H.264/H.265 with the encoder it shares with
// /api/stream.mjpeg viewers of the same stream and size (outputs/mjpeg-hub.ts). A failure is
// answered {"type":"error","value":"mjpeg: <reason>"}, go2rtc's form.
//
// Wiring in WsConnection (src/api/ws-connection.ts), for whoever owns it:
//   - the context gets `mjpeg: MjpegHub` (app.ts makes one hub and gives the same one to
//     mediaRoutes({ ..., mjpeg }) and to WsSignalling);
//   - ws-messages.ts parses {"type":"mjpeg"} as its own kind (no value) instead of 'unknown';
//   - on it: close the viewer this socket had (`this.#mjpeg?.close()`), then, if the stream
//     exists, `this.#mjpeg = startMjpegOverWs(this.#ws, stream, this.ctx.mjpeg, { remoteAddr:
//     this.#remoteAddr, userAgent: this.#userAgent })`, else `this.#sendError('mjpeg', 'stream
//     not found')` (go2rtc's words);
//   - `this.#mjpeg.once('close', (reason) => { if (closeCodeOf(reason) === 'slow_consumer')
//     this.close(reason, 1008) })`: a socket too slow for the pictures is cut;
//   - in onClose: `this.#mjpeg?.close()` (the socket's end ends the viewer; the viewer also
//     closes by itself on the socket's 'close').
import type { WebSocket } from 'ws';
import type { Stream } from '../core/stream.js';
import { errorMessage as messageOf } from '../core/errors.js';
import type { JpegSink, MjpegHub, MjpegViewer, Size } from '../outputs/mjpeg-hub.js';
import { errorMessage } from './ws-messages.js';

export interface WsMjpegOptions extends Size {
  remoteAddr?: string;
  userAgent?: string;
}

/** The socket as a sink: binary messages, its bufferedAmount as the backlog. The socket is not ours to close. */
class WsJpegSink implements JpegSink {
  constructor(private readonly ws: WebSocket) {}
  get buffered(): number {
    return this.ws.bufferedAmount;
  }
  /** go2rtc's answer, before the first picture. */
  open(): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(JSON.stringify({ type: 'mjpeg' }));
  }
  write(jpeg: Buffer): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(jpeg, { binary: true });
  }
  end(): void {}
}

/**
 * Starts a viewer of `stream` on `ws` and returns it at once: the caller owns it (closes it when
 * the socket closes or asks for something else); it also closes itself on the socket's 'close'.
 */
export function startMjpegOverWs(ws: WebSocket, stream: Stream, hub: MjpegHub, opts: WsMjpegOptions = {}): MjpegViewer | undefined {
  let viewer: MjpegViewer;
  try {
    viewer = hub.viewer(stream, { width: opts.width, height: opts.height }, new WsJpegSink(ws), {
      remoteAddr: opts.remoteAddr,
      userAgent: opts.userAgent,
      via: 'ws',
    });
  } catch (e) {
    // Every encoder slot taken (api.max_mjpeg_encoders): told as go2rtc's error, socket open.
    if (ws.readyState === ws.OPEN) ws.send(errorMessage('mjpeg', messageOf(e)));
    return undefined;
  }
  const onSocketClose = () => viewer.close();
  ws.once('close', onSocketClose);
  viewer.once('close', () => ws.off('close', onSocketClose));
  viewer.start().catch((e: unknown) => {
    if (!viewer.closed && ws.readyState === ws.OPEN) ws.send(errorMessage('mjpeg', messageOf(e)));
    viewer.close();
  });
  return viewer;
}
