// `nexus key create|list|update|rotate|revoke`: virtual keys (nx_vk_…) for the AI gateway.
import { parseArgs } from 'node:util';
import { apiRequest, listItems, type ApiTarget } from '../api-client.ts';
import { CliError, resolveTarget } from '../cli-credentials.ts';
import { durationFlag, numberFlag, orNone, subcommandOf } from '../flags.ts';
import { printJson, printTable, withCliErrors } from '../output.ts';

export const KEY_USAGE = `Usage:
  nexus key create NAME [--models a,b] [--budget USD [--budget-period day|week|month]] [--rpm N] [--tpm N]
                        [--expires ISO-DATE] [--group ID_OR_NAME] [--json]
  nexus key list [--json]
  nexus key update NAME|ID [--name NAME] [--models a,b|all] [--budget USD|none] [--budget-period P|none]
                           [--rpm N|none] [--tpm N|none] [--expires ISO-DATE|none] [--group ID_OR_NAME|none] [--json]
  nexus key rotate NAME|ID [--grace DURATION] [--json]
  nexus key revoke NAME|ID

  NAME|ID            a key's id, or its name when one key has it (revoked keys count only when no
                     active key has the name)

  --budget-period P  the budget renews every UTC day, week (from Monday) or calendar month;
                     without it the budget is for the key's whole life
  --group G          charge the key's calls to group G (id or name) as well: the group's budget
                     applies too; the key's owner must be a member of G
  none               (update) removes that limit, scope or group; all (--models) allows every model
  --grace DURATION   how long the old secret keeps working after a rotation: 90s, 30m, 1h, 7d
                     (at most 7d; default 0: it stops at once)
  --url URL          the appliance (default: the one nexus login stored)
`;

interface KeyRow {
  id: string;
  name: string;
  hint?: string;
  models?: string[] | null;
  max_budget_usd?: number | null;
  budget_period?: string | null;
  group_id?: string | null;
  spent_usd?: number | null;
  expires_at?: string | null;
  revoked_at?: string | null;
}

/**
 * A key named by id or by name (as provider, model and node commands take them). A name several keys
 * share is refused with their ids; an active key is preferred to revoked ones of the same name.
 */
async function keyId(target: ApiTarget, ref: string): Promise<string> {
  const all = listItems<KeyRow>(await apiRequest<unknown>(target, 'GET', '/api/v1/virtual-keys'));
  if (all.some((k) => k.id === ref)) return ref;
  let named = all.filter((k) => k.name === ref);
  if (named.length > 1) named = named.filter((k) => !k.revoked_at);
  if (named.length === 1) return named[0]!.id;
  if (!named.length) throw new CliError(`no virtual key with the id or name "${ref}" (nexus key list)`, 1);
  throw new CliError(`${named.length} keys are named "${ref}": give the id (${named.map((k) => k.id).join(', ')})`, 1);
}

/** A group's id or name, as given (the appliance resolves it and checks membership). */
function groupValue(v: string): string {
  if (!v.trim()) throw new CliError('--group needs a group id or name', 2);
  return v.trim();
}

/** The PATCH body for `nexus key update`: only the flags given. */
function updateBody(values: Record<string, string | boolean | undefined>): Record<string, unknown> {
  const str = (k: string) => values[k] as string | undefined;
  const body: Record<string, unknown> = {};
  const set = (k: string, v: unknown) => {
    if (v !== undefined) body[k] = v;
  };
  if (str('name') !== undefined) {
    if (!str('name')!.trim()) throw new CliError('--name must not be empty', 2);
    set('name', str('name')!.trim());
  }
  if (str('models') !== undefined) {
    const models = str('models')!.split(',').map((m) => m.trim()).filter(Boolean);
    if (!models.length) throw new CliError('--models needs model names, or all', 2);
    set('models', models.length === 1 && models[0] === 'all' ? null : models);
  }
  set('max_budget_usd', orNone(str('budget'), (s) => numberFlag(s, '--budget')));
  set('budget_period', orNone(str('budget-period'), (s) => {
    if (!['day', 'week', 'month'].includes(s)) throw new CliError('--budget-period must be day, week, month or none', 2);
    return s;
  }));
  set('rpm', orNone(str('rpm'), (s) => numberFlag(s, '--rpm', { integer: true })));
  set('tpm', orNone(str('tpm'), (s) => numberFlag(s, '--tpm', { integer: true })));
  set('group_id', orNone(str('group'), groupValue));
  set('expires_at', orNone(str('expires'), (s) => {
    const d = new Date(s);
    if (Number.isNaN(d.getTime())) throw new CliError('--expires must be a date, e.g. 2027-01-31, or none', 2);
    return d.toISOString();
  }));
  return body;
}

