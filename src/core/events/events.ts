// In-process notifications between surfaces, so none imports another's internals (STYLE.md habit 1).
// Listeners run synchronously in emit order; a throwing listener does not stop the others.
export interface EventMap {
  /** A user was deactivated or deleted: sessions and tokens are already gone; surfaces drop the rest. */
  'user.deactivated': { userId: string };
  'user.deleted': { userId: string };
  'user.changed': { userId: string };
  'token.revoked': { tokenId: string; userId: string };
  /** SCIM group membership or group mapping changed: derived roles/models must be recomputed. */
  'groups.changed': { userIds: string[] };
}

type Listener<K extends keyof EventMap> = (payload: EventMap[K]) => void;

export class Events {
  private listeners = new Map<keyof EventMap, Set<Listener<never>>>();
  private onError: (err: unknown) => void;

  constructor(onError: (err: unknown) => void = () => {}) {
    this.onError = onError;
  }

  on<K extends keyof EventMap>(event: K, fn: Listener<K>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(fn as Listener<never>);
    return () => set.delete(fn as Listener<never>);
  }

  emit<K extends keyof EventMap>(event: K, payload: EventMap[K]): void {
    for (const fn of this.listeners.get(event) ?? []) {
      try {
        (fn as Listener<K>)(payload);
      } catch (err) {
        this.onError(err);
      }
    }
  }
}
