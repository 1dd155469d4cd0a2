// A workflow package running in this process, loaded from the sealed bytes that were verified.
import { CloacinaSignError } from '../errors';
import { type NativePackage, nativeMethods, type PackageInfo } from '../native';

/** Cloacina's own host passes a 10 MiB result buffer. */
export const DEFAULT_RESULT_CAPACITY = 10 * 1024 * 1024;

export interface TaskMetadata {
  index: number;
  localId: string;
  namespacedIdTemplate: string | null;
  dependencies: string[];
  description: string | null;
  sourceLocation: string | null;
}

export interface PackageMetadata {
  packageName: string | null;
  description: string | null;
  author: string | null;
  workflowFingerprint: string | null;
  graph: unknown;
  tasks: TaskMetadata[];
}

/** The package reported a task failure (-1); `details` is its error JSON. */
export class TaskFailed extends CloacinaSignError {
  readonly details: unknown;

  constructor(taskName: string, details: unknown) {
    const reason = typeof (details as { error?: unknown })?.error === 'string' ? (details as { error: string }).error : JSON.stringify(details);
    super('TASK_FAILED', `task ${taskName} failed: ${reason}`);
    this.details = details;
  }
}

function parseJson(text: string | null | undefined, what: string): unknown {
  if (text === null || text === undefined) return null;
  try {
    return JSON.parse(text);
  } catch {
    throw new CloacinaSignError('TASK_INVALID_OUTPUT', `${what} is not valid JSON`);
  }
}

function toMetadata(info: PackageInfo): PackageMetadata {
  return {
    packageName: info.packageName ?? null,
    description: info.packageDescription ?? null,
    author: info.packageAuthor ?? null,
    workflowFingerprint: info.workflowFingerprint ?? null,
    graph: parseJson(info.graphDataJson, 'the package graph'),
    tasks: info.tasks.map((task) => ({
      index: task.index,
      localId: task.localId,
      namespacedIdTemplate: task.namespacedIdTemplate ?? null,
      dependencies: (parseJson(task.dependenciesJson, `dependencies of task ${task.localId}`) as string[] | null) ?? [],
      description: task.description ?? null,
      sourceLocation: task.sourceLocation ?? null,
    })),
  };
}

/** A workflow package running in this process, loaded from exactly the sealed bytes that were verified. */
export interface LoadedPackage {
  /** The package as given. */
  readonly path: string;
  /**
   * Lowercase hex digest of the loaded bytes: the one the verified signature covers (SHA-256 for version
   * 1 and cosign, the statement's algorithm for version 2, BLAKE3 by default), SHA-256 when loaded unsigned.
   */
  readonly packageHash: string;
  /** The trusted key that signed it; null when it was loaded unsigned because signatures are not required. */
  readonly signerFingerprint: string | null;
  /** The sealed memory file's descriptor the library was loaded from (a diagnostic). */
  readonly descriptor: number;
  /** Tasks and description, copied out of the library. */
  metadata(): PackageMetadata;
  /** Whether the package itself defines `name`. */
  hasSymbol(name: string): boolean;
  /** Runs one task off the JS thread; resolves to its output context. */
  executeTask(taskName: string, context?: Record<string, unknown>): Promise<unknown>;
  /** Releases this handle; the library unloads once running tasks finish. */
  close(): void;
}

/**
 * The LoadedPackage over a native handle; callers only ever see the LoadedPackage interface.
 * @internal (kept out of the published declarations: they must not reach the native binding's types)
 */
export class GuardedPackage implements LoadedPackage {
  readonly descriptor: number;

  constructor(
    readonly path: string,
    readonly packageHash: string,
    readonly signerFingerprint: string | null,
    private readonly native: NativePackage,
    private readonly resultCapacity = DEFAULT_RESULT_CAPACITY,
  ) {
    this.descriptor = native.descriptor;
  }

  metadata(): PackageMetadata {
    return toMetadata(nativeMethods.metadata(this.native));
  }

  hasSymbol(name: string): boolean {
    return nativeMethods.hasSymbol(this.native, name);
  }

  async executeTask(taskName: string, context: Record<string, unknown> = {}): Promise<unknown> {
    const outcome = await nativeMethods.executeTask(this.native, taskName, JSON.stringify(context), this.resultCapacity);
    if (outcome.failure !== undefined && outcome.failure !== null) throw new TaskFailed(taskName, failureDetails(outcome.failure));
    return parseJson(outcome.output, `the output of task ${taskName}`);
  }

  close(): void {
    this.native.close();
  }
}

/** The error JSON the package wrote (as data from the binding); text that is not JSON is kept as the error. */
function failureDetails(json: string): unknown {
  try {
    return JSON.parse(json);
  } catch {
    return { error: json, status: 'error' };
  }
}
