import { EventEmitter } from 'node:events';
import { LogThrottle } from './log-throttle.js';
import { countListenerError } from './uncaught.js';

/**
 * An event map: event name → the arguments its listeners get, as a tuple
 * (`{ state: [StreamState]; close: [reason?: Error] }`).
 */
export type EventMap<E> = { [K in keyof E]: unknown[] };

/**
 * The map of a class that declares none: any event, any arguments. Classes written before the
 * maps (and those of other layers) keep compiling unchanged with it.
 */
// `any`, not unknown: listeners of untyped classes declare the argument types they expect, as
// with EventEmitter's own signatures.
export type AnyEvents = Record<string, any[]>;

type Name<E> = keyof E & string;
type Listener<E, K extends keyof E> = E[K] extends unknown[] ? (...args: E[K]) => void : never;

/** One log line per emitter kind and event per interval: a listener failing on every frame must not flood the log. */
const throttles = new Map<string, LogThrottle>();

function listenerFailed(emitterKind: string, event: string | symbol, e: unknown): void {
  countListenerError();
  const key = `${emitterKind}:${String(event)}`;
  let t = throttles.get(key);
  if (!t) throttles.set(key, (t = new LogThrottle('an event listener threw; the emitter and its other listeners carry on', 10_000, 'error')));
  const err = e instanceof Error ? { message: e.message, stack: e.stack } : { message: String(e) };
  t.hit({ emitter: emitterKind, event: String(event), err });
}

/**
 * EventEmitter.emit with every listener isolated: one that throws is logged and counted
 * (camrelay_uncaught_errors_total{kind="listener"}) and the others still run. The error never
 * reaches whoever emitted: a viewer's bug must not unwind into the camera's read loop (which
 * would close the source for every viewer) nor out of a close() half done. An 'error' event
 * without listeners still throws, as Node's emitter does: that is no listener's failure.
 */
export function emitIsolated(target: EventEmitter, emitterKind: string, event: string | symbol, args: readonly unknown[]): boolean {
  // A copy, as EventEmitter.emit makes: listeners added or removed meanwhile do not change this round.
  const listeners = target.rawListeners(event);
  if (listeners.length === 0) {
    if (event === 'error') return EventEmitter.prototype.emit.call(target, event, ...args);
    return false;
  }
  for (const l of listeners) {
    try {
      // once() wrappers remove themselves before calling the listener, as in EventEmitter.emit.
      Reflect.apply(l, target, args);
    } catch (e) {
      listenerFailed(emitterKind, event, e);
    }
  }
  return true;
}

/**
 * The typed face of TypedEmitter: the listener methods of EventEmitter, narrowed to the map.
 * Declared (merged into the class below) rather than overridden: at run time they are
 * EventEmitter's own.
 */
export interface TypedEmitter<E extends EventMap<E> = AnyEvents> {
  on<K extends Name<E>>(event: K, listener: Listener<E, K>): this;
  once<K extends Name<E>>(event: K, listener: Listener<E, K>): this;
  off<K extends Name<E>>(event: K, listener: Listener<E, K>): this;
  addListener<K extends Name<E>>(event: K, listener: Listener<E, K>): this;
  removeListener<K extends Name<E>>(event: K, listener: Listener<E, K>): this;
  prependListener<K extends Name<E>>(event: K, listener: Listener<E, K>): this;
  prependOnceListener<K extends Name<E>>(event: K, listener: Listener<E, K>): this;
}

/**
 * An EventEmitter whose events are typed by a map (after mediasoup's EnhancedEventEmitter) and
 * whose listeners are isolated from each other and from the emitter (emitIsolated).
 */
export class TypedEmitter<E extends EventMap<E> = AnyEvents> extends EventEmitter {
  constructor(private readonly emitterKind: string) {
    super();
  }

  override emit<K extends Name<E>>(event: K, ...args: E[K]): boolean {
    return emitIsolated(this, this.emitterKind, event, args);
  }
}
