// The current time as an ISO 8601 string, formatted at most once per millisecond: every gateway
// request stamps an access line, a usage row and an audit entry, thousands of times a second.
let lastMs = 0;
let lastIso = '';

export function isoNow(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastIso = new Date(now).toISOString();
  }
  return lastIso;
}
