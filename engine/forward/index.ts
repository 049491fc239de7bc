export { TcpForwarder } from './forwarder';
export type { ConnectionHandler } from './forwarder';
export { parsePublish } from './publish';
export type { ForwardAddress, PublishSpec } from './types';
