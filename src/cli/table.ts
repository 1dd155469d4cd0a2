// Plain text tables for list commands (--json prints arrays instead). Every cell is printed through
// terminalSafe: names, paths and reasons come from the database, and from clients before that.
import { terminalSafe } from '../names';

export function formatTable(headers: string[], rows: string[][]): string {
  const cells = rows.map((row) => row.map((cell) => terminalSafe(cell ?? '')));
  const widths = headers.map((header, column) => Math.max(header.length, ...cells.map((row) => (row[column] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => (cell ?? '').padEnd(widths[column]))
      .join('  ')
      .trimEnd();
  return [line(headers), ...cells.map(line)].join('\n');
}
