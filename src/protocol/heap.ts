// Relay traffic allocates a fresh ArrayBuffer for every socket read and every frame. By default V8
// starts a full mark-compact each time such external memory grows by a fixed step since the last
// collection, so a busy relay spent a third of its CPU in full collections of a heap that had not
// changed (bench/hub.ts: ~55 mark-compacts per 256 MiB relayed, hub and agent together). With
// external memory counted in the heap's global limit instead, collections follow the heap's real
// size: 11 mark-compacts for the same transfer, and half the CPU per MiB. Both the hub and the agent
// call this once at start; the flag can be set at run time (it only changes how limits are computed).
import { setFlagsFromString } from 'node:v8';

let tuned = false;

export function tuneHeapForRelay(): void {
  if (tuned) return;
  tuned = true;
  setFlagsFromString('--external-memory-accounted-in-global-limit');
}
