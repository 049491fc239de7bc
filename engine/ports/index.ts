/** Port-forwarding policy: pure decisions shared by the extension and the CLI. */
export { chooseHostPort } from './host-port';
export type { HostPortChoice, HostPortRequest } from './host-port';
export { MAX_AUTO_FORWARDS, MAX_CONFIGURED_FORWARDS, planConfigured, planForwards } from './plan';
export type { ForwardPlan, ForwardState } from './plan';
export { NOTICE_WINDOW_MS, NOTICES_PER_WINDOW, NoticeBudget } from './notice-budget';
export type { NoticeDecision } from './notice-budget';
export { isWellKnownServicePort, WELL_KNOWN_SERVICE_PORTS } from './well-known';
export type { ForwardedPort, ForwardOrigin } from './types';
