// Source planning as pure functions (core/source-plan.ts): which source serves which consumer,
// which source starts next and what it is asked for. No timers, no sources.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bindable, nextCandidate, plan, SourceList, wanted, type PlannedConsumer, type PlannedList, type PlannedRun } from '../../src/core/source-plan.js';
import type { Kind, Track } from '../../src/core/media.js';
import { sourceReads } from '../../src/sources/factory.js';
import { autoTranscodes } from '../../src/sources/auto-transcodes.js';

const H264: Track = { kind: 'video', codec: { name: 'H264', clockRate: 90000 } };
const AAC: Track = { kind: 'audio', codec: { name: 'AAC', clockRate: 48000, channels: 2 } };
const OPUS: Track = { kind: 'audio', codec: { name: 'OPUS', clockRate: 48000, channels: 2 } };

/** [rtsp://cam, ffmpeg:cam#audio=opus]: the second reads the stream's audio back. */
function homeAssistant(unavailable: number[] = []): PlannedList {
  return { count: 2, readsSelf: (i) => (i === 1 ? ['audio'] : undefined), unavailable: (i) => unavailable.includes(i) };
}

const browser = (waiting = true): PlannedConsumer<string> => ({ key: 'browser', request: { video: ['H264'], audio: ['OPUS', 'PCMA'] }, internal: false, waiting });
const videoOnly: PlannedConsumer<string> = { key: 'video-only', request: { video: ['H264'] }, internal: false, waiting: true };
const transcode: PlannedConsumer<string> = { key: 'transcode', request: { video: ['H264'], audio: ['AAC', 'OPUS'] }, internal: true, waiting: true };

test('per kind the first running source in list order with an accepted track', { timeout: 5000 }, () => {
  const runs: PlannedRun[] = [{ index: 1, tracks: [OPUS] }, { index: 0, tracks: [H264, AAC] }];
  assert.deepEqual([...bindable(browser().request, false, runs, homeAssistant())], [['video', 0], ['audio', 1]]);
  assert.deepEqual([...bindable({ audio: ['AAC', 'OPUS'] }, false, runs, homeAssistant())], [['audio', 0]], 'list order, not run order');
  assert.deepEqual([...bindable(transcode.request, true, runs, homeAssistant())], [['video', 0], ['audio', 0]], 'our own transcode never reads its own output');
  assert.deepEqual([...bindable(browser().request, false, [{ index: 0 }], homeAssistant())], [], 'a source still starting serves nobody');
});

test('the next candidate: one at a time, skipping running and unavailable sources', { timeout: 5000 }, () => {
  const three: PlannedList = { count: 3, readsSelf: () => undefined, unavailable: (i) => i === 1 };
  assert.equal(nextCandidate([{ index: 0, tracks: [H264] }], three), 2);
  assert.equal(nextCandidate([{ index: 0, tracks: [H264] }, { index: 2 }], three), undefined, 'one is starting');
  assert.equal(nextCandidate([{ index: 0, tracks: [H264] }, { index: 2, tracks: [OPUS] }], three), undefined, 'nothing left');
});

test('a consumer lacking a kind waits while a source can still give it, and that source is started for it', { timeout: 5000 }, () => {
  const runs: PlannedRun[] = [{ index: 0, tracks: [H264, AAC] }];
  const p = plan([videoOnly, browser()], runs, homeAssistant());
  assert.deepEqual(p.resolve, [{ consumer: 'video-only', from: new Map<Kind, number>([['video', 0]]) }]);
  assert.deepEqual(p.start, { index: 1, want: { audio: ['OPUS', 'PCMA'] } }, 'only the missing kind, as the consumers accept it');
});

test('with nothing left to try, the consumer gets what there is', { timeout: 5000 }, () => {
  const p = plan([browser()], [{ index: 0, tracks: [H264, AAC] }], homeAssistant([1]));
  assert.deepEqual(p.resolve, [{ consumer: 'browser', from: new Map<Kind, number>([['video', 0]]) }]);
  assert.equal(p.start, undefined);
});

test('while a source starts, those lacking a kind wait; our own transcode never waits', { timeout: 5000 }, () => {
  const runs: PlannedRun[] = [{ index: 0, tracks: [H264, AAC] }, { index: 1 }];
  const p = plan([browser(), transcode, browser(false)], runs, homeAssistant());
  assert.deepEqual(p.resolve.map((r) => r.consumer), ['transcode']);
  assert.equal(p.start, undefined, 'one start at a time');
});

test('what a start asks for: the external consumers, plus every codec of what transcodes read for the primary', { timeout: 5000 }, () => {
  assert.deepEqual(wanted([videoOnly, browser(), transcode]), { video: ['H264'], audio: ['OPUS', 'PCMA'] }, 'internal consumers ask for nothing');
  const forPrimary = wanted([videoOnly], undefined, homeAssistant());
  assert.deepEqual(forPrimary.video, ['H264']);
  assert.deepEqual(forPrimary.audio, ['OPUS', 'AAC', 'PCMA', 'PCMU'], 'the camera sets up the audio its transcode reads');
  assert.deepEqual(wanted([browser()], ['video']), { video: ['H264'] });
});

