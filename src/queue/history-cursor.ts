/**
 * The opaque cursor of GET /v1/results, the same on both backends: the creation time and id of
 * the last ticket of a page. Tickets are ordered by (createdAt, id), newest first, so a page
 * resumes strictly after it and a ticket created meanwhile never shifts the pages that follow.
 */
import { invalidArgument } from '../shared/errors.js';

export interface HistoryPosition {
  readonly createdAt: number;
  readonly id: string;
}

/** 13 digits hold every ms timestamp until the year 2286: string order is time order. */
export const padTime = (ms: number): string => String(Math.max(0, Math.trunc(ms))).padStart(13, '0');

export function encodeCursor(position: HistoryPosition): string {
  return Buffer.from(`${padTime(position.createdAt)}:${position.id}`).toString('base64url');
}

export function decodeCursor(cursor: string): HistoryPosition {
  const text = /^[\w-]{1,400}$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString() : '';
  const match = /^(\d{13}):([\x21-\x7e]{1,128})$/.exec(text);
  if (!match) throw invalidArgument('cursor: not a cursor this gateway returned');
  return { createdAt: Number(match[1]), id: match[2]! };
}
