// A process's resident memory while a test streams a large answer through it.
import { readFileSync } from 'node:fs';

/** Resident memory of a process now (VmRSS), in KiB. */
export function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]);
}

/**
 * Reads a streamed answer to its end, sampling `pid`'s RSS every 50 reads once `fromBytes` have
 * arrived (the first megabytes grow buffers and JIT code whatever the gateway does). Returns the bytes
 * read, the samples taken (so a test can check the peak was sampled along the stream) and the growth
 * from the first sample to the peak, in KiB.
 */
export async function drainWatchingRss(res: Response, pid: number, fromBytes = 16 * 1024 * 1024): Promise<{ bytes: number; samples: number; growthKb: number }> {
  let base = 0;
  let peak = 0;
  let bytes = 0;
  let samples = 0;
  const reader = res.body!.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
    if (!base && bytes > fromBytes) base = peak = rssKb(pid);
    if (base && ++samples % 50 === 0) peak = Math.max(peak, rssKb(pid));
  }
  return { bytes, samples, growthKb: peak - base };
}