export async function keyCommand(argv: string[]): Promise<number> {
  const sub = subcommandOf(argv, ['create', 'list', 'update', 'rotate', 'revoke'], KEY_USAGE);
  if (typeof sub === 'number') return sub;
  const { values, positionals } = parseArgs({
    args: argv.slice(1),
    allowPositionals: true,
    strict: true,
    options: {
      url: { type: 'string' }, json: { type: 'boolean' }, models: { type: 'string' }, budget: { type: 'string' },
      'budget-period': { type: 'string' }, rpm: { type: 'string' }, tpm: { type: 'string' }, expires: { type: 'string' },
      grace: { type: 'string' }, name: { type: 'string' }, group: { type: 'string' },
    },
  });
  return withCliErrors(`key ${sub}`, async () => {
    if (sub === 'create') {
      const name = positionals[0];
      if (!name || positionals.length > 1) throw new CliError('usage: nexus key create NAME [options]', 2);
      const body: Record<string, unknown> = { name };
      const models = values.models?.split(',').map((m) => m.trim()).filter(Boolean);
      if (models?.length) body.models = models;
      const budget = numberFlag(values.budget, '--budget');
      if (budget !== undefined) body.max_budget_usd = budget;
      const period = values['budget-period'];
      if (period !== undefined) {
        if (!['day', 'week', 'month'].includes(period)) throw new CliError('--budget-period must be day, week or month', 2);
        if (budget === undefined) throw new CliError('--budget-period needs --budget', 2);
        body.budget_period = period;
      }
      const rpm = numberFlag(values.rpm, '--rpm', { integer: true });
      if (rpm !== undefined) body.rpm = rpm;
      const tpm = numberFlag(values.tpm, '--tpm', { integer: true });
      if (tpm !== undefined) body.tpm = tpm;
      if (values.expires !== undefined) {
        const d = new Date(values.expires);
        if (Number.isNaN(d.getTime())) throw new CliError('--expires must be a date, e.g. 2027-01-31', 2);
        body.expires_at = d.toISOString();
      }
      if (values.group !== undefined) body.group_id = groupValue(values.group);
      const target = resolveTarget(values.url);
      const created = await apiRequest<{ id: string; key: string; warnings?: string[] }>(target, 'POST', '/api/v1/virtual-keys', body);
      for (const w of created.warnings ?? []) process.stderr.write(`warning: ${w}\n`);
      if (values.json) return printJson(created), 0;
      process.stdout.write(`Virtual key "${name}" created (id ${created.id}). It is shown only once:\n\n  ${created.key}\n\n` +
        `Use it as the API key with base URL ${target.url}/v1 (OpenAI SDKs) or ${target.url} (Gemini and Anthropic SDKs).\n`);
      return 0;
    }
    const target = resolveTarget(values.url);
    if (sub === 'list') {
      const data = await apiRequest<unknown>(target, 'GET', '/api/v1/virtual-keys');
      if (values.json) return printJson(data), 0;
      printTable(['ID', 'NAME', 'KEY', 'MODELS', 'SPEND', 'EXPIRES', 'STATUS'], listItems<KeyRow>(data).map((k) => [
        k.id, k.name, k.hint, k.models?.length ? k.models.join(',') : 'all',
        `$${(k.spent_usd ?? 0).toFixed(4)}${k.max_budget_usd != null ? `/$${k.max_budget_usd}` : ''}${k.budget_period ? ` per ${k.budget_period}` : ''}`, k.expires_at, k.revoked_at ? 'revoked' : 'active',
      ]), 'No virtual keys yet: nexus key create NAME');
      return 0;
    }
    const ref = positionals[0];
    if (sub === 'update') {
      if (!ref || positionals.length > 1) throw new CliError('usage: nexus key update NAME|ID [options]', 2);
      const body = updateBody(values);
      if (!Object.keys(body).length) throw new CliError('nothing to change: name at least one of --name, --models, --budget, --budget-period, --rpm, --tpm, --expires, --group', 2);
      const id = await keyId(target, ref);
      const updated = await apiRequest<KeyRow & { warnings?: string[] }>(target, 'PATCH', `/api/v1/virtual-keys/${encodeURIComponent(id)}`, body);
      for (const w of updated.warnings ?? []) process.stderr.write(`warning: ${w}\n`);
      if (values.json) return printJson(updated), 0;
      process.stdout.write(`Virtual key "${updated.name}" updated: ${Object.keys(body).join(', ')}.\n`);
      return 0;
    }
    if (sub === 'rotate') {
      if (!ref || positionals.length > 1) throw new CliError('usage: nexus key rotate NAME|ID [--grace DURATION]', 2);
      const grace = values.grace === undefined ? 0 : durationFlag(values.grace, '--grace');
      const id = await keyId(target, ref);
      const rotated = await apiRequest<{ key: string; name: string; previous_valid_until: string | null }>(target, 'POST', `/api/v1/virtual-keys/${encodeURIComponent(id)}/rotate`, { grace_seconds: grace });
      if (values.json) return printJson(rotated), 0;
      process.stdout.write(`Virtual key "${rotated.name}" rotated. The new key is shown only once:\n\n  ${rotated.key}\n\n` +
        (rotated.previous_valid_until ? `The old key keeps working until ${rotated.previous_valid_until}.\n` : 'The old key no longer works.\n'));
      return 0;
    }
    if (!ref || positionals.length > 1) throw new CliError('usage: nexus key revoke NAME|ID', 2);
    const id = await keyId(target, ref);
    await apiRequest(target, 'DELETE', `/api/v1/virtual-keys/${encodeURIComponent(id)}`);
    if (values.json) return printJson({ id, revoked: true }), 0;
    process.stdout.write(`Virtual key ${ref === id ? id : `"${ref}" (${id})`} revoked.\n`);
    return 0;
  });
}
