// Plain page: lists the streams and plays one over WebRTC (WHEP-style POST of the offer).
const $ = (id) => document.getElementById(id);
let current = null; // { pc, location }

async function loadStreams() {
  const [info, streams] = await Promise.all([fetch('api').then((r) => r.json()), fetch('api/streams').then((r) => r.json())]);
  $('version').textContent = `v${info.camrelay}`;
  const ul = document.createElement('ul');
  for (const [name, s] of Object.entries(streams)) {
    const li = document.createElement('li');
    li.innerHTML = `<span><strong></strong> <span class="state"></span></span><button>Play</button>`;
    li.querySelector('strong').textContent = name;
    li.querySelector('.state').textContent = s.state + (s.error ? `: ${s.error}` : '');
    li.querySelector('button').onclick = () => play(name);
    ul.append(li);
  }
  $('streams').replaceChildren(ul.childElementCount ? ul : Object.assign(document.createElement('p'), { textContent: 'no streams configured' }));
}

function waitGathering(pc, ms) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') { clearTimeout(t); resolve(); }
    });
  });
}

async function play(name) {
  await stop();
  $('viewer').hidden = false;
  $('viewer-title').textContent = name;
  $('status').textContent = 'connecting…';
  const pc = new RTCPeerConnection();
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  pc.ontrack = (e) => { if (e.streams[0]) $('video').srcObject = e.streams[0]; else $('video').srcObject = new MediaStream([e.track]); };
  pc.onconnectionstatechange = () => { $('status').textContent = pc.connectionState; };
  current = { pc, location: null };
  await pc.setLocalDescription(await pc.createOffer());
  await waitGathering(pc, 2000);
  const r = await fetch(`api/webrtc?src=${encodeURIComponent(name)}`, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
  if (!r.ok) {
    const err = await r.json().catch(() => ({ error: r.statusText }));
    $('status').textContent = `error: ${err.error}`;
    pc.close();
    current = null;
    return;
  }
  current.location = r.headers.get('Location');
  await pc.setRemoteDescription({ type: 'answer', sdp: await r.text() });
}

async function stop() {
  if (!current) return;
  const { pc, location } = current;
  current = null;
  pc.close();
  $('video').srcObject = null;
  // Tell the server at once, so the camera stops now rather than after the disconnect timeout.
  if (location) await fetch(location, { method: 'DELETE', keepalive: true }).catch(() => {});
}

$('stop').onclick = () => { stop(); $('viewer').hidden = true; loadStreams(); };
addEventListener('pagehide', () => { stop(); });
// Keep the list's states current (idle / starting / live / backoff) while the page is shown.
setInterval(() => { if (!document.hidden) loadStreams().catch(() => {}); }, 3000);
const want = new URLSearchParams(location.search).get('src');
loadStreams().then(() => { if (want) play(want); });
