// A process's resident memory while a test streams a large answer through it.
import { readFileSync } from 'node:fs';

/** Resident memory of a process now (VmRSS), in KiB. */
export function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]);
}

const WINDOWS = 8;

/**
 * Reads a streamed answer to its end, sampling `pid`'s RSS every 50 reads once `fromBytes` have
 * arrived (the first megabytes grow buffers and JIT code whatever the gateway does). Returns the bytes
 * read, the samples taken (so a test can check the peak was sampled along the stream), the growth
 * from the first sample to the peak, in KiB, and the steady growth in KiB per MiB relayed.
 *
 * Steady growth tells keeping from settling. A process that keeps a share of what it relays grows in
 * every part of the stream; one that relays flat still grows once, somewhere, when V8 enlarges its
 * young generation (a step of 20-45 MB, seen anywhere from the first to the last megabytes of a
 * 200 MB stream). So the stream after `fromBytes` is cut into eight equal parts, and the median of
 * their growths, per MiB, is the steady growth: a step lands in one or two parts and moves no median.
 */
export async function drainWatchingRss(
  res: Response,
  pid: number,
  fromBytes = 16 * 1024 * 1024,
): Promise<{ bytes: number; samples: number; growthKb: number; steadyKbPerMb: number }> {
  let base = 0;
  let peak = 0;
  let bytes = 0;
  let samples = 0;
  const trace: Array<[bytes: number, kb: number]> = [];
  const reader = res.body!.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
    if (!base && bytes > fromBytes) {
      base = peak = rssKb(pid);
      trace.push([bytes, base]);
    }
    if (base && ++samples % 50 === 0) {
      const kb = rssKb(pid);
      peak = Math.max(peak, kb);
      trace.push([bytes, kb]);
    }
  }
  return { bytes, samples, growthKb: peak - base, steadyKbPerMb: steadyGrowth(trace) };
}

/** The median over WINDOWS equal parts of the trace's byte range of each part's RSS growth, per MiB. */
function steadyGrowth(trace: Array<[bytes: number, kb: number]>): number {
  if (trace.length < WINDOWS + 1) return 0;
  const first = trace[0]![0];
  const span = (trace.at(-1)![0] - first) / WINDOWS;
  const at = (b: number) => trace.find(([x]) => x >= b)!;
  const perMb: number[] = [];
  for (let w = 0; w < WINDOWS; w++) {
    const [b0, k0] = at(first + w * span);
    const [b1, k1] = at(first + (w + 1) * span);
    if (b1 > b0) perMb.push(((k1 - k0) * 1024 * 1024) / (b1 - b0));
  }
  perMb.sort((a, b) => a - b);
  return perMb[Math.floor(perMb.length / 2)] ?? 0;
}
