/**
 * Reads the one message of a unary gRPC response as its DATA frames arrive, holding at most
 * `maxBytes` of it: a declared length over the limit is refused from the 5-byte prefix alone,
 * before its body is read, and bytes after the one message are refused as they arrive. So a
 * peer that declares or streams gigabytes costs the caller at most one limit's worth of memory.
 * The failures are those grpc-js reports for the same bytes, so both transports agree.
 */
import { status as GrpcStatus } from '@grpc/grpc-js';

export interface ReadFailure {
  readonly code: GrpcStatus;
  readonly details: string;
}

export class ResponseReader {
  readonly #maxBytes: number;
  readonly #prefix = Buffer.alloc(5);
  #prefixFilled = 0;
  #body: Buffer | undefined;
  #bodyFilled = 0;
  #complete = false;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /** Takes one DATA chunk; a failure means the call must end now. */
  push(chunk: Buffer): ReadFailure | undefined {
    let at = 0;
    while (at < chunk.length) {
      if (this.#complete) return { code: GrpcStatus.UNIMPLEMENTED, details: 'Too many responses received' };
      if (this.#body === undefined) {
        const take = Math.min(5 - this.#prefixFilled, chunk.length - at);
        chunk.copy(this.#prefix, this.#prefixFilled, at, at + take);
        this.#prefixFilled += take;
        at += take;
        if (this.#prefixFilled < 5) return undefined;
        if (this.#prefix[0] !== 0) return { code: GrpcStatus.INTERNAL, details: 'compressed or malformed response message (no grpc-encoding was agreed)' };
        const length = this.#prefix.readUInt32BE(1);
        if (length > this.#maxBytes) return { code: GrpcStatus.RESOURCE_EXHAUSTED, details: `Received message larger than max (${length} vs ${this.#maxBytes})` };
        this.#body = Buffer.allocUnsafe(length);
      }
      const take = Math.min(this.#body.length - this.#bodyFilled, chunk.length - at);
      chunk.copy(this.#body, this.#bodyFilled, at, at + take);
      this.#bodyFilled += take;
      at += take;
      if (this.#bodyFilled === this.#body.length) this.#complete = true;
    }
    return undefined;
  }

  /** Lets go of what was read (a call that failed keeps no 4 MiB buffer alive in its closures). */
  release(): void {
    this.#body = undefined;
    this.#complete = false;
    this.#prefixFilled = 5; // anything more is refused as truncated, never read
  }

  /** The message once the stream has ended with an OK status, or why there is none. */
  message(): Buffer | ReadFailure {
    if (this.#complete) return this.#body!;
    if (this.#prefixFilled === 0) return { code: GrpcStatus.UNIMPLEMENTED, details: 'No message received' };
    return { code: GrpcStatus.INTERNAL, details: 'response message truncated' };
  }
}
