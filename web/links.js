// Like go2rtc's links page: where the config is, the API, and per-stream addresses.
import { api, el, getJSON } from './common.js';

const ENDPOINTS = [
  ['GET', 'api', 'version and config path'],
  ['GET', 'api/streams', 'all streams: producers, consumers, state'],
  ['GET', 'api/streams?src=NAME', 'one stream'],
  ['POST', 'api/webrtc?src=NAME', 'WebRTC offer (application/sdp or JSON) → answer; Location has the session id'],
  ['DELETE', 'api/webrtc?id=ID', 'end a WebRTC session'],
  ['WS', 'api/ws?src=NAME', 'go2rtc signalling: offer/answer and trickled candidates; {"type":"mse"}, {"type":"hls"} and {"type":"mjpeg"} as go2rtc'],
  ['GET', 'api/frame.jpeg?src=NAME&width=W', 'a JPEG snapshot'],
  ['GET', 'api/stream.mp4?src=NAME', 'fragmented MP4 until the client leaves'],
  ['GET', 'api/stream.m3u8?src=NAME', 'HLS (fMP4 segments)'],
  ['GET', 'api/stream.mjpeg?src=NAME', 'MJPEG (multipart)'],
];

const $ = (id) => document.getElementById(id);
$('api').tBodies[0].append(...ENDPOINTS.map(([m, p, what]) => {
  const link = m === 'GET' && !p.includes('NAME') ? el('a', { href: api(p.slice(4)), text: p }) : el('code', { text: p });
  return el('tr', {}, el('td', { text: m }), el('td', {}, link), el('td', { text: what }));
}));

const info = await getJSON('');
$('config').textContent = info.config_path ?? '(none)';
$('version').textContent = info.camrelay ?? info.version ?? '';
const streams = await getJSON('streams');
const rtspPort = info.rtsp?.listen?.split(':').pop();
$('streams').append(...Object.keys(streams).map((name) => {
  const q = encodeURIComponent(name);
  return el('li', {}, el('strong', { text: name }), ' ',
    el('a', { href: `stream.html?src=${q}`, text: 'player' }), ' (',
    ...['mse', 'hls', 'mjpeg'].flatMap((m, i) => [i ? ', ' : '', el('a', { href: `stream.html?src=${q}&mode=${m}`, text: m })]), ') · ',
    el('a', { href: `stream.html?src=${q}#details`, text: 'details' }), ' · ',
    el('a', { href: api(`frame.jpeg?src=${q}`), text: 'snapshot' }), ' · ',
    el('a', { href: api(`streams?src=${q}`), text: 'json' }),
    rtspPort ? el('code', { text: ` rtsp://${location.hostname}:${rtspPort}/${name}` }) : '');
}));
