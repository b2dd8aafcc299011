// The viewers of a fan-out run, in a process of their own so that their CPU is not camrelay's:
// node-datachannel peers for camrelay, plain WebSocket clients for rtsp-relay. Driven by
// bench/viewers.ts over the IPC channel; answers every request with the same id.
import { performance } from 'node:perf_hooks';
import { WebSocket } from 'ws';
import { connectViewer, type NdcViewer } from './ndc-viewer.js';
import { WsViewer } from './ws-viewer.js';
import type { ViewerRequest, ViewerStats } from './viewers.js';

const rtc: NdcViewer[] = [];
/** The src each of `rtc` watches, in the same order. */
const rtcSrc: string[] = [];
const ws: WsViewer[] = [];
let retries = 0;

function stats(): ViewerStats {
  return {
    at: performance.now(),
    packets: [...rtc.map((v) => v.packets), ...ws.map((v) => v.packets)],
    bytes: [...rtc.map((v) => v.bytes), ...ws.map((v) => v.bytes)],
    frames: rtc.map((v) => v.frames),
    srcs: [...rtcSrc],
    lost: rtc.map((v) => v.lost),
    retries,
    open: rtc.filter((v) => v.state === 'connected').length + ws.filter((v) => v.ws.readyState === WebSocket.OPEN).length,
  };
}

async function handle(m: ViewerRequest): Promise<unknown> {
  switch (m.cmd) {
    case 'openWebrtc': {
      // One at a time, as people join: camrelay answers each offer before the next comes.
      for (let i = 0; i < m.count; i++) {
        // Back to back: offers without candidates (see NdcViewer.connect).
        const { viewer, retries: r } = await connectViewer(`viewer${rtc.length}`, m.base, m.src, 3, false);
        rtc.push(viewer);
        rtcSrc.push(m.src);
        retries += r;
      }
      await Promise.all(rtc.map((v) => v.firstKeyframe(m.timeoutMs)));
      return stats();
    }
    case 'openWs': {
      for (let i = 0; i < m.count; i++) {
        const v = new WsViewer(m.url);
        ws.push(v);
        await v.open();
      }
      await Promise.all(ws.map((v) => v.picture(m.timeoutMs)));
      return stats();
    }
    case 'stats':
      return stats();
    case 'closeAll': {
      await Promise.all(rtc.map((v) => v.close(m.base)));
      for (const v of ws) v.ws.close();
      const n = rtc.length + ws.length;
      rtc.length = 0;
      rtcSrc.length = 0;
      ws.length = 0;
      return { closed: n };
    }
    case 'exit':
      await Promise.all(rtc.map((v) => v.close()));
      for (const v of ws) v.ws.terminate();
      // process.exit, not node-datachannel's cleanup(): that one crashes here (SIGSEGV) even
      // with every peer closed and its 'closed' delivered.
      setImmediate(() => process.exit(0));
      return { bye: true };
  }
}

process.on('message', (m: ViewerRequest) => {
  handle(m).then(
    (result) => process.send?.({ id: m.id, ok: true, result }),
    (e: unknown) => process.send?.({ id: m.id, ok: false, error: e instanceof Error ? e.message : String(e) }),
  );
});
// The bench that started us went away: so do we.
process.on('disconnect', () => process.exit(0));
process.send?.({ id: 0, ok: true, result: 'ready' });
