// Runs Debian's nginx as a test process: a private prefix dir holds the main config, pid, logs and
// temp files; the appliance's site config is included at http{} level exactly as on the appliance.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { renderNginxSite } from '../../src/first-boot/nginx-site.ts';
import { tempDir } from './appliance.ts';

export function nginxBinary(): string | null {
  const r = spawnSync('sh', ['-c', 'command -v nginx || ls /usr/sbin/nginx'], { encoding: 'utf8' });
  const path = r.stdout.trim().split('\n')[0];
  return r.status === 0 && path ? path : null;
}

/**
 * `n` distinct ports that were free a moment ago (the OS picks them; nginx cannot listen on port 0).
 * All are held open until each is bound: one after the other, the OS may hand back the port it has
 * just been given, and nginx then merges the HTTP and HTTPS servers onto one listener and refuses to
 * start ("no ssl_certificate is defined for the listen … ssl directive").
 */
export async function freePorts(n: number): Promise<number[]> {
  const servers = Array.from({ length: n }, () => createServer());
  try {
    return await Promise.all(servers.map((srv) => new Promise<number>((res, rej) => {
      srv.once('error', rej);
      srv.listen(0, '127.0.0.1', () => res((srv.address() as { port: number }).port));
    })));
  } finally {
    await Promise.all(servers.map((srv) => new Promise((res) => (srv.listening ? srv.close(res) : res(undefined)))));
  }
}

export interface NginxPrefix {
  dir: string;
  mainConf: string;
  errorLog: string;
}

/** Writes a main nginx.conf under a fresh prefix dir that includes `siteFile`. */
export function nginxPrefix(siteFile: string): NginxPrefix {
  const dir = tempDir('nexus-nginx-');
  // Workers run as an unprivileged user when nginx starts as root; they need to reach the temp dirs.
  chmodSync(dir, 0o755);
  for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, 'tmp', d), { recursive: true });
  const errorLog = join(dir, 'error.log');
  const mainConf = join(dir, 'nginx.conf');
  writeFileSync(
    mainConf,
    `daemon off;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${errorLog} info;
events { worker_connections 256; }
http {
    access_log ${join(dir, 'access.log')};
    client_body_temp_path ${join(dir, 'tmp/body')};
    proxy_temp_path ${join(dir, 'tmp/proxy')};
    fastcgi_temp_path ${join(dir, 'tmp/fastcgi')};
    uwsgi_temp_path ${join(dir, 'tmp/uwsgi')};
    scgi_temp_path ${join(dir, 'tmp/scgi')};
    default_type application/octet-stream;
    gzip on;
    gzip_types text/plain text/event-stream application/json;
    gzip_min_length 1;
    include ${siteFile};
}
`,
  );
  return { dir, mainConf, errorLog };
}

/** `nginx -t` on the prefix's main config; returns the exit code and nginx's own words. */
export function nginxConfigTest(prefix: NginxPrefix): { code: number | null; output: string } {
  const r = spawnSync(nginxBinary()!, ['-t', '-p', prefix.dir, '-e', prefix.errorLog, '-c', prefix.mainConf], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, output: `${r.stdout}${r.stderr}` };
}

export interface RunningNginx {
  prefix: NginxPrefix;
  proc: ChildProcess;
  errors(): string;
  stop(): Promise<void>;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      res(true);
    });
    s.once('error', () => res(false));
  });
}

/** Starts nginx in the foreground and waits (bounded) until `port` accepts connections. */
export async function startNginx(prefix: NginxPrefix, port: number, timeoutMs = 15_000): Promise<RunningNginx> {
  const proc = spawn(nginxBinary()!, ['-p', prefix.dir, '-e', prefix.errorLog, '-c', prefix.mainConf], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const errors = () => {
    let log = '';
    try {
      log = readFileSync(prefix.errorLog, 'utf8');
    } catch {
      /* not written yet */
    }
    return `${out}${log}`;
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`nginx exited with ${proc.exitCode}:\n${errors()}`);
    if (await canConnect(port)) break;
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`nginx did not listen on ${port} in time:\n${errors()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    prefix,
    proc,
    errors,
    stop: () =>
      new Promise<void>((res) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return res();
        const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
        proc.once('exit', () => {
          clearTimeout(timer);
          res();
        });
        proc.kill('SIGTERM');
      }),
  };
}

/**
 * Renders the appliance's nginx site for `appUrl` (test certificate in `dir`, free ports, no HSTS)
 * and starts nginx with it; returns nginx and the HTTPS base URL callers use.
 */
export async function startSiteInFront(dir: string, appUrl: string): Promise<{ nginx: RunningNginx; base: string }> {
  const [httpsPort, httpPort] = (await freePorts(2)) as [number, number];
  const site = join(dir, 'nexus.conf');
  writeFileSync(site, renderNginxSite({
    addresses: ['127.0.0.1'],
    httpsPort,
    httpPort,
    serverNames: ['localhost'],
    certPath: join(dir, 'test.crt'),
    keyPath: join(dir, 'test.key'),
    upstream: appUrl.replace('http://', ''),
    hsts: false,
  }));
  const nginx = await startNginx(nginxPrefix(site), httpsPort);
  return { nginx, base: `https://127.0.0.1:${httpsPort}` };
}
