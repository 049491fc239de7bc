/** Process names a hostile guest (or a tampered egress log) could report: huge, escapes, bidi, line breaks, markup. */
export const HOSTILE_COMMS = [
  'x'.repeat(10 * 1024),
  '\u001b[31mred\u001b[0m \u001b]8;;http://evil.example\u0007link\u001b]8;;\u0007',
  'gnp\u202e.exe\u202c',
  'npm\ninstalled ok\r\nregistry.npmjs.org \u2014 npm (99 connections)\u2028',
  '[x](command:workbench.action.quit)',
  '$(check) npm',
  '<img src=x onerror=alert(1)>',
  '**bold** `code` <a href="command:workbench.action.quit">click</a>',
];
