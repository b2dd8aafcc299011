import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SourceError } from '../../src/core/errors.js';
import { checkInputExists, parseFfmpegUrl } from '../../src/sources/ffmpeg-url.js';
import { buildFfmpegArgs, loopbackStreamUrl } from '../../src/sources/ffmpeg-args.js';
import { checkSourceUrl } from '../../src/sources/validate.js';
import { codecFragments, codecPlan, ffprobeBin } from '../../src/sources/pulled.js';

const PUB = 'rtsp://127.0.0.1:8554/_pub/abc123';
const HEAD = '-hide_banner -loglevel error -nostats';
const OUT = `-f rtsp -rtsp_transport tcp ${PUB}`;
const H264 = '-c:v libx264 -preset:v ultrafast -tune:v zerolatency -profile:v baseline -pix_fmt:v yuv420p -bf:v 0 -force_key_frames:v expr:gte(t,n_forced*1)';
const OPUS = '-c:a libopus -application:a lowdelay -min_comp 0 -ar:a 48000 -ac:a 2';
const CLOCK =
  "drawtext=text='%{localtime\\:%Y-%m-%d %X}':fontsize=h/14:fontcolor=white:box=1:boxcolor=black@0.6:boxborderw=8:x=(w-tw)/2:y=h-th-h/20";
const STREAMS = new Set(['cam2', 'front']);
const isStream = (n: string): boolean => STREAMS.has(n);
const streamUrl = (name: string, kinds: { video: boolean; audio: boolean }): string => loopbackStreamUrl(8554, name, kinds);

/** Command lines as arrays; `|` separates arguments that contain spaces. */
function build(url: string): string[] {
  return buildFfmpegArgs(parseFfmpegUrl(url, isStream), PUB, { streamUrl });
}
const words = (s: string): string[] => s.split(' ');

