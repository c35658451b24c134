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
  --since DATE   from this time on (2026-12-01 or an RFC 3339 time); --until: before it
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
