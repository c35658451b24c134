// A worker thread that copies the database for a backup asked of the appliance (backup-routes.ts):
// VACUUM INTO is one synchronous call that may take seconds, which the request thread must not wait on.
import { parentPort, workerData } from 'node:worker_threads';
import { snapshotDatabase } from './backup.ts';

const { path, to, nativeBindingPath } = workerData as { path: string; to: string; nativeBindingPath?: string };
let nativeBinding: object | undefined;
if (nativeBindingPath) {
  const mod = { exports: {} };
  process.dlopen(mod, nativeBindingPath);
  nativeBinding = mod.exports;
}
try {
  parentPort!.postMessage({ schema: snapshotDatabase(path, to, nativeBinding) });
} catch (err) {
  parentPort!.postMessage({ error: (err as Error).message });
}