test('exact command lines', { timeout: 5000 }, () => {
  const table: [string, string[]][] = [
    // file: looped, real time, everything copied (go2rtc: no #video/#audio = copy all)
    ['ffmpeg:/media/a.mp4', words(`${HEAD} -re -stream_loop -1 -i /media/a.mp4 -c copy ${OUT}`)],
    ['ffmpeg:/media/a.mp4#video=copy', words(`${HEAD} -re -stream_loop -1 -i /media/a.mp4 -c:v copy -an ${OUT}`)],
    ['ffmpeg:/media/a.mp4#video=h264', words(`${HEAD} -re -stream_loop -1 -i /media/a.mp4 ${H264} -an ${OUT}`)],
    ['ffmpeg:/media/a.mp4#audio=opus', words(`${HEAD} -re -stream_loop -1 -i /media/a.mp4 ${OPUS} -vn ${OUT}`)],
    [
      'ffmpeg:/media/a.mp4#video=copy#audio=pcmu',
      words(`${HEAD} -re -stream_loop -1 -i /media/a.mp4 -c:v copy -c:a pcm_mulaw -ar:a 8000 -ac:a 1 ${OUT}`),
    ],
    [
      'ffmpeg:/media/a.mp4#video=h264#audio=pcma/16000#audio=copy',
      words(
        `${HEAD} -re -stream_loop -1 -i /media/a.mp4 -map 0:v:0? ` +
          H264.replaceAll(':v ', ':v:0 ') +
          ' -map 0:a:0? -c:a:0 pcm_alaw -ar:a:0 16000 -ac:a:0 1 -map 0:a:0? -c:a:1 copy ' +
          OUT,
      ),
    ],
    ['ffmpeg:media/a.mp4', words(`${HEAD} -re -stream_loop -1 -i file:media/a.mp4 -c copy ${OUT}`)],
    [
      'ffmpeg:/media/a.mp4#video=h264#width=1280#rotate=90#raw=-ss 00:00:20',
      [...words(`${HEAD} -re -stream_loop -1 -i /media/a.mp4 -ss 00:00:20 ${H264} -an -vf scale=1280:-2,transpose=1`), ...words(OUT)],
    ],
    [
      'ffmpeg:/media/a.mp4#video=h264#height=480#rotate=-90#bitrate=1M',
      words(`${HEAD} -re -stream_loop -1 -i /media/a.mp4 ${H264} -b:v 1M -maxrate:v 1M -bufsize:v 1M -an -vf scale=-2:480,transpose=2 ${OUT}`),
    ],
    [
      'ffmpeg:/media/a.mp4#video=h265#rotate=180',
      words(
        `${HEAD} -re -stream_loop -1 -i /media/a.mp4 -c:v libx265 -preset:v ultrafast -tune:v zerolatency -pix_fmt:v yuv420p -bf:v 0 ` +
          `-force_key_frames:v expr:gte(t,n_forced*1) -forced-idr:v 1 -x265-params:v log-level=error -an -vf transpose=1,transpose=1 ${OUT}`,
      ),
    ],
    // V4L2 device
    [
      'ffmpeg:device?video=/dev/video0&video_size=1280x720&framerate=15#video=h264',
      words(`${HEAD} -f v4l2 -video_size 1280x720 -framerate 15 -i /dev/video0 ${H264} -an ${OUT}`),
    ],
    [
      'ffmpeg:device?video=1&framerate=30&resolution=1920x1080&input_format=mjpeg#video=h264',
      words(`${HEAD} -f v4l2 -input_format mjpeg -video_size 1920x1080 -framerate 30 -i /dev/video1 ${H264} -an ${OUT}`),
    ],
    ['ffmpeg:device?video=/dev/video2&input_format=h264', words(`${HEAD} -f v4l2 -input_format h264 -i /dev/video2 -c copy ${OUT}`)],
    // virtual test pattern with the clock, optional tone
    [
      'ffmpeg:virtual?video=testsrc2&size=1280x720#video=h264#audio=opus',
      [...words(`${HEAD} -re -f lavfi -i`), `testsrc2=size=1280x720,${CLOCK}`, ...words(`${H264} ${OPUS} ${OUT}`)],
    ],
    [
      'ffmpeg:virtual?video=testsrc2&size=720&rate=15&audio=sine&frequency=440#video=h264#audio=opus',
      [
        ...words(`${HEAD} -re -f lavfi -i`),
        `testsrc2=size=1280x720:rate=15,${CLOCK}`,
        ...words(`-re -f lavfi -i sine=frequency=440:sample_rate=48000 ${H264} ${OPUS} ${OUT}`),
      ],
    ],
    [
      'ffmpeg:virtual?clock=0&audio=silence#video=h264',
      words(`${HEAD} -re -f lavfi -i testsrc=size=1920x1080:decimals=2 -re -f lavfi -i anullsrc=channel_layout=stereo:sample_rate=48000 ${H264} -an ${OUT}`),
    ],
    [
      'ffmpeg:virtual?video=color&color=blue&size=320x240&format=yuv420p&clock=false#video=h264',
      words(`${HEAD} -re -f lavfi -i color=color=blue:size=320x240,format=yuv420p ${H264} -an ${OUT}`),
    ],
    // transcode of another camrelay stream, read back over loopback TCP
    [
      'ffmpeg:cam2#audio=opus',
      words(
        `${HEAD} -allowed_media_types audio -flags low_delay -fpsprobesize 0 -timeout 5000000 -rtsp_transport tcp ` +
          `-i rtsp://127.0.0.1:8554/cam2?audio ${OPUS} -vn ${OUT}`,
      ),
    ],
    [
      'ffmpeg:front#video=h264',
      words(
        `${HEAD} -allowed_media_types video -flags low_delay -fpsprobesize 0 -timeout 5000000 -rtsp_transport tcp ` +
          `-i rtsp://127.0.0.1:8554/front?video ${H264} -an ${OUT}`,
      ),
    ],
    // camera URLs
    [
      'ffmpeg:rtsp://user:pw@10.0.0.5/main#video=copy#audio=opus',
      words(
        `${HEAD} -allowed_media_types video+audio -fflags nobuffer -flags low_delay -timeout 5000000 -rtsp_flags prefer_tcp ` +
          `-i rtsp://user:pw@10.0.0.5/main -c:v copy ${OPUS} ${OUT}`,
      ),
    ],
    [
      'ffmpeg:http://cam/mjpeg#video=h264',
      words(`${HEAD} -protocol_whitelist http,https,tls,tcp,crypto,httpproxy -fflags nobuffer -flags low_delay -rw_timeout 5000000 -i http://cam/mjpeg ${H264} -an ${OUT}`),
    ],
  ];
  for (const [url, expected] of table) assert.deepEqual(build(url), expected, url);
});

test('Home Assistant\'s forms: #query=log_level sets ffmpeg\'s log level; #video=mjpeg encodes RTP/JPEG', { timeout: 5000 }, () => {
  const withQuery = build('ffmpeg:cam2#audio=opus#query=log_level=debug');
  assert.equal(withQuery[withQuery.indexOf('-loglevel') + 1], 'debug');
  const mjpeg = build('ffmpeg:cam2#video=mjpeg');
  assert.ok(mjpeg.join(' ').includes('-c:v mjpeg -pix_fmt:v yuvj420p -q:v 5'), mjpeg.join(' '));
});

