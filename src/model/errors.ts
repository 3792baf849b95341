/** An error the user can cause and fix: bad input, a missing tool, a target that dies,
 *  a port in use. The CLI prints its one-line message and exits with code 2. */
export class TwinError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TwinError';
  }
}

export function isTwinError(e: unknown): e is TwinError {
  return e instanceof TwinError;
}
