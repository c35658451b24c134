// Relay traffic allocates a fresh ArrayBuffer for every socket read and every frame, hundreds of MB a
// second, while the JavaScript heap stays small (20–30 MB). V8's defaults then start a full
// mark-compact each time that external memory grows by a fixed step, so a busy relay spent a third of
// its CPU collecting a heap that had not changed. Two settings, measured with bench/hub.ts (256 MiB
// each way, hub and agent together, `--trace-gc`):
// - external memory counted in the heap's global limit (instead of its own fixed step): 55 → 33
//   mark-compacts, CPU per relayed MiB roughly halved;
// - the heap may grow to 5× its live size before the next full collection (V8 picks 1.1–4× by
//   itself): 33 → 4–14 mark-compacts, a further 25–40% less CPU per MiB. The price is memory: a heap
//   with 25 MB live may reach ~125 MB (buffers included) before it is collected.
// Both the hub and the agent call this once at start; both flags only change how limits are computed,
// so they can be set at run time.
import { setFlagsFromString } from 'node:v8';

let tuned = false;

export function tuneHeapForRelay(): void {
  if (tuned) return;
  tuned = true;
  setFlagsFromString('--external-memory-accounted-in-global-limit');
  setFlagsFromString('--heap-growing-percent=400');
}
