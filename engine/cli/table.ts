import { plainLine } from './terminal-text';

/** Columns two spaces apart, each as wide as its widest cell; the last column is not padded. */
export function formatTable(table: readonly (readonly string[])[]): string {
  // Cells may hold repository or guest text (service names, folders): no control character reaches the terminal.
  const rows = table.map((row) => row.map(plainLine));
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows
    .map((row) => `${row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')}\n`)
    .join('');
}
