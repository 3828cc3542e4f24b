/**
 * The media type of DNS messages carried over HTTP (RFC 8484 §6), spelled once for the DoH face
 * and the DoH upstreams.
 *
 * @module
 */

/** `application/dns-message`: a DNS message in wire format as an HTTP body (RFC 8484 §6). */
export const DNS_MESSAGE = "application/dns-message";
