// MSE over go2rtc's signalling WebSocket: a viewer of the stream's shared fMP4 muxer whose
// bytes are binary messages (the init segment alone, then one moof+mdat per message), after the
// text answer naming the MSE type. The socket's owner (api/ws-connection.ts) ends it.
import type { WebSocket } from 'ws';
import type { Stream } from '../core/stream.js';
import { parseMseCodecs } from './fmp4/codecs.js';
import { watchFmp4 } from './fmp4/muxers.js';
import { Fmp4Viewer, type Fmp4Sink, type ViewerMeta } from './fmp4/viewer.js';

/**
 * A socket as a viewer's sink. A moof and its mdat go out as the frames of one message (no copy
 * of the shared mdat); nothing else is sent on the socket between them, as both are sent at once.
 */
export function socketSink(ws: WebSocket, answer: (mime: string) => string): Fmp4Sink {
  return {
    start: (mime) => {
      if (ws.readyState === ws.OPEN) ws.send(answer(mime));
    },
    write: (parts) => {
      if (ws.readyState !== ws.OPEN) return;
      const last = parts.length - 1;
      parts.forEach((p, i) => ws.send(p, { binary: true, fin: i === last }));
    },
    buffered: () => ws.bufferedAmount,
  };
}

/** Starts an MSE viewer of `stream` for the codecs the client listed (go2rtc's `mse` value). */
export function openMse(stream: Stream, ws: WebSocket, codecs: string, answer: (mime: string) => string, meta: ViewerMeta): Fmp4Viewer {
  const viewer = new Fmp4Viewer('mse', socketSink(ws, answer), meta);
  watchFmp4(stream, parseMseCodecs(codecs), viewer);
  return viewer;
}
