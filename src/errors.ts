/**
 * Errors the user can act on. The CLI prints `message` as one line (the stack only with --verbose) and exits with
 * `exitCode`: 2 for usage and data errors, 1 for runtime failures.
 */
export class T5clsError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1, options?: { cause?: unknown }) {
    // One line, whatever a wrapped message (e.g. JSON.parse's excerpt of the input) contained.
    super(message.replace(/\s*[\r\n]+\s*/g, ' '), options);
    this.name = new.target.name;
    this.exitCode = exitCode;
  }
}

/** Bad options or bad input data (a file, a line, a field): exit code 2. */
export class UsageError extends T5clsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 2, options);
  }
}

/** A file whose content is not what it must be (JSON, safetensors, config): exit code 2. */
export class FormatError extends T5clsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, 2, options);
  }
}
