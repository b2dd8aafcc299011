// Issue 13 item 10 end to end: a loopback camera answers DESCRIBE with one of the SDP shapes real
// cameras send (test/helpers/camera-sdp.ts) and streams real H.264 RTP; camrelay sets up the
// H.264 track, skips what it cannot carry, and a WebRTC viewer gets whole keyframes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CamrelayProcess, testConfig } from '../helpers/camrelay-process.js';
import { CAMERA_SDPS } from '../helpers/camera-sdp.js';
import { encodeH264Clip } from '../helpers/h264-clip.js';
import { rawExchange } from '../helpers/rtsp-raw.js';
import { ScriptedCamera } from '../helpers/scripted-camera.js';
import { Viewer } from '../helpers/werift-viewer.js';
import { waitFor } from '../helpers/wait.js';

for (const shape of CAMERA_SDPS) {
  test(`camera with SDP "${shape.name}" plays over WebRTC through camrelay`, { timeout: 60000 }, async () => {
    const clip = await encodeH264Clip();
    const camera = await ScriptedCamera.start();
    camera.use({
      DESCRIBE: (x) => x.reply(200, { 'Content-Type': 'application/sdp', 'Content-Base': camera.url() + '/' }, shape.sdp),
    });
    camera.stream({ clip, payloadType: shape.h264Pt, otherPayloadType: shape.otherPt });
    const app = await CamrelayProcess.start(testConfig({ cam: camera.url() }, 'log: { level: debug }'));
    const viewer = new Viewer();
    try {
      await viewer.connect(app.base, 'cam', 'sdp');
      await waitFor('the viewer gets a keyframe with SPS and PPS', () => viewer.sawKeyframeWithParams(), 20000);
      const setups = camera.requests.filter((r) => r.method === 'SETUP');
      assert.deepEqual(setups.map((r) => r.url), [camera.url() + '/track1'], 'only the H.264 track is set up');
      assert.ok(camera.requests.some((r) => r.method === 'PLAY'));
      const logs = app.logs;
      if (shape.otherPt !== undefined) {
        assert.ok(logs.some((l) => l.msg === 'ignoring RTP with another payload type' && l.payloadType === shape.otherPt && l.expected === shape.h264Pt), 'the other codec\'s packets are not depacketized');
      }
      const skipped = logs.filter((l) => l.msg === 'not setting up a track');
      if (shape.sdp.includes('m=application/')) {
        assert.ok(skipped.some((l) => l.level === 20 && String(l.media).startsWith('application/x-vendor')), 'the vendor section is skipped at debug');
      }
      // Strict in what we send: camrelay's own DESCRIBE answer for this camera is a full SDP
      // with one H.264 payload type, whatever the camera wrote.
      const url = `rtsp://127.0.0.1:${app.rtspPort}/cam`;
      const x = await rawExchange(app.rtspPort, `DESCRIBE ${url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n`, 5000, (r) => r.length > 0);
      assert.equal(x.responses[0]?.status, 200);
      const served = x.responses[0]!.body.toString();
      assert.match(served, /^v=0\r\no=[^\r]+\r\ns=[^\r]+\r\nc=[^\r]+\r\nt=0 0\r\n/);
      assert.deepEqual(served.match(/^m=.*$/gm)?.map((l) => l.trim()), ['m=video 0 RTP/AVP 96']);
      assert.match(served, /a=rtpmap:96 H264\/90000/);
      assert.ok(!logs.some((l) => l.level >= 50), `no error logged: ${JSON.stringify(logs.filter((l) => l.level >= 50))}`);
    } finally {
      await viewer.close().catch(() => undefined);
      await app.stop();
      await camera.close();
    }
  });
}
