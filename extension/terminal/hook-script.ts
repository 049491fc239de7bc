/** A shell script that runs the commands in order and stops at the first failure, each shown first. */
export function commandsScript(commands: string[][]): string {
  const lines = commands.map((argv) => `printf '\\033[2m> %s\\033[0m\\n' ${shellQuote(argv.join(' '))} && ${argv.map(shellQuote).join(' ')}`);
  return ['set -e', ...lines].join('\n');
}

export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_\/.:=@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
