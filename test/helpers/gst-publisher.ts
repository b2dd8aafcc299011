// The one way GStreamer's rtspclientsink fails on its own as a publisher. At EOS it queues PAUSE
// and then CLOSE; CLOSE flushes the connection while PAUSE waits for its answer, so that wait
// ends "Received end-of-file" and gst-launch exits 1 although the server answered (seen with
// GST_DEBUG=rtspclientsink:6: the TEARDOWN that follows on the same connection is answered 200).
// A test may forgive exactly that, once it has seen that the server answered.

/** gst-launch's output is GStreamer's PAUSE/CLOSE flush race and nothing else (it may exit before
 * it prints the second report of the same error, from gst_rtsp_client_sink_pause). rtspsrc's
 * PAUSE-after-TEARDOWN race (gst-player.ts) prints the same two lines. */
export function isGstPauseFlushRace(out: string): boolean {
  const errors = out.split('\n').filter((l) => l.startsWith('ERROR:'));
  const eofs = out.match(/Could not send message\. \(Received end-of-file\)/g) ?? [];
  return errors.length > 0 && errors.every((l) => l.endsWith('Could not write to resource.')) && eofs.length === errors.length;
}
