import * as dns from 'node:dns/promises';
import * as http from 'node:http';
import * as net from 'node:net';
import type { NetworkMode } from '../qemu/network';
import { allows, canonicalName, EgressPolicy } from './policy';
import { isPublicAddress } from './public-address';
import { MAX_HELLO_BYTES } from './sni';
import { checkTunnelStart } from './tunnel-start';
import { EgressAsk, EgressQuestions } from './ask';
import { DnsAnswerer } from './dns';
import type { GuestProcess } from '../agent/client';

/** One connection the guest asked for, as the workspace log and learn mode see it. */
export interface EgressEvent {
  at: string;
  /** The host name asked for (canonical), or the raw target when it was not a name. */
  name: string;
  port: number;
  allowed: boolean;
  /** Why it was refused, or how it ended. */
  reason?: string;
  bytesUp: number;
  bytesDown: number;
  /** The guest process that opened the connection, as the guest's agent reports it (advisory: never used to decide). */
  process?: GuestProcess;
}

/** Finds the guest process behind a client connection from 127.0.0.1:peerPort (see attribution.ts). */
export type EgressAttribution = (peerPort: number) => Promise<GuestProcess | undefined>;

export interface EgressProxyOptions {
  policy: EgressPolicy;
  /**
   * Names answered without DNS: loopback servers standing in for the internet in tests. Their
   * addresses skip the public-address check, so only tests set it (MICROVM_TEST_EGRESS_HOSTS).
   */
  resolveOverride?: ReadonlyMap<string, string>;
}

/** At most this many tunnels at once per VM; more are refused, so a guest cannot exhaust the host's sockets. */
const MAX_TUNNELS = 256;
const CONNECT_TIMEOUT_MS = 15_000;
/** How long an event waits for its connection's process before it is told without one. */
const ATTRIBUTION_WAIT_MS = 3_000;

/**
 * The only way out of a VM whose network is `allowlist` or `learn`: an HTTP proxy on the
 * host's loopback (the network guard lets the VM's QEMU reach this port and nothing else).
 * CONNECT tunnels and plain HTTP requests are allowed by the name asked for; the proxy
 * resolves it itself and connects only to public addresses; TLS passes through untouched, and
 * a ClientHello that names another server than the one allowed is refused. Addresses are
 * never accepted as targets.
 */
export class EgressProxy {
  private readonly sockets = new Set<net.Socket>();
  /** A plain-HTTP client connection's byte counters when its last request ended. */
  private readonly counted = new WeakMap<net.Socket, readonly [number, number]>();
  private readonly listeners = new Set<(event: EgressEvent) => void>();
  private questions: EgressQuestions | undefined;
  private tunnels = 0;
  private attribution: EgressAttribution | undefined;
  /** Each client connection's guest process, looked up as it is accepted (before the guest can close it). */
  private readonly owners = new WeakMap<net.Socket, Promise<GuestProcess | undefined>>();

  private dns: DnsAnswerer | undefined;

  private constructor(
    private readonly server: http.Server,
    private readonly options: EgressProxyOptions,
  ) {}

