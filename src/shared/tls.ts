/**
 * Optional TLS for gRPC between the gateway, the evaluator and the services. With a certificate
 * and key, a service serves TLS; with a CA too, it requires client certificates signed by that
 * CA (mutual TLS), and clients verify servers against the CA and present their own certificate.
 * Without any of them, everything speaks plaintext gRPC, as the original did.
 */
import { readFileSync } from 'node:fs';
import { credentials, ServerCredentials, type ChannelCredentials } from '@grpc/grpc-js';
import { invalidArgument } from './errors.js';

export interface TlsFiles {
  readonly certFile?: string | undefined;
  readonly keyFile?: string | undefined;
  readonly caFile?: string | undefined;
}

export interface GrpcCredentials {
  readonly server: ServerCredentials;
  readonly client: ChannelCredentials;
  /** The same client material as buffers, for the node:http2 client; undefined for plaintext. */
  readonly clientTls: { readonly ca: Buffer | null; readonly cert: Buffer | null; readonly key: Buffer | null } | undefined;
}

export function grpcCredentials(files: TlsFiles = {}): GrpcCredentials {
  const { certFile, keyFile, caFile } = files;
  if (!certFile && !keyFile && !caFile) {
    return { server: ServerCredentials.createInsecure(), client: credentials.createInsecure(), clientTls: undefined };
  }
  if (!certFile !== !keyFile) throw invalidArgument('CALC_TLS_CERT and CALC_TLS_KEY go together');
  const read = (file: string, name: string) => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw invalidArgument(`${name}: cannot read ${file}: ${(error as Error).message}`);
    }
  };
  const cert = certFile ? read(certFile, 'CALC_TLS_CERT') : null;
  const key = keyFile ? read(keyFile, 'CALC_TLS_KEY') : null;
  const ca = caFile ? read(caFile, 'CALC_TLS_CA') : null;
  return {
    server: cert && key
      ? ServerCredentials.createSsl(ca, [{ cert_chain: cert, private_key: key }], ca !== null)
      : ServerCredentials.createInsecure(),
    client: credentials.createSsl(ca, key, cert),
    clientTls: { ca, cert, key },
  };
}
