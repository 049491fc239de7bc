import * as dgram from 'node:dgram';
import * as dnsPacket from 'dns-packet';

/**
 * The VM's resolver in proxy modes: the network guard sends slirp's DNS datagrams here. A name
 * the VM may reach gets its public IPv4 addresses (so a tool that resolves before it uses the
 * proxy works); any other name is NXDOMAIN, so no query leaves the host and DNS cannot carry
 * data out. Queries are parsed with dns-packet; malformed ones get no answer.
 */
export type ResolveAllowed = (name: string) => Promise<string[] | undefined>;

const NXDOMAIN = 3;
const SERVFAIL = 2;
const TTL_SECONDS = 30;
/** A DNS query over UDP is at most 512 bytes (more with EDNS, which a stub resolver rarely sends). */
const MAX_QUERY_BYTES = 4096;

export class DnsAnswerer {
  private constructor(private readonly socket: dgram.Socket) {}

  static async start(resolve: ResolveAllowed): Promise<DnsAnswerer> {
    const socket = dgram.createSocket('udp4');
    socket.on('message', (message, peer) => void answer(socket, message, peer, resolve));
    socket.on('error', () => undefined);
    await new Promise<void>((done, fail) => {
      socket.once('error', fail);
      socket.bind(0, '127.0.0.1', () => done());
    });
    return new DnsAnswerer(socket);
  }

  get port(): number {
    return this.socket.address().port;
  }

  close(): void {
    this.socket.close();
  }
}

async function answer(
  socket: dgram.Socket,
  message: Buffer,
  peer: dgram.RemoteInfo,
  resolve: ResolveAllowed,
): Promise<void> {
  if (message.length > MAX_QUERY_BYTES) return;
  let query: dnsPacket.DecodedPacket;
  try {
    query = dnsPacket.decode(message);
  } catch {
    return;
  }
  const question = query.questions?.[0];
  if (query.type !== 'query' || !question || (query.questions?.length ?? 0) !== 1) return;
  let rcode = 0;
  const answers: dnsPacket.Answer[] = [];
  try {
    const addresses = await resolve(question.name);
    if (!addresses) rcode = NXDOMAIN;
    else if (question.type === 'A') {
      for (const address of addresses)
        answers.push({ type: 'A', name: question.name, ttl: TTL_SECONDS, class: 'IN', data: address });
    }
  } catch {
    rcode = SERVFAIL;
  }
  const reply = dnsPacket.encode({
    type: 'response',
    id: query.id,
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | rcode,
    questions: [question],
    answers,
  });
  socket.send(reply, peer.port, peer.address);
}
