/**
 * The metadata keys calcmesh puts on the gRPC wire, known to both ends: services write them,
 * upstream clients read them. Peers that do not know them lose nothing but the detail.
 */

/** The request id of the HTTP request that caused the call, carried into every service's logs. */
export const REQUEST_ID_KEY = 'x-request-id';

/** The calcmesh error code travels in trailing metadata so that peers need not parse messages. */
export const ERROR_CODE_KEY = 'calc-error-code';
