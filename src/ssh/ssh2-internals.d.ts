/**
 * Types for the few files inside the pinned ssh2 1.17.0 (plain CommonJS, no types of their
 * own) that ssh2-capabilities.ts reads to see which of patches/ssh2+1.17.0+*.patch are
 * applied. Only what the probes touch is declared.
 */
declare module 'ssh2/lib/protocol/keyParser.js' {
  const keyParser: {
    /** Added by patch 001: pairs a parsed private key with its OpenSSH certificate. */
    certifyKey?: (key: unknown, certificate: unknown) => unknown;
  };
  export = keyParser;
}

declare module 'ssh2/lib/protocol/constants.js' {
  const constants: {
    MESSAGE: Record<string, number>;
    SUPPORTED_SERVER_HOST_KEY: string[];
  };
  export = constants;
}

declare module 'ssh2/lib/protocol/handlers.misc.js' {
  /** Packet handlers by message number. */
  const handlers: Record<number, (...args: unknown[]) => unknown>;
  export = handlers;
}

declare module 'ssh2/lib/protocol/crypto.js' {
  const crypto: {
    CIPHER_INFO: Record<string, { keyLen: number }>;
    createCipher(config: unknown): object;
    createDecipher(config: unknown): object;
  };
  export = crypto;
}

declare module 'ssh2/lib/protocol/utils.js' {
  const utils: {
    /** Sends a finalized packet (ssh2-disconnect.ts: DISCONNECT with a description). */
    sendPacket(proto: unknown, packet: Buffer, bypass?: boolean): void;
  };
  export = utils;
}

declare module 'ssh2/lib/protocol/Protocol.js' {
  /** ssh2's transport: parses what the socket reads, writes packets. */
  class Protocol {
    /** Added by patch 011: parses a read buffer the caller reuses once it returns. */
    parseBorrowed?: (chunk: Buffer) => void;
  }
  export = Protocol;
}

declare module 'ssh2/lib/Channel.js' {
  const channel: {
    /** Added by patch 011: whether channel data may be lent to the channel's consumer. */
    lendsData?: (channel: unknown) => boolean;
  };
  export = channel;
}
