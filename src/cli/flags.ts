// Flag values shared by the operator commands: numbers, durations, and `none` for "remove it".
import { CliError } from './cli-credentials.ts';

/** A positive (or, with `zero`, non-negative) number, or an integer; exit 2 otherwise. */
export function numberFlag(v: string | undefined, flag: string, opts: { integer?: boolean; zero?: boolean } = {}): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  const ok = v.trim() !== '' && Number.isFinite(n) && (opts.zero ? n >= 0 : n > 0) && (!opts.integer || Number.isInteger(n));
  if (!ok) throw new CliError(`${flag} must be a ${opts.zero ? 'non-negative' : 'positive'} ${opts.integer ? 'integer' : 'number'}`, 2);
  return n;
}

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** `90s`, `30m`, `1h`, `7d` or plain seconds. */
export function durationFlag(v: string, flag: string): number {
  const m = /^(\d{1,7})([smhd]?)$/.exec(v.trim());
  if (!m) throw new CliError(`${flag} must be a duration such as 90s, 30m, 1h or 7d`, 2);
  return Number(m[1]) * UNIT_SECONDS[m[2] || 's']!;
}

/** A value that may be `none` (→ null: remove it); absent stays undefined. */
export const orNone = <T>(v: string | undefined, parse: (s: string) => T): T | null | undefined => (v === undefined ? undefined : v === 'none' ? null : parse(v));

/**
 * The subcommand named first when it is one of `subs`; otherwise prints `usage` and gives the exit code
 * (0 for --help or -h, 2 for anything else).
 */
export function subcommandOf<S extends string>(argv: readonly string[], subs: readonly S[], usage: string): S | number {
  const sub = argv[0];
  if (sub !== undefined && (subs as readonly string[]).includes(sub)) return sub as S;
  process.stdout.write(usage);
  return sub === '--help' || sub === '-h' ? 0 : 2;
}
