// One block of bench/RESULTS.md: a titled table plus notes (targets met or missed, and why).
export interface BenchSection {
  title: string;
  headers: string[];
  rows: string[][];
  notes: string[];
}

export function renderSection(section: BenchSection): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [
    `## ${section.title}`,
    '',
    line(section.headers),
    line(section.headers.map(() => '---')),
    ...section.rows.map(line),
    '',
    ...section.notes.map((note) => `- ${note}`),
    '',
  ].join('\n');
}
