export { TcpForwarder } from './forwarder';
export type { ConnectionHandler } from './forwarder';
export type { ForwardAddress, PublishSpec } from './types';
export { REFUSAL_NOTICE_INTERVAL_MS } from './refusals';
export type { ForwardRefusal } from './refusals';