test('SourceList: the factory says which source reads this stream, the list compares names', { timeout: 5000 }, () => {
  const urls = ['rtsp://cam', 'ffmpeg:cam#audio=opus', 'ffmpeg:other#video=h264', 'ffmpeg:cam', 'ffmpeg:/media/cam.mp4#video=copy'];
  const retrying = new Set([3]);
  const list = new SourceList('cam', () => urls, sourceReads, (i) => retrying.has(i));
  assert.equal(list.count, 5);
  assert.deepEqual([0, 1, 2, 3, 4].map((i) => list.readsSelf(i)), [undefined, ['audio'], undefined, ['video', 'audio'], undefined]);
  list.exhausted.add(2);
  assert.deepEqual([0, 1, 2, 3, 4].map((i) => list.unavailable(i)), [false, false, true, true, false]);
});

test('SourceList with automatic transcodes: after the configured sources, never at 0; each says what it gives', { timeout: 5000 }, () => {
  const list = new SourceList('cam', () => ['rtsp://cam'], sourceReads, () => false, () => autoTranscodes('cam'));
  assert.equal(list.count, 4);
  assert.deepEqual([0, 1, 2, 3].map((i) => list.url(i)), ['rtsp://cam', 'ffmpeg:cam#video=h264#hardware', 'ffmpeg:cam#audio=opus', 'ffmpeg:cam#audio=aac']);
  assert.deepEqual([0, 1, 2, 3].map((i) => list.isAuto(i)), [false, true, true, true]);
  assert.deepEqual(list.provides(2), { kind: 'audio', codec: 'OPUS' });
  assert.equal(list.provides(0), undefined, 'a configured source may give anything');
  assert.deepEqual(list.readsSelf(1), ['video'], 'the transcode reads the stream back: the camera is asked for video');
  const published = new SourceList('pub', () => [], sourceReads, () => false, () => autoTranscodes('pub'));
  assert.equal(published.url(0), undefined, 'index 0 stays the publisher\'s');
  assert.equal(published.url(1), 'ffmpeg:pub#video=h264#hardware');
  assert.deepEqual(autoTranscodes('a#b'), [], 'a name with # cannot be written in an ffmpeg: URL');
});

test('an automatic transcode starts only for a waiter that accepts its codec and gets the kind from nothing before it', { timeout: 5000 }, () => {
  const list = new SourceList('cam', () => ['rtsp://cam'], sourceReads, () => false, () => autoTranscodes('cam'));
  const H265: Track = { kind: 'video', codec: { name: 'H265', clockRate: 90000 } };
  const PCMA: Track = { kind: 'audio', codec: { name: 'PCMA', clockRate: 8000, channels: 1 } };
  const runs: PlannedRun[] = [{ index: 0, tracks: [H265, PCMA] }];
  const h264Browser: PlannedConsumer<string> = { key: 'b', request: { video: ['H264'], audio: ['OPUS', 'PCMA'] }, internal: false, waiting: true };
  assert.deepEqual(plan([h264Browser], runs, list).start, { index: 1, want: { video: ['H264'] } });
  const hevcBrowser: PlannedConsumer<string> = { key: 'h', request: { video: ['H264', 'H265'], audio: ['PCMA'] }, internal: false, waiting: true };
  const p = plan([hevcBrowser], runs, list);
  assert.equal(p.start, undefined, 'it takes the camera\'s H.265: nothing to start');
  assert.deepEqual(p.resolve, [{ consumer: 'h', from: new Map<Kind, number>([['video', 0], ['audio', 0]]) }]);
  const mp4: PlannedConsumer<string> = { key: 'm', request: { video: ['H264', 'H265'], audio: ['AAC'] }, internal: false, waiting: true };
  assert.deepEqual(plan([mp4], runs, list).start, { index: 3, want: { audio: ['AAC'] } }, 'AAC, skipping the Opus one it does not take');
  assert.equal(nextCandidate(runs, list, new Map([['video', ['H265']]])), undefined, 'nothing makes H.265');
  assert.equal(plan([transcode], runs, list).start, undefined, 'our own reader never starts one');
  const silent: PlannedRun[] = [{ index: 0, tracks: [H265] }];
  assert.deepEqual(plan([h264Browser], silent, list).start, { index: 1, want: { video: ['H264'] } });
  const videoOnlyCam: PlannedRun[] = [{ index: 0, tracks: [H264] }];
  const p2 = plan([h264Browser], videoOnlyCam, list);
  assert.equal(p2.start, undefined, 'a camera without audio: no Opus to make, no transcode');
  assert.deepEqual(p2.resolve, [{ consumer: 'b', from: new Map<Kind, number>([['video', 0]]) }]);
});
