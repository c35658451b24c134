// What nginx on 443 costs: the same request to `nexus serve` directly, through the appliance's nginx
// site (TLS, HTTP/1.1 keep-alive to the app), and nginx answering by itself over TLS (its ceiling on
// this machine). Load from a separate wrk or autocannon process (bench/lib.ts `load`); all three measured in the same run.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSelfSignedCertificate } from '../src/first-boot/certificate.ts';
import { renderNginxSite } from '../src/first-boot/nginx-site.ts';
import { nginxPrefix, startNginx } from '../test/helpers/nginx.ts';
import { fmt, freePort, load, loadGenerator, ROOT, startQuiet, stop, tempDir, waitFor } from './lib.ts';

const DURATION = Number(process.argv.find((a) => a.startsWith('--duration='))?.split('=')[1] ?? 5);
const CONNECTIONS = 64;

const dir = tempDir('nexus-bench-appliance-');
const [appPort, adminPort, httpsPort, httpPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
const dist = join(ROOT, 'dist/nexus');
const [cmd, pre] = existsSync(dist) ? [dist, []] : [process.execPath, [join(ROOT, 'src/main.ts')]];
const app = startQuiet(cmd, [...pre, 'serve', '--data-dir', join(dir, 'data'), '--listen', `127.0.0.1:${appPort}`, '--admin-listen', `127.0.0.1:${adminPort}`], { XDG_CACHE_HOME: join(dir, 'cache') });

const cert = createSelfSignedCertificate(['127.0.0.1', 'localhost']);
writeFileSync(join(dir, 'c.pem'), cert.certPem);
writeFileSync(join(dir, 'k.pem'), cert.keyPem, { mode: 0o600 });
const site = join(dir, 'site.conf');
writeFileSync(site, renderNginxSite({
  addresses: ['127.0.0.1'],
  httpsPort,
  httpPort,
  serverNames: ['localhost'],
  certPath: join(dir, 'c.pem'),
  keyPath: join(dir, 'k.pem'),
  upstream: `127.0.0.1:${appPort}`,
  hsts: false,
  extra: '    location = /__nginx_only { access_log off; default_type application/json; return 200 \'{"status":"ok"}\'; }',
}));
const prefix = nginxPrefix(site);
// The test prefix logs every request; a benchmark measures the proxy, not the disk.
writeFileSync(prefix.mainConf, readFileSync(prefix.mainConf, 'utf8').replace(/access_log [^;]+;/, 'access_log off;').replace('error_log ' + prefix.errorLog + ' info;', 'error_log ' + prefix.errorLog + ' warn;'));
const nginx = await startNginx(prefix, httpsPort);

// The certificate is self-signed for this run only; the load generator (a child process) must accept it (wrk does not verify certificates).
process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
try {
  await waitFor(`http://127.0.0.1:${appPort}/ready`);
  const opts = { connections: CONNECTIONS, duration: DURATION };
  await load(`http://127.0.0.1:${appPort}/healthz`, { ...opts, duration: 2 }); // warm-up (JIT)
  await load(`https://127.0.0.1:${httpsPort}/healthz`, { ...opts, duration: 2 });
  const direct = await load(`http://127.0.0.1:${appPort}/healthz`, opts);
  const viaNginx = await load(`https://127.0.0.1:${httpsPort}/healthz`, opts);
  const nginxOnly = await load(`https://127.0.0.1:${httpsPort}/__nginx_only`, opts);
  for (const [name, r] of [['direct', direct], ['via nginx', viaNginx], ['nginx only', nginxOnly]] as const) {
    if (r.errors || r.non2xx) throw new Error(`${name}: ${r.errors} errors, ${r.non2xx} non-2xx`);
  }
  const row = (what: string, r: typeof direct) => `| ${what} | ${Math.round(r.rps).toLocaleString('en-US')} req/s, p50 ${fmt(r.p50)} ms, p99 ${fmt(r.p99)} ms |`;
  process.stdout.write([
    '',
    '## Appliance (nginx on 443)',
    '',
    `Command: \`npm run bench -- appliance\` (${existsSync(dist) ? 'dist/nexus' : 'node src/main.ts'}, c=${CONNECTIONS}, ${DURATION} s each, load from ${loadGenerator}, same run).`,
    '',
    '| measure | value |',
    '|---|---|',
    row('GET /healthz, nexus serve directly (HTTP)', direct),
    row('GET /healthz through the appliance nginx site (TLS, keep-alive upstream)', viaNginx),
    row('nginx answering by itself over TLS (its ceiling here)', nginxOnly),
    `| ratio through nginx / direct | **${fmt(viaNginx.rps / direct.rps)}** |`,
    '',
  ].join('\n') + '\n');
} finally {
  await nginx.stop();
  await stop(app);
}
