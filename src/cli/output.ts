// Printing for operator commands: aligned columns for people, --json for scripts.
export function printJson(data: unknown): void {
  process.stdout.write(JSON.stringify(data, null, 2) + '\n');
}

export function printTable(headers: string[], rows: (string | number | null | undefined)[][], empty: string): void {
  if (!rows.length) {
    process.stdout.write(`${empty}\n`);
    return;
  }
  const cells = [headers, ...rows.map((r) => r.map((c) => (c === null || c === undefined || c === '' ? '-' : String(c))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  for (const r of cells) process.stdout.write(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ') + '\n');
}

/** Runs an operator command; a CliError becomes one line on stderr and its exit code. */
export async function withCliErrors(name: string, fn: () => Promise<number>): Promise<number> {
  try {
    return await fn();
  } catch (err) {
    const e = err as { name?: string; code?: unknown; message?: string };
    if (e.name === 'CliError') {
      process.stderr.write(`nexus ${name}: ${e.message}\n`);
      return typeof e.code === 'number' ? e.code : 1;
    }
    throw err;
  }
}
