// `nexus usage`: the AI gateway's calls, tokens and cost from GET /api/v1/usage, grouped as asked.
// Members see their own calls; admins everyone's (or one user's with --user).
import { parseArgs } from 'node:util';
import { apiRequest, listItems } from '../api-client.ts';
import { CliError, resolveTarget } from '../cli-credentials.ts';
import { printJson, printTable, withCliErrors } from '../output.ts';

export const USAGE_USAGE = `Usage:
  nexus usage [--by GROUPS] [--since DATE] [--until DATE] [--key ID] [--user ID] [--group ID]
              [--model NAME] [--limit N] [--json]

  --by GROUPS    comma-separated, any of key, user, group, model, provider, day (default: model);
                 group: the group each call's key is charged to
  --group ID     only the calls of the keys charged to this group
  --since WHEN   from this time on: a date (2026-12-01, from its start in UTC), an RFC 3339 time,
                 today or yesterday (UTC), or a time ago such as 24h or 7d; --until: before it
  --url URL      the appliance (default: the one nexus login stored)
`;

const GROUPS = ['key', 'user', 'group', 'model', 'provider', 'day'] as const;
const COLUMN: Record<(typeof GROUPS)[number], string> = { key: 'key_id', user: 'user_id', group: 'group_id', model: 'model', provider: 'provider_id', day: 'day' };

interface Row extends Record<string, unknown> {
  requests: number;
  errors: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  avg_latency_ms: number | null;
}

const AGO_UNIT_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/**
 * `--since`/`--until` as the API takes them (an RFC 3339 time or a date): `today` and `yesterday`
 * are UTC days (the API's days, as `--by day` groups them), `24h`/`7d`/`2w`/`30m` a time that long ago;
 * a date or time is passed on as given for the appliance to judge.
 */
export function timeFlag(value: string, flag: string, now = Date.now()): string {
  const v = value.trim().toLowerCase();
  const midnight = new Date(now);
  midnight.setUTCHours(0, 0, 0, 0);
  if (v === 'today') return midnight.toISOString();
  if (v === 'yesterday') return new Date(midnight.getTime() - 86_400_000).toISOString();
  const ago = /^(\d{1,6})([mhdw])$/.exec(v);
  if (ago) return new Date(now - Number(ago[1]) * AGO_UNIT_MS[ago[2]!]!).toISOString();
  if (/^\d{4}-\d{2}-\d{2}([t ]|$)/.test(v) && !Number.isNaN(Date.parse(value))) return value.trim();
  throw new CliError(`${flag} takes a date (2026-12-01), an RFC 3339 time (2026-12-01T09:00:00Z), today, yesterday, or a time ago such as 30m, 24h, 7d or 2w; not "${value}"`, 2);
}

export async function usageCommand(argv: string[]): Promise<number> {
  if (argv[0] === '--help' || argv[0] === '-h') {
    process.stdout.write(USAGE_USAGE);
    return 0;
  }
  return withCliErrors('usage', async () => {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        url: { type: 'string' }, json: { type: 'boolean' }, by: { type: 'string' }, since: { type: 'string' }, until: { type: 'string' },
        key: { type: 'string' }, user: { type: 'string' }, group: { type: 'string' }, model: { type: 'string' }, limit: { type: 'string' },
      },
    });
    if (positionals.length) throw new CliError(`unexpected argument "${positionals[0]}"\n\n${USAGE_USAGE}`, 2);
    const by = (values.by ?? 'model').split(',').map((g) => g.trim()).filter(Boolean);
    for (const g of by) if (!(GROUPS as readonly string[]).includes(g)) throw new CliError(`--by takes ${GROUPS.join(', ')}; not "${g}"`, 2);
    const q = new URLSearchParams({ group_by: by.join(',') });
    for (const flag of ['since', 'until'] as const) {
      if (values[flag] !== undefined) values[flag] = timeFlag(values[flag], `--${flag}`);
    }
    for (const [flag, param] of [['since', 'since'], ['until', 'until'], ['key', 'key_id'], ['user', 'user_id'], ['group', 'group_id'], ['model', 'model'], ['limit', 'limit']] as const) {
      if (values[flag] !== undefined) q.set(param, values[flag]!);
    }
    const data = await apiRequest<unknown>(resolveTarget(values.url), 'GET', `/api/v1/usage?${q}`);
    if (values.json) return printJson(data), 0;
    const rows = listItems<Row>(data);
    const groups = by as (typeof GROUPS)[number][];
    printTable([...groups.map((g) => g.toUpperCase()), 'REQUESTS', 'ERRORS', 'INPUT', 'OUTPUT', 'COST USD', 'AVG MS'], rows.map((r) => [
      ...groups.map((g) => (r[COLUMN[g]] as string | null) ?? '—'),
      r.requests, r.errors, r.input_tokens, r.output_tokens, r.cost_usd.toFixed(4), r.avg_latency_ms === null ? '—' : Math.round(r.avg_latency_ms),
    ]), 'No gateway calls in that range.');
    if (rows.length) {
      const total = rows.reduce((n, r) => n + r.cost_usd, 0);
      process.stdout.write(`\ntotal: ${rows.reduce((n, r) => n + r.requests, 0)} requests, $${total.toFixed(4)}\n`);
    }
    return 0;
  });
}
