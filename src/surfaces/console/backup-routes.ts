// GET /api/v1/backup: an administrator downloads a backup of the database (docs/backup.md). Never
// with keys: the master key leaves the host only through `nexus backup` run there, so an admin
// session — which can use provider keys but never read them — cannot take them away sealed under a
// passphrase of its choosing. The copy runs on a worker thread; one backup at a time.
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { getAsset, isSea } from 'node:sea';
import type { FastifyInstance } from 'fastify';
import { packBackup, readMasterKey } from '../../core/backup/backup.ts';
import { cacheDirFromEnv } from '../../core/config/config.ts';
import type { AppContext } from '../../core/context.ts';
import { AppError, conflict } from '../../core/errors/errors.ts';
import { actorOf, requireAdmin } from '../../core/http/auth.ts';
import { isSingleExecutable, seaAddonFile } from '../../core/native/sea-addons.ts';
import { VERSION } from '../../core/version.ts';

/** VACUUM INTO on a worker thread; resolves with the database's migration versions. */
function snapshotOffThread(path: string, to: string, nativeBindingPath: string | undefined): Promise<number[]> {
  const workerData = { path, to, nativeBindingPath };
  const worker = isSea()
    ? new Worker(getAsset('snapshot-worker.cjs', 'utf8'), { eval: true, workerData })
    : new Worker(new URL('../../core/backup/snapshot-worker.ts', import.meta.url), { workerData });
  return new Promise((resolve, reject) => {
    worker.once('message', (m: { schema?: number[]; error?: string }) => (m.schema ? resolve(m.schema) : reject(new Error(m.error))));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`snapshot thread exited with ${code}`)));
  });
}

export function backupRoutes(app: FastifyInstance, ctx: AppContext) {
  let running = false;

  app.get('/api/v1/backup', { preHandler: requireAdmin(ctx) }, async (req, reply) => {
    if (running) throw conflict('a backup is already being made; try again when it is done');
    running = true;
    const snapshot = join(ctx.config.dataDir, `.backup-${randomBytes(6).toString('hex')}.db`);
    const done = () => {
      running = false;
      rmSync(snapshot, { force: true });
    };
    let schema: number[];
    try {
      const masterKey = readMasterKey(ctx.config.dataDir);
      const nativeBindingPath = isSingleExecutable() ? seaAddonFile('better_sqlite3.node', ctx.config.cacheDir ?? cacheDirFromEnv()) : undefined;
      schema = await snapshotOffThread(join(ctx.config.dataDir, 'nexus.db'), snapshot, nativeBindingPath);
      const body = new PassThrough();
      const name = `nexus-backup-${new Date().toISOString().replace(/[-:]|\.\d+/g, '')}.nxbackup`;
      ctx.audit.record({ ...actorOf(req), action: 'backup.download', target_type: 'backup', target_id: name, outcome: 'success', details: { keys: false, schema: schema.at(-1) ?? 0 } });
      // A caller leaving mid-way ends the pack: fastify destroys the stream it was sending
      // (backup.test.ts, "leaves half-way").
      packBackup({ snapshot, schema, masterKey, keyFiles: {}, passphrase: null, version: VERSION }, body).then(done, (err: unknown) => {
        req.log.warn({ err }, 'backup download ended early');
        body.destroy(err as Error);
        done();
      });
      return reply
        .header('content-type', 'application/octet-stream')
        .header('content-disposition', `attachment; filename="${name}"`)
        .header('cache-control', 'no-store')
        .send(body);
    } catch (err) {
      done();
      req.log.error({ err }, 'backup failed');
      throw new AppError('internal', 'the backup could not be made; the appliance log says why');
    }
  });
}
