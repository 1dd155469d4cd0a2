// How every command reports: data on stdout (one JSON object with --json), messages on stderr.
import { CloacinaSignError, VerificationFailure } from '../errors';
import { terminalSafe } from '../names';

export { terminalSafe };

export interface OutputOptions {
  json?: boolean;
}

export const EXIT_OK = 0;
export const EXIT_VERIFICATION_FAILED = 1;
export const EXIT_USAGE = 2;
/** `package run`: the package verified and loaded, but its task failed. */
export const EXIT_TASK_FAILED = 3;

export function useColor(stream: NodeJS.WriteStream = process.stderr): boolean {
  const noColor = process.env.NO_COLOR;
  return Boolean(stream.isTTY) && (noColor === undefined || noColor === '');
}

function paint(code: number, text: string): string {
  return useColor() ? `\u001b[${code}m${text}\u001b[0m` : text;
}

export const green = (text: string): string => paint(32, text);
export const red = (text: string): string => paint(31, text);

export function printData(options: OutputOptions, json: unknown, text: string): void {
  process.stdout.write(options.json ? `${JSON.stringify(json)}\n` : `${text}\n`);
}

export function say(message: string): void {
  process.stderr.write(`${message}\n`);
}

export function errorCode(error: unknown): string {
  return error instanceof CloacinaSignError ? error.code : 'INTERNAL';
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * `error [CODE]: message` on stderr, saying too when the failure itself could not be audited. A message
 * may quote a file, a service's answer or a database row: control characters are shown escaped.
 */
export function reportError(error: unknown): void {
  for (const line of errorReport(error)) say(line);
}

/** The lines `reportError` writes. */
export function errorReport(error: unknown): string[] {
  const lines = [`${red('error')} [${terminalSafe(errorCode(error))}]: ${terminalSafe(errorMessage(error))}`];
  const cause = error instanceof Error ? error.cause : undefined;
  if (cause instanceof CloacinaSignError && cause.code === 'AUDIT_FAILED') lines.push(`  and this failure was not audited: ${terminalSafe(cause.message)}`);
  return lines;
}

export function exitCodeFor(error: unknown): number {
  if (error instanceof VerificationFailure) return EXIT_VERIFICATION_FAILED;
  if (error instanceof CloacinaSignError && error.code.startsWith('TASK_')) return EXIT_TASK_FAILED;
  return EXIT_USAGE;
}

/**
 * Runs a command action and maps failures to the exit codes: 1 when a package failed verification,
 * 2 for everything else. `jsonOnError` shapes the one JSON object printed on failure.
 */
export async function runAction(
  options: OutputOptions,
  action: () => Promise<void>,
  jsonOnError: (error: { code: string; message: string }) => unknown = (error) => ({ error }),
): Promise<void> {
  try {
    await action();
  } catch (error) {
    const report = { code: errorCode(error), message: errorMessage(error) };
    if (options.json) process.stdout.write(`${JSON.stringify(jsonOnError(report))}\n`);
    reportError(error);
    process.exitCode = exitCodeFor(error);
  }
}