test('a bare name that is not a stream is a file in the working directory', { timeout: 5000 }, () => {
  assert.deepEqual(parseFfmpegUrl('ffmpeg:cam9#audio=opus', isStream).input, { kind: 'file', path: 'cam9' });
  assert.deepEqual(parseFfmpegUrl('ffmpeg:cam2', isStream).input, { kind: 'stream', name: 'cam2' });
  assert.deepEqual(parseFfmpegUrl('ffmpeg:./cam2', isStream).input, { kind: 'file', path: './cam2' });
});

test('the typed spec', { timeout: 5000 }, () => {
  assert.deepEqual(parseFfmpegUrl('ffmpeg:/m/a.mkv#video=h264#audio=opus#audio=pcmu/48000#width=640#rotate=270#raw=-ss  5'), {
    url: 'ffmpeg:/m/a.mkv#video=h264#audio=opus#audio=pcmu/48000#width=640#rotate=270#raw=-ss  5',
    input: { kind: 'file', path: '/m/a.mkv' },
    video: ['h264'],
    audio: [{ codec: 'opus' }, { codec: 'pcmu', rate: 48000 }],
    width: 640,
    rotate: 270,
    raw: ['-ss', '5'],
  });
});

test('the null output option replaces publishing; the log level is settable', { timeout: 5000 }, () => {
  const spec = parseFfmpegUrl('ffmpeg:/a.mp4');
  assert.deepEqual(
    buildFfmpegArgs(spec, PUB, { output: { nullSeconds: 1 }, logLevel: 'debug' }),
    words('-hide_banner -loglevel debug -nostats -re -stream_loop -1 -i /a.mp4 -c copy -t 1 -f null -'),
  );
});

test('a stream transcode without a stream URL function is refused', { timeout: 5000 }, () => {
  assert.throws(() => buildFfmpegArgs(parseFfmpegUrl('ffmpeg:cam2#audio=opus', isStream), PUB), {
    name: 'SourceError',
    message: /cannot read stream "cam2"/,
  });
});

