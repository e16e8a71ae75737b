/** The logging contract servers use; the CLI supplies a pino logger that fits it. */

/** A structured logger (pino's shape): fields first, message second. */
export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
  child(bindings: object): Logger;
}

/** A logger that drops everything, for tests and commands that do not log. */
export const silentLogger: Logger = {
  info() {},
  warn() {},
  error() {},
  debug() {},
  child() { return silentLogger; },
};