  static async start(options: EgressProxyOptions): Promise<EgressProxy> {
    const server = http.createServer();
    const proxy = new EgressProxy(server, options);
    proxy.dns = await DnsAnswerer.start((name) => proxy.resolveAllowed(name));
    server.on(
      'connect',
      (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => void proxy.tunnel(req, socket, head),
    );
    server.on('request', (req, res) => void proxy.forward(req, res));
    server.on('connection', (socket: net.Socket) => {
      proxy.track(socket);
      // learn names every connection's process; allowlist only a refusal's (the look-up costs a
      // connection ~20 ms under TCG: QEMU's monitor and the guest's agent share the CPU with it).
      if (options.policy.mode === 'learn') proxy.lookUpOwner(socket);
    });
    server.on('clientError', (_err, socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return proxy;
  }

  /** Hears every connection the guest asked for (allowed, refused, ended); returns a disposer. */
  onEvent(listener: (event: EgressEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** network 'allowlist': names outside the list are put to `ask` (see ask.ts) instead of refused outright. */
  askWith(ask: EgressAsk | undefined): void {
    this.questions = ask ? new EgressQuestions(ask) : undefined;
  }

  /** Names the guest process of each connection in its events, from now on (see attribution.ts). */
  attributeWith(attribution: EgressAttribution | undefined): void {
    this.attribution = attribution;
  }

  private lookUpOwner(client: net.Socket): void {
    const peerPort = client.remotePort;
    if (!this.attribution || peerPort === undefined || this.owners.has(client)) return;
    const owner = this.attribution(peerPort).catch(() => undefined);
    this.owners.set(
      client,
      Promise.race([
        owner,
        new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), ATTRIBUTION_WAIT_MS).unref()),
      ]),
    );
  }

  /**
   * Looks up the connection's process if no one did yet, and resolves once it is known (or
   * given up on). A refusal waits for it, so the guest's process does not end (and drop its
   * socket) first; so does every connection in `learn`, whose log is what the user approves.
   * `allowlist` does not look up allowed connections: their lines have no process.
   */
  private async ownerKnown(client: net.Socket): Promise<void> {
    this.lookUpOwner(client);
    await this.owners.get(client);
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** The UDP port of this VM's resolver (see dns.ts). */
  get dnsPort(): number {
    return this.dns?.port ?? 0;
  }

  /** For the VM's resolver: the IPv4 addresses of a name the policy allows (never asks), else undefined. */
  private async resolveAllowed(target: string): Promise<string[] | undefined> {
    const name = canonicalName(target);
    if (!name || !allows(this.options.policy, name)) return undefined;
    const override = this.options.resolveOverride?.get(name);
    if (override) return [override];
    const addresses = await dns.lookup(name, { all: true, family: 4 }).catch(() => []);
    if (addresses.length === 0 || addresses.some((a) => !isPublicAddress(a.address))) return undefined;
    return addresses.map((a) => a.address);
  }

  async close(): Promise<void> {
    this.dns?.close();
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private track(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  /** The name and port a request targets, or a refusal. */
  private async decide(
    target: string,
    port: number,
  ): Promise<{ name: string; address: string } | { name: string; refusal: string }> {
    const name = canonicalName(target);
    if (!name) return { name: target, refusal: 'the target is not a host name (addresses are not allowed)' };
    if (!allows(this.options.policy, name) && !(await this.questions?.allowed(name, port))) {
      return {
        name,
        refusal: this.questions ? 'not in the allowlist, and not allowed when asked' : 'not in the allowlist',
      };
    }
    void port;
    const override = this.options.resolveOverride?.get(name);
    if (override) return { name, address: override };
    let addresses: Array<{ address: string }>;
    try {
      addresses = await dns.lookup(name, { all: true, verbatim: true });
    } catch (err) {
      return { name, refusal: `the name does not resolve (${(err as NodeJS.ErrnoException).code ?? 'error'})` };
    }
    const refused = addresses.find((a) => !isPublicAddress(a.address));
    if (refused) return { name, refusal: `the name resolves to ${refused.address}, which is not a public address` };
    const [first] = addresses;
    if (!first) return { name, refusal: 'the name has no address' };
    return { name, address: first.address };
  }

  private event(
    client: net.Socket,
    name: string,
    port: number,
    allowed: boolean,
    reason: string | undefined,
    bytesUp = 0,
    bytesDown = 0,
  ): void {
    const event: EgressEvent = {
      at: new Date().toISOString(),
      name,
      port,
      allowed,
      ...(reason ? { reason } : {}),
      bytesUp,
      bytesDown,
    };
    const emit = (told: EgressEvent) => {
      for (const listener of this.listeners) listener(told);
    };
    const owner = this.owners.get(client);
    if (!owner) return emit(event);
    void owner.then((process) => emit(process ? { ...event, process } : event));
  }

  private async tunnel(req: http.IncomingMessage, client: net.Socket, head: Buffer): Promise<void> {
    const { host, port } = splitTarget(req.url ?? '');
    if (this.tunnels >= MAX_TUNNELS) {
      refuse(client, 503, `more than ${MAX_TUNNELS} connections at once`);
      return this.event(client, host, port, false, 'too many connections at once');
    }
    const decision = port === 0 ? { name: host, refusal: 'no port' } : await this.decide(host, port);
    if ('refusal' in decision) {
      await this.ownerKnown(client);
      refuse(client, 403, `${decision.name}:${port} ${decision.refusal}`);
      return this.event(client, decision.name, port, false, decision.refusal);
    }
    if (this.options.policy.mode === 'learn') {
      await this.ownerKnown(client);
      if (client.destroyed) return this.event(client, decision.name, port, true, 'the client closed first');
    }
    this.tunnels++;
    const upstream = net.connect({ host: decision.address, port, timeout: CONNECT_TIMEOUT_MS });
    this.track(upstream);
    let ended = false;
    // Bytes from the sockets' own counters: no JavaScript runs per chunk of a tunnel.
    const end = (reason?: string) => {
      if (ended) return;
      ended = true;
      this.tunnels--;
      client.destroy();
      upstream.destroy();
      this.event(
        client,
        decision.name,
        port,
        reason === undefined || !reason.startsWith('refused'),
        reason,
        upstream.bytesWritten,
        upstream.bytesRead,
      );
    };
    upstream.once('timeout', () => end('the server did not answer in time'));
    upstream.once('error', (err: NodeJS.ErrnoException) => {
      if (upstream.bytesRead === 0 && upstream.bytesWritten === 0 && !client.destroyed)
        refuse(client, 502, `${decision.name}:${port} cannot be reached (${err.code ?? 'error'})`);
      end(`error ${err.code ?? err.message}`);
    });
    client.once('error', () => end());
    client.once('close', () => end());
    upstream.once('close', () => end());
    upstream.once('connect', () => {
      upstream.setTimeout(0);
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      void this.checkStart(client, head, decision.name).then((first) => {
        if (typeof first === 'string') return end(first);
        if (first.length > 0) upstream.write(first);
        client.pipe(upstream);
        upstream.pipe(client);
      });
    });
  }

  /** The client's first bytes once they may pass to the server behind `name` (see tunnel-start.ts), or why not. */
  private async checkStart(client: net.Socket, head: Buffer, name: string): Promise<Buffer | string> {
    let data = head;
    for (;;) {
      const start = checkTunnelStart(data, name);
      if (start !== 'need-more') return start.pass ? data : start.refusal;
      if (data.length >= MAX_HELLO_BYTES) return 'refused: a TLS hello too long to check';
      const chunk = await new Promise<Buffer | undefined>((resolve) => {
        const onData = (c: Buffer) => {
          cleanup();
          client.pause();
          resolve(c);
        };
        const onEnd = () => {
          cleanup();
          resolve(undefined);
        };
        const cleanup = () => {
          client.off('data', onData);
          client.off('close', onEnd);
          client.off('end', onEnd);
        };
        client.on('data', onData);
        client.once('close', onEnd);
        client.once('end', onEnd);
        client.resume();
      });
      if (!chunk) return 'the client closed before it sent anything';
      data = Buffer.concat([data, chunk]);
    }
  }

  /** A plain-HTTP request through the proxy (`GET http://host/path`). */
  private async forward(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    // Requests on one client connection come one after another: the counters' deltas since the previous
    // answer ended are this request's bytes, its request line and headers included (read before this runs).
    const socket = req.socket;
    const [readBefore, writtenBefore] = this.counted.get(socket) ?? [0, 0];
    res.once('finish', () => this.counted.set(socket, [socket.bytesRead, socket.bytesWritten]));
    let url: URL;
    try {
      url = new URL(req.url ?? '');
    } catch {
      res
        .writeHead(400, { 'content-type': 'text/plain' })
        .end('microvm egress proxy: send requests with an absolute http:// URL\n');
      return;
    }
    const port = Number(url.port || 80);
    if (url.protocol !== 'http:') {
      res
        .writeHead(400, { 'content-type': 'text/plain' })
        .end(`microvm egress proxy: ${url.protocol} is not proxied in plain form; use CONNECT\n`);
      return this.event(socket, url.hostname, port, false, `protocol ${url.protocol}`);
    }
    const decision = await this.decide(url.hostname, port);
    if ('refusal' in decision) {
      await this.ownerKnown(socket);
      res
        .writeHead(403, { 'content-type': 'text/plain' })
        .end(`microvm egress proxy: ${decision.name}:${port} ${decision.refusal}\n`);
      return this.event(socket, decision.name, port, false, decision.refusal);
    }
    if (this.options.policy.mode === 'learn') await this.ownerKnown(socket);
    const headers = { ...req.headers };
    for (const hop of ['proxy-authorization', 'proxy-connection', 'connection', 'keep-alive']) delete headers[hop];
    // The allowed name is the one the server hears (RFC 9112 3.2.2: a proxy replaces Host with the absolute URL's):
    // a guest's own Host would reach another site on a shared front end (a CDN) under the allowed name.
    headers.host = url.host;
    const bytes = () => [socket.bytesRead - readBefore, socket.bytesWritten - writtenBefore] as const;
    const upstream = http.request(
      {
        host: decision.address,
        port,
        method: req.method,
        path: `${url.pathname}${url.search}`,
        headers,
        setHost: false,
        timeout: CONNECT_TIMEOUT_MS,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
        res.once('finish', () => this.event(socket, decision.name, port, true, undefined, ...bytes()));
      },
    );
    upstream.once('timeout', () => upstream.destroy(new Error('timeout')));
    upstream.once('error', (err: NodeJS.ErrnoException) => {
      if (!res.headersSent)
        res
          .writeHead(502, { 'content-type': 'text/plain' })
          .end(`microvm egress proxy: ${decision.name}:${port} cannot be reached (${err.code ?? err.message})\n`);
      else res.destroy();
      this.event(socket, decision.name, port, true, `error ${err.code ?? err.message}`, ...bytes());
    });
    req.pipe(upstream);
  }
}

function splitTarget(target: string): { host: string; port: number } {
  const [, host, portText] = /^\[?([^\]]*?)\]?:(\d{1,5})$/.exec(target) ?? [];
  if (host === undefined) return { host: target.slice(0, 255), port: 0 };
  const port = Number(portText);
  return { host, port: port >= 1 && port <= 65535 ? port : 0 };
}

/** A refusal on a CONNECT: the guest's tool prints the status line, so it says what happened. */
function refuse(socket: net.Socket, status: number, why: string): void {
  const reason = { 403: 'Forbidden', 502: 'Bad Gateway', 503: 'Service Unavailable' }[status] ?? 'Refused';
  const body = `microvm egress proxy: ${why}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

/** MICROVM_TEST_EGRESS_HOSTS=`name=127.0.0.1,other=127.0.0.1`: the tests' stand-ins for the internet. */
export function testResolveOverride(env: NodeJS.ProcessEnv = process.env): Map<string, string> | undefined {
  const text = env.MICROVM_TEST_EGRESS_HOSTS;
  if (!text) return undefined;
  return new Map(
    text.split(',').flatMap((pair): Array<[string, string]> => {
      const [name = '', address, ...extra] = pair.split('=');
      const canonical = canonicalName(name);
      return canonical && address !== undefined && extra.length === 0 ? [[canonical, address]] : [];
    }),
  );
}

/** The proxy of one VM whose network is `allowlist` or `learn`; no policy given allows nothing. */
export function startEgressProxy(spec: { network?: NetworkMode; egress?: EgressPolicy }): Promise<EgressProxy> {
  const policy = spec.egress ?? {
    mode: spec.network === 'learn' ? ('learn' as const) : ('allowlist' as const),
    allow: [],
  };
  const resolveOverride = testResolveOverride();
  return EgressProxy.start({ policy, ...(resolveOverride ? { resolveOverride } : {}) });
}