test('unknown, unsupported and unsafe parts are rejected with a permanent SourceError', { timeout: 5000 }, () => {
  const table: [string, RegExp][] = [
    ['ffmpeg:/a.mp4#foo=bar', /unknown fragment #foo=bar/],
    ['ffmpeg:/a.mp4#video=h264#hardware=nvidia', /unknown #hardware=nvidia \(supported: vaapi, cuda, qsv, v4l2m2m, rkmpp, videotoolbox, dxva2, or #hardware alone to pick\)/],
    ['ffmpeg:/a.mp4#video=h264#hardware=/dev/dri/renderD129', /unknown #hardware=\/dev\/dri\/renderD129/],
    ['ffmpeg:/a.mp4#video=h264#hardware=__proto__', /unknown #hardware=__proto__/],
    ['ffmpeg:/a.mp4#input=rtsp/udp', /#input \(ffmpeg input templates\) is not supported yet/],
    ['ffmpeg:/a.mp4#video=h264#drawtext=x=10', /#drawtext .*not supported yet/],
    ['ffmpeg:/a.mp4#async', /#async .*not supported yet/],
    ['ffmpeg:/a.mp4#video=vp9', /unsupported #video=vp9/],
    ['ffmpeg:/a.mp4#video=h264#query=analyzeduration=1', /#query=analyzeduration=1 is not supported/],
    ['ffmpeg:/a.mp4#audio=mp3', /unsupported #audio=mp3/],
    ['ffmpeg:/a.mp4#audio=pcma/44100', /unsupported #audio=pcma\/44100/],
    ['ffmpeg:/a.mp4#width=1280', /#width needs a video encoder: add #video=h264/],
    ['ffmpeg:/a.mp4#video=copy#rotate=90', /#rotate needs a video encoder/],
    ['ffmpeg:/a.mp4#video=h264#rotate=45', /#rotate=45 must be 90, 180, 270 or -90/],
    ['ffmpeg:/a.mp4#video=h264#width=12px', /#width=12px is not a size/],
    ['ffmpeg:/a.mp4#width=320#height=240', /#width, #height need a video encoder/],
    ['ffmpeg:/a.mp4#bitrate=1M', /#bitrate needs a video encoder/],
    ['ffmpeg:virtual?video=testsrc2', /a virtual input needs #video=h264/],
    ['ffmpeg:virtual?video=movie#video=h264', /virtual video=movie is not a known test source/],
    ['ffmpeg:virtual?size=1x1,movie=/etc/passwd#video=h264', /virtual size=1x1,movie=\/etc\/passwd is not valid/],
    ["ffmpeg:virtual?color=red':x#video=h264", /virtual color=.* is not valid/],
    ['ffmpeg:virtual?bogus=1#video=h264', /unknown virtual parameter "bogus"/],
    ['ffmpeg:virtual?audio=noise#video=h264', /virtual audio=noise must be sine or silence/],
    ['ffmpeg:virtual?frequency=440#video=h264', /frequency= only goes with audio=sine/],
    ['ffmpeg:virtual?audio=sine#video=h264#audio=copy', /virtual audio is raw PCM/],
    ['ffmpeg:device?video=/dev/video0&foo=1', /unknown device parameter "foo"/],
    ['ffmpeg:device?audio=hw:0', /audio devices .* not supported yet/],
    ['ffmpeg:device?framerate=15', /device needs video=/],
    ['ffmpeg:device?video=cam', /must be a number or an absolute path/],
    ['ffmpeg:device?video=/dev/video0&framerate=15 -i x', /device framerate=15 -i x is not valid/],
    ['ffmpeg:udp://0.0.0.0:1234', /unsupported input scheme "udp:\/\/"/],
    ['ffmpeg:tts?text=hi', /tts inputs are not supported/],
    ['ffmpeg:', /without an input/],
    ['rtsp://cam', /not an ffmpeg: source/],
  ];
  for (const [url, message] of table) {
    assert.throws(
      () => parseFfmpegUrl(url, isStream),
      (e: unknown) => {
        assert.ok(e instanceof SourceError, `${url}: ${String(e)}`);
        assert.equal(e.permanent, true, url);
        assert.match(e.message, message, url);
        return true;
      },
    );
  }
});

test('credentials do not leak into parse errors', { timeout: 5000 }, () => {
  assert.throws(() => parseFfmpegUrl('ffmpeg:rtsp://admin:secret@cam/x#foo'), (e: unknown) => {
    assert.ok(e instanceof Error);
    assert.doesNotMatch(e.message, /secret/);
    return true;
  });
});

test('checkInputExists: a missing file or device is permanent', { timeout: 5000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'camrelay-ffargs-'));
  try {
    const file = join(dir, 'a.mp4');
    writeFileSync(file, '');
    await checkInputExists(parseFfmpegUrl(`ffmpeg:${file}`));
    await checkInputExists(parseFfmpegUrl('ffmpeg:virtual?size=320x240#video=h264'));
    await checkInputExists(parseFfmpegUrl('ffmpeg:rtsp://cam/x'));
    const missing = join(dir, 'nope.mp4');
    await assert.rejects(checkInputExists(parseFfmpegUrl(`ffmpeg:${missing}#video=h264`)), (e: unknown) => {
      assert.ok(e instanceof SourceError && e.permanent);
      assert.equal(e.message, `file not found: ${missing}`);
      return true;
    });
    await assert.rejects(checkInputExists(parseFfmpegUrl('ffmpeg:device?video=/dev/video99#video=h264')), {
      name: 'SourceError',
      message: 'device not found: /dev/video99',
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('keys from the URL never reach Object.prototype: #rotate=constructor, #constructor, size=constructor', { timeout: 5000 }, () => {
  const refused = (url: string, why: RegExp) =>
    assert.throws(() => parseFfmpegUrl(url), (e: unknown) => e instanceof SourceError && e.permanent && why.test(e.message), url);
  refused('ffmpeg:rtsp://h/x#video=h264#rotate=constructor', /#rotate=constructor must be 90, 180, 270 or -90/);
  refused('ffmpeg:rtsp://h/x#video=h264#rotate=__proto__', /#rotate=__proto__ must be/);
  refused('ffmpeg:rtsp://h/x#video=h264#constructor', /unknown fragment #constructor/);
  refused('ffmpeg:rtsp://h/x#video=h264#toString=1', /unknown fragment #toString=1/);
  refused('ffmpeg:virtual?video=testsrc&constructor=1#video=h264', /unknown virtual parameter "constructor"/);
  // A named size is passed on as written (ffmpeg knows names like hd720), not swapped for Object.
  const named = parseFfmpegUrl('ffmpeg:virtual?video=testsrc&size=constructor#video=h264').input;
  assert.ok(named.kind === 'virtual' && named.options.some(([k, v]) => k === 'size' && v === 'constructor'));
});

// Issue 13 item 7: Home Assistant's camera orientation sources (homeassistant/components/go2rtc).
const HA_ORIENTATIONS: [suffix: string, filter: string][] = [
  ['#raw=-vf hflip', 'hflip'],
  ['#raw=-vf vflip', 'vflip'],
  ['#raw=-vf transpose=1,vflip', 'transpose=1,vflip'],
  ['#raw=-vf transpose=2,vflip', 'transpose=2,vflip'],
  ['#rotate=90', 'transpose=1'],
  ['#rotate=180', 'transpose=1,transpose=1'],
  ['#rotate=-90', 'transpose=2'],
  ['#rotate=270', 'transpose=2'],
];
for (const [suffix, filter] of HA_ORIENTATIONS) {
  test(`orientation ${suffix} from the API: accepted, transcoded with -vf ${filter}`, { timeout: 5000 }, () => {
    const url = `ffmpeg:rtsp://127.0.0.1:554/s#video=h264#audio=copy${suffix}`;
    const spec = checkSourceUrl(url, { isStream, fromNetwork: true })!;
    assert.deepEqual(spec.raw, []);
    const args = buildFfmpegArgs(spec, PUB, { streamUrl });
    assert.equal(args.filter((a) => a === '-vf').length, 1);
    assert.equal(args[args.indexOf('-vf') + 1], filter);
    assert.ok(args.includes('libx264'), 'video is encoded');
    assert.equal(args[args.indexOf('-c:a') + 1], 'copy');
  });
}

test('every allowed orientation filter and pair is accepted from the API', { timeout: 5000 }, () => {
  const steps = ['hflip', 'vflip', 'transpose=0', 'transpose=1', 'transpose=2', 'transpose=3'];
  for (const a of steps) {
    for (const b of [undefined, ...steps]) {
      const f = b ? `${a},${b}` : a;
      const spec = checkSourceUrl(`ffmpeg:cam2#video=h264#raw=-vf ${f}`, { isStream, fromNetwork: true })!;
      assert.equal(spec.orientation, f);
    }
  }
});

test('any other #raw= is still refused from the API, and accepted from config.yaml as before', { timeout: 5000 }, () => {
  const refused = [
    '-vf hflip -f null',
    '-i /etc/passwd',
    '-vf movie=/etc/passwd',
    '-vf hflip,vflip,hflip',
    '-vf transpose=4',
    '-vf hflip;movie=/etc/passwd',
    '-vf hflip,',
    '-af hflip',
    '-vf  hflip -y',
    'hflip',
    '-vf',
  ];
  for (const raw of refused) {
    const url = `ffmpeg:rtsp://127.0.0.1:554/s#video=h264#raw=${raw}`;
    assert.throws(() => checkSourceUrl(url, { isStream, fromNetwork: true }), /#raw= is accepted only from config\.yaml/, raw);
    assert.deepEqual(checkSourceUrl(url, { isStream, fromNetwork: false })!.raw, raw.split(/\s+/).filter(Boolean), raw);
  }
});

test('an orientation without a video encoder is refused with the fix named', { timeout: 5000 }, () => {
  assert.throws(() => parseFfmpegUrl('ffmpeg:rtsp://h/s#audio=copy#raw=-vf hflip'), /#raw=-vf hflip needs a video encoder: add #video=h264/);
  assert.throws(() => parseFfmpegUrl('ffmpeg:rtsp://h/s#video=copy#raw=-vf vflip'), /needs a video encoder/);
});

test('an orientation joins the -vf chain after #width', { timeout: 5000 }, () => {
  const args = build('ffmpeg:cam2#video=h264#width=640#raw=-vf transpose=1,vflip');
  assert.equal(args[args.indexOf('-vf') + 1], 'scale=640:-2,transpose=1,vflip');
});

// Issue 13 item 4: http(s) and rtmp(s) inputs.
test('http and rtmp inputs: protocol allow-list and -rw_timeout, never -timeout for rtmp', { timeout: 5000 }, () => {
  assert.deepEqual(
    build('ffmpeg:rtmp://cam:1935/live/x'),
    words(`${HEAD} -protocol_whitelist rtmp,rtmps,tls,tcp -fflags nobuffer -flags low_delay -rw_timeout 5000000 -i rtmp://cam:1935/live/x -c copy ${OUT}`),
  );
  assert.deepEqual(
    build('ffmpeg:https://cam/live.m3u8'),
    words(`${HEAD} -protocol_whitelist http,https,tls,tcp,crypto,httpproxy -fflags nobuffer -flags low_delay -rw_timeout 5000000 -i https://cam/live.m3u8 -c copy ${OUT}`),
  );
  for (const url of ['ffmpeg:rtmp://cam/live/x', 'ffmpeg:rtmps://cam/live/x#video=h264', 'ffmpeg:rtmp://cam/live/x#audio=opus']) assert.ok(!build(url).includes('-timeout'), url);
  // HLS's ADTS AAC cannot be copied into RTSP: Home Assistant's #audio=copy becomes AAC made anew.
  const hls = build('ffmpeg:https://cam/live.m3u8#video=h264#audio=copy#raw=-vf vflip');
  assert.equal(hls[hls.indexOf('-c:a') + 1], 'aac');
  const ts = build('ffmpeg:http://cam/live.ts#video=h264#audio=copy');
  assert.equal(ts[ts.indexOf('-c:a') + 1], 'copy');
});

test('plain http(s) and rtmp(s) sources are checked as ffmpeg:<url>, with the same rules from the API', { timeout: 5000 }, () => {
  const net = { isStream, fromNetwork: true };
  for (const url of ['http://cam/video.mjpg', 'https://u:p@cam:8443/live.m3u8', 'rtmp://cam/live/x', 'rtmps://cam/live/x', 'http://cam/x.mjpg#video=h264']) {
    const spec = checkSourceUrl(url, net)!;
    assert.equal(spec.input.kind, 'url', url);
  }
  assert.throws(() => checkSourceUrl('http://cam/x#video=h264#raw=-i /etc/passwd', net), /#raw= is accepted only from config\.yaml/);
  assert.throws(() => checkSourceUrl('http://:80/x', net), /not a valid http URL/);
  assert.throws(() => checkSourceUrl('http://cam/a b.mjpg', net), /must not contain spaces/);
  assert.throws(() => checkSourceUrl('ffmpeg:rtmp://#video=h264', net), /not a valid rtmp URL/);
  assert.throws(() => checkSourceUrl('http://cam/${HOME}', net), /environment variables/);
});

test('which http inputs are probed, and what the probe found makes of them', { timeout: 5000 }, () => {
  const p = (url: string) => codecPlan(parseFfmpegUrl(url, isStream));
  assert.equal(p('ffmpeg:http://cam/video.mjpg'), 'probe');
  assert.equal(p('ffmpeg:https://cam/video.cgi?x=1#query=log_level=debug'), 'probe');
  assert.deepEqual(p('ffmpeg:https://cam/live/index.M3U8?token=1'), { fragments: '#video=copy#audio=opus' }, 'HLS: video copied, ADTS AAC encoded, no probe');
  assert.equal(p('ffmpeg:http://cam/video.mjpg#video=h264'), 'copy', 'the user chose');
  assert.equal(p('ffmpeg:http://cam/video.mjpg#audio=opus'), 'copy', 'the user chose');
  assert.equal(p('ffmpeg:rtmp://cam/live/x'), 'copy', 'rtmp is copied without a probe');
  assert.equal(p('ffmpeg:rtsp://cam/x'), 'copy');
  assert.equal(codecFragments('h264', 'aac', 'flv'), '');
  assert.equal(codecFragments('h264', 'aac', 'mov,mp4,m4a,3gp,3g2,mj2'), '');
  assert.equal(codecFragments('h264', 'aac', 'mpegts'), '#video=copy#audio=opus', 'ADTS AAC cannot be copied into RTSP');
  assert.equal(codecFragments('h264', 'opus', 'mpegts'), '');
  assert.equal(codecFragments('hevc', undefined), '');
  assert.equal(codecFragments('mjpeg', undefined), '#video=h264');
  assert.equal(codecFragments('mjpeg', 'pcm_mulaw'), '#video=h264#audio=copy');
  assert.equal(codecFragments('h264', 'mp3'), '#video=copy#audio=opus');
  assert.equal(codecFragments(undefined, 'mp3'), '#audio=opus');
  assert.equal(ffprobeBin('/usr/bin/ffmpeg'), '/usr/bin/ffprobe');
  assert.equal(ffprobeBin('/opt/ffmpeg-6/bin/ffmpeg.exe'), '/opt/ffmpeg-6/bin/ffprobe.exe');
  assert.equal(ffprobeBin('/opt/my-transcoder'), 'ffprobe');
});
