// What both WebRTC backends' peers keep alike: the connection state they report ('state' once per
// change, nothing once closed) and 'activity' for the session's disconnect timer.
import { Owned } from '../../core/owned.js';
import type { PeerState } from './backend.js';

export abstract class PeerBase extends Owned {
  #state: PeerState = 'new';

  get state(): PeerState {
    return this.#state;
  }

  protected setState(s: PeerState): void {
    if (this.closed || s === this.#state) return;
    this.#state = s;
    this.emit('state', s);
  }

  /** At close: no event, the session that closes the peer has stopped listening. */
  protected markClosed(): void {
    this.#state = 'closed';
  }

  /** Something came from the viewer (or counts as such): it is alive. */
  protected activity(): void {
    if (!this.closed) this.emit('activity');
  }

  protected throwIfClosed(): void {
    if (this.closed) throw new Error('peer connection closed');
  }
}
